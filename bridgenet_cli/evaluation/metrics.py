"""Streaming metric accumulators, one per task, with the conventions that published numbers use.

Every accumulator is fed one image at a time with ``update(pred, target)``:

- ``pred`` is the prediction in its *saved form* (:mod:`bridgenet_cli.evaluation.predictions`):
  class maps uint8 ``(H, W)``, depth float32 ``(H, W)``, normals float32 ``(H, W, 3)``,
  saliency and edge probabilities uint8 ``(H, W)`` (0-255);
- ``target`` is the label at native resolution with the padding removed, in the canonical form
  of :func:`bridgenet_cli.evaluation.predictions.target_array`: class maps int64 ``(H, W)`` (255
  ignore), depth float32 ``(H, W)`` (0 invalid), normals float32 ``(H, W, 3)`` (zero vector
  invalid), saliency and edge uint8 ``(H, W)`` in {0, 1} (255 ignore).

Online evaluation converts the network's post-processed output to that saved form before
updating, so evaluating saved prediction files reproduces the online numbers exactly.

The state of an accumulator is a dict of float64 arrays whose element-wise sum over disjoint
shards of a split equals the state of the whole split; distributed evaluation sums them across
ranks. ``compute()`` turns a state into ``metric -> value``. Ratios are percentages (0-100);
depth errors are in the dataset's unit; angles in degrees.
"""

import logging
import math
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

from bridgenet_cli.data.info import DatasetInfo
from bridgenet_cli.evaluation import boundary
from bridgenet_cli.registry import Registry

logger = logging.getLogger(__name__)

IGNORE = 255

# Saliency thresholds of the two published conventions.
SALIENCY_THRESHOLDS_POOLED = np.round(np.arange(1, 20) * 0.05, 2)  # InvPT / ATRC: 0.05 .. 0.95
SALIENCY_THRESHOLDS_PER_IMAGE = np.linspace(0.2, 0.9, 15)  # MTI-Net / ASTMT
SALIENCY_BETA_SQUARED = 0.3  # InvPT / ATRC F-measure weight

EDGE_POSITIVE_WEIGHT = 0.95  # the balanced BCE of the field's edge loss
DEPTH_MIN_PREDICTION = 1e-9  # predictions are clamped to at least this before ratios and logs
NORMALS_BIN_DEGREES = 0.001  # histogram bin for the pooled median angle
NORMALS_THRESHOLDS = (11.25, 22.5, 30.0)


class MetricAccumulator:
    """Base class: a summable state and the metrics computed from it."""

    task: str = ""

    def __init__(self) -> None:
        self._state: dict[str, np.ndarray] = {}

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """The accumulated state (copies), float64 arrays."""
        return {key: value.astype(np.float64, copy=True) for key, value in self._state.items()}

    def merge(self, state: dict[str, np.ndarray]) -> None:
        """Add another shard's state to this one."""
        for key, value in state.items():
            self._state[key] = self._state[key] + np.asarray(value, dtype=self._state[key].dtype)

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        for key, value in state.items():
            self._state[key] = np.asarray(value, dtype=self._state[key].dtype).copy()

    def compute(self) -> dict[str, float | None]:
        """``metric -> value`` as plain Python floats; None where undefined or not finite."""
        out: dict[str, float | None] = {}
        for key, value in self._compute().items():
            if value is not None and not math.isfinite(float(value)):
                logger.warning("%s %s is not finite (non-finite predictions?)", self.task, key)
                value = None
            out[key] = None if value is None else float(value)
        return out

    def _compute(self) -> dict[str, float | None]:
        raise NotImplementedError

    def close(self) -> None:
        """Release worker processes, if any."""


def _check_same_shape(pred: np.ndarray, target: np.ndarray, task: str) -> None:
    if pred.shape[:2] != target.shape[:2]:
        raise ValueError(f"{task}: prediction {pred.shape} and target {target.shape} differ")


def _percent(num: float, den: float) -> float | None:
    return 100.0 * num / den if den > 0 else None


# ----------------------------------------------------------------------------------------------
# Semantic segmentation and human parts
# ----------------------------------------------------------------------------------------------


class ClassMetrics(MetricAccumulator):
    """mIoU, per-class IoU and pixel accuracy from a confusion matrix pooled over the split.

    A class's IoU is ``TP / (TP + FP + FN)`` with the counts summed over all images. A class
    absent from both predictions and labels of the whole split has no IoU (``None``) and is left
    out of the mean. Pixels labelled 255 are ignored. With ``skip_unlabelled`` (human parts) an
    image whose label is all 255 (no person) is skipped entirely, so its predictions do not count.
    """

    def __init__(self, task: str, class_names: tuple[str, ...], skip_unlabelled: bool = False):
        super().__init__()
        self.task = task
        self.class_names = tuple(class_names)
        self.skip_unlabelled = skip_unlabelled
        K = len(class_names)
        self._state = {"confusion": np.zeros((K, K), dtype=np.int64), "images": np.zeros(1)}

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        _check_same_shape(pred, target, self.task)
        valid = target != IGNORE
        if self.skip_unlabelled and not valid.any():
            return
        K = len(self.class_names)
        truth = target[valid].astype(np.int64)
        guess = pred[valid].astype(np.int64)
        if truth.size and (truth.max() >= K or truth.min() < 0):
            raise ValueError(f"{self.task}: label ids outside 0..{K - 1} (and 255)")
        if guess.size and (guess.max() >= K or guess.min() < 0):
            raise ValueError(f"{self.task}: predicted class ids outside 0..{K - 1}")
        counts = np.bincount(truth * K + guess, minlength=K * K)
        self._state["confusion"] += counts.reshape(K, K)  # rows: truth, columns: prediction
        self._state["images"] += 1

    def _compute(self) -> dict[str, float | None]:
        confusion = self._state["confusion"].astype(np.float64)
        tp = np.diag(confusion)
        union = confusion.sum(0) + confusion.sum(1) - tp
        ious = [100.0 * t / u if u > 0 else None for t, u in zip(tp, union, strict=True)]
        present = [iou for iou in ious if iou is not None]
        out: dict[str, float | None] = {
            "miou": float(np.mean(present)) if present else None,
            "pixel_acc": _percent(float(tp.sum()), float(confusion.sum())),
        }
        for name, iou in zip(self.class_names, ious, strict=True):
            out[f"iou/{name}"] = iou
        return out


# ----------------------------------------------------------------------------------------------
# Depth
# ----------------------------------------------------------------------------------------------


class DepthMetrics(MetricAccumulator):
    """Depth errors pooled over all valid pixels of the split (not means of per-image errors).

    Valid pixels: label > 0 and finite. Predictions are clamped to at least 1e-9 first (depth is
    positive), then RMSE, log-RMSE (natural log), abs-rel ``|p - g| / g``, sq-rel
    ``(p - g)^2 / g`` and delta_k = % of pixels with ``max(p / g, g / p) < 1.25^k``.
    """

    _KEYS = ("pixels", "sq", "log_sq", "abs_rel", "sq_rel", "delta1", "delta2", "delta3")

    def __init__(self, task: str = "depth"):
        super().__init__()
        self.task = task
        self._state = {"sums": np.zeros(len(self._KEYS)), "images": np.zeros(1)}

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        _check_same_shape(pred, target, self.task)
        valid = (target > 0) & np.isfinite(target)
        gt = target[valid].astype(np.float64)
        p = np.maximum(pred[valid].astype(np.float64), DEPTH_MIN_PREDICTION)
        diff = p - gt
        ratio = np.maximum(p / gt, gt / p)
        sums = np.array(
            [
                gt.size,
                np.sum(diff**2),
                np.sum((np.log(p) - np.log(gt)) ** 2),
                np.sum(np.abs(diff) / gt),
                np.sum(diff**2 / gt),
                np.sum(ratio < 1.25),
                np.sum(ratio < 1.25**2),
                np.sum(ratio < 1.25**3),
            ]
        )
        self._state["sums"] += sums
        self._state["images"] += 1

    def _compute(self) -> dict[str, float | None]:
        s = dict(zip(self._KEYS, self._state["sums"], strict=True))
        n = s["pixels"]
        if n == 0:
            return {key: None for key in ("rmse", "log_rmse", "abs_rel", "sq_rel", "delta1")}
        return {
            "rmse": math.sqrt(s["sq"] / n),
            "log_rmse": math.sqrt(s["log_sq"] / n),
            "abs_rel": s["abs_rel"] / n,
            "sq_rel": s["sq_rel"] / n,
            "delta1": 100.0 * s["delta1"] / n,
            "delta2": 100.0 * s["delta2"] / n,
            "delta3": 100.0 * s["delta3"] / n,
        }


# ----------------------------------------------------------------------------------------------
# Surface normals
# ----------------------------------------------------------------------------------------------


def angle_degrees(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Angle in degrees between ``(N, 3)`` vectors, after L2-normalising both (stable formula
    ``2 atan2(|a - b|, |a + b|)``; a zero prediction is 90 degrees from anything)."""
    a = pred / np.maximum(np.linalg.norm(pred, axis=-1, keepdims=True), 1e-12)
    b = target / np.maximum(np.linalg.norm(target, axis=-1, keepdims=True), 1e-12)
    minus = np.linalg.norm(a - b, axis=-1)
    plus = np.linalg.norm(a + b, axis=-1)
    return np.degrees(2.0 * np.arctan2(minus, plus))


class NormalsMetrics(MetricAccumulator):
    """Angular error of surface normals pooled over all valid pixels of the split.

    Valid pixels: a non-zero, finite label vector. Mean, RMSE and the % of pixels under 11.25,
    22.5 and 30 degrees are exact; the median comes from a histogram of 0.001-degree bins
    (linear inside the bin; within 0.0005 degrees of the exact median).
    """

    def __init__(self, task: str = "normals"):
        super().__init__()
        self.task = task
        bins = int(round(180.0 / NORMALS_BIN_DEGREES))
        self._state = {
            "sums": np.zeros(2 + len(NORMALS_THRESHOLDS)),  # pixels, sum of squares, under-counts
            "sum_angle": np.zeros(1),
            "histogram": np.zeros(bins, dtype=np.int64),
            "images": np.zeros(1),
        }

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        _check_same_shape(pred, target, self.task)
        gt = target.reshape(-1, 3).astype(np.float64)
        p = pred.reshape(-1, 3).astype(np.float64)
        valid = np.any(gt != 0, axis=1) & np.all(np.isfinite(gt), axis=1)
        angles = angle_degrees(p[valid], gt[valid])
        under = [np.sum(angles < t) for t in NORMALS_THRESHOLDS]
        self._state["sums"] += np.array([angles.size, np.sum(angles**2), *under])
        self._state["sum_angle"] += np.sum(angles)
        bins = self._state["histogram"].size
        index = np.minimum((angles / NORMALS_BIN_DEGREES).astype(np.int64), bins - 1)
        self._state["histogram"] += np.bincount(index, minlength=bins)
        self._state["images"] += 1

    def _median(self) -> float:
        hist = self._state["histogram"].astype(np.float64)
        n = int(hist.sum())
        cumulative = np.cumsum(hist)

        def value_at(rank: int) -> float:
            """The 0-based ``rank``-th smallest angle, spread evenly within its bin."""
            k = int(np.searchsorted(cumulative, rank, side="right"))
            before = cumulative[k] - hist[k]
            return (k + (rank - before + 0.5) / hist[k]) * NORMALS_BIN_DEGREES

        return 0.5 * (value_at((n - 1) // 2) + value_at(n // 2))

    def _compute(self) -> dict[str, float | None]:
        sums = self._state["sums"]
        n = sums[0]
        keys = ("mean", "median", "rmse", *(f"within_{t:g}" for t in NORMALS_THRESHOLDS))
        if n == 0:
            return {key: None for key in keys}
        values = [
            float(self._state["sum_angle"][0] / n),
            self._median(),
            math.sqrt(sums[1] / n),
            *(100.0 * c / n for c in sums[2:]),
        ]
        return dict(zip(keys, values, strict=True))


# ----------------------------------------------------------------------------------------------
# Saliency
# ----------------------------------------------------------------------------------------------


def _levels_at_least(thresholds: np.ndarray) -> np.ndarray:
    """Smallest 8-bit value v with ``v / 255 >= t`` per threshold."""
    return np.ceil(np.round(thresholds * 255.0, 6)).astype(np.int64)


def _levels_above(thresholds: np.ndarray) -> np.ndarray:
    """Smallest 8-bit value v with ``v / 255 > t`` per threshold."""
    return np.floor(np.round(thresholds * 255.0, 6)).astype(np.int64) + 1


def _at_or_above(histogram: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Pixels with value ``>= level`` for each level, from a 256-bin histogram."""
    tail = np.concatenate([np.cumsum(histogram[::-1])[::-1], [0.0]])
    return tail[np.clip(levels, 0, 256)]


class SaliencyMetrics(MetricAccumulator):
    """maxF in both published conventions, and mIoU.

    - ``maxf`` (InvPT / ATRC): for t = 0.05, 0.10, ..., 0.95 a pixel is salient when its
      probability is ``>= t``; TP, FP and FN are pooled over the split; F uses beta^2 = 0.3;
      the maximum over thresholds.
    - ``maxf_mtinet`` (MTI-Net / ASTMT): for 15 thresholds evenly spaced in [0.2, 0.9], a pixel is
      salient when its probability is ``> t``; precision and recall are computed per image (0
      when undefined) and averaged over images; F uses beta = 1; the maximum over thresholds.
    - ``miou`` (MTI-Net / ASTMT): the per-image IoU of the salient region (1 when prediction and
      label are both empty), averaged over images, maximised over the same 15 thresholds.

    Probabilities are the saved 8-bit values divided by 255; labels 255 are ignored.
    """

    def __init__(self, task: str = "saliency"):
        super().__init__()
        self.task = task
        T = SALIENCY_THRESHOLDS_PER_IMAGE.size
        self._state = {
            "positive_hist": np.zeros(256),  # pooled histogram of predictions on salient pixels
            "negative_hist": np.zeros(256),
            "precision_sum": np.zeros(T),
            "recall_sum": np.zeros(T),
            "iou_sum": np.zeros(T),
            "images": np.zeros(1),
        }

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        _check_same_shape(pred, target, self.task)
        valid = target != IGNORE
        values = pred[valid].astype(np.int64)
        salient = target[valid] > 0
        positive = np.bincount(values[salient], minlength=256).astype(np.float64)
        negative = np.bincount(values[~salient], minlength=256).astype(np.float64)
        self._state["positive_hist"] += positive
        self._state["negative_hist"] += negative

        levels = _levels_above(SALIENCY_THRESHOLDS_PER_IMAGE)
        tp = _at_or_above(positive, levels)
        predicted = tp + _at_or_above(negative, levels)
        actual = positive.sum()
        union = predicted + actual - tp
        self._state["precision_sum"] += np.where(predicted > 0, tp / np.maximum(predicted, 1), 0)
        self._state["recall_sum"] += tp / actual if actual > 0 else 0.0
        self._state["iou_sum"] += np.where(union > 0, tp / np.maximum(union, 1), 1.0)
        self._state["images"] += 1

    def _compute(self) -> dict[str, float | None]:
        positive = self._state["positive_hist"]
        negative = self._state["negative_hist"]
        n_images = self._state["images"][0]
        if n_images == 0:
            return {"maxf": None, "maxf_mtinet": None, "miou": None}

        levels = _levels_at_least(SALIENCY_THRESHOLDS_POOLED)
        tp = _at_or_above(positive, levels)
        predicted = tp + _at_or_above(negative, levels)
        actual = positive.sum()
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = tp / actual if actual > 0 else np.zeros_like(tp)
        b2 = SALIENCY_BETA_SQUARED
        den = b2 * precision + recall
        f_pooled = np.where(den > 0, (1 + b2) * precision * recall / np.where(den > 0, den, 1), 0)
        best = int(np.argmax(f_pooled))

        mean_p = self._state["precision_sum"] / n_images
        mean_r = self._state["recall_sum"] / n_images
        den = mean_p + mean_r
        f_images = np.where(den > 0, 2 * mean_p * mean_r / np.where(den > 0, den, 1), 0.0)
        return {
            "maxf": 100.0 * float(f_pooled[best]),
            "maxf_threshold": float(SALIENCY_THRESHOLDS_POOLED[best]),
            "maxf_mtinet": 100.0 * float(f_images.max()),
            "miou": 100.0 * float((self._state["iou_sum"] / n_images).max()),
        }


# ----------------------------------------------------------------------------------------------
# Edges
# ----------------------------------------------------------------------------------------------


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def default_workers() -> int:
    """Processes for the edge benchmark: the CPUs of this process, shared by the local ranks."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, cpus // max(1, local))


def _pool(workers: int) -> ProcessPoolExecutor:
    import multiprocessing

    # fork: workers start at once and never re-import the caller's main module; they run only
    # NumPy/SciPy code (no torch, no OpenMP), which is safe in a forked child.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))


class EdgeMetrics(MetricAccumulator):
    """odsF, oisF and AP of the boundary benchmark, and the balanced-BCE proxy.

    The benchmark (:mod:`bridgenet_cli.evaluation.boundary`) runs per image in ``workers``
    processes while evaluation goes on (``workers=1``: in this process); ``max_dist`` is the
    dataset's tolerance (``DATASETS[...].edge_tolerance``). Pixels labelled 255 are left out.

    ``bce_proxy`` is the number published multi-task code reports as the edge "loss" when it does
    not run the MATLAB benchmark: the class-balanced BCE (positive weight 0.95) computed with the
    saved 0-1 probability *in place of the logit*, averaged over valid pixels. It is a proxy for
    comparison with such reports only; lower is better.
    """

    def __init__(
        self, task: str = "edge", max_dist: float = 0.011, benchmark: bool = True, workers: int = 0
    ):
        super().__init__()
        self.task = task
        self.max_dist = float(max_dist)
        self.benchmark = benchmark
        self.workers = workers if workers > 0 else default_workers()
        T = boundary.THRESHOLDS.size
        self._state = {
            "counts": np.zeros((4, T)),
            "best_counts": np.zeros(4),
            "bce": np.zeros(2),  # sum, pixels
            "images": np.zeros(1),
            "benchmarked": np.zeros(1),
        }
        self._executor: ProcessPoolExecutor | None = None
        self._pending: list[Future] = []

    # -- feeding ---------------------------------------------------------------------------------

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        _check_same_shape(pred, target, self.task)
        valid = target != IGNORE
        values = pred[valid].astype(np.int64)
        edge = target[valid] > 0
        positive = np.bincount(values[edge], minlength=256)
        negative = np.bincount(values[~edge], minlength=256)
        x = np.arange(256) / 255.0
        w = EDGE_POSITIVE_WEIGHT
        loss = w * positive @ _softplus(-x) + (1 - w) * negative @ _softplus(x)
        self._state["bce"] += np.array([loss, valid.sum()])
        self._state["images"] += 1

        if not self.benchmark:
            return
        ignore = None if valid.all() else ~valid
        args = (np.ascontiguousarray(pred), target == 1, self.max_dist, ignore)
        if self.workers <= 1:
            self._add_counts(boundary.image_counts(*args))
            return
        if self._executor is None:
            self._executor = _pool(self.workers)
        self._pending.append(self._executor.submit(boundary.image_counts, *args))
        self._collect(block=len(self._pending) > 4 * self.workers)

    def _add_counts(self, counts: np.ndarray) -> None:
        self._state["counts"] += counts
        self._state["best_counts"] += boundary.best_image_counts(counts)
        self._state["benchmarked"] += 1

    def _collect(self, block: bool) -> None:
        while self._pending and (self._pending[0].done() or block):
            self._add_counts(self._pending.pop(0).result())
            block = False

    def pending(self) -> int:
        """Images submitted to the worker processes and not yet finished."""
        return len(self._pending)

    def finish(self, on_image: Callable[[], None] | None = None) -> None:
        """Wait for every submitted image (``on_image`` is called after each)."""
        while self._pending:
            self._add_counts(self._pending.pop(0).result())
            if on_image is not None:
                on_image()

    def close(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    # -- results ---------------------------------------------------------------------------------

    def state(self) -> dict[str, np.ndarray]:
        self.finish()
        return super().state()

    def _compute(self) -> dict[str, float | None]:
        self.finish()
        loss, pixels = self._state["bce"]
        out: dict[str, float | None] = {"bce_proxy": float(loss / pixels) if pixels else None}
        if self.benchmark and self._state["benchmarked"][0] > 0:
            scores = boundary.summarize(self._state["counts"], self._state["best_counts"])
            out = {
                "odsf": 100.0 * scores["odsf"],
                "oisf": 100.0 * scores["oisf"],
                "ap": 100.0 * scores["ap"],
                "ods_threshold": scores["ods_threshold"],
                **out,
            }
        return out


# ----------------------------------------------------------------------------------------------
# One registry: task name -> accumulator factory
# ----------------------------------------------------------------------------------------------

MetricFactory = Callable[..., MetricAccumulator]
METRICS: Registry[MetricFactory] = Registry("task metric")


@METRICS.register("semseg")
def _semseg(info: DatasetInfo, **_: object) -> MetricAccumulator:
    return ClassMetrics("semseg", info.class_names["semseg"])


@METRICS.register("human_parts")
def _human_parts(info: DatasetInfo, **_: object) -> MetricAccumulator:
    return ClassMetrics("human_parts", info.class_names["human_parts"], skip_unlabelled=True)


@METRICS.register("depth")
def _depth(info: DatasetInfo, **_: object) -> MetricAccumulator:
    return DepthMetrics()


@METRICS.register("normals")
def _normals(info: DatasetInfo, **_: object) -> MetricAccumulator:
    return NormalsMetrics()


@METRICS.register("saliency")
def _saliency(info: DatasetInfo, **_: object) -> MetricAccumulator:
    return SaliencyMetrics()


@METRICS.register("edge")
def _edge(
    info: DatasetInfo, edge_benchmark: bool = True, edge_workers: int = 0, **_: object
) -> MetricAccumulator:
    return EdgeMetrics("edge", info.edge_tolerance, edge_benchmark, edge_workers)


def build_metrics(
    tasks: list[str], info: DatasetInfo, edge_benchmark: bool = True, edge_workers: int = 0
) -> dict[str, MetricAccumulator]:
    """One accumulator per task, set up for the dataset ``info``."""
    options = {"edge_benchmark": edge_benchmark, "edge_workers": edge_workers}
    return {task: METRICS.get(task)(info, **options) for task in tasks}


# Labels for tables and documentation: metric key -> (label, higher is better).
METRIC_LABELS: dict[str, tuple[str, bool]] = {
    "miou": ("mIoU %", True),
    "pixel_acc": ("pixel accuracy %", True),
    "rmse": ("RMSE", False),
    "log_rmse": ("log-RMSE", False),
    "abs_rel": ("abs-rel", False),
    "sq_rel": ("sq-rel", False),
    "delta1": ("delta<1.25 %", True),
    "delta2": ("delta<1.25^2 %", True),
    "delta3": ("delta<1.25^3 %", True),
    "mean": ("mean angle deg", False),
    "median": ("median angle deg", False),
    "within_11.25": ("% < 11.25 deg", True),
    "within_22.5": ("% < 22.5 deg", True),
    "within_30": ("% < 30 deg", True),
    "maxf": ("maxF % (InvPT/ATRC: pooled, beta^2=0.3)", True),
    "maxf_threshold": ("maxF threshold (InvPT/ATRC)", True),
    "maxf_mtinet": ("maxF % (MTI-Net: per image, beta=1)", True),
    "odsf": ("odsF %", True),
    "oisf": ("oisF %", True),
    "ap": ("AP %", True),
    "ods_threshold": ("ODS threshold", True),
    "bce_proxy": ("balanced-BCE proxy (not a benchmark score)", False),
}


def metric_label(task: str, key: str) -> str:
    if task == "saliency" and key == "miou":
        return "mIoU % (MTI-Net: per image)"
    if key.startswith("iou/"):
        return f"IoU % {key[4:]}"
    return METRIC_LABELS.get(key, (key, True))[0]
