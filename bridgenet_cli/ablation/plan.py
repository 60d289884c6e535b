"""Plan the paper's ablation studies (section 4.3) as lists of training runs.

A study is a set of runs derived from one recipe by recipe overrides (the same ``section.key=value``
lines that ``--set`` takes), so that every run can also be launched by hand with
``bridgenet train RECIPE --set ...``. Three studies exist (:data:`STUDIES`):

- ``task-sets`` (Tables 7 and 8): one single-task (STL) run per task involved, then one BridgeNet
  run per task subset;
- ``components`` (Table 5): STL runs, the MTL baseline, +BFE, +BFE+TPP, +BFE+TPP+TFR;
- ``refine`` (Table 6): STL runs, the MTL baseline, then BFE+TPP with the refine strategies add,
  concat, transformer ("Add + InvPT") and TFR of sizes base, large and huge.

The user's overrides come first and the study's own last, so a user can change anything the
study does not vary (for example the training budget) in every run at once.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from bridgenet_cli.config.recipe import load_recipe, recipe_to_dict
from bridgenet_cli.config.schema import Recipe
from bridgenet_cli.data.info import DATASETS
from bridgenet_cli.engine.builders import recipe_tasks
from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.registry import Registry

# Table 7 (NYUD-v2) and Table 8 (PASCAL-Context), in the paper's row order.
PAPER_TASK_SETS: dict[str, tuple[tuple[str, ...], ...]] = {
    "nyud": (
        ("semseg", "depth"),
        ("semseg", "normals"),
        ("depth", "normals"),
        ("semseg", "depth", "normals"),
        ("depth", "normals", "edge"),
        ("semseg", "depth", "normals", "edge"),
    ),
    "pascal": (
        ("semseg", "human_parts"),
        ("semseg", "saliency"),
        ("semseg", "human_parts", "saliency"),
        ("saliency", "normals", "edge"),
        ("semseg", "human_parts", "saliency", "normals"),
        ("semseg", "human_parts", "saliency", "normals", "edge"),
    ),
    # Cityscapes has two tasks, so there is one set.
    "cityscapes": (("semseg", "depth"),),
    # The synthetic scenes are indoor rooms with NYUD's four tasks among theirs, so Table 7's sets
    # are the natural default; sets with tasks outside a recipe's data.tasks are dropped.
    "synthetic": (
        ("semseg", "depth"),
        ("semseg", "normals"),
        ("depth", "normals"),
        ("semseg", "depth", "normals"),
        ("depth", "normals", "edge"),
        ("semseg", "depth", "normals", "edge"),
    ),
}


@dataclass(frozen=True)
class PlannedRun:
    """One training run of a study."""

    name: str  # folder name under <study>/runs/
    role: str  # "stl" (a single-task reference) or "mtl" (a row of the table)
    label: str  # the row's label in the table
    tasks: tuple[str, ...]
    overrides: tuple[str, ...]  # the study's own overrides, applied after the user's


@dataclass
class StudyPlan:
    """Every run of a study, with what is needed to resolve each run's recipe."""

    study: str
    recipe_path: str
    user_overrides: list[str]
    dataset: str
    tasks: list[str]  # the table's task columns, in the dataset's order
    runs: list[PlannedRun]
    recipes: dict[str, Recipe] = field(default_factory=dict)  # run name -> resolved recipe

    def run(self, name: str) -> PlannedRun:
        for run in self.runs:
            if run.name == name:
                return run
        raise KeyError(name)

    def stl_runs(self) -> list[PlannedRun]:
        return [r for r in self.runs if r.role == "stl"]

    def rows(self) -> list[PlannedRun]:
        return [r for r in self.runs if r.role == "mtl"]

    def overrides_for(self, run: PlannedRun) -> list[str]:
        """All overrides of one run: the user's, then the study's."""
        return [*self.user_overrides, *run.overrides]

    def to_dict(self) -> dict:
        return {
            "study": self.study,
            "recipe": self.recipe_path,
            "overrides": list(self.user_overrides),
            "dataset": self.dataset,
            "tasks": list(self.tasks),
            "runs": [
                {
                    "name": run.name,
                    "role": run.role,
                    "label": run.label,
                    "tasks": list(run.tasks),
                    "overrides": list(run.overrides),
                    "recipe": recipe_to_dict(self.recipes[run.name]),
                }
                for run in self.runs
            ],
        }


# A planner turns (base recipe, the study's task list, its option) into runs.
Planner = Callable[[Recipe, list[str], list[tuple[str, ...]] | None], list[PlannedRun]]
STUDIES: Registry[Planner] = Registry("ablation study")


def toml_list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


def task_override(tasks: tuple[str, ...]) -> str:
    return f"data.tasks={toml_list(tasks)}"


def stl_run(task: str) -> PlannedRun:
    return PlannedRun(
        name=f"stl-{task}",
        role="stl",
        label="STL",
        tasks=(task,),
        overrides=('model.variant="stl"', task_override((task,))),
    )


def mtl_baseline_run(tasks: tuple[str, ...]) -> PlannedRun:
    return PlannedRun(
        name="mtl-baseline",
        role="mtl",
        label="MTL baseline",
        tasks=tasks,
        overrides=('model.variant="mtl-baseline"', task_override(tasks)),
    )


def bridgenet_run(
    name: str, label: str, tasks: tuple[str, ...], settings: tuple[str, ...]
) -> PlannedRun:
    overrides = ('model.variant="bridgenet"', *settings, task_override(tasks))
    return PlannedRun(name=name, role="mtl", label=label, tasks=tasks, overrides=overrides)


@STUDIES.register("task-sets")
def plan_task_sets(
    recipe: Recipe, tasks: list[str], sets: list[tuple[str, ...]] | None
) -> list[PlannedRun]:
    """STL runs of every task involved, then one BridgeNet run per task set (recipe's model).

    Without ``sets``, the dataset's default sets (:data:`PAPER_TASK_SETS`) that fit in ``tasks``.
    """
    dataset = recipe.data.dataset
    if sets is None:
        defaults = PAPER_TASK_SETS.get(dataset, ())
        sets = [s for s in defaults if set(s) <= set(tasks)]
        if not sets:
            raise BridgeNetError(
                f"no default task sets of {dataset} fit the recipe's tasks {', '.join(tasks)}",
                'name them with --sets "semseg,depth;depth,normals"',
            )
    order = DATASETS.get(dataset).tasks
    involved = sorted({t for s in sets for t in s}, key=order.index)

    runs = [stl_run(task) for task in involved]
    for subset in sets:
        ordered = tuple(sorted(subset, key=order.index))
        runs.append(
            bridgenet_run(
                name="set-" + "+".join(ordered),
                label="BridgeNet: " + ", ".join(ordered),
                tasks=ordered,
                settings=(),
            )
        )
    return runs


@STUDIES.register("components")
def plan_components(
    recipe: Recipe, tasks: list[str], sets: list[tuple[str, ...]] | None
) -> list[PlannedRun]:
    """Table 5: STL, MTL baseline, +BFE, +BFE+TPP, +BFE+TPP+TFR (the recipe's TFR size).

    Without TFR, task features and bridge features are added (the paper's "simple pixel-wise
    addition"), which is the ``add`` refine strategy.
    """
    all_tasks = tuple(tasks)
    size = recipe.model.tfr_size
    return [
        *(stl_run(task) for task in tasks),
        mtl_baseline_run(all_tasks),
        bridgenet_run(
            "bfe", "+BFE", all_tasks, ("model.bfe=true", "model.tpp=false", 'model.refine="add"')
        ),
        bridgenet_run(
            "bfe-tpp",
            "+BFE+TPP",
            all_tasks,
            ("model.bfe=true", "model.tpp=true", 'model.refine="add"'),
        ),  # fmt: skip
        bridgenet_run(
            f"bfe-tpp-tfr-{size}",
            f"+BFE+TPP+TFR-{size}",
            all_tasks,
            ("model.bfe=true", "model.tpp=true", 'model.refine="tfr"', f'model.tfr_size="{size}"'),
        ),  # fmt: skip
    ]


# Table 6's rows after the MTL baseline: (run name, label, model overrides).
REFINE_ROWS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("refine-add", "Add", ('model.refine="add"',)),
    ("refine-concat", "Concatenate", ('model.refine="concat"',)),
    ("refine-transformer", "Add + transformer", ('model.refine="transformer"',)),
    ("tfr-base", "TFR-base", ('model.refine="tfr"', 'model.tfr_size="base"')),
    ("tfr-large", "TFR-large", ('model.refine="tfr"', 'model.tfr_size="large"')),
    ("tfr-huge", "TFR-huge", ('model.refine="tfr"', 'model.tfr_size="huge"')),
)
# The row whose parameter count the others' increments are measured from (Table 6: "Add +0").
REFINE_PARAMS_REFERENCE = "refine-add"


@STUDIES.register("refine")
def plan_refine(
    recipe: Recipe, tasks: list[str], sets: list[tuple[str, ...]] | None
) -> list[PlannedRun]:
    """Table 6: STL, MTL baseline, then BFE+TPP with each refine strategy and TFR size."""
    all_tasks = tuple(tasks)
    runs = [*(stl_run(task) for task in tasks), mtl_baseline_run(all_tasks)]
    for name, label, settings in REFINE_ROWS:
        runs.append(
            bridgenet_run(name, label, all_tasks, ("model.bfe=true", "model.tpp=true", *settings))
        )
    return runs


def parse_task_sets(text: str, dataset: str) -> list[tuple[str, ...]]:
    """``"semseg,depth;depth,normals"`` -> ``[("semseg", "depth"), ("depth", "normals")]``.

    Each set needs at least two distinct tasks of ``dataset``; repeated sets are dropped.
    """
    known = DATASETS.get(dataset).tasks
    sets: list[tuple[str, ...]] = []
    for chunk in text.split(";"):
        if not chunk.strip():
            continue
        names = [n.strip() for n in chunk.split(",") if n.strip()]
        for name in names:
            if name not in known:
                raise BridgeNetError(
                    f"--sets: task {name!r} is not a task of {dataset}",
                    f"use tasks among {', '.join(known)}",
                )
        subset = tuple(sorted(set(names), key=known.index))
        if len(subset) < 2:
            raise BridgeNetError(
                f"--sets: {chunk.strip()!r} has fewer than two tasks",
                "a multi-task set names two or more tasks separated by commas",
            )
        if subset not in sets:
            sets.append(subset)
    if not sets:
        raise BridgeNetError(f"--sets {text!r} names no task set", 'write --sets "semseg,depth"')
    return sets


def plan_study(
    study: str, recipe_path: str, overrides: list[str], sets: str | None = None
) -> StudyPlan:
    """Plan ``study`` from a recipe file and the user's overrides; resolves every run's recipe.

    ``sets`` (task-sets only) is the ``--sets`` text; every mistake (unknown study, recipe key,
    task) is a :class:`BridgeNetError` before anything runs.
    """
    planner = STUDIES.get(study)
    if sets is not None and study != "task-sets":
        raise BridgeNetError(f"--sets applies to the task-sets study, not {study}", "drop --sets")
    base = load_recipe(recipe_path, overrides)
    tasks = recipe_tasks(base)
    if study != "task-sets" and len(tasks) < 2:
        raise BridgeNetError(
            f"the {study} study compares multi-task models, but the recipe has one task",
            "use a recipe with two or more tasks in data.tasks",
        )
    parsed = parse_task_sets(sets, base.data.dataset) if sets is not None else None
    runs = planner(base, tasks, parsed)

    order = DATASETS.get(base.data.dataset).tasks
    columns = sorted({t for run in runs for t in run.tasks}, key=order.index)
    plan = StudyPlan(
        study=study,
        recipe_path=str(recipe_path),
        user_overrides=list(overrides),
        dataset=base.data.dataset,
        tasks=columns,
        runs=runs,
    )
    for run in runs:
        plan.recipes[run.name] = load_recipe(recipe_path, plan.overrides_for(run))
    return plan
