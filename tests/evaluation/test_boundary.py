"""The boundary benchmark's pieces against independent implementations."""

import networkx as nx
import numpy as np
import pytest
from skimage.morphology import thin as skimage_thin

from bridgenet_cli.evaluation import boundary
from bridgenet_cli.evaluation.edge_speed import synthetic_pair

rng = np.random.default_rng(3)


def test_thinning_equals_scikit_image():
    for _ in range(40):
        mask = rng.random(tuple(rng.integers(5, 40, 2))) < rng.uniform(0.1, 0.8)
        np.testing.assert_array_equal(boundary.thin(mask), skimage_thin(mask))


def _networkx_matching(pred, gt, max_dist):
    radius = boundary.match_radius(gt.shape, max_dist)
    p, g = np.argwhere(pred), np.argwhere(gt)
    graph = nx.Graph()
    graph.add_nodes_from(("p", i) for i in range(len(p)))
    graph.add_nodes_from(("g", j) for j in range(len(g)))
    for i, point in enumerate(p):
        for j in np.flatnonzero(((g - point) ** 2).sum(1) <= radius**2):
            graph.add_edge(("p", i), ("g", j))
    matching = nx.bipartite.hopcroft_karp_matching(
        graph, top_nodes=[("p", i) for i in range(len(p))]
    )
    return len(matching) // 2


def test_matching_is_maximum():
    for _ in range(60):
        shape = tuple(rng.integers(5, 25, 2))
        pred = rng.random(shape) < rng.uniform(0.05, 0.5)
        gt = rng.random(shape) < rng.uniform(0.05, 0.5)
        max_dist = rng.uniform(0.01, 0.15)
        assert boundary.count_matches(pred, gt, max_dist) == _networkx_matching(pred, gt, max_dist)


def test_incremental_matching_follows_changing_sets():
    for _ in range(40):
        shape = tuple(rng.integers(10, 30, 2))
        gt = rng.random(shape) < 0.2
        cand = np.argwhere(rng.random(shape) < 0.4)
        max_dist = rng.uniform(0.03, 0.12)
        pairs = boundary._pair_graph(cand, gt, boundary.match_radius(shape, max_dist))
        matching = boundary._IncrementalMatching(pairs[2], len(cand), pairs[0], pairs[1])
        alive = rng.random(len(cand)) < 0.2
        for _ in range(8):
            alive ^= rng.random(len(cand)) < rng.uniform(0.02, 0.4)
            pred = np.zeros(shape, bool)
            pred[cand[alive, 0], cand[alive, 1]] = True
            assert matching.update(alive) == boundary.count_matches(pred, gt, max_dist)


def test_image_counts_follow_the_definition_per_threshold():
    prediction, gt = synthetic_pair(1, 96, 128)
    counts = boundary.image_counts(prediction, gt, 0.011)
    suppressed = boundary.suppress_non_maxima(prediction / 255.0)
    for k in (0, 20, 40, 60, 80):
        binary = boundary.thin(suppressed >= boundary.THRESHOLDS[k])
        assert counts[3, k] == binary.sum()
        assert counts[1, k] == gt.sum()
        assert counts[0, k] == counts[2, k] == boundary.count_matches(binary, gt, 0.011)


def test_counts_agree_with_the_benchmarks_own_correspondence():
    """``pyedgeeval`` ships the BSDS C++ correspondPixels (a min-cost assignment with outlier
    cost, itself an approximation): a maximum matching matches at least as many pixels, and
    about as many."""
    correspond_pixels = pytest.importorskip("pyEdgeEval").correspond_pixels
    prediction, gt = synthetic_pair(2, 96, 128)
    suppressed = boundary.suppress_non_maxima(prediction / 255.0)
    for t in (0.2, 0.4, 0.6):
        binary = boundary.thin(suppressed >= t)
        match_pred, match_gt, _, _ = correspond_pixels(binary, gt, max_dist=0.011)
        theirs = int((match_gt > 0).sum())
        ours = boundary.count_matches(binary, gt, 0.011)
        assert int((match_pred > 0).sum()) == theirs
        assert theirs <= ours <= theirs * 1.01 + 1


def test_summary_of_known_counts():
    # Two thresholds: recall 1 / precision 0.5, then recall 0.5 / precision 1.
    counts = np.array([[10, 5], [10, 10], [10, 5], [20, 5]], dtype=float)
    scores = boundary.summarize(counts, counts[:, 0], np.array([0.3, 0.7]))
    # interpolating between the two points, F peaks at the midpoint: P = R = 0.75
    assert scores["odsf"] == pytest.approx(0.75)
    assert scores["ods_threshold"] == pytest.approx(0.5)
    assert scores["oisf"] == pytest.approx(2 / 3)
    # AP: precision 0.5 + (1 - 0.5) * (1 - r) / 0.5 for r in [0.5, 1], sampled every 0.01
    grid = np.linspace(0.5, 1.0, 51)
    assert scores["ap"] == pytest.approx(np.sum(1.0 - (grid - 0.5)) / 100)


def test_empty_prediction_and_empty_ground_truth():
    empty = np.zeros((40, 40), np.uint8)
    gt = np.zeros((40, 40), bool)
    gt[20, 5:35] = True
    counts = boundary.image_counts(empty, gt, 0.011)
    assert counts[0].sum() == 0 and counts[3].sum() == 0 and (counts[1] == 30).all()
    counts = boundary.image_counts(gt.astype(np.uint8) * 255, np.zeros_like(gt), 0.011)
    assert counts[0].sum() == 0 and counts[3].max() > 0
