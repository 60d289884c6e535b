"""The ``bridgenet`` app: help texts, version, and the one error handler."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from bridgenet_cli import __version__
from bridgenet_cli.cli.app import app, main
from bridgenet_cli.errors import BridgeNetError

runner = CliRunner()


def command_names() -> list[str]:
    names = [c.name for c in app.registered_commands]
    names += [g.name for g in app.registered_groups]
    return sorted(n for n in names if n)


def test_help_lists_every_registered_command():
    result = runner.invoke(app, ["--help"])

    assert result.exit_code == 0
    for name in command_names():
        assert name in result.output


@pytest.mark.parametrize("name", command_names())
def test_each_command_has_help_with_examples(name):
    result = runner.invoke(app, [name, "--help"])

    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    assert "bridgenet" in result.output  # the examples name the command


def test_version():
    result = runner.invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.output.strip() == f"bridgenet {__version__}"


def test_module_entry_point_runs():
    out = subprocess.run(
        [sys.executable, "-m", "bridgenet_cli", "--version"], capture_output=True, text=True
    )

    assert out.returncode == 0
    assert out.stdout.strip() == f"bridgenet {__version__}"


@pytest.fixture()
def failing_command():
    """Add a command that raises a user error, and remove it afterwards."""

    def fail() -> None:
        raise BridgeNetError("the thing is broken", "fix the thing")

    app.command("fail-for-test")(fail)
    yield
    app.registered_commands[:] = [c for c in app.registered_commands if c.name != "fail-for-test"]


def test_user_error_is_one_line_and_exit_2(failing_command, capsys):
    with pytest.raises(SystemExit) as info:
        main(["fail-for-test"])

    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: the thing is broken (fix the thing)"
    assert "Traceback" not in err


def test_debug_shows_the_traceback(failing_command, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--debug", "fail-for-test"])

    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "error: the thing is broken (fix the thing)" in err


def test_unknown_command_is_a_usage_error():
    result = runner.invoke(app, ["no-such-command"])

    assert result.exit_code != 0


def test_library_never_exits():
    """Library modules must raise, not exit: only bridgenet_cli/cli may call sys.exit."""
    from pathlib import Path

    import bridgenet_cli

    root = Path(bridgenet_cli.__file__).parent
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "cli" not in p.relative_to(root).parts[:1]
        and ("sys.exit(" in p.read_text() or "typer.Exit" in p.read_text())
    ]
    assert offenders == []
