"""Two gloo processes, each evaluating a shard, give the numbers of one process."""

import json
import os
import sys
from pathlib import Path

import pytest
import torch.multiprocessing as mp

from tests.evaluation.helpers import PixelModel, synthetic_val

TASKS = ["semseg", "depth", "normals", "saliency", "edge"]


def _rank(rank: int, world: int, init_file: str, out: str, data_dir: str) -> None:
    import torch.distributed as dist

    os.environ["BRIDGENET_DATA"] = data_dir
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from bridgenet_cli.evaluation import evaluate_model

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        results = evaluate_model(PixelModel(TASKS), synthetic_val(TASKS), edge_workers=1)
    finally:
        dist.destroy_process_group()
    Path(out, f"rank{rank}.json").write_text(json.dumps(results))


@pytest.mark.slow
@pytest.mark.distributed
def test_two_ranks_equal_one_process(tmp_path):
    data_dir = os.environ["BRIDGENET_DATA"]
    expected = __import__("bridgenet_cli.evaluation", fromlist=["x"]).evaluate_model(
        PixelModel(TASKS), synthetic_val(TASKS), edge_workers=1
    )  # also creates the synthetic cache before the ranks start
    mp.spawn(_rank, args=(2, str(tmp_path / "init"), str(tmp_path), data_dir), nprocs=2)
    for rank in range(2):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        for task, metrics in expected.items():
            for key, value in metrics.items():
                assert got[task][key] == pytest.approx(value, rel=1e-9, abs=1e-12), (task, key)
