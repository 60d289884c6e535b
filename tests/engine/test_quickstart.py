"""The README's main job: ``bridgenet train recipes/quickstart.toml`` ends with learned metrics.

"Learned" is measured against the two trivial predictors of the issue, computed here from the
labels with NumPy alone: the training split's most frequent class everywhere (semseg mIoU) and
its mean valid depth everywhere (depth RMSE). The quickstart must reach at least twice that mIoU
and at most half that RMSE.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bridgenet_cli.config.recipe import load_recipe
from bridgenet_cli.data.cache import CacheSource
from bridgenet_cli.data.dataset import ensure_cache

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "recipes" / "quickstart.toml"


def _labelled(source: CacheSource):
    """``(semseg labels, valid depths)`` of every sample of a split, both flat."""
    for index in range(len(source)):
        record = source.read(index, ("semseg", "depth"))
        yield (
            record["semseg"][record["semseg"] != 255],
            record["depth"][record["depth"] > 0].astype(np.float64),
        )


def trivial_scores(cache: Path) -> tuple[float, float]:
    """``(mIoU of the most frequent class, RMSE of the mean depth)`` on the val split, in %, m.

    mIoU follows the published convention: IoU pooled over the split, classes absent from both
    labels and predictions left out of the mean.
    """
    train, val = CacheSource(cache, "train"), CacheSource(cache, "val")
    num_classes = train.info.num_classes("semseg")

    class_pixels = np.zeros(num_classes, dtype=np.int64)
    depth_sum, depth_pixels = 0.0, 0
    for labels, depth in _labelled(train):
        class_pixels += np.bincount(labels, minlength=num_classes)
        depth_sum, depth_pixels = depth_sum + depth.sum(), depth_pixels + depth.size
    frequent, mean_depth = int(np.argmax(class_pixels)), depth_sum / depth_pixels

    truth_pixels = np.zeros(num_classes, dtype=np.int64)
    squared, valid_pixels = 0.0, 0
    for labels, depth in _labelled(val):
        truth_pixels += np.bincount(labels, minlength=num_classes)
        squared += ((depth - mean_depth) ** 2).sum()
        valid_pixels += depth.size

    # Predicting `frequent` everywhere: its IoU is its share of the labelled pixels; every other
    # class present in the labels has IoU 0; absent classes are left out.
    total = truth_pixels.sum()
    present = np.count_nonzero(truth_pixels | (np.arange(num_classes) == frequent))
    miou = 100.0 * truth_pixels[frequent] / total / present
    return float(miou), float(np.sqrt(squared / valid_pixels))


@pytest.mark.slow
def test_quickstart_learns_semseg_and_depth(tmp_path):
    run = tmp_path / "quickstart"
    done = subprocess.run(
        [sys.executable, "-m", "bridgenet_cli", "-q", "train", str(QUICKSTART), "--out", str(run)],
        cwd=tmp_path, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    final = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    scores = [record for record in final if record["split"] == "val"][-1]
    recipe = load_recipe(QUICKSTART, [])
    frequent_miou, mean_rmse = trivial_scores(ensure_cache(recipe.data))

    assert scores["semseg"]["miou"] >= 2.0 * frequent_miou, (scores["semseg"], frequent_miou)
    assert scores["depth"]["rmse"] <= 0.5 * mean_rmse, (scores["depth"], mean_rmse)
