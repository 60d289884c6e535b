"""Planning the ablation studies: which runs, with which overrides, and the --sets syntax."""

import shlex

import pytest

from bridgenet_cli.ablation.plan import PAPER_TASK_SETS, parse_task_sets, plan_study
from bridgenet_cli.ablation.study import emit_commands
from bridgenet_cli.config.recipe import load_recipe, parse_override
from bridgenet_cli.errors import BridgeNetError


def write_recipe(tmp_path, dataset="synthetic", tasks=None):
    lines = ['name = "tiny"', "[data]", f'dataset = "{dataset}"']
    if tasks is not None:
        lines.append("tasks = [" + ", ".join(f'"{t}"' for t in tasks) + "]")
    lines += ["[model]", 'tfr_size = "base"']
    path = tmp_path / "recipe.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_task_sets_default_to_table_7_on_nyud(tmp_path):
    plan = plan_study("task-sets", write_recipe(tmp_path, "nyud"), [])

    rows = [run.tasks for run in plan.rows()]
    assert rows == list(PAPER_TASK_SETS["nyud"])
    assert [run.name for run in plan.stl_runs()] == [
        "stl-semseg", "stl-depth", "stl-normals", "stl-edge",
    ]  # fmt: skip
    assert plan.tasks == ["semseg", "depth", "normals", "edge"]


def test_task_sets_default_to_table_8_on_pascal(tmp_path):
    plan = plan_study("task-sets", write_recipe(tmp_path, "pascal"), [])

    assert [run.tasks for run in plan.rows()] == list(PAPER_TASK_SETS["pascal"])
    assert len(plan.stl_runs()) == 5


def test_synthetic_default_sets_stay_inside_the_recipe_tasks(tmp_path):
    recipe = write_recipe(tmp_path, tasks=["semseg", "depth", "normals"])

    plan = plan_study("task-sets", recipe, [])

    assert [run.tasks for run in plan.rows()] == [
        ("semseg", "depth"), ("semseg", "normals"), ("depth", "normals"),
        ("semseg", "depth", "normals"),
    ]  # fmt: skip


def test_explicit_sets_plan_stl_runs_for_the_tasks_they_use(tmp_path):
    plan = plan_study("task-sets", write_recipe(tmp_path), [], sets="depth,semseg;normals,depth")

    assert [run.name for run in plan.runs] == [
        "stl-semseg", "stl-depth", "stl-normals", "set-semseg+depth", "set-depth+normals",
    ]  # fmt: skip
    stl = plan.recipes["stl-depth"]
    assert stl.model.variant == "stl" and stl.data.tasks == ["depth"]
    mtl = plan.recipes["set-semseg+depth"]
    assert mtl.model.variant == "bridgenet" and mtl.data.tasks == ["semseg", "depth"]


def test_user_overrides_reach_every_run_and_study_overrides_win(tmp_path):
    overrides = ["train.max_iters=7", "model.variant=mtl-baseline"]

    plan = plan_study("components", write_recipe(tmp_path, tasks=["semseg", "depth"]), overrides)

    assert all(recipe.train.max_iters == 7 for recipe in plan.recipes.values())
    assert plan.recipes["bfe-tpp"].model.variant == "bridgenet"
    assert plan.recipes["stl-semseg"].model.variant == "stl"


def test_components_rows_follow_table_5(tmp_path):
    plan = plan_study("components", write_recipe(tmp_path, tasks=["semseg", "depth"]), [])

    assert [run.label for run in plan.rows()] == [
        "MTL baseline", "+BFE", "+BFE+TPP", "+BFE+TPP+TFR-base",
    ]  # fmt: skip
    bfe = plan.recipes["bfe"].model
    assert (bfe.bfe, bfe.tpp, bfe.refine) == (True, False, "add")
    full = plan.recipes["bfe-tpp-tfr-base"].model
    assert (full.bfe, full.tpp, full.refine, full.tfr_size) == (True, True, "tfr", "base")
    assert plan.recipes["mtl-baseline"].model.variant == "mtl-baseline"


def test_refine_rows_follow_table_6(tmp_path):
    plan = plan_study("refine", write_recipe(tmp_path, tasks=["semseg", "depth"]), [])

    models = {run.name: plan.recipes[run.name].model for run in plan.rows()}
    assert list(models) == [
        "mtl-baseline", "refine-add", "refine-concat", "refine-transformer",
        "tfr-base", "tfr-large", "tfr-huge",
    ]  # fmt: skip
    assert models["refine-transformer"].refine == "transformer"
    assert [models[f"tfr-{s}"].tfr_size for s in ("base", "large", "huge")] == [
        "base", "large", "huge",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("semseg,sky", "not a task of synthetic"),
        ("semseg", "fewer than two tasks"),
        ("semseg,semseg", "fewer than two tasks"),
        (" ; ", "names no task set"),
    ],
)
def test_bad_sets_are_one_line_errors(text, message):
    with pytest.raises(BridgeNetError, match=message):
        parse_task_sets(text, "synthetic")


def test_sets_only_for_the_task_set_study(tmp_path):
    with pytest.raises(BridgeNetError, match="--sets applies to the task-sets study"):
        plan_study("refine", write_recipe(tmp_path), [], sets="semseg,depth")


def test_single_task_recipe_cannot_run_the_components_study(tmp_path):
    with pytest.raises(BridgeNetError, match="one task"):
        plan_study("components", write_recipe(tmp_path, tasks=["depth"]), [])


def test_unknown_recipe_key_fails_before_anything_runs(tmp_path):
    with pytest.raises(BridgeNetError, match="unknown key 'train.max_iter'"):
        plan_study("refine", write_recipe(tmp_path), ["train.max_iter=5"])


def test_emitted_commands_rebuild_each_run_recipe(tmp_path):
    recipe = write_recipe(tmp_path, tasks=["semseg", "depth", "normals"])
    plan = plan_study("task-sets", recipe, ["train.max_iters=9"], sets="semseg,depth")

    commands = emit_commands(plan, tmp_path / "study", nproc_per_node=4)

    assert len(commands) == len(plan.runs) == 3
    for command, run in zip(commands, plan.runs, strict=True):
        argv = shlex.split(command)
        assert argv[:5] == ["torchrun", "--nproc_per_node=4", "-m", "bridgenet_cli", "train"]
        assert argv[5] == recipe
        assert argv[argv.index("--out") + 1] == str(tmp_path / "study" / "runs" / run.name)
        sets = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--set"]
        for text in sets:
            parse_override(text)  # each is one valid KEY=VALUE after shell quoting
        assert load_recipe(recipe, sets) == plan.recipes[run.name]
