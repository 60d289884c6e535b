"""metrics.jsonl bookkeeping and TensorBoard mirroring."""

import json

import pytest
import torch

from bridgenet_cli.engine.distributed import DistContext, mean_across_ranks, pick_device
from bridgenet_cli.engine.monitor import MetricsLog, flatten_results, read_metrics
from bridgenet_cli.errors import BridgeNetError


def test_records_are_appended_as_json_lines(tmp_path):
    log = MetricsLog(tmp_path, enabled=True, resume_iter=0)
    log.write({"iter": 1, "split": "train", "loss": 2.0})
    log.write({"iter": 1, "split": "val", "semseg": {"miou": 40.0}, "bad": float("nan")})
    log.close()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[1]) == {
        "iter": 1,
        "split": "val",
        "semseg": {"miou": 40.0},
        "bad": None,
    }


def test_resume_forgets_records_after_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        "".join(json.dumps({"iter": i, "split": "train"}) + "\n" for i in range(1, 6))
        + '{"iter": 6, "spl'  # cut short by a kill
    )
    MetricsLog(tmp_path, enabled=True, resume_iter=3).close()
    assert [r["iter"] for r in read_metrics(tmp_path)] == [1, 2, 3]


def test_disabled_log_writes_nothing(tmp_path):
    log = MetricsLog(tmp_path, enabled=False, resume_iter=0)
    log.write({"iter": 1, "split": "train", "loss": 1.0})
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "tensorboard").exists()


def test_tensorboard_events_when_installed(tmp_path):
    pytest.importorskip("tensorboard")
    log = MetricsLog(tmp_path, enabled=True, resume_iter=0)
    log.write({"iter": 1, "split": "train", "loss": 1.0})
    log.close()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_flatten_results():
    nested = {"semseg": {"miou": 1.0, "per_class": {"wall": 2.0}}, "name": "x", "flag": True}
    assert flatten_results(nested) == {"semseg/miou": 1.0, "semseg/per_class/wall": 2.0}


def test_single_process_mean_is_a_copy():
    ctx = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    values = torch.tensor([1.0, 2.0])
    reduced = mean_across_ranks(values, ctx)
    reduced += 1
    assert values.tolist() == [1.0, 2.0]


def test_cuda_device_without_cuda_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BridgeNetError, match="train.device=cpu"):
        pick_device("cuda", 0)
    assert pick_device("auto", 0) == torch.device("cpu")
