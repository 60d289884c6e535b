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

Correspondence: the published benchmark computes a minimum-cost assignment with a high outlier
cost (the C++ ``correspondPixels``, which ``pyedgeeval`` ships compiled). With that cost the
assignment matches as many pixels as it can, so its counts are, up to the approximations of its
solver, those of a maximum-cardinality one-to-one matching within the tolerance; this module
computes that maximum exactly (tests compare it with networkx; on natural maps it matches up to
1% more pixels than ``correspondPixels`` at a threshold). ``correspondPixels`` itself takes
seconds per threshold on the dense low-threshold maps (minutes per image), and SciPy's
Hopcroft-Karp takes exponential time on these layered graphs (scipy issue 26147), so the matching
is our own: the thresholds are swept from high to low, the binary map only grows, and both the
thinning and the matching are updated from the previous threshold instead of recomputed
(:class:`_GrowingThinner`, :class:`_IncrementalMatching`). NMS uses the ``pyedgeeval`` build of
the toolbox's C++ kernel.

This module uses NumPy/SciPy only (no torch), so worker processes start quickly.
"""

import numpy as np
from scipy import ndimage

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


_THIN_TABLES = _thinning_tables()


def _neighbour_offsets(row: int) -> np.ndarray:
    """x1..x8 (E, NE, N, NW, W, SW, S, SE) as offsets in a flattened image ``row`` pixels wide."""
    return np.array([1, 1 - row, -row, -1 - row, -1, row - 1, row, row + 1])


def _thin_flat(flat: np.ndarray, offsets: np.ndarray, first: np.ndarray, second: np.ndarray) -> int:
    """Thin the flattened, zero-bordered mask ``flat`` in place; returns the pixels deleted.

    ``first`` and ``second`` (flat indices, repeats allowed) are the pixels each sub-iteration
    must examine on its first run: every pixel that sub-iteration could delete. Later runs examine
    only the neighbours of pixels deleted since.
    """
    pending = [first, second]
    removed, step, idle = 0, 0, 0
    while idle < 2:
        sub = step % 2
        pixels = pending[sub]
        pending[sub] = pixels[:0]
        pixels = pixels[flat[pixels]]
        deleted = pixels[:0]
        if pixels.size:
            codes = np.zeros(pixels.size, dtype=np.uint8)
            for bit, offset in enumerate(offsets):
                codes |= flat[pixels + offset].astype(np.uint8) << bit
            deleted = pixels[_THIN_TABLES[sub][codes]]
        if deleted.size:
            deleted = np.unique(deleted)
            flat[deleted] = False
            neighbours = (deleted[:, None] + offsets[None, :]).ravel()
            pending = [
                np.concatenate([pending[0], neighbours]),
                np.concatenate([pending[1], neighbours]),
            ]
            removed += int(deleted.size)
            idle = 0
        else:
            idle += 1
        step += 1
    return removed


def thin(mask: np.ndarray) -> np.ndarray:
    """Morphological thinning of a boolean ``(H, W)`` mask until nothing changes."""
    H, W = mask.shape
    padded = np.zeros((H + 2, W + 2), dtype=bool)
    padded[1:-1, 1:-1] = mask
    flat = padded.ravel()
    pixels = np.flatnonzero(flat)
    _thin_flat(flat, _neighbour_offsets(W + 2), pixels, pixels)
    return padded[1:-1, 1:-1].copy()


class _GrowingThinner:
    """Thinning of a binary map that only grows (a threshold swept downwards).

    The 8-neighbourhood code of every pixel is kept up to date as pixels are added, so each
    thinning starts from the pixels that are deletable instead of scanning the whole map.
    Pixels are indices into the flattened image padded by one on each side.
    """

    def __init__(self, height: int, width: int):
        self.offsets = _neighbour_offsets(width + 2)
        size = (height + 2) * (width + 2)
        self.fg = np.zeros(size, dtype=bool)
        self.code = np.zeros(size, dtype=np.uint8)
        self.deletable = [np.zeros(size, dtype=bool), np.zeros(size, dtype=bool)]
        self.count = 0

    def add(self, pixels: np.ndarray) -> None:
        self.fg[pixels] = True
        self.count += int(pixels.size)
        for bit, offset in enumerate(self.offsets):
            self.code[pixels - offset] |= np.uint8(1 << bit)
        touched = np.concatenate([pixels, (pixels[:, None] - self.offsets).ravel()])  # repeats
        codes = self.code[touched]
        for sub in (0, 1):
            self.deletable[sub][touched] = self.fg[touched] & _THIN_TABLES[sub][codes]

    def thinned(self) -> tuple[np.ndarray, int]:
        """``(thinned flat mask, its number of pixels)``; the current map is left unchanged."""
        work = self.fg.copy()
        first, second = (np.flatnonzero(flags) for flags in self.deletable)
        removed = _thin_flat(work, self.offsets, first, second)
        return work, self.count - removed


# ----------------------------------------------------------------------------------------------
# Correspondence: maximum one-to-one matching within the tolerance
# ----------------------------------------------------------------------------------------------


def match_radius(shape: tuple[int, int], max_dist: float) -> float:
    """The matching tolerance in pixels: ``max_dist`` times the image diagonal."""
    return float(max_dist) * float(np.hypot(shape[0], shape[1]))


def _disk_offsets(radius: float) -> np.ndarray:
    """Integer ``(dy, dx)`` with ``dy^2 + dx^2 <= radius^2`` (the benchmark's inclusive test)."""
    reach = int(np.floor(radius))
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    inside = dy**2 + dx**2 <= radius**2 + 1e-9
    return np.stack([dy[inside], dx[inside]], axis=1)


def _csr(rows: np.ndarray, cols: np.ndarray, num_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, indices)`` of the pairs ``(rows, cols)`` grouped by row."""
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(num_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=num_rows), out=indptr[1:])
    return indptr, cols[order]


def _expand(frontier: np.ndarray, indptr: np.ndarray, indices: np.ndarray):
    """All edges ``(owner, neighbour)`` leaving the vertices of ``frontier``."""
    starts = indptr[frontier]
    lengths = indptr[frontier + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        empty = frontier[:0]
        return empty, empty
    owner = np.repeat(frontier, lengths)
    within = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return owner, indices[np.repeat(starts, lengths) + within]


def _expand_positions(frontier: np.ndarray, indptr: np.ndarray, indices: np.ndarray):
    """Like :func:`_expand`, with owners given as positions in ``frontier``."""
    starts = indptr[frontier]
    lengths = indptr[frontier + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        empty = frontier[:0]
        return empty, empty
    position = np.repeat(np.arange(frontier.size), lengths)
    within = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return position, indices[np.repeat(starts, lengths) + within]


class _IncrementalMatching:
    """A maximum matching between ground-truth pixels and the currently *alive* candidate pixels.

    The pair graph (pairs within the tolerance) is fixed; candidates appear and disappear as the
    threshold moves. The previous matching is kept and grown by phases in the manner of
    Hopcroft-Karp: alternating breadth-first trees grow from free vertices of one side, and every
    tree that reaches a free vertex of the other side gives an augmenting path; the trees are
    disjoint, so all their paths are flipped at once. Everything is vectorised with NumPy.

    Why searching from few vertices is enough. Call *changed* the candidates just added and the
    ground-truth pixels whose partner was just removed. (1) Since the matching was maximum before
    the update, every augmenting path right after it has a changed end. (2) A free vertex from
    which no augmenting path exists never gains one through later augmentations. (3) If paths
    ``P_1..P_k`` were flipped and an augmenting path ``Q`` with two unchanged ends remained, the
    matchings before and after would differ by ``k + 1`` disjoint augmenting paths, each with a
    changed end by (1), all ending at ends of the ``P_i``; so the ``P_i`` hold more than ``k``
    changed ends. Hence the phases search from the changed vertices (or from all free vertices of
    one side when those are fewer); once the changed ones are matched or proven hopeless, the
    matching is maximum unless the flipped paths had more changed ends than paths, in which case
    searches from all free vertices of one side continue until one finds nothing.
    """

    def __init__(
        self, num_gt: int, num_cand: int, gt_of_pair: np.ndarray, cand_of_pair: np.ndarray
    ):
        self.num_gt, self.num_cand = num_gt, num_cand
        self.gt_ptr, self.gt_adj = _csr(gt_of_pair, cand_of_pair, num_gt)
        self.cand_ptr, self.cand_adj = _csr(cand_of_pair, gt_of_pair, num_cand)
        self.cand_degree = np.diff(self.cand_ptr)
        self.mate_gt = np.full(num_gt, -1, dtype=np.int64)
        self.mate_cand = np.full(num_cand, -1, dtype=np.int64)
        self.alive = np.zeros(num_cand, dtype=bool)
        self.alive_degree = np.zeros(num_gt, dtype=np.int64)  # alive candidates near each gt
        self.changed_gt = np.zeros(num_gt, dtype=bool)
        self.changed_cand = np.zeros(num_cand, dtype=bool)
        self.scratch_gt = np.zeros(num_gt, dtype=np.int64)
        self.scratch_cand = np.zeros(num_cand, dtype=np.int64)
        self.parent_gt = np.zeros(num_gt, dtype=np.int64)
        self.parent_cand = np.zeros(num_cand, dtype=np.int64)
        self.stamp_gt = np.zeros(num_gt, dtype=np.int64)
        self.stamp_cand = np.zeros(num_cand, dtype=np.int64)
        self.phase = 0
        self.size = 0
        self.surplus = 0  # changed ends of the flipped paths, minus the number of paths

    def update(self, alive: np.ndarray) -> int:
        """Make ``alive`` (boolean per candidate) the candidate set; returns the matching size."""
        born = np.flatnonzero(alive & ~self.alive)
        died = np.flatnonzero(self.alive & ~alive)
        freed = died[:0]
        if born.size:
            _, near = _expand(born, self.cand_ptr, self.cand_adj)
            self.alive_degree += np.bincount(near, minlength=self.num_gt)
        if died.size:
            _, near = _expand(died, self.cand_ptr, self.cand_adj)
            self.alive_degree -= np.bincount(near, minlength=self.num_gt)
            partners = self.mate_cand[died]
            freed = partners[partners >= 0]
            self.mate_gt[freed] = -1
            self.mate_cand[died] = -1
            self.size -= int(freed.size)
        self.alive = alive.copy()
        self.changed_gt[freed] = True
        self.changed_cand[born] = True
        self.surplus = 0

        hopeful_gt = freed[self.alive_degree[freed] > 0]
        hopeful_cand = born[self.cand_degree[born] > 0]
        # Matched vertices always have a neighbour, so the free ones that could be matched
        # number these totals minus the matching size.
        reachable_gt = int(np.count_nonzero(self.alive_degree))
        usable_cand = int(np.count_nonzero(self.alive & (self.cand_degree > 0)))
        while True:
            free_gt, free_cand = reachable_gt - self.size, usable_cand - self.size
            if free_gt == 0 or free_cand == 0:
                break
            hopeful_gt = hopeful_gt[self.mate_gt[hopeful_gt] < 0]
            hopeful_cand = hopeful_cand[self.mate_cand[hopeful_cand] < 0]
            hopeful = hopeful_gt.size + hopeful_cand.size
            if hopeful == 0 and self.surplus <= 0:
                break
            if hopeful == 0 or min(free_gt, free_cand) <= hopeful:
                # a search from all free vertices of one side: finding nothing proves maximality
                if free_gt <= free_cand:
                    sources = np.flatnonzero((self.mate_gt < 0) & (self.alive_degree > 0))
                    found = self._phase_from_gt(sources)
                else:
                    usable = self.alive & (self.mate_cand < 0) & (self.cand_degree > 0)
                    found = self._phase_from_cand(np.flatnonzero(usable))
                if not found:
                    break
            elif hopeful_gt.size:
                if not self._phase_from_gt(hopeful_gt):
                    hopeful_gt = hopeful_gt[:0]  # none of them can be augmented any more
            elif not self._phase_from_cand(hopeful_cand):
                hopeful_cand = hopeful_cand[:0]

        self.changed_gt[freed] = False
        self.changed_cand[born] = False
        return self.size

    def _phase_from_gt(self, sources: np.ndarray) -> bool:
        return self._augment(
            sources, self.gt_ptr, self.gt_adj, self.mate_gt, self.mate_cand, self.alive,
            self.scratch_cand, self.changed_gt, self.changed_cand,
        )  # fmt: skip

    def _phase_from_cand(self, sources: np.ndarray) -> bool:
        return self._augment(
            sources, self.cand_ptr, self.cand_adj, self.mate_cand, self.mate_gt, None,
            self.scratch_gt, self.changed_cand, self.changed_gt,
        )  # fmt: skip

    # TODO(edge-speed): each phase regrows the trees of sources that cannot be augmented until
    # another tree succeeds; keeping the forest between phases (grafting freed vertices onto live
    # trees, as MS-BFS-Graft does) would save most of the matching time, about 60% of the total.
    def _augment(
        self, sources, indptr, adjacency, mate_a, mate_b, allowed_b, scratch, changed_a, changed_b
    ) -> bool:
        """One phase from the free vertices ``sources`` of side A.

        An alternating breadth-first tree grows from each source, all in step; a vertex belongs
        to the first tree that reaches it. The phase stops after the first layer in which some
        tree reaches a free vertex of side B; each such tree gives one augmenting path. False
        when the trees stopped growing without reaching any free vertex.
        """
        # parent_b is kept between phases; stamp_b tells which entries this phase wrote.
        parent_b, stamp_b = (
            (self.parent_cand, self.stamp_cand) if mate_b is self.mate_cand
            else (self.parent_gt, self.stamp_gt)
        )  # fmt: skip
        self.phase += 1
        finished = np.zeros(sources.size, dtype=bool)
        end_of_tree = np.full(sources.size, -1, dtype=np.int64)
        frontier = sources
        frontier_tree = np.arange(sources.size)
        while frontier.size:
            position, reached = _expand_positions(frontier, indptr, adjacency)
            keep = stamp_b[reached] != self.phase
            if allowed_b is not None:
                keep &= allowed_b[reached]
            position, reached = position[keep], reached[keep]
            first = _one_per_value(reached, scratch)
            position, reached = position[first], reached[first]
            parent_b[reached] = frontier[position]
            stamp_b[reached] = self.phase
            tree = frontier_tree[position]
            mates = mate_b[reached]
            free = mates < 0
            if free.any():
                end_of_tree[tree[free]] = reached[free]  # one of each tree's free vertices
                finished[tree[free]] = True
                break
            frontier, frontier_tree = mates, tree

        b = end_of_tree[finished]
        if b.size == 0:
            return False
        self.surplus += int(changed_a[sources[finished]].sum() + changed_b[b].sum()) - b.size
        pairs_a, pairs_b = [], []
        while b.size:
            a = parent_b[b]
            pairs_a.append(a)
            pairs_b.append(b)
            b = mate_a[a]
            b = b[b >= 0]
        a = np.concatenate(pairs_a)
        b = np.concatenate(pairs_b)
        mate_a[a] = b
        mate_b[b] = a
        self.size += int(finished.sum())
        return True


def _one_per_value(values: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Positions keeping one occurrence of each distinct value (no sorting).

    ``scratch`` is any int64 array longer than the largest value; its content is overwritten.
    """
    positions = np.arange(values.size)
    scratch[values] = positions  # repeated values: one of the writes remains
    return np.flatnonzero(scratch[values] == positions)


def _pair_graph(cand_yx: np.ndarray, gt: np.ndarray, radius: float):
    """Pairs ``(gt index, candidate index)`` at most ``radius`` apart, and the gt count."""
    H, W = gt.shape
    reach = int(np.floor(radius))
    row = W + 2 * reach
    cand_id = np.full((H + 2 * reach) * row, -1, dtype=np.int64)
    cand_id[(cand_yx[:, 0] + reach) * row + cand_yx[:, 1] + reach] = np.arange(len(cand_yx))
    gt_yx = np.argwhere(gt)
    gt_flat = (gt_yx[:, 0] + reach) * row + gt_yx[:, 1] + reach
    gt_index = np.arange(len(gt_yx))
    gt_parts, cand_parts = [], []
    for dy, dx in _disk_offsets(radius):
        found = cand_id[gt_flat + dy * row + dx]
        hit = found >= 0
        gt_parts.append(gt_index[hit])
        cand_parts.append(found[hit])
    if not gt_parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, len(gt_yx)
    return np.concatenate(gt_parts), np.concatenate(cand_parts), len(gt_yx)


def count_matches(pred: np.ndarray, gt: np.ndarray, max_dist: float) -> int:
    """Size of a maximum one-to-one matching between the pixels of two boolean ``(H, W)`` maps,
    pairs allowed up to ``max_dist`` times the image diagonal apart."""
    cand_yx = np.argwhere(pred)
    gt_of_pair, cand_of_pair, num_gt = _pair_graph(
        cand_yx, np.asarray(gt, bool), match_radius(gt.shape, max_dist)
    )
    matching = _IncrementalMatching(num_gt, len(cand_yx), gt_of_pair, cand_of_pair)
    return matching.update(np.ones(len(cand_yx), dtype=bool))


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
    pixels left out (neither ground truth nor predictions count there). Recall at threshold
    ``k`` is ``cnt_r / sum_r``, precision ``cnt_p / sum_p``.
    """
    prob = np.asarray(probability)
    if prob.dtype == np.uint8:
        prob = prob.astype(np.float64) / 255.0
    gt = np.asarray(gt, dtype=bool)
    if ignore is not None:
        gt = gt & ~ignore
    H, W = gt.shape

    suppressed = suppress_non_maxima(prob)
    if ignore is not None:
        suppressed[ignore] = 0.0

    # Every pixel predicted at some threshold is a candidate at the lowest one.
    thresholds = np.asarray(thresholds, dtype=np.float64)
    cand_yx = np.argwhere(suppressed >= thresholds.min())
    cand_value = suppressed[cand_yx[:, 0], cand_yx[:, 1]]
    cand_flat = (cand_yx[:, 0] + 1) * (W + 2) + cand_yx[:, 1] + 1  # in the thinner's padding
    gt_of_pair, cand_of_pair, num_gt = _pair_graph(cand_yx, gt, match_radius(gt.shape, max_dist))
    matching = _IncrementalMatching(num_gt, len(cand_yx), gt_of_pair, cand_of_pair)
    thinner = _GrowingThinner(H, W)

    # Sweep the thresholds downwards: the binary map only grows, the matching is kept.
    counts = np.zeros((4, thresholds.size), dtype=np.float64)
    counts[1, :] = num_gt
    by_value = np.argsort(-cand_value, kind="stable")
    descending = -cand_value[by_value]  # ascending negated values, for searchsorted
    added = 0
    matched, num_pred = 0, 0
    for k in np.argsort(-thresholds, kind="stable"):
        end = int(np.searchsorted(descending, -thresholds[k], side="right"))
        if end > added:
            thinner.add(cand_flat[by_value[added:end]])
            added = end
            thinned, num_pred = thinner.thinned()
            matched = matching.update(thinned[cand_flat])
        counts[0, k] = counts[2, k] = matched
        counts[3, k] = num_pred
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
