"""The boundary benchmark of the edge-detection literature, in Python: odsF, oisF and AP.

For each image the edge probability map goes through the steps of the published benchmark
(BSDS500 / Structured Edge toolbox / SEISM, which the multi-task papers run in MATLAB):

1. non-maximum suppression (NMS): smooth the map with a triangle filter of radius 1, estimate the
   edge orientation from a radius-4 smoothed copy, keep only local maxima across the edge
   (radius 1, multiplier 1.01) and damp the 5 pixels next to the image border;
2. for each of :data:`THRESHOLDS`, binarise the suppressed map (``>= t``) and thin it to one pixel
   width (morphological thinning of Guo and Hall, the algorithm of MATLAB's ``bwmorph 'thin'``);
3. match the thinned prediction to the ground-truth edge pixels one to one, a pair allowed when
   the two pixels are at most ``max_dist`` times the image diagonal apart; matched predicted
   pixels are true positives (precision), matched ground-truth pixels are found (recall).

The per-image counts ``(cnt_r, sum_r, cnt_p, sum_p)`` per threshold are summed over the split:
ODS is the best F over one threshold for the whole split (searched on the linearly interpolated
precision/recall curve, as the toolbox does), OIS sums each image's counts at its own best
threshold, AP is the Structured Edge toolbox's: precision interpolated at recall 0, 0.01, ..., 1
over the measured recall range, summed and divided by 100.

Correspondence: the published benchmark computes a minimum-cost assignment (with a high outlier
cost) in C++ (``correspondPixels``, also shipped compiled by the ``pyedgeeval`` package). With that
outlier cost the assignment matches as many pixels as possible, so the counts it yields are those
of a maximum-cardinality bipartite matching between predicted and ground-truth pixels within the
tolerance, which is what this module computes (Hopcroft-Karp, ``scipy.sparse.csgraph``). The
pair graph is built once per image and filtered per threshold; thinning only revisits pixels whose
neighbourhood changed. The compiled ``correspondPixels`` needs seconds per threshold on dense
low-threshold maps (minutes per image), far over the budget of a 654-image split.

This module uses NumPy/SciPy only (no torch), so worker processes start quickly.
"""

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse.csgraph import maximum_bipartite_matching
from scipy.spatial import cKDTree

# 101 thresholds from 0.001 to 0.999 on the edge probability (the list of the HED evaluation).
THRESHOLDS = np.linspace(0.001, 0.999, 101)

NMS_RADIUS = 1  # pixels compared on each side across the edge
NMS_BORDER = 5  # pixels next to the image border whose strength is damped
NMS_MULTIPLIER = 1.01  # a pixel survives when 1.01 * its value >= its neighbours across the edge


# ----------------------------------------------------------------------------------------------
# Non-maximum suppression
# ----------------------------------------------------------------------------------------------


def triangle_smooth(image: np.ndarray, radius: int) -> np.ndarray:
    """Separable triangle filter (the toolbox's ``convTri``), symmetric padding at the border.

    Radius 1 is the ``[1, 2, 1] / 4`` kernel; radius r > 1 is ``[1 .. r+1 .. 1] / (r+1)^2``.
    """
    if radius <= 1:
        kernel = np.array([1.0, 2.0, 1.0]) / 4.0
    else:
        ramp = np.arange(1, radius + 2, dtype=np.float64)
        kernel = np.concatenate([ramp, ramp[-2::-1]]) / (radius + 1) ** 2
    out = ndimage.correlate1d(image, kernel, axis=0, mode="reflect")
    return ndimage.correlate1d(out, kernel, axis=1, mode="reflect")


def edge_orientation(edge: np.ndarray) -> np.ndarray:
    """Orientation in ``[0, pi)`` of the edge through each pixel, from second derivatives."""
    smooth = triangle_smooth(edge, 4)
    grad_y, grad_x = np.gradient(smooth)
    grad_xx = np.gradient(grad_x, axis=1)
    grad_xy, grad_yy = np.gradient(grad_y)
    return np.mod(np.arctan(grad_yy * np.sign(-grad_xy) / (grad_xx + 1e-5)), np.pi)


def suppress_non_maxima(probability: np.ndarray) -> np.ndarray:
    """Thin an edge probability map ``(H, W)`` in ``[0, 1]`` to its ridges (float64 ``(H, W)``)."""
    from pyEdgeEval import nms  # the toolbox's compiled NMS kernel

    edge = triangle_smooth(np.asarray(probability, dtype=np.float64), 1)
    orientation = edge_orientation(edge)
    return np.asarray(nms(edge, orientation, NMS_RADIUS, NMS_BORDER, NMS_MULTIPLIER))


# ----------------------------------------------------------------------------------------------
# Thinning (Guo and Hall 1989, as MATLAB's bwmorph(..., 'thin', Inf))
# ----------------------------------------------------------------------------------------------


def _thinning_tables() -> tuple[np.ndarray, np.ndarray]:
    """Which 8-neighbourhood codes delete the centre pixel, per sub-iteration.

    Bit ``k`` of a code is neighbour ``x_{k+1}``: east first, then counter-clockwise (NE, N, NW,
    W, SW, S, SE).
    """
    first = np.zeros(256, dtype=bool)
    second = np.zeros(256, dtype=bool)
    for code in range(256):
        bits = [(code >> k) & 1 for k in range(8)]

        def x(i: int, bits: list[int] = bits) -> int:
            return bits[(i - 1) % 8]

        crossings = sum(1 for i in (1, 2, 3, 4) if not x(2 * i - 1) and (x(2 * i) or x(2 * i + 1)))
        n1 = sum(1 for k in (1, 2, 3, 4) if x(2 * k - 1) or x(2 * k))
        n2 = sum(1 for k in (1, 2, 3, 4) if x(2 * k) or x(2 * k + 1))
        removable = crossings == 1 and 2 <= min(n1, n2) <= 3
        first[code] = removable and not ((x(2) or x(3) or not x(8)) and x(1))
        second[code] = removable and not ((x(6) or x(7) or not x(4)) and x(5))
    return first, second


_THIN_FIRST, _THIN_SECOND = _thinning_tables()


def thin(mask: np.ndarray) -> np.ndarray:
    """Morphological thinning of a boolean ``(H, W)`` mask until nothing changes.

    Sub-iterations alternate; each examines only pixels whose neighbourhood changed since that
    sub-iteration last ran, so an almost thin map (an NMS output) costs little.
    """
    H, W = mask.shape
    padded = np.zeros((H + 2, W + 2), dtype=bool)
    padded[1:-1, 1:-1] = mask
    flat = padded.ravel()
    row = W + 2
    # x1..x8: E, NE, N, NW, W, SW, S, SE as offsets in the flattened padded image
    offsets = np.array([1, 1 - row, -row, -1 - row, -1, row - 1, row, row + 1])
    dirty = [flat.copy(), flat.copy()]
    tables = (_THIN_FIRST, _THIN_SECOND)

    step, idle = 0, 0
    while idle < 2:
        sub = step % 2
        pixels = np.flatnonzero(dirty[sub] & flat)
        dirty[sub][:] = False
        deleted = pixels[:0]
        if pixels.size:
            codes = np.zeros(pixels.size, dtype=np.uint8)
            for bit, offset in enumerate(offsets):
                codes |= flat[pixels + offset].astype(np.uint8) << bit
            deleted = pixels[tables[sub][codes]]
        if deleted.size:
            flat[deleted] = False
            neighbours = (deleted[:, None] + offsets[None, :]).ravel()
            dirty[0][neighbours] = True
            dirty[1][neighbours] = True
            idle = 0
        else:
            idle += 1
        step += 1
    return padded[1:-1, 1:-1].copy()


# ----------------------------------------------------------------------------------------------
# Correspondence
# ----------------------------------------------------------------------------------------------


def match_radius(shape: tuple[int, int], max_dist: float) -> float:
    """The matching tolerance in pixels: ``max_dist`` times the image diagonal."""
    return float(max_dist) * float(np.hypot(shape[0], shape[1]))


def _pairs(pred_yx: np.ndarray, gt_yx: np.ndarray, radius: float) -> tuple[np.ndarray, ...]:
    """All (gt index, pred index) pairs at most ``radius`` apart, sorted by gt index."""
    if len(pred_yx) == 0 or len(gt_yx) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    lists = cKDTree(gt_yx).query_ball_tree(cKDTree(pred_yx), radius + 1e-9)
    counts = np.fromiter((len(items) for items in lists), dtype=np.int64, count=len(lists))
    gt_index = np.repeat(np.arange(len(gt_yx), dtype=np.int64), counts)
    pred_index = np.fromiter(
        (p for items in lists for p in items), dtype=np.int64, count=int(counts.sum())
    )
    return gt_index, pred_index


def _matching_size(
    gt_index: np.ndarray, pred_index: np.ndarray, alive: np.ndarray, num_gt: int
) -> int:
    """Size of a maximum matching on the pairs whose predicted pixel is alive."""
    keep = alive[pred_index]
    rows = gt_index[keep]
    if rows.size == 0:
        return 0
    cols = pred_index[keep]
    indptr = np.zeros(num_gt + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=num_gt), out=indptr[1:])
    graph = sparse.csr_array(
        (np.ones(rows.size, dtype=np.int8), cols, indptr), shape=(num_gt, alive.size)
    )
    match = maximum_bipartite_matching(graph, perm_type="column")
    return int((match >= 0).sum())


def count_matches(pred: np.ndarray, gt: np.ndarray, max_dist: float) -> tuple[int, int]:
    """``(matched predicted pixels, matched ground-truth pixels)`` of two boolean maps.

    The two numbers are equal (a one-to-one matching); both are returned to mirror the
    benchmark's two counts.
    """
    radius = match_radius(gt.shape, max_dist)
    pred_yx = np.argwhere(pred)
    gt_yx = np.argwhere(gt)
    gt_index, pred_index = _pairs(pred_yx, gt_yx, radius)
    size = _matching_size(gt_index, pred_index, np.ones(len(pred_yx), dtype=bool), len(gt_yx))
    return size, size


# ----------------------------------------------------------------------------------------------
# One image, all thresholds
# ----------------------------------------------------------------------------------------------


def image_counts(
    probability: np.ndarray,
    gt: np.ndarray,
    max_dist: float,
    ignore: np.ndarray | None = None,
    thresholds: np.ndarray = THRESHOLDS,
) -> np.ndarray:
    """The benchmark counts of one image: float64 ``(4, T)`` rows ``cnt_r, sum_r, cnt_p, sum_p``.

    ``probability``: ``(H, W)`` edge probability, uint8 (0-255) or float in ``[0, 1]``;
    ``gt``: boolean ``(H, W)`` ground-truth edge pixels; ``ignore``: optional boolean ``(H, W)``
    pixels left out (no prediction counts there). Recall at a threshold is ``cnt_r / sum_r``,
    precision ``cnt_p / sum_p``.
    """
    prob = np.asarray(probability)
    if prob.dtype == np.uint8:
        prob = prob.astype(np.float64) / 255.0
    gt = np.asarray(gt, dtype=bool)
    if ignore is not None:
        gt = gt & ~ignore

    suppressed = suppress_non_maxima(prob)
    if ignore is not None:
        suppressed[ignore] = 0.0

    # Every predicted pixel at any threshold is a candidate at the lowest one; pairs within the
    # tolerance are found once and filtered per threshold.
    lowest = float(np.min(thresholds))
    cand_yx = np.argwhere(suppressed >= lowest)
    cand_value = suppressed[cand_yx[:, 0], cand_yx[:, 1]]
    gt_yx = np.argwhere(gt)
    gt_index, pred_index = _pairs(cand_yx, gt_yx, match_radius(gt.shape, max_dist))
    cand_id = np.full(gt.shape, -1, dtype=np.int64)
    cand_id[cand_yx[:, 0], cand_yx[:, 1]] = np.arange(len(cand_yx))

    T = len(thresholds)
    counts = np.zeros((4, T), dtype=np.float64)
    counts[1, :] = len(gt_yx)
    previous = None  # (number above threshold, cnt, sum_p) of the last threshold computed
    for k in np.argsort(thresholds):
        above = cand_value >= thresholds[k]
        num_above = int(above.sum())
        if previous is not None and previous[0] == num_above:
            # same binary map as the previous (lower) threshold: same counts
            counts[0, k] = counts[2, k] = previous[1]
            counts[3, k] = previous[2]
            continue
        if num_above == 0:
            matched, num_pred = 0, 0
        else:
            binary = np.zeros(gt.shape, dtype=bool)
            binary[cand_yx[above, 0], cand_yx[above, 1]] = True
            thinned = thin(binary)
            alive = np.zeros(len(cand_yx), dtype=bool)
            alive[cand_id[thinned]] = True
            num_pred = int(thinned.sum())
            matched = _matching_size(gt_index, pred_index, alive, len(gt_yx))
        counts[0, k] = counts[2, k] = matched
        counts[3, k] = num_pred
        previous = (num_above, matched, num_pred)
    return counts


# ----------------------------------------------------------------------------------------------
# Split-level scores
# ----------------------------------------------------------------------------------------------


def _ratio(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return num / np.where(den > 0, den, 1.0)


def _f_measure(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    total = precision + recall
    return 2.0 * precision * recall / np.where(total > 0, total, 1.0)


def precision_recall(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall per threshold from ``(4, T)`` counts (0 where undefined)."""
    return _ratio(counts[2], counts[3]), _ratio(counts[0], counts[1])


def best_on_curve(
    thresholds: np.ndarray, precision: np.ndarray, recall: np.ndarray
) -> tuple[float, float]:
    """``(best F, its threshold)`` on the precision/recall curve, linearly interpolated between
    neighbouring thresholds at 101 points (the toolbox's ODS search)."""
    order = np.argsort(thresholds)
    t, p, r = thresholds[order], precision[order], recall[order]
    f = _f_measure(p, r)
    best = int(np.argmax(f))
    best_f, best_t = float(f[best]), float(t[best])
    if len(t) > 1:
        d = np.linspace(0.0, 1.0, 101)[None, :]
        pi = p[:-1, None] * (1 - d) + p[1:, None] * d
        ri = r[:-1, None] * (1 - d) + r[1:, None] * d
        fi = _f_measure(pi, ri)
        k = np.unravel_index(int(np.argmax(fi)), fi.shape)
        if fi[k] > best_f:
            best_f = float(fi[k])
            best_t = float(t[k[0]] * (1 - d[0, k[1]]) + t[k[0] + 1] * d[0, k[1]])
    return best_f, best_t


def average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """The toolbox's AP: precision interpolated at recall 0, 0.01, ..., 1 within the measured
    recall range, summed, divided by 100. Thresholds with the same recall keep the best
    precision."""
    unique_recall = np.unique(recall)
    if unique_recall.size < 2:
        return 0.0
    best_precision = np.array([precision[recall == value].max() for value in unique_recall])
    grid = np.linspace(0.0, 1.0, 101)
    inside = (grid >= unique_recall[0]) & (grid <= unique_recall[-1])
    return float(np.interp(grid[inside], unique_recall, best_precision).sum() / 100.0)


def best_image_counts(counts: np.ndarray) -> np.ndarray:
    """One image's ``(cnt_r, sum_r, cnt_p, sum_p)`` at its own best-F threshold (for OIS)."""
    precision, recall = precision_recall(counts)
    best = int(np.argmax(_f_measure(precision, recall)))
    return counts[:, best].copy()


def summarize(
    counts: np.ndarray, best_counts: np.ndarray, thresholds: np.ndarray = THRESHOLDS
) -> dict[str, float]:
    """odsF, oisF, AP (fractions in [0, 1]) and the ODS threshold.

    ``counts``: ``(4, T)`` summed over images; ``best_counts``: ``(4,)`` summed per-image best.
    """
    precision, recall = precision_recall(counts)
    ods_f, ods_threshold = best_on_curve(thresholds, precision, recall)
    ois_precision = float(_ratio(best_counts[2], best_counts[3]))
    ois_recall = float(_ratio(best_counts[0], best_counts[1]))
    ois_f = float(_f_measure(np.array(ois_precision), np.array(ois_recall)))
    return {
        "odsf": ods_f,
        "oisf": ois_f,
        "ap": average_precision(precision, recall),
        "ods_threshold": ods_threshold,
    }
