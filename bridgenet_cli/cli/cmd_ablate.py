"""``bridgenet ablate``: the paper's ablation studies (section 4.3), one command each."""

from pathlib import Path

import typer

from bridgenet_cli.ablation.plan import plan_study
from bridgenet_cli.ablation.study import emit_commands, run_study, study_status
from bridgenet_cli.cli.common import SET_OPTION

RECIPE_OPTION = typer.Option(..., "--recipe", "-r", help="The recipe every run starts from.")
OUT_OPTION = typer.Option(
    ..., "--out", "-o", help="Study folder: plan, one run folder per run, tables and chart."
)
DRY_RUN_OPTION = typer.Option(
    False, "--dry-run", help="List the runs and where each stands; train nothing, write nothing."
)
EMIT_OPTION = typer.Option(
    False,
    "--emit-commands",
    help="Print one torchrun command per run (to schedule them yourself) and exit.",
)
NPROC_OPTION = typer.Option(
    1, "--nproc-per-node", min=1, help="Processes per node in the --emit-commands lines."
)

ablate_app = typer.Typer(
    help="Run the paper's ablation studies as one command each: plan, train, resume, tabulate.\n\n"
    "Examples:\n\n"
    "  bridgenet ablate task-sets --recipe recipes/quickstart.toml --out studies/sets\n\n"
    "  bridgenet ablate components --recipe recipes/nyud_vitb.toml --out studies/t5 --dry-run\n\n"
    "  bridgenet ablate refine --recipe recipes/nyud_vitb.toml --out studies/t6 --emit-commands",
    no_args_is_help=True,
)


def _execute(
    study: str,
    recipe: str,
    out: Path,
    overrides: list[str],
    dry_run: bool,
    emit: bool,
    nproc_per_node: int,
    sets: str | None = None,
) -> None:
    plan = plan_study(study, recipe, overrides, sets)
    if emit:
        for command in emit_commands(plan, out, nproc_per_node):
            typer.echo(command)
        return
    if dry_run:
        statuses = study_status(plan, out)
        yours = " ".join(plan.user_overrides) or "none"
        typer.echo(
            f"{study} study: {len(plan.runs)} runs into {out} (recipe {recipe}; --set: {yours})"
        )
        width = max(len(s.run.name) for s in statuses)
        for status in statuses:
            detail = f" ({status.detail})" if status.detail else ""
            overrides = " ".join(status.run.overrides)
            typer.echo(f"  {status.run.name:<{width}}  {status.state}{detail}  {overrides}")
        return

    _, paths = run_study(plan, out)
    typer.echo(paths["markdown"].read_text(), nl=False)
    typer.echo(f"tables: {paths['markdown']}, {paths['csv']}, {paths['json']}")
    typer.echo(f"chart: {paths['chart']}")


@ablate_app.command("task-sets")
def task_sets(
    recipe: str = RECIPE_OPTION,
    out: Path = OUT_OPTION,
    sets: str | None = typer.Option(
        None,
        "--sets",
        help='Task sets separated by ";", tasks by ",". Default: Table 7 (NYUD, and the '
        "synthetic dataset), Table 8 (PASCAL).",
    ),
    overrides: list[str] = SET_OPTION,
    dry_run: bool = DRY_RUN_OPTION,
    emit: bool = EMIT_OPTION,
    nproc_per_node: int = NPROC_OPTION,
) -> None:
    """Tables 7 and 8: one single-task run per task, one BridgeNet run per task set, gains.

    The multi-task runs use the recipe's model; the paper used TFR-base here.

    Every --set reaches every run.

    Examples:

      bridgenet ablate task-sets --recipe recipes/nyud_vitb.toml --out studies/t7

      bridgenet ablate task-sets -r recipes/quickstart.toml -o sets --sets "semseg,depth"
    """
    _execute("task-sets", recipe, out, overrides, dry_run, emit, nproc_per_node, sets)


@ablate_app.command("components")
def components(
    recipe: str = RECIPE_OPTION,
    out: Path = OUT_OPTION,
    overrides: list[str] = SET_OPTION,
    dry_run: bool = DRY_RUN_OPTION,
    emit: bool = EMIT_OPTION,
    nproc_per_node: int = NPROC_OPTION,
) -> None:
    """Table 5: STL, MTL baseline, +BFE, +BFE+TPP, +BFE+TPP+TFR, with gains and Delta_MTL.

    The TFR row uses the recipe's model.tfr_size (the paper: huge).

    Examples:

      bridgenet ablate components --recipe recipes/nyud_vitb.toml --out studies/t5

      bridgenet ablate components --recipe recipes/quickstart.toml --out studies/t5 --dry-run
    """
    _execute("components", recipe, out, overrides, dry_run, emit, nproc_per_node)


@ablate_app.command("refine")
def refine(
    recipe: str = RECIPE_OPTION,
    out: Path = OUT_OPTION,
    overrides: list[str] = SET_OPTION,
    dry_run: bool = DRY_RUN_OPTION,
    emit: bool = EMIT_OPTION,
    nproc_per_node: int = NPROC_OPTION,
) -> None:
    """Table 6: refine strategies add, concat, transformer and TFR base/large/huge.

    Params (M): each model's parameter count minus that of the "add" model, from built models.

    Examples:

      bridgenet ablate refine --recipe recipes/nyud_vitb.toml --out studies/t6

      bridgenet ablate refine -r recipes/nyud_vitb.toml -o t6 --emit-commands > t6.sh
    """
    _execute("refine", recipe, out, overrides, dry_run, emit, nproc_per_node)


def register(app: typer.Typer) -> None:
    app.add_typer(ablate_app, name="ablate")
