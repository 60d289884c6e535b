"""Turn task maps into RGB pictures: class palettes, depth colour maps, normals and grey maps.

Every function takes a map in the target conventions of :mod:`bridgenet_cli.tasks` (without the
batch axis) and returns an ``(H, W, 3)`` uint8 RGB array. Which rendering a task gets is its
``TASKS[task].colormap``; class palettes are deterministic (the PASCAL VOC bit-interleaved palette).
"""

import numpy as np
from matplotlib import colormaps

from bridgenet_cli.data.info import DATASETS
from bridgenet_cli.tasks import IGNORE_INDEX, TASKS, voc_palette

# Colour of pixels without a label (255) in class maps and binary maps: VOC's "void" colour.
IGNORE_COLOUR = (224, 224, 192)
# Colour of invalid depth (0) and normals (zero vector).
INVALID_COLOUR = (0, 0, 0)
# A perceptually uniform colour map for depth; near is dark, far is bright.
DEPTH_COLORMAP = "magma"


def class_names(dataset: str, task: str) -> tuple[str, ...]:
    """Class names of a class-valued task on a dataset, in id order."""
    return DATASETS.get(dataset).class_names[task]


def class_palette(dataset: str, task: str) -> np.ndarray:
    """``(K, 3)`` uint8 colours for the K classes of ``task`` on ``dataset``; always the same."""
    return voc_palette(len(class_names(dataset, task)))


def classes_present(*label_maps: np.ndarray, num_classes: int) -> list[int]:
    """Sorted class ids that occur in any of the maps (ignore and out-of-range ids left out)."""
    present: set[int] = set()
    for labels in label_maps:
        ids = np.unique(np.asarray(labels))
        present.update(int(i) for i in ids if 0 <= i < num_classes)
    return sorted(present)


def colorize_classes(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """``(H, W)`` class ids -> RGB; id 255 gets :data:`IGNORE_COLOUR`."""
    labels = np.asarray(labels).astype(np.int64)
    ignore = labels == IGNORE_INDEX
    known = (labels >= 0) & (labels < len(palette))
    if not np.all(known | ignore):
        bad = int(labels[~(known | ignore)][0])
        raise ValueError(f"class id {bad} outside the palette of {len(palette)} classes")

    rgb = palette[np.where(known, labels, 0)]  # (H, W) -> (H, W, 3)
    rgb[ignore] = IGNORE_COLOUR
    return rgb.astype(np.uint8)


def depth_range(*depth_maps: np.ndarray, percentiles: tuple[float, float] = (1, 99)) -> tuple:
    """A shared ``(low, high)`` colour scale over the valid (finite, > 0) pixels of all maps.

    Percentiles keep a few extreme pixels from washing out the picture; without valid pixels the
    range is ``(0, 1)``.
    """
    values = [np.asarray(d, dtype=np.float64).ravel() for d in depth_maps]
    pooled = np.concatenate(values) if values else np.zeros(0)
    pooled = pooled[np.isfinite(pooled) & (pooled > 0)]
    if pooled.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(pooled, percentiles)
    if high <= low:
        high = low + max(abs(low) * 1e-3, 1e-6)
    return float(low), float(high)


def colorize_depth(depth: np.ndarray, low: float, high: float) -> np.ndarray:
    """``(H, W)`` or ``(1, H, W)`` depth -> RGB in :data:`DEPTH_COLORMAP` on ``[low, high]``.

    Invalid pixels (not finite or <= 0) get :data:`INVALID_COLOUR`.
    """
    depth = _squeeze_channel(depth).astype(np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    scaled = np.clip((np.where(valid, depth, low) - low) / (high - low), 0.0, 1.0)

    rgb = colormaps[DEPTH_COLORMAP](scaled, bytes=True)[..., :3]  # (H, W) -> (H, W, 3)
    rgb[~valid] = INVALID_COLOUR
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def colorize_normals(normals: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` unit normals -> RGB with each component mapped from [-1, 1] to [0, 255].

    Zero vectors (no label) get :data:`INVALID_COLOUR`.
    """
    normals = np.asarray(normals, dtype=np.float64)
    if normals.ndim != 3 or normals.shape[0] != 3:
        raise ValueError(f"normals must have shape (3, H, W), got {normals.shape}")
    valid = np.any(normals != 0, axis=0)

    rgb = np.clip((normals + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    rgb = rgb.transpose(1, 2, 0).copy()  # (3, H, W) -> (H, W, 3)
    rgb[~valid] = INVALID_COLOUR
    return rgb


def colorize_gray(values: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(1, H, W)`` values in [0, 1] -> grey RGB; 255 gets :data:`IGNORE_COLOUR`."""
    values = _squeeze_channel(values).astype(np.float64)
    ignore = values == IGNORE_INDEX
    grey = (np.clip(np.where(ignore, 0.0, values), 0.0, 1.0) * 255).round().astype(np.uint8)

    rgb = np.repeat(grey[..., None], 3, axis=2)  # (H, W) -> (H, W, 3)
    rgb[ignore] = IGNORE_COLOUR
    return rgb


def colorize(
    task: str, values: np.ndarray, dataset: str, scale: tuple[float, float] | None = None
) -> np.ndarray:
    """Render one task map the way ``TASKS[task].colormap`` says.

    ``scale`` is the depth colour range (see :func:`depth_range`); it is computed from ``values``
    alone when not given, so pass a shared one to compare maps.
    """
    style = TASKS.get(task).colormap
    if style == "palette":
        return colorize_classes(_squeeze_channel(values), class_palette(dataset, task))
    if style == "depth":
        low, high = scale if scale is not None else depth_range(values)
        return colorize_depth(values, low, high)
    if style == "normals":
        return colorize_normals(values)
    if style == "gray":
        return colorize_gray(values)
    raise ValueError(f"task {task!r} has an unknown colour map {style!r}")


def _squeeze_channel(values: np.ndarray) -> np.ndarray:
    """``(1, H, W)`` -> ``(H, W)``; ``(H, W)`` unchanged."""
    values = np.asarray(values)
    if values.ndim == 3 and values.shape[0] == 1:
        return values[0]
    if values.ndim != 2:
        raise ValueError(f"expected a (H, W) or (1, H, W) map, got shape {values.shape}")
    return values
