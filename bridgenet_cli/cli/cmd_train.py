"""``bridgenet train``: train a recipe into a run folder, resuming it if it was stopped."""

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bridgenet_cli.cli.common import PRINT_RECIPE_OPTION, SET_OPTION, resolve_recipe

if TYPE_CHECKING:
    from bridgenet_cli.engine.trainer import TrainResult


def default_out(recipe_path: str, recipe_name: str) -> Path:
    """``runs/<recipe name>``: running the same command again resumes the same run."""
    return Path("runs") / (recipe_name or Path(recipe_path).stem)


def train_command(
    recipe: str = typer.Argument(..., help="Recipe TOML file, e.g. recipes/quickstart.toml."),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Run folder. Default: runs/<recipe name>. An existing run of the same recipe "
        "is resumed; a run of another recipe is never overwritten.",
    ),
    overrides: list[str] = SET_OPTION,
    print_recipe: bool = PRINT_RECIPE_OPTION,
    resume: bool = typer.Option(
        True,
        "--resume/--no-resume",
        help="Resume the run folder's last checkpoint (default), or refuse to touch an existing "
        "run.",
    ),
) -> None:
    """Train a recipe into a run folder; Ctrl-C saves, the same command resumes.

    It writes the resolved recipe, metrics.jsonl, TensorBoard events and checkpoints.

    Examples:

      bridgenet train recipes/quickstart.toml

      bridgenet train recipes/nyud_vitb.toml --out runs/nyud --set train.lr=1e-5

      bridgenet train recipes/quickstart.toml --print-recipe

      torchrun --nproc_per_node 4 -m bridgenet_cli train recipes/pascal_large.toml

      multi-node: add --nnodes 2 --node_rank R --rdzv_endpoint HOST:PORT
    """
    resolved = resolve_recipe(recipe, overrides, print_recipe)
    if resolved is None:
        return

    from bridgenet_cli.engine.trainer import train

    run_dir = out if out is not None else default_out(recipe, resolved.name)
    result = train(resolved, run_dir, resume=resume, argv=sys.argv)
    if int(os.environ.get("RANK", "0")) == 0:
        _report(result)


def _report(result: "TrainResult") -> None:
    """A short summary; every metric (per class too) is in the run's metrics.jsonl."""
    typer.echo(f"run folder: {result.run_dir} ({result.iteration} iterations)")
    if result.images_per_s is not None:
        typer.echo(
            f"wall time: {result.seconds:.1f} s, training throughput: "
            f"{result.images_per_s:.1f} images/s"
        )
    for task, metrics in (result.final_eval or {}).items():
        if isinstance(metrics, dict):
            shown = ", ".join(
                f"{name} {value:.4g}"
                for name, value in metrics.items()
                if "/" not in name and isinstance(value, int | float)
            )
            typer.echo(f"  {task}: {shown}")
        elif isinstance(metrics, int | float):
            typer.echo(f"  {task}: {metrics:.4g}")
    best = result.best
    if best.get("value") is not None:
        typer.echo(
            f"best {best['metric']} {best['value']:.4g} at iteration {best['iteration']}: "
            f"{result.best_checkpoint}"
        )


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
