"""Running a study with stand-in training and evaluation: bookkeeping, resuming, conflicts."""

import json

import pytest
from typer.testing import CliRunner

from bridgenet_cli.ablation.plan import plan_study
from bridgenet_cli.ablation.study import run_study, study_status
from bridgenet_cli.cli.app import app
from bridgenet_cli.errors import BridgeNetError

runner = CliRunner()

# What each stand-in run scores: single-task runs the reference, multi-task runs 10% better.
STL_SCORES = {"semseg": ("miou", 40.0), "depth": ("rmse", 0.5), "normals": ("mean", 20.0)}


class FakeRunner:
    """Records which runs were trained and evaluated; can fail on a chosen run."""

    def __init__(self, fail_on: str | None = None):
        self.trained: list[str] = []
        self.evaluated: list[str] = []
        self.fail_on = fail_on

    def train(self, recipe, folder):
        if folder.name == self.fail_on:
            (folder / "checkpoints").mkdir(parents=True)
            raise KeyboardInterrupt
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metrics.jsonl").write_text(json.dumps({"iter": recipe.train.max_iters}) + "\n")
        self.trained.append(folder.name)

    def evaluate(self, folder, recipe):
        self.evaluated.append(folder.name)
        better = 1.0 if folder.name.startswith("stl-") else 1.1
        results = {}
        for task in recipe.data.tasks:
            metric, value = STL_SCORES[task]
            results[task] = {metric: value * better if metric == "miou" else value / better}
        return results

    def count(self, recipe):
        sizes = {"add": 1_000_000, "concat": 1_500_000, "transformer": 3_000_000}
        blocks = {"base": 2, "large": 4, "huge": 6}[recipe.model.tfr_size]
        return sizes.get(recipe.model.refine, 1_000_000 + blocks * 500_000)

    def run(self, plan, out):
        return run_study(plan, out, self.train, self.evaluate, self.count)


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "recipe.toml"
    path.write_text('[data]\ndataset = "synthetic"\ntasks = ["semseg", "depth", "normals"]\n')
    return str(path)


def test_study_trains_each_run_once_and_tabulates(recipe, tmp_path):
    plan = plan_study("task-sets", recipe, [], sets="semseg,depth;depth,normals")
    fake = FakeRunner()

    table, paths = fake.run(plan, tmp_path / "study")

    assert fake.trained == [run.name for run in plan.runs]
    assert [row.label for row in table.rows] == [
        "STL", "BridgeNet: semseg, depth", "BridgeNet: depth, normals",
    ]  # fmt: skip
    gains = table.rows[1].gains
    assert gains["semseg"] == pytest.approx(10.0)
    assert gains["depth"] == pytest.approx((0.5 - 0.5 / 1.1) / 0.5 * 100)
    assert table.rows[1].delta_mtl == pytest.approx((gains["semseg"] + gains["depth"]) / 2)
    saved = json.loads((tmp_path / "study" / "plan.json").read_text())
    assert [r["name"] for r in saved["runs"]] == [r.name for r in plan.runs]
    assert all(path.is_file() for path in paths.values())


def test_a_killed_study_resumes_where_it_stopped(recipe, tmp_path):
    plan = plan_study("task-sets", recipe, [], sets="semseg,depth")
    out = tmp_path / "study"

    with pytest.raises(KeyboardInterrupt):
        FakeRunner(fail_on="stl-depth").run(plan, out)
    states = {s.run.name: s.state for s in study_status(plan, out)}
    assert states == {"stl-semseg": "done", "stl-depth": "started", "set-semseg+depth": "to do"}

    again = FakeRunner()
    again.run(plan, out)

    assert again.trained == ["stl-depth", "set-semseg+depth"]  # the finished run is reused
    assert (out / "results.md").is_file()


def test_finished_study_only_rewrites_tables(recipe, tmp_path):
    plan = plan_study("task-sets", recipe, [], sets="semseg,depth")
    FakeRunner().run(plan, tmp_path)

    second = FakeRunner()
    second.run(plan, tmp_path)

    assert second.trained == [] and second.evaluated == []


def test_changed_evaluation_settings_re_evaluate_without_training(recipe, tmp_path):
    FakeRunner().run(plan_study("task-sets", recipe, [], sets="semseg,depth"), tmp_path)
    plan = plan_study("task-sets", recipe, ["eval.max_samples=3"], sets="semseg,depth")

    second = FakeRunner()
    second.run(plan, tmp_path)

    assert second.trained == [] and len(second.evaluated) == 3


def test_a_study_folder_refuses_runs_of_another_recipe(recipe, tmp_path):
    FakeRunner().run(plan_study("task-sets", recipe, [], sets="semseg,depth"), tmp_path)
    changed = plan_study("task-sets", recipe, ["train.max_iters=3"], sets="semseg,depth")

    with pytest.raises(BridgeNetError, match="train.max_iters: 40000 -> 3"):
        FakeRunner().run(changed, tmp_path)


def test_a_study_folder_of_another_study_is_refused(recipe, tmp_path):
    FakeRunner().run(plan_study("task-sets", recipe, [], sets="semseg,depth"), tmp_path)

    with pytest.raises(BridgeNetError, match="holds a 'task-sets' study"):
        FakeRunner().run(plan_study("components", recipe, []), tmp_path)


def test_new_task_sets_extend_an_existing_study(recipe, tmp_path):
    FakeRunner().run(plan_study("task-sets", recipe, [], sets="semseg,depth"), tmp_path)

    more = FakeRunner()
    more.run(plan_study("task-sets", recipe, [], sets="semseg,depth;depth,normals"), tmp_path)

    assert more.trained == ["stl-normals", "set-depth+normals"]


def test_refine_table_counts_parameter_increments_from_add(recipe, tmp_path):
    table, paths = FakeRunner().run(plan_study("refine", recipe, []), tmp_path)

    params = {row.label: row.params_m for row in table.rows}
    assert params["STL"] is None and params["MTL baseline"] is None
    assert params["Add"] == 0.0
    assert params["Concatenate"] == pytest.approx(0.5)
    assert params["TFR-huge"] == pytest.approx(3.0)
    assert "| Model | Params (M) |" in paths["markdown"].read_text()


def test_components_table_rows(recipe, tmp_path):
    table, _ = FakeRunner().run(plan_study("components", recipe, []), tmp_path)

    assert [row.label for row in table.rows] == [
        "STL", "MTL baseline", "+BFE", "+BFE+TPP", "+BFE+TPP+TFR-large",
    ]  # fmt: skip
    assert all(row.delta_mtl == pytest.approx(table.rows[1].delta_mtl) for row in table.rows[1:])


def test_cli_dry_run_lists_runs_and_writes_nothing(recipe, tmp_path):
    out = tmp_path / "study"

    result = runner.invoke(
        app, ["ablate", "components", "--recipe", recipe, "--out", str(out), "--dry-run"]
    )

    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("components study: 7 runs into")
    assert [line.split()[0] for line in lines[1:]] == [
        "stl-semseg", "stl-depth", "stl-normals", "mtl-baseline", "bfe", "bfe-tpp",
        "bfe-tpp-tfr-large",
    ]  # fmt: skip
    assert all(" to do " in line for line in lines[1:])
    assert not out.exists()


def test_cli_emit_commands_prints_one_command_per_run(recipe, tmp_path):
    result = runner.invoke(
        app,
        ["ablate", "task-sets", "--recipe", recipe, "--out", str(tmp_path / "s"),
         "--sets", "semseg,depth", "--emit-commands", "--set", "train.max_iters=5"],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("torchrun ") for line in lines)
    assert all("--set train.max_iters=5" in line for line in lines)
    assert not (tmp_path / "s").exists()


def test_missing_primary_metric_is_reported(tmp_path, caplog):
    path = tmp_path / "recipe.toml"
    path.write_text('[data]\ndataset = "synthetic"\ntasks = ["semseg", "edge"]\n')
    fake = FakeRunner()
    plain = fake.evaluate

    def without_odsf(folder, recipe):
        tasks = [t for t in recipe.data.tasks if t != "edge"]
        results = plain(folder, type(recipe)(data=type(recipe.data)(tasks=tasks)))
        if "edge" in recipe.data.tasks:
            results["edge"] = {"bce_proxy": 0.3}
        return results

    fake.evaluate = without_odsf
    table, _ = fake.run(plan_study("task-sets", str(path), [], sets="semseg,edge"), tmp_path / "s")

    assert table.rows[1].metrics["edge"] is None and table.rows[1].delta_mtl is None
    assert "eval.edge_benchmark=true" in caplog.text
