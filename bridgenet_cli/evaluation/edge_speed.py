"""Speed of the edge benchmark: ``python -m bridgenet_cli.evaluation.edge_speed``.

Generates synthetic edge maps of NYUD-v2's validation size (654 images of 480x640 by default)
and times the boundary benchmark on them with the evaluator's worker processes, as
``bridgenet eval`` runs it. The scenes are random objects whose boundaries are the ground truth;
the "prediction" imitates a network's: a blurred, slightly displaced copy of the boundaries with
strength varying along them, missed segments, texture clutter and low background noise.

Prints the wall time of the benchmark alone (generation excluded), the CPU seconds its workers
used, and the scores.
"""

import argparse
import resource
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from scipy import ndimage

from bridgenet_cli.evaluation import boundary


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return noise / (noise.std() + 1e-12)


def _boundaries(labels: np.ndarray) -> np.ndarray:
    edges = np.zeros(labels.shape, dtype=bool)
    edges[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edges[1:, :] |= labels[1:, :] != labels[:-1, :]
    return boundary.thin(edges)


def synthetic_pair(seed: int, height: int = 480, width: int = 640) -> tuple[np.ndarray, np.ndarray]:
    """``(prediction uint8 (H, W), ground-truth edges bool (H, W))`` for one random scene."""
    rng = np.random.default_rng(seed)
    H, W = height, width
    yy, xx = np.mgrid[:H, :W]

    # Scene: overlapping rectangles and ellipses, warped by a smooth displacement field.
    labels = np.zeros((H, W), dtype=np.int32)
    for k in range(1, 26):
        y, x = rng.integers(0, H), rng.integers(0, W)
        h, w = rng.integers(20, 200, 2)
        if rng.random() < 0.5:
            labels[max(0, y - h // 2) : y + h // 2, max(0, x - w // 2) : x + w // 2] = k
        else:
            labels[(yy - y) ** 2 / h**2 + (xx - x) ** 2 / w**2 < 0.25] = k
    warp_y, warp_x = (_smooth_noise(rng, (H, W), 20) * 8 for _ in range(2))
    labels = ndimage.map_coordinates(labels, [yy + warp_y, xx + warp_x], order=0, mode="nearest")
    gt = _boundaries(labels)

    # Prediction: displaced, blurred boundaries of varying strength, gaps, clutter, background.
    shift_y, shift_x = (_smooth_noise(rng, (H, W), 30) * 1.5 for _ in range(2))
    moved = ndimage.map_coordinates(gt.astype(float), [yy + shift_y, xx + shift_x], order=1) > 0.3
    distance = ndimage.distance_transform_edt(~moved)
    strength = 1.0 / (1.0 + np.exp(-2.0 * _smooth_noise(rng, (H, W), 15) - 1.0))
    strength[_smooth_noise(rng, (H, W), 25) > 1.2] *= 0.1
    edge = np.exp(-(distance**2) / (2 * 1.8**2)) * strength
    texture = np.kron(rng.integers(0, 4, (H // 12 + 1, W // 12 + 1)), np.ones((12, 12), int))
    clutter_mask = _boundaries(texture[:H, :W]) & (_smooth_noise(rng, (H, W), 40) > 0.6)
    clutter = ndimage.gaussian_filter(clutter_mask.astype(float), 1.5) * rng.uniform(0.3, 1.0)
    background = np.abs(_smooth_noise(rng, (H, W), 3)) * 0.01
    probability = np.clip(np.maximum(edge, clutter) + background, 0.0, 1.0)
    return np.round(probability * 255).astype(np.uint8), gt


def _pair(args: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    return synthetic_pair(*args)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=654)
    parser.add_argument("--size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"))
    parser.add_argument("--workers", type=int, default=0, help="0: all cores")
    parser.add_argument("--max-dist", type=float, default=0.011, help="0.011 NYUD, 0.0075 PASCAL")
    args = parser.parse_args(argv)

    from bridgenet_cli.evaluation.metrics import EdgeMetrics, default_workers

    workers = args.workers or default_workers()
    start = time.perf_counter()
    jobs = [(seed, *args.size) for seed in range(args.images)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pairs = list(pool.map(_pair, jobs, chunksize=8))
    generated = time.perf_counter() - start
    gt_density = np.mean([gt.mean() for _, gt in pairs])
    print(f"generated {args.images} scenes of {args.size[0]}x{args.size[1]} in {generated:.1f} s "
          f"(ground-truth edge pixels: {100 * gt_density:.2f}%)")  # fmt: skip

    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    metrics = EdgeMetrics("edge", max_dist=args.max_dist, benchmark=True, workers=workers)
    for prediction, gt in pairs:
        metrics.update(prediction, gt.astype(np.uint8))
    scores = metrics.compute()
    metrics.close()
    wall = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    print(f"edge benchmark: {args.images} images, {workers} worker processes: {wall:.1f} s wall, "
          f"{cpu:.1f} CPU s in the workers ({cpu / args.images:.2f} s per image)")  # fmt: skip
    print("scores: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if v is not None))


if __name__ == "__main__":
    main()
