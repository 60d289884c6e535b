"""Training curves from a run folder's ``metrics.jsonl``: losses, learning rate, validation metrics.

``metrics.jsonl`` holds one JSON object a line, ``{"iter": ..., "split": "train" | "val", ...}``.
Nested objects are flattened to dotted keys (``{"semseg": {"miou": 0.4}}`` -> ``semseg.miou``),
so both flat and nested writers plot the same way.
"""

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.tasks import TASKS
from bridgenet_cli.visualization.gallery import GalleryItem, GallerySection, write_gallery
from bridgenet_cli.visualization.render import save_figure

logger = logging.getLogger(__name__)

_BOOKKEEPING = {"iter", "split", "epoch", "time", "timestamp", "rank"}
SMOOTH_FROM = 30  # shorter series are drawn raw: a moving average would only lag behind them


@dataclass
class Series:
    """Values of one metric against iterations."""

    iters: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


def flatten(record: dict, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested dict under dotted keys (booleans and strings dropped)."""
    flat: dict[str, float] = {}
    for key, value in record.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, dotted + "."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[dotted] = float(value)
    return flat


def read_metrics(path: str | Path) -> dict[str, dict[str, Series]]:
    """Read ``metrics.jsonl`` into ``split -> key -> Series``.

    Unreadable lines (for example the last one of a killed run) are skipped with a warning.
    """
    path = Path(path)
    if not path.is_file():
        raise BridgeNetError(
            f"no metrics file at {path}",
            "pass a run folder written by 'bridgenet train' (it holds metrics.jsonl)",
        )
    series: dict[str, dict[str, Series]] = defaultdict(lambda: defaultdict(Series))
    skipped = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            skipped += 1
            continue
        if not isinstance(record, dict) or "iter" not in record:
            skipped += 1
            continue
        split = str(record.get("split", "train"))
        step = float(record["iter"])
        for key, value in flatten(record).items():
            if key in _BOOKKEEPING or not np.isfinite(value):
                continue
            key = key.removeprefix("metrics.")
            series[split][key].iters.append(step)
            series[split][key].values.append(value)
    if skipped:
        logger.warning("skipped %d unreadable line(s) in %s", skipped, path)
    return {split: dict(keys) for split, keys in series.items()}


def _smooth(values: list[float], weight: float = 0.8) -> np.ndarray:
    """Exponential moving average, to show the trend of noisy losses."""
    smoothed = np.empty(len(values))
    running = values[0] if values else 0.0
    for index, value in enumerate(values):
        running = weight * running + (1 - weight) * value
        smoothed[index] = running
    return smoothed


def plot_lines(path: Path, title: str, lines: dict[str, Series], ylabel: str, smooth: bool) -> Path:
    """All series in one axes (log scale when every value is positive and they span a decade)."""
    figure = Figure(figsize=(7.5, 4.2))
    axis = figure.subplots()
    for index, (name, data) in enumerate(sorted(lines.items())):
        colour = f"C{index % 10}"
        if smooth and len(data.values) >= SMOOTH_FROM:
            axis.plot(data.iters, data.values, color=colour, alpha=0.25, linewidth=0.8)
            axis.plot(data.iters, _smooth(data.values), color=colour, label=name, linewidth=1.6)
        else:
            axis.plot(data.iters, data.values, color=colour, label=name, marker=".")
    values = np.concatenate([np.asarray(d.values) for d in lines.values()])
    if np.all(values > 0) and values.max() / values.min() > 10:
        axis.set_yscale("log")
    axis.set_xlabel("iteration")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="best")
    return save_figure(figure, path)


def plot_panels(path: Path, title: str, panels: dict[str, Series], first: str = "") -> Path:
    """One small axes per series (metrics with different scales); ``first`` leads, marked."""
    names = sorted(panels, key=lambda name: (name != first, name))
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    figure = Figure(figsize=(4.0 * cols, 3.0 * rows))
    axes = figure.subplots(rows, cols, squeeze=False)
    for index, axis in enumerate(axes.ravel()):
        if index >= len(names):
            axis.axis("off")
            continue
        data = panels[names[index]]
        axis.plot(data.iters, data.values, marker=".", color="C0")
        label = names[index] + (" (primary)" if names[index] == first else "")
        axis.set_title(label, fontsize=9)
        axis.set_xlabel("iteration", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)


def visualize_curves(run_dir: str | Path, out: str | Path) -> Path:
    """Plot a run's curves into ``out`` and write its ``index.html``; returns the index path.

    Pictures: ``losses.png`` (every training key starting with ``loss``), ``learning_rate.png``,
    ``train_other.png`` (other training numbers such as throughput), ``val_<task>.png`` (one
    panel per metric of the task, its primary metric first), ``val_<task>_per_class.png``
    (per-class numbers such as ``iou/<class>``, one line each) and ``val_other.png`` (for
    example Delta_MTL).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BridgeNetError(f"run folder not found: {run_dir}", "check the path")
    metrics = read_metrics(run_dir / "metrics.jsonl")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    train = metrics.get("train", {})
    losses = {k: s for k, s in train.items() if k.split(".")[-1].startswith("loss")}
    rates = {k: s for k, s in train.items() if k == "lr" or k.startswith("lr.")}
    others = {k: s for k, s in train.items() if k not in losses and k not in rates}

    training: list[GalleryItem] = []
    if losses:
        plot_lines(out / "losses.png", "Training losses", losses, "loss", smooth=True)
        training.append(
            GalleryItem(out / "losses.png", "training losses (long series smoothed, raw faint)")
        )
    if rates:
        plot_lines(out / "learning_rate.png", "Learning rate", rates, "lr", smooth=False)
        training.append(GalleryItem(out / "learning_rate.png", "learning rate"))
    if others:
        plot_panels(out / "train_other.png", "Other training numbers", others)
        training.append(GalleryItem(out / "train_other.png", "other training numbers"))

    validation: list[GalleryItem] = []
    by_task: dict[str, dict[str, Series]] = defaultdict(dict)
    for key, data in metrics.get("val", {}).items():
        head, _, rest = key.partition(".")
        if head in TASKS and rest:
            by_task[head][rest] = data
        else:
            by_task["other"][key] = data
    for group in sorted(by_task, key=lambda g: (g == "other", g)):
        name = TASKS.get(group).title if group in TASKS else "Other validation numbers"
        primary = TASKS.get(group).metric if group in TASKS else ""
        # Per-class numbers (``iou/<class>``) share one axes; summary metrics get a panel each.
        summary = {k: s for k, s in by_task[group].items() if "/" not in k}
        per_class = {k: s for k, s in by_task[group].items() if "/" in k}
        if summary:
            plot_panels(out / f"val_{group}.png", f"Validation: {name}", summary, primary)
            validation.append(GalleryItem(out / f"val_{group}.png", f"validation: {name}"))
        if per_class:
            path = out / f"val_{group}_per_class.png"
            plot_lines(path, f"Validation: {name}, per class", per_class, "", smooth=False)
            validation.append(GalleryItem(path, f"validation: {name}, per class"))

    if not training and not validation:
        raise BridgeNetError(
            f"{run_dir / 'metrics.jsonl'} holds no numbers to plot",
            "train for at least log_every iterations first",
        )
    sections = [GallerySection("Training", training), GallerySection("Validation", validation)]
    return write_gallery(
        out,
        f"Training curves of {run_dir.name}",
        [s for s in sections if s.items],
        intro=f"From {run_dir / 'metrics.jsonl'}, against optimiser iterations.",
    )
