"""``bridgenet eval``: help, mistakes, and an end-to-end run on a tiny trained model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bridgenet_cli.cli.app import app, main
from tests.evaluation.helpers import SYNTHETIC_OVERRIDES

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_both_modes():
    result = runner.invoke(app, ["eval", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    for text in ("--save-predictions", "--predictions", "--as-reference", "--references",
                 "--format", "DIR/<task>/<sample id>.<ext>"):  # fmt: skip
        assert text in result.output


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "bridgenet_cli", *args], capture_output=True, text=True, env=env,
        cwd=ROOT, timeout=600,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to evaluate"),
        (["--predictions", "x"], "--predictions needs --dataset"),
        (["run", "--predictions", "x", "--dataset", "nyud"], "not both"),
        (["run", "--format", "yaml"], "--format 'yaml' is not one of table, json"),
        (["run", "--device", "gpu"], "--device 'gpu' is not one of auto, cpu, cuda"),
        (["no/such/run"], "no run folder or checkpoint at no/such/run"),
        (["--predictions", "no/such", "--dataset", "mnist"], "neither a dataset name"),
        (
            ["--predictions", "no/such", "--dataset", "nyud", "--as-reference", "r.json"],
            "--as-reference applies to a model",
        ),
    ],
)
def test_mistakes_are_one_line_errors(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", *args])
    assert exit_info.value.code == 2
    output = capsys.readouterr()
    assert message in " ".join((output.out + output.err).split())
    assert "Traceback" not in output.err


@pytest.mark.slow
def test_train_eval_reference_and_offline(tmp_path):
    from bridgenet_cli.engine.trainer import train
    from tests.engine.tiny import tiny_recipe

    recipe = tiny_recipe(tmp_path, "train.max_iters=1", "train.checkpoint_every=1")
    run = tmp_path / "run"
    train(recipe, run)

    preds = tmp_path / "preds"
    refs = tmp_path / "refs.json"
    online = _cli("eval", str(run), "--format", "json", "--save-predictions", str(preds),
                  "--as-reference", str(refs), "--set", "eval.max_samples=0")  # fmt: skip
    assert online.returncode == 0, online.stderr
    report = json.loads(online.stdout)
    assert set(report["results"]) == {"semseg", "depth"}
    assert json.loads((run / "eval.json").read_text())["results"] == report["results"]
    assert set(json.loads(refs.read_text())["tasks"]) == {"semseg", "depth"}

    table = _cli("eval", str(run), "--references", str(refs))
    assert table.returncode == 0, table.stderr
    assert "Delta_MTL" in table.stdout and "mIoU" in table.stdout

    tiny_synthetic = []
    for setting in ("num_train=16", "num_val=4", "height=64", "width=64"):
        tiny_synthetic += ["--set", f"data.synthetic.{setting}"]
    offline = _cli(
        "eval", "--predictions", str(preds), "--dataset", "synthetic", "--format", "json",
        *tiny_synthetic,
    )  # fmt: skip
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout)["results"] == report["results"]
    assert SYNTHETIC_OVERRIDES  # the helpers' settings are for the other tests
