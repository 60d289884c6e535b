"""Figures from arrays: predictions next to ground truth, with legends and colour bars.

Nothing here touches a model or a dataset: inputs are an RGB image ``(H, W, 3)`` uint8 and task
maps in the target conventions of :mod:`bridgenet_cli.tasks` without the batch axis (class ids
``(H, W)``, depth ``(H, W)`` or ``(1, H, W)``, normals ``(3, H, W)``, probabilities ``(H, W)`` or
``(1, H, W)``). Figures are drawn with matplotlib's Agg canvas (no display needed) and written
atomically.
"""

import re
from pathlib import Path

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from PIL import Image

from bridgenet_cli.data.info import DATASETS
from bridgenet_cli.io import atomic_write
from bridgenet_cli.tasks import TASKS
from bridgenet_cli.visualization.colors import (
    DEPTH_COLORMAP,
    class_names,
    class_palette,
    classes_present,
    colorize,
    depth_range,
)

PANEL_INCHES = 2.8  # width of one picture in a figure
DPI = 100
MAX_LEGEND_ENTRIES = 24  # the most frequent classes shown in a legend


def safe_name(text: str) -> str:
    """A file-name-safe version of a sample id (path separators and odd characters -> ``_``)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")
    return cleaned or "image"


def save_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an ``(H, W, 3)`` uint8 array as a PNG, atomically."""
    path = Path(path)
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
    return path


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write a matplotlib figure as a PNG, atomically, trimmed to its content."""
    path = Path(path)
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight"))
    return path


def depth_scale(*maps: np.ndarray | None) -> tuple[float, float]:
    """The shared depth colour range of the given maps (``None`` entries skipped)."""
    return depth_range(*(np.asarray(m) for m in maps if m is not None))


def render_task_maps(
    predictions: dict[str, np.ndarray], truths: dict[str, np.ndarray], dataset: str
) -> dict[str, dict[str, np.ndarray]]:
    """RGB pictures per task: ``{task: {"prediction": rgb, "truth": rgb}}`` (truth when given).

    Depth prediction and truth share one colour range.
    """
    pictures: dict[str, dict[str, np.ndarray]] = {}
    for task, prediction in predictions.items():
        truth = truths.get(task)
        scale = depth_scale(truth, prediction) if TASKS.get(task).colormap == "depth" else None
        pictures[task] = {"prediction": colorize(task, prediction, dataset, scale)}
        if truth is not None:
            pictures[task]["truth"] = colorize(task, truth, dataset, scale)
    return pictures


def save_prediction_panels(
    folder: str | Path,
    image: np.ndarray,
    predictions: dict[str, np.ndarray],
    truths: dict[str, np.ndarray],
    dataset: str,
) -> dict[str, Path]:
    """Write each picture at the image's own resolution into ``folder``.

    Files: ``input.png``, ``<task>_prediction.png`` and, where known, ``<task>_truth.png``.
    Returns name -> path.
    """
    folder = Path(folder)
    written = {"input": save_png(folder / "input.png", image)}
    for task, pair in render_task_maps(predictions, truths, dataset).items():
        for kind, rgb in pair.items():
            written[f"{task}_{kind}"] = save_png(folder / f"{task}_{kind}.png", rgb)
    return written


def render_prediction_figure(
    path: str | Path,
    image: np.ndarray,
    predictions: dict[str, np.ndarray],
    truths: dict[str, np.ndarray],
    dataset: str,
    title: str = "",
) -> Path:
    """One figure: the input, then per task its ground truth (top row, when known) and prediction.

    Class maps get a legend of the classes present, depth a colour bar on the shared scale,
    normals are shown as RGB, edges and saliency as grey maps.
    """
    H, W = image.shape[:2]
    tasks = list(predictions)
    has_truth = any(task in truths for task in tasks)
    rows = 2 if has_truth else 1
    cols = 1 + len(tasks)
    panel_h = PANEL_INCHES * H / W
    figure = Figure(figsize=(PANEL_INCHES * cols, (panel_h + 0.7) * rows), dpi=DPI)
    axes = figure.subplots(rows, cols, squeeze=False)
    pictures = render_task_maps(predictions, truths, dataset)

    _show(axes[0, 0], image, "Input")
    if has_truth:
        axes[1, 0].axis("off")
        axes[0, 0].set_ylabel("ground truth")

    for column, task in enumerate(tasks, start=1):
        spec = TASKS.get(task)
        truth_axis = axes[0, column] if has_truth else None
        prediction_axis = axes[rows - 1, column]
        if truth_axis is not None:
            if "truth" in pictures[task]:
                _show(truth_axis, pictures[task]["truth"], f"{spec.title}: truth")
            else:
                truth_axis.axis("off")
                truth_axis.set_title(f"{spec.title}: no truth", fontsize=9)
        _show(prediction_axis, pictures[task]["prediction"], f"{spec.title}: prediction")
        _annotate(figure, prediction_axis, task, predictions[task], truths.get(task), dataset)

    if title:
        figure.suptitle(title, fontsize=11)
    return save_figure(figure, path)


def _show(axis, rgb: np.ndarray, title: str) -> None:
    axis.imshow(rgb, interpolation="nearest")
    axis.set_title(title, fontsize=9)
    axis.set_xticks([])
    axis.set_yticks([])


def _annotate(
    figure: Figure,
    axis,
    task: str,
    prediction: np.ndarray,
    truth: np.ndarray | None,
    dataset: str,
) -> None:
    """Add the legend (class maps), colour bar (depth) or key (normals, grey maps) under a panel."""
    style = TASKS.get(task).colormap
    if style == "palette":
        names = class_names(dataset, task)
        maps = [np.asarray(prediction)] + ([np.asarray(truth)] if truth is not None else [])
        present = classes_present(*maps, num_classes=len(names))
        counts = {c: sum(int((m == c).sum()) for m in maps) for c in present}
        shown = sorted(present, key=lambda c: -counts[c])[:MAX_LEGEND_ENTRIES]
        palette = class_palette(dataset, task)
        handles = [Patch(color=palette[c] / 255.0, label=names[c]) for c in sorted(shown)]
        if len(present) > len(shown):
            handles.append(Patch(color="white", label=f"+{len(present) - len(shown)} more"))
        axis.legend(
            handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2,
            fontsize=6, frameon=False, handlelength=1.0, columnspacing=0.8,
        )  # fmt: skip
    elif style == "depth":
        low, high = depth_scale(truth, prediction)
        mappable = ScalarMappable(norm=Normalize(low, high), cmap=DEPTH_COLORMAP)
        unit = DATASETS.get(dataset).depth_unit if dataset in DATASETS else "dataset unit"
        bar_axis = axis.inset_axes((0.0, -0.1, 1.0, 0.06))  # under the panel, same width
        bar = figure.colorbar(mappable, cax=bar_axis, orientation="horizontal")
        bar.set_label(f"depth ({unit})", fontsize=7)
        bar.ax.tick_params(labelsize=6)
    elif style == "normals":
        axis.set_xlabel("RGB = (x, y, z) from [-1, 1]", fontsize=7)
    elif style == "gray":
        axis.set_xlabel("black 0, white 1", fontsize=7)
