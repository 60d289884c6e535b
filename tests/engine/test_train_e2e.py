"""End-to-end training with the real model, data pipeline and evaluator at a tiny size."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from bridgenet_cli.cli.app import app
from bridgenet_cli.data import build_dataset
from bridgenet_cli.engine import checkpoint as ckpt
from bridgenet_cli.engine import session
from bridgenet_cli.engine.builders import build_recipe_model, recipe_tasks
from bridgenet_cli.engine.losses import compute_losses
from bridgenet_cli.engine.monitor import read_metrics
from bridgenet_cli.engine.trainer import train
from bridgenet_cli.errors import BridgeNetError
from tests.engine.tiny import tiny_recipe, write_tiny_recipe

ROOT = Path(__file__).resolve().parents[2]
KILL_DRIVER = Path(__file__).with_name("kill_driver.py")
runner = CliRunner()


def _params(state: dict) -> dict:
    """Learned tensors only: BatchNorm running statistics are buffers, not weights."""
    return {k: v for k, v in state.items() if "running_" not in k and "num_batches" not in k}


def _task_losses(model, recipe, samples) -> dict[str, float]:
    """Each task's final-prediction loss on fixed, un-augmented training samples."""
    batch = torch.utils.data.default_collate(samples)
    with torch.no_grad():
        outputs = model(batch["image"])
    weights = dict.fromkeys(recipe_tasks(recipe), 1.0)
    terms = compute_losses(outputs, batch, weights, deep_supervision=0.0).terms
    return {task: float(value) for task, value in terms.items()}


@pytest.mark.slow
def test_tiny_run_lowers_every_task_loss(tmp_path):
    recipe = tiny_recipe(
        tmp_path, "data.tasks=[]", "data.synthetic.num_train=8", "train.max_iters=60",
        "train.lr=2e-3", "train.checkpoint_every=100", "model.drop_path_rate=0.0",
    )  # fmt: skip
    fixed = build_dataset(recipe.data, "train", [], train=False)
    samples = [fixed[i] for i in range(8)]

    session.seed_everything(recipe.train.seed)  # the trainer's initial weights
    initial = build_recipe_model(recipe).train()
    session.init_depth_prior(initial, recipe_tasks(recipe), fixed)
    before = _task_losses(initial, recipe, samples)
    result = train(recipe, tmp_path / "run")
    model = build_recipe_model(recipe).train()
    model.load_state_dict(ckpt.read_checkpoint(result.last_checkpoint)["model"])
    after = _task_losses(model, recipe, samples)

    assert set(before) == {"semseg", "human_parts", "depth", "normals", "saliency", "edge"}
    # Measured ratios after/before (60 iterations): normals 0.42, human_parts 0.53, depth 0.56,
    # semseg 0.60, edge 0.86, saliency 0.92 (its balanced BCE starts near its trivial level).
    for task in before:
        assert after[task] < 0.95 * before[task], (task, before[task], after[task])


@pytest.mark.slow
def test_killed_run_resumes_to_bit_identical_weights(tmp_path):
    overrides = ["train.max_iters=6", "train.checkpoint_every=2", "train.eval_every=3"]
    recipe_path = write_tiny_recipe(tmp_path)
    whole = train(tiny_recipe(tmp_path, *overrides), tmp_path / "whole")

    # Killed (SIGKILL) right after iteration 5, two data workers; last.pt is from iteration 4.
    killed = subprocess.run(
        [sys.executable, str(KILL_DRIVER), str(recipe_path), str(tmp_path / "split"), "5",
         *overrides, "data.num_workers=2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert ckpt.read_checkpoint(ckpt.last_path(tmp_path / "split"))["iteration"] == 4

    resumed = train(tiny_recipe(tmp_path, *overrides, "data.num_workers=1"), tmp_path / "split")
    assert resumed.iteration == 6
    expected = ckpt.read_checkpoint(whole.last_checkpoint)["model"]
    got = ckpt.read_checkpoint(resumed.last_checkpoint)["model"]
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    train_iters = [r["iter"] for r in read_metrics(tmp_path / "split") if r["split"] == "train"]
    assert train_iters == [1, 2, 3, 4, 5, 6]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.distributed
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path):
    """2 ranks x 1 micro-batch of 2 == 1 process x 2 accumulated micro-batches of 2.

    Stated tolerance: parameters agree to 1e-6 (absolute); only the summation order of the
    gradient average differs. BatchNorm running statistics differ by design (DDP keeps rank 0's),
    so buffers are not compared.
    """
    common = ["--set", "train.optimizer=sgd", "--set", "train.lr=0.01", "--set",
              "model.drop_path_rate=0.0", "--set", "train.max_iters=3"]  # fmt: skip
    recipe_path = write_tiny_recipe(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "bridgenet_cli", "-q", "train", str(recipe_path), "--out", str(tmp_path / "ddp"),
        *common,
    ]  # fmt: skip
    single = [
        sys.executable, "-m", "bridgenet_cli", "-q", "train", str(recipe_path),
        "--out", str(tmp_path / "one"), *common, "--set", "train.grad_accum=2",
    ]  # fmt: skip
    for command in (torchrun, single):
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    one = _params(ckpt.read_checkpoint(ckpt.last_path(tmp_path / "one"))["model"])
    ddp = _params(ckpt.read_checkpoint(ckpt.last_path(tmp_path / "ddp"))["model"])
    assert one.keys() == ddp.keys()
    for name in one:
        torch.testing.assert_close(ddp[name], one[name], rtol=0, atol=1e-6, msg=name)
    # Rank 0 alone wrote the metrics, with losses averaged over both ranks.
    ddp_losses = [r["loss"] for r in read_metrics(tmp_path / "ddp") if r["split"] == "train"]
    one_losses = [r["loss"] for r in read_metrics(tmp_path / "one") if r["split"] == "train"]
    assert ddp_losses == pytest.approx(one_losses, rel=1e-5)


def test_non_finite_loss_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    build = session.build_recipe_model

    def poisoned(recipe, with_pretrained=True):
        model = build(recipe, with_pretrained)
        original, calls = model.forward, {"n": 0}

        def forward(images, *args, **kwargs):
            outputs = original(images, *args, **kwargs)
            calls["n"] += 1
            if calls["n"] == 3:
                outputs["final"]["semseg"] = outputs["final"]["semseg"] * float("inf")
            return outputs

        model.forward = forward
        return model

    monkeypatch.setattr(session, "build_recipe_model", poisoned)
    with pytest.raises(BridgeNetError, match=r"non-finite semseg loss .* at iteration 3"):
        train(tiny_recipe(tmp_path), tmp_path / "run")
    assert ckpt.read_checkpoint(ckpt.last_path(tmp_path / "run"))["iteration"] == 2


def test_cli_print_recipe_shows_overrides(tmp_path):
    recipe_path = write_tiny_recipe(tmp_path)
    result = runner.invoke(
        app, ["train", str(recipe_path), "--set", "train.lr=0.5", "--print-recipe"]
    )
    assert result.exit_code == 0, result.output
    assert "lr = 0.5" in result.output
    assert not (Path("runs") / "tiny").exists()


def test_cli_refuses_to_overwrite_a_run_of_another_recipe(tmp_path):
    recipe_path = write_tiny_recipe(tmp_path)
    run = tmp_path / "run"
    first = runner.invoke(
        app, ["train", str(recipe_path), "--out", str(run), "-s", "train.max_iters=2"]
    )
    assert first.exit_code == 0, first.output
    before = ckpt.last_path(run).read_bytes()

    second = subprocess.run(
        [sys.executable, "-m", "bridgenet_cli", "train", str(recipe_path), "--out", str(run),
         "--set", "train.max_iters=2", "--set", "train.lr=0.1"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert second.returncode == 2
    assert "different recipe: train.lr" in second.stderr and "--out" in second.stderr
    assert "Traceback" not in second.stderr
    assert ckpt.last_path(run).read_bytes() == before
