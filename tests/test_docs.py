"""The README's quickstart commands and `.ci/run` stay in step."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_readme_quickstart_has_the_main_job_and_the_test_command():
    main_job, tests = _quickstart_commands()

    assert "bridgenet train recipes/quickstart.toml" in main_job
    assert "bridgenet eval" in main_job
    assert "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command():
    _, tests = _quickstart_commands()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()

    assert tests in ci_lines, f"{tests!r} is not a line of .ci/run"
