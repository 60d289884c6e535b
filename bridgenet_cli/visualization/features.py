"""Feature maps and attention as pictures (in the spirit of the paper's Figures 3, 9 and 10).

A feature map ``(C, h, w)`` becomes a picture by one of two reductions:

- ``pca``: the first three principal components over pixels, as RGB (similar features get similar
  colours, so regions the network groups together show as patches of one colour);
- ``mean``: the mean absolute activation over channels, as a heat map (where the feature "fires").

TPP attention ``(heads, Nq, Nk)`` over a token grid is shown, for a few query points, as the
weights of the query's token over all key tokens, overlaid on the image.
"""

import math
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image

from bridgenet_cli.tasks import TASKS
from bridgenet_cli.visualization.render import DPI, PANEL_INCHES, save_figure

REDUCTIONS = ("pca", "mean")
HEAT_COLORMAP = "viridis"  # mean-activation maps
ATTENTION_COLORMAP = "inferno"  # attention overlays
DEFAULT_POINTS = ((0.5, 0.5), (0.25, 0.75), (0.75, 0.3))  # (x, y) as fractions of width, height


def _stretch(values: np.ndarray, percentiles: tuple[float, float] = (1, 99)) -> np.ndarray:
    """Map values to [0, 1] between two percentiles (a constant map becomes all zeros)."""
    low, high = np.percentile(values, percentiles)
    if high <= low:
        return np.zeros_like(values, dtype=np.float64)
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def reduce_pca(feature: np.ndarray) -> np.ndarray:
    """``(C, h, w)`` -> ``(h, w, 3)`` uint8: the first three principal components as RGB.

    Components are computed over the map's pixels, each component's sign is fixed so that its
    largest projection is positive (the same input always gives the same picture), and each is
    stretched to [0, 255] between its 1st and 99th percentile.
    """
    C, h, w = feature.shape
    pixels = feature.reshape(C, h * w).T.astype(np.float64)  # (C, h, w) -> (h*w, C)
    pixels = pixels - pixels.mean(axis=0, keepdims=True)

    # Principal axes from the smaller of the two Gram matrices.
    if pixels.shape[0] >= C:
        eigenvalues, vectors = np.linalg.eigh(pixels.T @ pixels)  # (C, C)
        order = np.argsort(eigenvalues)[::-1][:3]
        projected = pixels @ vectors[:, order]  # (h*w, k)
    else:
        eigenvalues, vectors = np.linalg.eigh(pixels @ pixels.T)  # (h*w, h*w)
        order = np.argsort(eigenvalues)[::-1][:3]
        projected = vectors[:, order] * np.sqrt(np.clip(eigenvalues[order], 0, None))

    components = np.zeros((h * w, 3))
    for index in range(projected.shape[1]):
        column = projected[:, index]
        sign = 1.0 if column[np.argmax(np.abs(column))] >= 0 else -1.0
        components[:, index] = _stretch(column * sign)
    return (components.reshape(h, w, 3) * 255).round().astype(np.uint8)


def reduce_mean_abs(feature: np.ndarray) -> np.ndarray:
    """``(C, h, w)`` -> ``(h, w, 3)`` uint8: mean absolute activation in a heat colour map."""
    activation = np.abs(feature.astype(np.float64)).mean(axis=0)  # (C, h, w) -> (h, w)
    return colormaps[HEAT_COLORMAP](_stretch(activation), bytes=True)[..., :3].copy()


def reduce_feature(feature: np.ndarray, method: str) -> np.ndarray:
    """Apply the reduction named ``method`` (``pca`` or ``mean``) to a ``(C, h, w)`` map."""
    if method == "pca":
        return reduce_pca(feature)
    if method == "mean":
        return reduce_mean_abs(feature)
    raise ValueError(f"unknown reduction {method!r}; valid: {', '.join(REDUCTIONS)}")


def token_grid(num_tokens: int, height: int, width: int) -> tuple[int, int]:
    """The ``(rows, cols)`` grid of ``num_tokens`` tokens over an image of ``height x width``.

    Among the factorisations of ``num_tokens``, the one whose aspect ratio is closest to the
    image's (token grids come from strided convolutions and pooling, which keep the aspect).
    """
    target = math.log(height / width)
    best = (1, num_tokens)
    for rows in range(1, num_tokens + 1):
        if num_tokens % rows == 0:
            cols = num_tokens // rows
            distance = abs(math.log(rows / cols) - target)
            if distance < abs(math.log(best[0] / best[1]) - target) - 1e-9:
                best = (rows, cols)
    return best


def attention_for_point(
    attention: np.ndarray, point: tuple[float, float], grid: tuple[int, int]
) -> np.ndarray:
    """The attention of the query token under ``point`` over all key tokens, as a grid map.

    ``attention`` is ``(heads, Nq, Nk)`` or ``(Nq, Nk)`` (heads are averaged), over query and key
    tokens that both lie on ``grid`` = ``(rows, cols)`` in row-major order; ``point`` is
    ``(x, y)`` as fractions of the grid's width and height. Returns ``(rows, cols)``.
    """
    if attention.ndim == 3:
        attention = attention.mean(axis=0)  # (heads, Nq, Nk) -> (Nq, Nk)
    Nq, Nk = attention.shape
    rows, cols = grid
    if Nq != rows * cols or Nk != rows * cols:
        raise ValueError(f"attention {attention.shape} does not fit a {rows}x{cols} token grid")

    x, y = point
    row = min(max(int(y * rows), 0), rows - 1)
    col = min(max(int(x * cols), 0), cols - 1)
    return attention[row * cols + col].reshape(rows, cols)  # (Nk,) -> (rows, cols)


def crop_to_image(values: np.ndarray, fraction: tuple[float, float]) -> np.ndarray:
    """Keep the part of a ``(..., h, w)`` map that covers the image inside a padded input.

    ``fraction`` is ``(image height / input height, image width / input width)``; padding is at
    the bottom and right, so the top-left ``ceil(h * fy) x ceil(w * fx)`` cells are kept.
    """
    h, w = values.shape[-2:]
    keep_h = max(1, math.ceil(h * fraction[0] - 1e-6))
    keep_w = max(1, math.ceil(w * fraction[1] - 1e-6))
    return values[..., :keep_h, :keep_w]


def resize_map(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a ``(h, w)`` float map to ``(height, width)``."""
    image = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))  # mode "F"
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))


def overlay_heat(image: np.ndarray, heat: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Blend a heat map (any size; stretched to [0, 1]) over an ``(H, W, 3)`` uint8 image."""
    H, W = image.shape[:2]
    heat = _stretch(resize_map(heat, H, W), (0, 100))
    colour = colormaps[ATTENTION_COLORMAP](heat, bytes=True)[..., :3].astype(np.float64)
    blended = (1 - alpha) * image.astype(np.float64) + alpha * colour
    return blended.round().astype(np.uint8)


def render_feature_figure(
    path: str | Path,
    image: np.ndarray,
    generic: dict[str, np.ndarray],
    bridge: dict[str, np.ndarray],
    specific: dict[str, dict[str, np.ndarray]],
    method: str,
    title: str = "",
    input_size: tuple[int, int] | None = None,
) -> Path:
    """Rows are levels; columns the input, S (task-generic), S' (bridge) and P for each task.

    ``generic`` and ``bridge`` map a level name to a ``(C, h, w)`` map, ``specific`` maps a task
    to such a dict; a map missing at a level leaves its cell empty. ``input_size`` is the padded
    ``(H, W)`` the network saw (default: the image's); maps are cropped to the image.
    """
    H, W = image.shape[:2]
    fraction = _image_fraction(image, input_size)
    levels = _ordered_levels(generic, bridge, *specific.values())
    tasks = list(specific)
    columns = [("S: task-generic", generic), ("S': bridge", bridge)]
    columns += [(f"P: {TASKS.get(t).title}", specific[t]) for t in tasks]

    panel_h = PANEL_INCHES * H / W
    figure = Figure(
        figsize=(PANEL_INCHES * (1 + len(columns)), (panel_h + 0.5) * len(levels)), dpi=DPI
    )
    axes = figure.subplots(len(levels), 1 + len(columns), squeeze=False)
    for row, level in enumerate(levels):
        _picture(axes[row, 0], image, "input" if row == 0 else "", level)
        for column, (name, maps) in enumerate(columns, start=1):
            feature = maps.get(level)
            if feature is None:
                axes[row, column].axis("off")
                continue
            C, h, w = feature.shape
            feature = crop_to_image(feature, fraction)
            label = f"{name}\n{C} ch, {h}x{w}" if row == 0 else f"{C} ch, {h}x{w}"
            _picture(axes[row, column], reduce_feature(feature, method), label)

    how = "first 3 principal components as RGB" if method == "pca" else "mean |activation|"
    figure.suptitle((title + "  " if title else "") + f"({how})", fontsize=11)
    return save_figure(figure, path)


def render_attention_figure(
    path: str | Path,
    image: np.ndarray,
    attention: dict[str, np.ndarray],
    grid: tuple[int, int] | None = None,
    points: tuple[tuple[float, float], ...] = DEFAULT_POINTS,
    title: str = "",
    input_size: tuple[int, int] | None = None,
) -> Path:
    """Rows are query points, columns tasks: each cell the task's TPP attention for that point.

    ``attention`` maps a task to a ``(heads, Nq, Nk)`` (or ``(Nq, Nk)``) array over the token
    ``grid`` (inferred from the token count and the input's aspect when not given); ``points``
    are ``(x, y)`` fractions of the image, each marked with a cross; ``input_size`` is the padded
    ``(H, W)`` the network saw (default: the image's).
    """
    H, W = image.shape[:2]
    fraction = _image_fraction(image, input_size)
    input_h, input_w = input_size or (H, W)
    tasks = list(attention)
    panel_h = PANEL_INCHES * H / W
    figure = Figure(figsize=(PANEL_INCHES * len(tasks), (panel_h + 0.5) * len(points)), dpi=DPI)
    axes = figure.subplots(len(points), len(tasks), squeeze=False)

    for row, point in enumerate(points):
        on_input = (point[0] * fraction[1], point[1] * fraction[0])  # image -> padded input
        for column, task in enumerate(tasks):
            weights = np.asarray(attention[task])
            task_grid = grid or token_grid(weights.shape[-1], input_h, input_w)
            heat = crop_to_image(attention_for_point(weights, on_input, task_grid), fraction)
            label = f"{TASKS.get(task).title}\nquery ({point[0]:.2f}, {point[1]:.2f})"
            _picture(axes[row, column], overlay_heat(image, heat), label)
            axes[row, column].plot(
                [point[0] * W - 0.5], [point[1] * H - 0.5], marker="x", color="cyan",
                markersize=10, markeredgewidth=2.5,
            )  # fmt: skip

    figure.suptitle((title + "  " if title else "") + "(TPP attention, bright = high)", fontsize=11)
    return save_figure(figure, path)


def _image_fraction(image: np.ndarray, input_size: tuple[int, int] | None) -> tuple[float, float]:
    """How much of the padded network input the image covers, ``(height, width)`` fractions."""
    if input_size is None:
        return 1.0, 1.0
    return image.shape[0] / input_size[0], image.shape[1] / input_size[1]


def _picture(axis, rgb: np.ndarray, title: str, ylabel: str = "") -> None:
    axis.imshow(rgb, interpolation="nearest")
    axis.set_title(title, fontsize=8)
    axis.set_ylabel(ylabel, fontsize=9)
    axis.set_xticks([])
    axis.set_yticks([])


def _ordered_levels(*maps: dict[str, np.ndarray]) -> list[str]:
    """Every level name that occurs, in first-seen order."""
    levels: list[str] = []
    for level_maps in maps:
        for level in level_maps:
            if level not in levels:
                levels.append(level)
    return levels
