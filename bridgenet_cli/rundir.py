"""Self-describing run folders: the resolved recipe, the command line, versions, git revision."""

import json
import os
import platform
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from bridgenet_cli import __version__
from bridgenet_cli.config.recipe import recipe_to_toml
from bridgenet_cli.config.schema import Recipe
from bridgenet_cli.io import atomic_write_text


def package_versions() -> dict[str, str]:
    from importlib import metadata

    names = ["torch", "timm", "numpy", "h5py", "fvcore", "typer", "rich", "scikit-image"]
    versions = {"python": platform.python_version(), "bridgenet": __version__}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_revision() -> str:
    """The toolkit's git revision (with ``-dirty``), or ``unknown`` outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + ("-dirty" if dirty else "")


def default_run_dir(recipe: Recipe, root: str | Path = "runs") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = recipe.name or "run"
    return Path(root) / f"{name}-{stamp}"


def describe_run(run_dir: Path, recipe: Recipe, argv: list[str] | None = None) -> None:
    """Write ``recipe.toml``, ``command.txt`` and ``environment.json`` into ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "recipe.toml", recipe_to_toml(recipe))
    command = " ".join(argv if argv is not None else sys.argv)
    atomic_write_text(run_dir / "command.txt", command + "\n")
    env = {
        "versions": package_versions(),
        "git_revision": git_revision(),
        "host": platform.node(),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "started": datetime.now().isoformat(timespec="seconds"),
    }
    atomic_write_text(run_dir / "environment.json", json.dumps(env, indent=2) + "\n")
