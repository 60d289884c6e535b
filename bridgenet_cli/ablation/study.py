"""Run a planned study: train and evaluate each run, resume after a kill, tabulate the results.

A study folder holds:

- ``plan.json``: the study, the recipe, the user's overrides and every run's resolved recipe;
- ``runs/<name>/``: one ordinary training run folder per run (``bridgenet train --out`` layout);
- ``evaluations/<name>.json``: a finished run's evaluation (written atomically, last), which is
  what marks a run as done;
- ``results.md``, ``results.csv``, ``results.json`` and ``gains.png``: the tables and the chart.

Running a study again reuses finished runs, resumes a run that was stopped mid-training from its
last checkpoint (the trainer's ``resume=True``), and refuses to mix runs planned with a different
recipe into the same folder.
"""

import json
import logging
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bridgenet_cli.ablation.plan import REFINE_PARAMS_REFERENCE, PlannedRun, StudyPlan
from bridgenet_cli.ablation.tables import StudyTable, build_table, write_tables
from bridgenet_cli.config.recipe import recipe_from_dict, recipe_to_dict
from bridgenet_cli.config.schema import Recipe
from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.io import atomic_write_text
from bridgenet_cli.tasks import TASKS

logger = logging.getLogger(__name__)

PLAN_FILE = "plan.json"
RUNS_DIR = "runs"
EVALUATIONS_DIR = "evaluations"

# train(recipe, run_dir): train (or resume) the run in run_dir until the recipe's budget is spent.
TrainFn = Callable[[Recipe, Path], Any]
# evaluate(run_dir, recipe): the finished run's evaluation under the recipe's [eval] settings,
# task -> metric -> value.
EvaluateFn = Callable[[Path, Recipe], dict[str, dict[str, float]]]
# count(recipe): the number of parameters of the model the recipe builds.
CountFn = Callable[[Recipe], int]


@dataclass
class RunStatus:
    run: PlannedRun
    state: str  # "done", "started" or "to do"
    detail: str  # for "started": how far it got


def run_dir(out: Path, name: str) -> Path:
    return Path(out) / RUNS_DIR / name


def evaluation_path(out: Path, name: str) -> Path:
    return Path(out) / EVALUATIONS_DIR / f"{name}.json"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BridgeNetError(
            f"cannot read {path}: {exc}", "delete the file to redo that part of the study"
        ) from None


def _learning_differences(saved: dict, recipe: Recipe) -> str | None:
    """The recipe keys that change what a run learns, between a saved recipe dict and ``recipe``.

    Keys the trainer lets a resumed run change (logging, checkpoint and validation intervals,
    loader workers, evaluation settings) do not count. ``None`` when nothing counts.
    """
    from bridgenet_cli.engine.checkpoint import recipe_differences

    try:
        saved_recipe = recipe_from_dict(saved, source="the saved study plan")
    except BridgeNetError as exc:
        return f"the saved recipe no longer reads: {exc.message}"
    keys = recipe_differences(saved_recipe, recipe)
    if not keys:
        return None
    old, new = recipe_to_dict(saved_recipe), recipe_to_dict(recipe)
    shown = ", ".join(f"{k}: {_lookup(old, k)!r} -> {_lookup(new, k)!r}" for k in keys[:3])
    return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def _lookup(data: dict, dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def check_saved_plan(plan: StudyPlan, out: Path) -> dict[str, dict]:
    """Compare ``plan`` with the one saved in ``out``; returns the saved runs not in ``plan``.

    A run of the same name planned with a different recipe is an error (its folder holds results
    of another experiment); runs only in the saved plan are kept untouched.
    """
    path = Path(out) / PLAN_FILE
    if not path.is_file():
        return {}
    saved = _read_json(path)
    if saved.get("study") != plan.study:
        raise BridgeNetError(
            f"{out} holds a {saved.get('study')!r} study, not {plan.study!r}",
            "choose another --out folder for this study",
        )
    saved_runs = {r["name"]: r for r in saved.get("runs", []) + saved.get("earlier_runs", [])}
    for run in plan.runs:
        if run.name in saved_runs:
            difference = _learning_differences(
                saved_runs[run.name]["recipe"], plan.recipes[run.name]
            )
            if difference:
                raise BridgeNetError(
                    f"run {run.name!r} in {out} was planned with another recipe ({difference})",
                    "use a new --out folder, or the same recipe and --set options as before",
                )
    planned = {run.name for run in plan.runs}
    return {name: r for name, r in saved_runs.items() if name not in planned}


def save_plan(plan: StudyPlan, out: Path, earlier_runs: dict[str, dict]) -> Path:
    data = plan.to_dict()
    if earlier_runs:
        data["earlier_runs"] = list(earlier_runs.values())
    path = Path(out) / PLAN_FILE
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    return path


def _last_iteration(folder: Path) -> int | None:
    """The last iteration logged in a run folder's metrics.jsonl (cheap: no checkpoint load)."""
    path = folder / "metrics.jsonl"
    if not path.is_file():
        return None
    last = None
    for line in path.read_text().splitlines():
        try:
            last = int(json.loads(line)["iter"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    return last


def study_status(plan: StudyPlan, out: Path) -> list[RunStatus]:
    """Where each run stands, from the study folder alone (nothing is written)."""
    statuses = []
    for run in plan.runs:
        folder = run_dir(out, run.name)
        if evaluation_path(out, run.name).is_file():
            statuses.append(RunStatus(run, "done", "evaluated"))
        elif (folder / "checkpoints").is_dir() or (folder / "metrics.jsonl").is_file():
            iteration = _last_iteration(folder)
            budget = plan.recipes[run.name].train.max_iters
            got = f"logged up to iteration {iteration}" if iteration is not None else "started"
            statuses.append(RunStatus(run, "started", f"{got} of {budget}; will resume"))
        else:
            statuses.append(RunStatus(run, "to do", ""))
    return statuses


def emit_commands(plan: StudyPlan, out: Path, nproc_per_node: int = 1) -> list[str]:
    """One ``torchrun`` command per run, for users who schedule runs themselves.

    Each trains into the run's folder of the study, so running this study's command again
    afterwards evaluates the runs and writes the tables.
    """
    commands = []
    for run in plan.runs:
        parts = [
            "torchrun", f"--nproc_per_node={nproc_per_node}", "-m", "bridgenet_cli", "train",
            plan.recipe_path, "--out", str(run_dir(out, run.name)),
        ]  # fmt: skip
        for override in plan.overrides_for(run):
            parts += ["--set", override]
        commands.append(" ".join(shlex.quote(part) for part in parts))
    return commands


def _default_train(recipe: Recipe, folder: Path) -> None:
    from bridgenet_cli.engine.trainer import train

    result = train(recipe, folder, resume=True)
    if result.iteration < recipe.train.max_iters:
        raise BridgeNetError(
            f"run {folder} stopped at iteration {result.iteration} of {recipe.train.max_iters}",
            "run the same ablate command again to resume it",
        )


def _default_evaluate(folder: Path, recipe: Recipe) -> dict[str, dict[str, float]]:
    """The run's best checkpoint (its last when it never validated) on the val split."""
    from bridgenet_cli.evaluation import evaluate_run

    return evaluate_run(folder, recipe.eval)


def count_parameters(recipe: Recipe) -> int:
    """Parameters of the model ``recipe`` describes (built on the CPU, no weights loaded)."""
    from bridgenet_cli.engine.builders import build_recipe_model

    model = build_recipe_model(recipe, with_pretrained=False)
    return sum(p.numel() for p in model.parameters())


def run_study(
    plan: StudyPlan,
    out: str | Path,
    train_fn: TrainFn | None = None,
    evaluate_fn: EvaluateFn | None = None,
    count_fn: CountFn | None = None,
) -> tuple[StudyTable, dict[str, Path]]:
    """Train and evaluate every run not yet done, then write the tables; returns them and paths.

    ``train_fn``, ``evaluate_fn`` and ``count_fn`` default to the toolkit's trainer, run
    evaluation and :func:`count_parameters` (tests pass light stand-ins).
    """
    out = Path(out)
    train_fn = train_fn or _default_train
    evaluate_fn = evaluate_fn or _default_evaluate
    count_fn = count_fn or count_parameters
    out.mkdir(parents=True, exist_ok=True)
    save_plan(plan, out, check_saved_plan(plan, out))

    for index, run in enumerate(plan.runs, start=1):
        record_path = evaluation_path(out, run.name)
        recipe = plan.recipes[run.name]
        prefix = f"[{index}/{len(plan.runs)}] {run.name}"
        folder = run_dir(out, run.name)
        if record_path.is_file():
            record = _read_json(record_path)
            difference = _learning_differences(record.get("recipe", {}), recipe)
            if difference:
                raise BridgeNetError(
                    f"{record_path} belongs to a run with another recipe ({difference})",
                    "use a new --out folder, or delete that run's folder and evaluation",
                )
            if record["recipe"].get("eval") == recipe_to_dict(recipe)["eval"]:
                logger.info("%s: done before, reusing its results", prefix)
                continue
            logger.info("%s: trained before; evaluation settings changed, evaluating", prefix)
        else:
            logger.info("%s: training %s into %s", prefix, ", ".join(run.tasks), folder)
            train_fn(recipe, folder)
            logger.info("%s: evaluating", prefix)
        metrics = evaluate_fn(folder, recipe)
        record = {
            "run": run.name,
            "tasks": list(run.tasks),
            "metrics": metrics,
            "params": count_fn(recipe) if plan.study == "refine" and run.role == "mtl" else None,
            "recipe": recipe_to_dict(recipe),
            "finished": datetime.now().isoformat(timespec="seconds"),
        }
        atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")

    table = tabulate(plan, out)
    return table, write_tables(table, out)


def tabulate(plan: StudyPlan, out: Path) -> StudyTable:
    """Build the study's table from the evaluations in ``out`` (every run must be done)."""
    records = {}
    for run in plan.runs:
        path = evaluation_path(out, run.name)
        if not path.is_file():
            raise BridgeNetError(
                f"run {run.name!r} of the study in {out} has not finished",
                "run the same ablate command again to finish it",
            )
        records[run.name] = _read_json(path)

    stl = {run.tasks[0]: records[run.name]["metrics"] for run in plan.stl_runs()}
    rows = [
        (run.label, run.name, list(run.tasks), records[run.name]["metrics"]) for run in plan.rows()
    ]
    params_m = None
    if plan.study == "refine":
        reference = records[REFINE_PARAMS_REFERENCE]["params"]
        params_m = {
            run.name: (records[run.name]["params"] - reference) / 1e6
            for run in plan.rows()
            if records[run.name].get("params") is not None and run.name != "mtl-baseline"
        }
    table = build_table(plan.study, plan.dataset, plan.tasks, stl, rows, params_m)
    _warn_missing_metrics(table, plan)
    return table


def _warn_missing_metrics(table: StudyTable, plan: StudyPlan) -> None:
    """Say which tasks lack their primary metric (their gains and Delta_MTL stay empty)."""
    row_tasks = {"STL": plan.tasks} | {run.label: run.tasks for run in plan.rows()}
    missing = sorted(
        {
            task
            for row in table.rows
            for task in row_tasks.get(row.label, ())
            if row.metrics.get(task) is None
        },
        key=plan.tasks.index,
    )
    for task in missing:
        spec = TASKS.get(task)
        hint = " (set eval.edge_benchmark=true for odsF)" if task == "edge" else ""
        logger.warning(
            "no %s %s in some evaluations: its gains and those rows' Delta_MTL are left empty%s",
            task, spec.metric, hint,
        )  # fmt: skip
