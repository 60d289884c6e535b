"""Checkpoint contents, safe reading with clear errors, and resume recipe checks."""

import random

import numpy as np
import pytest
import torch

from bridgenet_cli.config.schema import Recipe
from bridgenet_cli.engine import checkpoint as ckpt
from bridgenet_cli.errors import BridgeNetError


def _valid(path, **extra):
    data = {"format": ckpt.FORMAT, "version": ckpt.VERSION, "model": {"w": torch.ones(3)}}
    data.update(extra)
    torch.save(data, path)
    return path


def test_rng_states_round_trip_through_a_file(tmp_path):
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    np.random.randn()  # leaves a cached gaussian in NumPy's state
    _valid(tmp_path / "c.pt", rng=[ckpt.capture_rng()])
    expected = (random.random(), np.random.randn(), torch.rand(2))

    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    ckpt.restore_rng(ckpt.read_checkpoint(tmp_path / "c.pt")["rng"][0])
    got = (random.random(), np.random.randn(), torch.rand(2))
    assert got[0] == expected[0] and got[1] == expected[1] and torch.equal(got[2], expected[2])


def test_missing_path(tmp_path):
    with pytest.raises(BridgeNetError, match="checkpoint not found"):
        ckpt.read_checkpoint(tmp_path / "nope.pt")


def test_text_file_is_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.pt").write_text("hello")
    with pytest.raises(BridgeNetError, match="not a bridgenet checkpoint"):
        ckpt.read_checkpoint(tmp_path / "notes.pt")


def test_other_torch_file_is_not_a_bridgenet_checkpoint(tmp_path):
    torch.save({"state_dict": {"w": torch.ones(1)}}, tmp_path / "other.pt")
    with pytest.raises(BridgeNetError, match="without the bridgenet layout"):
        ckpt.read_checkpoint(tmp_path / "other.pt")


class Payload:
    """Any class: unpickling it would import and run code."""


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"format": ckpt.FORMAT, "obj": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(BridgeNetError, match="arbitrary Python objects"):
        ckpt.read_checkpoint(tmp_path / "evil.pt")


@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated_file(tmp_path, keep):
    path = _valid(tmp_path / "c.pt", big=torch.randn(20000))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(BridgeNetError, match="truncated or corrupt"):
        ckpt.read_checkpoint(path)


def test_newer_version_asks_for_an_upgrade(tmp_path):
    path = _valid(tmp_path / "c.pt", version=ckpt.VERSION + 1)
    with pytest.raises(BridgeNetError, match="upgrade bridgenet"):
        ckpt.read_checkpoint(path)


def test_run_folder_prefers_best_then_last(tmp_path):
    _valid(ckpt.last_path(tmp_path).parent.mkdir(parents=True) or ckpt.last_path(tmp_path))
    assert ckpt.find_checkpoint(tmp_path) == ckpt.last_path(tmp_path)
    _valid(ckpt.best_path(tmp_path))
    assert ckpt.find_checkpoint(tmp_path) == ckpt.best_path(tmp_path)


def test_run_folder_without_checkpoints(tmp_path):
    with pytest.raises(BridgeNetError, match="holds no checkpoints"):
        ckpt.find_checkpoint(tmp_path)
    with pytest.raises(BridgeNetError, match="no run folder or checkpoint"):
        ckpt.find_checkpoint(tmp_path / "missing")


def test_copy_checkpoint(tmp_path):
    source = _valid(tmp_path / "a.pt")
    ckpt.copy_checkpoint(source, tmp_path / "sub" / "b.pt")
    assert (tmp_path / "sub" / "b.pt").read_bytes() == source.read_bytes()


def test_logging_and_eval_settings_may_change_on_resume():
    old, new = Recipe(), Recipe()
    new.train.log_every = 7
    new.eval.max_samples = 3
    new.data.num_workers = 0
    assert ckpt.recipe_differences(old, new) == []


def test_learning_settings_may_not_change_on_resume(tmp_path):
    old, new = Recipe(), Recipe()
    new.train.lr = 1.0
    new.model.backbone = "vit-base"
    assert ckpt.recipe_differences(old, new) == ["model.backbone", "train.lr"]
    with pytest.raises(BridgeNetError, match=r"train.lr \(2e-05 -> 1.0\)"):
        ckpt.check_same_recipe(old, new, tmp_path)
