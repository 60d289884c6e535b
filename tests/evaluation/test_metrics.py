"""Each accumulator against an independent computation on small cases with known answers."""

import math

import numpy as np
import pytest
import torch

from bridgenet_cli.data.info import DATASETS
from bridgenet_cli.evaluation.metrics import (
    ClassMetrics,
    DepthMetrics,
    EdgeMetrics,
    NormalsMetrics,
    SaliencyMetrics,
    build_metrics,
)
from bridgenet_cli.tasks import balanced_bce_loss

rng = np.random.default_rng(0)


# ---- semantic segmentation / human parts ------------------------------------------------------


def test_perfect_segmentation_scores_100():
    labels = rng.integers(0, 4, (6, 7))
    metrics = ClassMetrics("semseg", ("a", "b", "c", "d"))
    metrics.update(labels.astype(np.uint8), labels)
    out = metrics.compute()
    assert out["miou"] == pytest.approx(100.0)
    assert out["pixel_acc"] == pytest.approx(100.0)


def test_iou_pooled_over_images_and_absent_class_excluded():
    # Image 1: truth [0 0 1 1], prediction [0 1 1 1]; image 2: truth [1 1], prediction [0 1].
    # Class 2 appears nowhere, so it is left out of the mean.
    metrics = ClassMetrics("semseg", ("zero", "one", "two"))
    metrics.update(np.array([[0, 1, 1, 1]], np.uint8), np.array([[0, 0, 1, 1]]))
    metrics.update(np.array([[0, 1]], np.uint8), np.array([[1, 1]]))
    out = metrics.compute()
    # pooled: class 0 TP 1, FP 1 (image 2), FN 1 -> 1/3; class 1 TP 3, FP 1, FN 1 -> 3/5
    assert out["iou/zero"] == pytest.approx(100 / 3)
    assert out["iou/one"] == pytest.approx(60.0)
    assert out["iou/two"] is None
    assert out["miou"] == pytest.approx((100 / 3 + 60) / 2)
    assert out["pixel_acc"] == pytest.approx(100 * 4 / 6)


def test_ignored_pixels_do_not_count():
    metrics = ClassMetrics("semseg", ("a", "b"))
    metrics.update(np.array([[0, 1, 1]], np.uint8), np.array([[0, 1, 255]]))
    assert metrics.compute()["miou"] == pytest.approx(100.0)


def test_parts_image_without_labels_is_skipped():
    metrics = ClassMetrics("human_parts", ("bg", "head"), skip_unlabelled=True)
    metrics.update(np.ones((2, 2), np.uint8), np.full((2, 2), 255))  # no person: skipped
    metrics.update(np.array([[0, 1]], np.uint8), np.array([[0, 1]]))
    out = metrics.compute()
    assert out["miou"] == pytest.approx(100.0)
    assert metrics.state()["images"][0] == 1


def test_out_of_range_prediction_is_rejected():
    metrics = ClassMetrics("semseg", ("a", "b"))
    with pytest.raises(ValueError, match="outside"):
        metrics.update(np.array([[2]], np.uint8), np.array([[0]]))


# ---- depth ------------------------------------------------------------------------------------


def _depth_reference(preds, targets):
    p = np.concatenate([x[t > 0] for x, t in zip(preds, targets, strict=True)]).astype(np.float64)
    g = np.concatenate([t[t > 0] for t in targets]).astype(np.float64)
    p = np.maximum(p, 1e-9)
    ratio = np.maximum(p / g, g / p)
    return {
        "rmse": math.sqrt(np.mean((p - g) ** 2)),
        "log_rmse": math.sqrt(np.mean((np.log(p) - np.log(g)) ** 2)),
        "abs_rel": np.mean(np.abs(p - g) / g),
        "sq_rel": np.mean((p - g) ** 2 / g),
        "delta1": 100 * np.mean(ratio < 1.25),
        "delta2": 100 * np.mean(ratio < 1.25**2),
        "delta3": 100 * np.mean(ratio < 1.25**3),
    }


def test_depth_pooled_over_valid_pixels():
    targets = [rng.uniform(0.5, 5, (5, 6)).astype(np.float32) for _ in range(3)]
    targets[0][0, :] = 0  # invalid pixels
    targets[2][:, :4] = 0
    preds = [(t * rng.uniform(0.7, 1.4, t.shape)).astype(np.float32) for t in targets]
    preds[0][0, :] = 1000.0  # wild predictions on invalid pixels must not matter
    metrics = DepthMetrics()
    for p, t in zip(preds, targets, strict=True):
        metrics.update(p, t)
    out = metrics.compute()
    for key, value in _depth_reference(preds, targets).items():
        assert out[key] == pytest.approx(value, rel=1e-9), key
    # pooled, not the mean of per-image RMSEs
    per_image = np.mean(
        [_depth_reference([p], [t])["rmse"] for p, t in zip(preds, targets, strict=True)]
    )
    assert out["rmse"] != pytest.approx(per_image, rel=1e-6)


def test_perfect_depth():
    target = rng.uniform(1, 3, (4, 4)).astype(np.float32)
    metrics = DepthMetrics()
    metrics.update(target.copy(), target)
    out = metrics.compute()
    assert out["rmse"] == 0 and out["abs_rel"] == 0 and out["delta1"] == 100


# ---- normals ----------------------------------------------------------------------------------


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_normals_known_angles_and_invalid_pixels():
    target = np.zeros((1, 4, 3), np.float32)
    target[0, :3] = [0, 0, 1]  # last pixel invalid (zero vector)
    pred = np.zeros((1, 4, 3), np.float32)
    pred[0, 0] = [0, 0, 2]  # 0 degrees (not unit length: normalised)
    pred[0, 1] = [0, 1, 1]  # 45 degrees
    pred[0, 2] = [1, 0, 0]  # 90 degrees
    pred[0, 3] = [1, 0, 0]  # invalid: ignored
    metrics = NormalsMetrics()
    metrics.update(pred, target)
    out = metrics.compute()
    assert out["mean"] == pytest.approx(45.0)
    assert out["median"] == pytest.approx(45.0, abs=1e-3)
    assert out["rmse"] == pytest.approx(math.sqrt((0 + 45**2 + 90**2) / 3))
    assert out["within_11.25"] == pytest.approx(100 / 3)
    assert out["within_30"] == pytest.approx(100 / 3)


def test_normals_against_numpy_on_random_vectors():
    targets = [_unit(rng.normal(size=(6, 5, 3))).astype(np.float32) for _ in range(2)]
    preds = [(t + rng.normal(scale=0.4, size=t.shape)).astype(np.float32) for t in targets]
    metrics = NormalsMetrics()
    for p, t in zip(preds, targets, strict=True):
        metrics.update(p, t)
    p = _unit(np.concatenate([x.reshape(-1, 3) for x in preds]).astype(np.float64))
    g = np.concatenate([x.reshape(-1, 3) for x in targets]).astype(np.float64)
    angles = np.degrees(np.arccos(np.clip((p * g).sum(1), -1, 1)))
    out = metrics.compute()
    assert out["mean"] == pytest.approx(angles.mean(), abs=1e-6)
    assert out["median"] == pytest.approx(np.median(angles), abs=1e-3)
    assert out["rmse"] == pytest.approx(math.sqrt(np.mean(angles**2)), abs=1e-6)
    assert out["within_22.5"] == pytest.approx(100 * np.mean(angles < 22.5))


# ---- saliency ---------------------------------------------------------------------------------


def _saliency_reference(preds, targets):
    """Straight from the definitions, with float comparisons on p = v / 255."""
    pooled = []
    for t in np.round(np.arange(1, 20) * 0.05, 2):
        tp = fp = fn = 0
        for v, g in zip(preds, targets, strict=True):
            s = v / 255.0 >= t
            tp += np.sum(s & (g == 1))
            fp += np.sum(s & (g == 0))
            fn += np.sum(~s & (g == 1))
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        pooled.append(1.3 * p * r / (0.3 * p + r) if p + r else 0.0)
    f_images, ious = [], []
    for t in np.linspace(0.2, 0.9, 15):
        ps, rs, js = [], [], []
        for v, g in zip(preds, targets, strict=True):
            s, gt = v / 255.0 > t, g == 1
            tp = np.sum(s & gt)
            ps.append(tp / s.sum() if s.sum() else 0.0)
            rs.append(tp / gt.sum() if gt.sum() else 0.0)
            js.append(tp / np.sum(s | gt) if np.sum(s | gt) else 1.0)
        mp, mr = np.mean(ps), np.mean(rs)
        f_images.append(2 * mp * mr / (mp + mr) if mp + mr else 0.0)
        ious.append(np.mean(js))
    return 100 * max(pooled), 100 * max(f_images), 100 * max(ious)


def test_saliency_both_conventions_against_definitions():
    targets = [(rng.random((8, 9)) < 0.3).astype(np.uint8) for _ in range(4)]
    targets[3][:] = 0  # an image without salient pixels
    preds = [
        np.clip(t * 160 + rng.integers(0, 120, t.shape), 0, 255).astype(np.uint8) for t in targets
    ]
    metrics = SaliencyMetrics()
    for p, t in zip(preds, targets, strict=True):
        metrics.update(p, t)
    out = metrics.compute()
    maxf, maxf_mtinet, miou = _saliency_reference(preds, targets)
    assert out["maxf"] == pytest.approx(maxf)
    assert out["maxf_mtinet"] == pytest.approx(maxf_mtinet)
    assert out["miou"] == pytest.approx(miou)


def test_perfect_saliency():
    target = (rng.random((6, 6)) < 0.5).astype(np.uint8)
    metrics = SaliencyMetrics()
    metrics.update(target * 255, target)
    out = metrics.compute()
    assert out["maxf"] == pytest.approx(100) and out["maxf_mtinet"] == pytest.approx(100)
    assert out["miou"] == pytest.approx(100)


# ---- edge -------------------------------------------------------------------------------------


def test_edge_bce_proxy_matches_published_computation():
    target = (rng.random((7, 8)) < 0.1).astype(np.uint8)
    target[0, :2] = 255
    pred = rng.integers(0, 256, target.shape).astype(np.uint8)
    metrics = EdgeMetrics(benchmark=False)
    metrics.update(pred, target)
    # published code: the 0-1 probability fed to the balanced BCE as if it were a logit
    expected = balanced_bce_loss(
        torch.from_numpy(pred / 255.0), torch.from_numpy(target.astype(np.float64)), 0.95
    )
    out = metrics.compute()
    assert out["bce_proxy"] == pytest.approx(float(expected), rel=1e-6)
    assert "odsf" not in out


def _square(size, top, left, side):
    edges = np.zeros((size, size), np.uint8)
    edges[top, left : left + side] = 1
    edges[top + side - 1, left : left + side] = 1
    edges[top : top + side, left] = 1
    edges[top : top + side, left + side - 1] = 1
    return edges


def test_edge_benchmark_perfect_prediction():
    gt = _square(100, 30, 30, 30)  # tolerance 0.011 x 141 = 1.6 pixels
    metrics = EdgeMetrics(max_dist=0.011, workers=1)
    metrics.update(gt * 255, gt)
    out = metrics.compute()
    assert out["odsf"] == pytest.approx(100.0)
    assert out["oisf"] == pytest.approx(100.0)


@pytest.mark.parametrize(("shift", "inside"), [(4, True), (8, False)])
def test_edge_shifted_inside_and_outside_tolerance(shift, inside):
    # 100x100: diagonal 141.4, max_dist 0.05 -> 7.07 pixels of tolerance
    gt = _square(100, 30, 30, 40)
    pred = np.roll(gt, shift, axis=1)
    metrics = EdgeMetrics(max_dist=0.05, workers=1)
    metrics.update(pred * 255, gt)
    out = metrics.compute()
    if inside:
        assert out["odsf"] == pytest.approx(100.0)
    else:
        # only the two horizontal sides can still match (they overlap after the shift)
        assert out["odsf"] < 80.0


def test_edge_ignored_pixels_are_left_out():
    gt = _square(100, 30, 30, 30)
    pred = gt.copy()
    pred[10:14, 10:90] = 1  # a false edge inside the ignored band
    target = gt.copy()
    target[5:20, :] = 255
    metrics = EdgeMetrics(max_dist=0.011, workers=1)
    metrics.update(pred * 255, target)
    assert metrics.compute()["odsf"] == pytest.approx(100.0)


def test_edge_worker_processes_give_the_same_counts():
    gts = [_square(48, 5 + i, 8, 20) for i in range(4)]
    preds = [np.clip(np.roll(g, i, 0) * 200 + rng.integers(0, 40, g.shape), 0, 255) for i, g in
             enumerate(gts)]  # fmt: skip
    inline, pooled = EdgeMetrics(workers=1), EdgeMetrics(workers=2)
    for p, g in zip(preds, gts, strict=True):
        inline.update(p.astype(np.uint8), g)
        pooled.update(p.astype(np.uint8), g)
    assert pooled.compute() == inline.compute()
    pooled.close()


# ---- sharding -----------------------------------------------------------------------------------


def test_summed_shard_states_equal_one_pass():
    info = DATASETS.get("synthetic")
    tasks = ["semseg", "depth", "normals", "saliency", "edge"]
    images = []
    for _ in range(4):
        labels = rng.integers(0, 10, (12, 12))
        depth = rng.uniform(1, 4, (12, 12)).astype(np.float32)
        normals = _unit(rng.normal(size=(12, 12, 3))).astype(np.float32)
        binary = (rng.random((12, 12)) < 0.3).astype(np.uint8)
        images.append({
            "semseg": (rng.integers(0, 10, (12, 12)).astype(np.uint8), labels),
            "depth": (depth * 1.1, depth),
            "normals": (normals + 0.1, normals),
            "saliency": (rng.integers(0, 256, (12, 12)).astype(np.uint8), binary),
            "edge": (rng.integers(0, 256, (12, 12)).astype(np.uint8), binary),
        })  # fmt: skip
    whole = build_metrics(tasks, info, edge_workers=1)
    shards = [build_metrics(tasks, info, edge_workers=1) for _ in range(2)]
    for index, image in enumerate(images):
        for task in tasks:
            whole[task].update(*image[task])
            shards[index % 2][task].update(*image[task])
    for task in tasks:
        shards[0][task].merge(shards[1][task].state())
        expected = whole[task].compute()
        got = shards[0][task].compute()
        assert got.keys() == expected.keys()
        for key in expected:
            assert got[key] == pytest.approx(expected[key], rel=1e-12, abs=1e-12), (task, key)
