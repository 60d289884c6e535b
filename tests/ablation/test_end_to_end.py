"""A real task-set study: tiny model, tiny synthetic data, killed midway, then resumed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bridgenet_cli.cli.app import app

runner = CliRunner()

TINY_RECIPE = """
name = "tiny-study"
[data]
dataset = "synthetic"
tasks = ["semseg", "depth"]
num_workers = 0
augment = false
[model]
backbone = "vit-tiny"
backbone_depth = 2
decoder_width = 16
prelim_width = 16
stage_widths = [16, 8, 8]
head_width = 8
tfr_size = "base"
drop_path_rate = 0.0
[train]
max_iters = 4
batch_size = 2
lr = 1e-3
eval_every = 0
checkpoint_every = 1
log_every = 1
[eval]
batch_size = 2
edge_benchmark = false
"""


def study_command(recipe: Path, out: Path, cache: Path) -> list[str]:
    return [
        "ablate", "task-sets", "--recipe", str(recipe), "--out", str(out),
        "--sets", "semseg,depth",
        "--set", f'data.cache="{cache}"',
        "--set", "data.synthetic.num_train=4", "--set", "data.synthetic.num_val=2",
        "--set", "data.synthetic.height=32", "--set", "data.synthetic.width=48",
    ]  # fmt: skip


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"the study ended (exit {process.returncode}) before {path}:\n{output}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)


@pytest.mark.slow
def test_task_set_study_killed_after_its_first_run_and_resumed(tmp_path):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_RECIPE)
    out = tmp_path / "study"
    args = study_command(recipe, out, tmp_path / "synthetic.h5")
    env = {**os.environ, "BRIDGENET_DATA": str(tmp_path / "data")}

    # Run the study in a separate process and kill it once the second run has started training.
    process = subprocess.Popen(
        [sys.executable, "-m", "bridgenet_cli", "--quiet", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    first_record = out / "evaluations" / "stl-semseg.json"
    wait_for(out / "runs" / "stl-depth" / "recipe.toml", process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    assert first_record.is_file()
    assert not (out / "evaluations" / "stl-depth.json").exists()
    assert not (out / "results.md").exists()
    first_text = first_record.read_text()
    first_checkpoint = out / "runs" / "stl-semseg" / "checkpoints" / "last.pt"
    first_mtime = first_checkpoint.stat().st_mtime_ns

    dry = runner.invoke(app, [*args, "--dry-run"], env=env)
    states = {line.split()[0]: line.split()[1] for line in dry.output.strip().splitlines()[1:]}
    assert states["stl-semseg"] == "done"
    assert states["set-semseg+depth"] == "to"  # "to do"

    resumed = runner.invoke(app, args, env=env)

    assert resumed.exit_code == 0, resumed.output
    assert first_record.read_text() == first_text  # the finished run was reused, not redone
    assert first_checkpoint.stat().st_mtime_ns == first_mtime
    for name in ("stl-semseg", "stl-depth", "set-semseg+depth"):
        record = json.loads((out / "evaluations" / f"{name}.json").read_text())
        assert record["recipe"]["train"]["max_iters"] == 4
    table = json.loads((out / "results.json").read_text())
    assert [row["label"] for row in table["rows"]] == ["STL", "BridgeNet: semseg, depth"]
    row = table["rows"][1]
    assert row["metrics"]["semseg"] is not None and row["metrics"]["depth"] is not None
    assert row["delta_mtl"] is not None
    assert "| STL |" in (out / "results.md").read_text()
    assert (out / "gains.png").stat().st_size > 1000
