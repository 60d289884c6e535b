"""What ``bridgenet visualize predictions`` and ``... features`` do, as plain functions.

Both load a trained model (a run folder or a checkpoint), take either user images or the first
samples of a dataset split, and write pictures plus an offline ``index.html`` into ``out``:

- predictions: per input ``<id>.png`` (input, ground truth when known, prediction per task, with
  legends and colour bars) and ``<id>/`` with every picture at the image's own resolution;
- features: per input ``<id>_features.png`` (S, S' and P per stage, reduced by PCA or mean
  absolute activation) and ``<id>_tpp_attention.png`` (TPP attention for a few query points).
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.log import console, progress_enabled
from bridgenet_cli.visualization.features import (
    DEFAULT_POINTS,
    REDUCTIONS,
    render_attention_figure,
    render_feature_figure,
)
from bridgenet_cli.visualization.gallery import GalleryItem, GallerySection, write_gallery
from bridgenet_cli.visualization.inference import (
    VisualSample,
    image_samples,
    predict,
    split_samples,
)
from bridgenet_cli.visualization.render import (
    render_prediction_figure,
    safe_name,
    save_prediction_panels,
)

logger = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BridgeNetError("--device cuda was asked for but CUDA is not available", "use cpu")
    if name not in ("cpu", "cuda"):
        raise BridgeNetError(f"unknown device {name!r}", "use auto, cpu or cuda")
    return torch.device(name)


def prepare_out(out: str | Path) -> Path:
    """Create ``out``; refuse a non-empty folder that is not a previous gallery (no overwrites)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BridgeNetError(f"--out {out} is a file", "choose a folder for the pictures")
    if out.is_dir() and any(out.iterdir()) and not (out / "index.html").is_file():
        raise BridgeNetError(
            f"--out {out} is not empty and holds no bridgenet gallery",
            "choose a new or empty folder, so that none of your files is overwritten",
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def load_inputs(recipe: Any, images: list[str] | None, split: str, num: int) -> list[VisualSample]:
    """User images (shrunk to fit the model's training size) or the first ``num`` of a split."""
    from bridgenet_cli.engine.builders import model_image_size

    if num < 1:
        raise BridgeNetError(f"--num must be at least 1, got {num}", "pass --num 8")
    if images:
        return image_samples(images, max_size=model_image_size(recipe))
    return split_samples(recipe, split, num)


def _unique_names(samples: list[VisualSample]) -> list[str]:
    names: list[str] = []
    for index, sample in enumerate(samples):
        name = safe_name(sample.id)
        names.append(f"{name}-{index}" if name in names else name)
    return names


@contextmanager
def _progress(total: int, what: str) -> Iterator[Any]:
    columns = [TextColumn(what), BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, console=console, disable=not progress_enabled()) as progress:
        task = progress.add_task(what, total=total)
        yield lambda: progress.advance(task)


def visualize_predictions(
    run_or_checkpoint: str | Path,
    out: str | Path,
    images: list[str] | None = None,
    split: str = "val",
    num: int = 8,
    device: str = "auto",
) -> Path:
    """Prediction figures for user ``images`` or the first ``num`` samples of ``split``.

    Returns the path of the written ``index.html``.
    """
    from bridgenet_cli.engine.checkpoint import load_for_inference

    torch_device = resolve_device(device)
    model, recipe, checkpoint = load_for_inference(run_or_checkpoint, torch_device)
    samples = load_inputs(recipe, images, split, num)
    out = prepare_out(out)
    dataset = recipe.data.dataset

    figures, panels = [], []
    with _progress(len(samples), "predicting") as advance:
        for sample, name in zip(samples, _unique_names(samples), strict=True):
            predictions, _ = predict(model, sample, torch_device)
            title = f"{sample.id} ({checkpoint.name})"
            figure = render_prediction_figure(
                out / f"{name}.png", sample.rgb, predictions, sample.truths, dataset, title
            )
            figures.append(GalleryItem(figure, sample.id))
            written = save_prediction_panels(
                out / name, sample.rgb, predictions, sample.truths, dataset
            )
            items = [GalleryItem(path, key.replace("_", " ")) for key, path in written.items()]
            panels.append(GallerySection(f"{sample.id}: each picture at its own size", items))
            advance()

    source = "your images" if images else f"the first {len(samples)} samples of {split}"
    return write_gallery(
        out,
        f"Predictions of {checkpoint}",
        [GallerySection("Predictions", figures), *panels],
        intro=f"{len(samples)} inputs from {source}; dataset {dataset}; "
        f"tasks {', '.join(model.tasks)}. Click a picture to open it at full size.",
    )


def visualize_features(
    run_or_checkpoint: str | Path,
    out: str | Path,
    images: list[str] | None = None,
    split: str = "val",
    num: int = 4,
    reduce: str = "pca",
    points: tuple[tuple[float, float], ...] = DEFAULT_POINTS,
    device: str = "auto",
) -> Path:
    """Feature and TPP-attention figures (the paper's Figures 3, 9 and 10) for some inputs.

    ``points`` are query points as ``(x, y)`` fractions of the image. Returns the index path.
    """
    from bridgenet_cli.engine.checkpoint import load_for_inference

    if reduce not in REDUCTIONS:
        raise BridgeNetError(f"unknown --reduce {reduce!r}", f"use one of {', '.join(REDUCTIONS)}")
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise BridgeNetError(
                f"query point ({x}, {y}) is outside the image",
                "give points as x,y fractions of the width and height, e.g. --points 0.5,0.5",
            )
    torch_device = resolve_device(device)
    model, recipe, checkpoint = load_for_inference(run_or_checkpoint, torch_device)
    samples = load_inputs(recipe, images, split, num)
    out = prepare_out(out)

    feature_items, attention_items = [], []
    with _progress(len(samples), "rendering features") as advance:
        for sample, name in zip(samples, _unique_names(samples), strict=True):
            _, internals = predict(model, sample, torch_device, internals=True)
            if not internals:
                raise BridgeNetError(
                    f"the model of {checkpoint} returns no internal maps",
                    "visualise a BridgeNet or MTL-baseline run",
                )
            input_size = tuple(sample.tensor.shape[-2:])
            strides = internals.get("strides") or [None] * len(internals["S"])
            levels = [
                f"stage {s}" + (f", P stride {k}" if k else "") for s, k in enumerate(strides)
            ]
            generic = dict(zip(levels, internals["S"], strict=True))
            bridge = dict(zip(levels, internals["S_bridge"], strict=True))
            specific = {
                task: dict(zip(levels, maps, strict=True)) for task, maps in internals["P"].items()
            }
            path = render_feature_figure(
                out / f"{name}_features.png", sample.rgb, generic, bridge, specific, reduce,
                title=sample.id, input_size=input_size,
            )  # fmt: skip
            feature_items.append(GalleryItem(path, f"{sample.id}: S, S' and P per stage"))

            attention = internals.get("tpp_attention") or {}
            if attention:
                grid = internals.get("tpp_grid")
                path = render_attention_figure(
                    out / f"{name}_tpp_attention.png", sample.rgb, attention,
                    grid=tuple(grid) if grid else None, points=points, title=sample.id,
                    input_size=input_size,
                )  # fmt: skip
                attention_items.append(GalleryItem(path, f"{sample.id}: TPP attention"))
            advance()

    if not attention_items:
        logger.info("the model has no TPP (model.tpp is off or it is not BridgeNet): no attention")
    how = "first three principal components as RGB" if reduce == "pca" else "mean |activation|"
    sections = [
        GallerySection(
            "Features: task-generic S, bridge S' and task-specific P per stage",
            feature_items,
            note=f"Each map is reduced to a picture by its {how}; maps are at their own "
            "resolution (S and S' on the backbone grid, P at the stage's stride).",
        ),
        GallerySection(
            "TPP attention",
            attention_items,
            note="For each query point (cyan cross), where that task's attention looks; "
            "heads averaged.",
        ),
    ]
    return write_gallery(
        out,
        f"Features of {checkpoint}",
        [section for section in sections if section.items],
        intro=f"{len(samples)} inputs; tasks {', '.join(model.tasks)}.",
    )
