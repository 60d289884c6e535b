"""The ``bridgenet`` command: global options, subcommand discovery and the one error handler.

Each subcommand lives in ``bridgenet_cli/cli/cmd_<name>.py`` and exposes ``register(app)``; a
command module appears here as soon as it exists, so no placeholder commands are ever listed.
"""

import importlib
import logging
import pkgutil
import sys
import traceback

import typer

from bridgenet_cli import __version__
from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.log import console, setup_logging

app = typer.Typer(
    name="bridgenet",
    help="Train, evaluate, profile, visualise and ablate BridgeNet multi-task dense prediction "
    "models (semantic segmentation, depth, normals, edges, saliency, human parts).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_state = {"debug": False}


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"bridgenet {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only log warnings and errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    _state["debug"] = debug
    setup_logging(1 if verbose else -1 if quiet else 0)


def _register_commands() -> None:
    import bridgenet_cli.cli as cli_package

    for module in sorted(pkgutil.iter_modules(cli_package.__path__), key=lambda m: m.name):
        if module.name.startswith("cmd_"):
            importlib.import_module(f"bridgenet_cli.cli.{module.name}").register(app)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning a :class:`BridgeNetError` into one line and exit 2."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        app(args=argv, prog_name="bridgenet")
    except BridgeNetError as exc:
        if debug or _state["debug"]:
            traceback.print_exc()
        console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        logging.getLogger(__name__).warning("interrupted")
        sys.exit(130)
