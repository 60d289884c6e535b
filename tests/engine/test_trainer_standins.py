"""The training loop's bookkeeping, on a stand-in model and dataset (fast)."""

import json
import math
import signal

import pytest
import torch

from bridgenet_cli.config.schema import Recipe
from bridgenet_cli.engine import checkpoint as ckpt
from bridgenet_cli.engine import session, trainer
from bridgenet_cli.engine.monitor import read_metrics
from bridgenet_cli.errors import BridgeNetError
from tests.engine import standins


def _recipe(**train) -> Recipe:
    recipe = Recipe(name="toy")
    recipe.data.dataset = "synthetic"
    recipe.data.tasks = ["semseg", "depth"]
    recipe.data.num_workers = 0
    settings = dict(
        max_iters=6, batch_size=4, lr=0.01, optimizer="adam", eval_every=3,
        checkpoint_every=2, log_every=1, seed=5,
    )  # fmt: skip
    settings.update(train)
    for key, value in settings.items():
        setattr(recipe.train, key, value)
    return recipe


@pytest.fixture(autouse=True)
def _standins(monkeypatch):
    standins.install(monkeypatch)


def _weights(run_dir):
    return ckpt.read_checkpoint(ckpt.last_path(run_dir))["model"]


def test_run_writes_checkpoints_metrics_and_description(tmp_path):
    result = trainer.train(_recipe(), tmp_path / "run", argv=["bridgenet", "train", "x.toml"])
    run = tmp_path / "run"

    assert result.iteration == 6 and result.last_checkpoint.exists()
    assert result.best_checkpoint == ckpt.best_path(run) and result.best["iteration"] in (3, 6)
    assert set(result.final_eval) == {"semseg", "depth"}
    for name in ("recipe.toml", "command.txt", "environment.json"):
        assert (run / name).exists()
    records = read_metrics(run)
    assert [r["iter"] for r in records if r["split"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert [r["iter"] for r in records if r["split"] == "val"] == [3, 6]
    assert {"loss", "loss/semseg", "loss/depth/inter", "lr", "images_per_s"} <= set(records[0])

    saved = ckpt.read_checkpoint(result.last_checkpoint)
    assert saved["iteration"] == 6 and saved["tasks"] == ["semseg", "depth"]
    assert saved["data_state"] == {
        "epoch": 0, "step_in_epoch": 6, "steps_per_epoch": 10, "num_samples": 40, "batch_size": 4,
    }  # fmt: skip
    assert saved["recipe"]["train"]["lr"] == 0.01


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    trainer.train(_recipe(), tmp_path / "whole")

    def crash(iteration):
        if iteration == 5:  # one step after the checkpoint at 4
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer.train(_recipe(), tmp_path / "split", on_step=crash)
    assert ckpt.read_checkpoint(ckpt.last_path(tmp_path / "split"))["iteration"] == 4
    trainer.train(_recipe(), tmp_path / "split")

    whole, split = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    for name in whole:
        assert torch.equal(whole[name], split[name]), name
    # The crashed run's log line for iteration 5 was dropped and written again once.
    iters = [r["iter"] for r in read_metrics(tmp_path / "split") if r["split"] == "train"]
    assert iters == [1, 2, 3, 4, 5, 6]


def test_gradient_accumulation_matches_one_big_batch_without_batchnorm_effects(tmp_path):
    # Two micro-batches of 2 with the same samples as one batch of 4 in eval-free math: the
    # sampler gives the same samples, so the loss values of the first step agree closely.
    trainer.train(_recipe(max_iters=1, grad_accum=2), tmp_path / "accum")
    trainer.train(_recipe(max_iters=1, grad_accum=1), tmp_path / "plain")
    accum = read_metrics(tmp_path / "accum")[0]["loss/depth"]
    plain = read_metrics(tmp_path / "plain")[0]["loss/depth"]
    assert accum == pytest.approx(plain, rel=0.05)


def test_completed_run_is_not_retrained(tmp_path):
    trainer.train(_recipe(), tmp_path / "run")
    before = ckpt.last_path(tmp_path / "run").stat().st_mtime_ns
    result = trainer.train(_recipe(), tmp_path / "run")
    assert result.iteration == 6 and result.images_per_s is None
    assert ckpt.last_path(tmp_path / "run").stat().st_mtime_ns == before


def test_other_recipe_in_an_existing_run_folder_is_refused(tmp_path):
    trainer.train(_recipe(max_iters=2, eval_every=0), tmp_path / "run")
    with pytest.raises(BridgeNetError, match=r"different recipe: train.lr \(0.01 -> 0.5\)"):
        trainer.train(_recipe(max_iters=2, eval_every=0, lr=0.5), tmp_path / "run")


def test_no_resume_refuses_an_existing_run(tmp_path):
    trainer.train(_recipe(max_iters=2, eval_every=0), tmp_path / "run")
    with pytest.raises(BridgeNetError, match="already holds a run"):
        trainer.train(_recipe(max_iters=2, eval_every=0), tmp_path / "run", resume=False)


def test_non_empty_foreign_folder_is_refused(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(BridgeNetError, match="not a bridgenet run folder"):
        trainer.train(_recipe(max_iters=2), tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_non_finite_loss_stops_with_task_and_iteration(tmp_path, monkeypatch):
    build = session.build_recipe_model

    def poisoned(recipe, with_pretrained=True):
        model = build(recipe, with_pretrained)
        original = model.forward
        calls = {"n": 0}

        def forward(images):
            outputs = original(images)
            calls["n"] += 1
            if calls["n"] == 5:  # the fifth training step
                outputs["final"]["depth"] = outputs["final"]["depth"] * float("nan")
            return outputs

        model.forward = forward
        return model

    monkeypatch.setattr(session, "build_recipe_model", poisoned)
    run = tmp_path / "run"
    with pytest.raises(BridgeNetError, match="non-finite depth loss .* at iteration 5") as info:
        trainer.train(_recipe(eval_every=0), run)
    assert "last good checkpoint" in str(info.value)
    kept = ckpt.read_checkpoint(ckpt.last_path(run))
    assert kept["iteration"] == 4
    assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())


def test_load_for_inference_from_run_folder(tmp_path):
    trainer.train(_recipe(), tmp_path / "run")
    model, recipe, path = ckpt.load_for_inference(tmp_path / "run", "cpu")
    assert path == ckpt.best_path(tmp_path / "run")
    assert recipe.train.lr == 0.01 and not model.training
    best = ckpt.read_checkpoint(path)["model"]
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())


def test_select_metric_is_recorded_with_direction(tmp_path):
    result = trainer.train(_recipe(select_metric="depth.rmse"), tmp_path / "run")
    assert result.best["metric"] == "depth.rmse" and result.best["higher_is_better"] is False
    vals = [r["depth"]["rmse"] for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl")
            .read_text().splitlines()) if r["split"] == "val"]  # fmt: skip
    assert result.best["value"] == min(vals)


def test_bf16_autocast_and_channels_last_train_on_cpu(tmp_path):
    result = trainer.train(
        _recipe(max_iters=2, amp="bf16", channels_last=True, eval_every=0), tmp_path / "run"
    )
    losses = [r["loss"] for r in read_metrics(tmp_path / "run") if r["split"] == "train"]
    assert result.iteration == 2 and all(math.isfinite(v) for v in losses)


def test_sync_bn_without_a_process_group_is_ignored(tmp_path):
    assert trainer.train(_recipe(max_iters=1, sync_bn=True), tmp_path / "run").iteration == 1


def test_ctrl_c_saves_the_current_step_and_resumes_exactly(tmp_path):
    trainer.train(_recipe(eval_every=0, checkpoint_every=100), tmp_path / "whole")

    def interrupt(iteration):
        if iteration == 3:
            signal.raise_signal(signal.SIGINT)

    recipe = _recipe(eval_every=0, checkpoint_every=100)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(recipe, tmp_path / "split", on_step=interrupt)
    assert ckpt.read_checkpoint(ckpt.last_path(tmp_path / "split"))["iteration"] == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    trainer.train(recipe, tmp_path / "split")
    whole, split = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    assert all(torch.equal(whole[name], split[name]) for name in whole)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(batch_size=6, grad_accum=4), "multiple of 4"),
        (dict(amp="fp16"), "needs a CUDA device"),
        (dict(select_metric="normals.mean"), "does not train"),
        (dict(loss_weights={"edge": 2.0}), "names task"),
    ],
)
def test_recipe_mistakes_are_reported_before_anything_is_built(tmp_path, settings, message):
    with pytest.raises(BridgeNetError, match=message):
        trainer.train(_recipe(**settings), tmp_path / "run")
    assert not (tmp_path / "run").exists()
