"""Inputs for the visualiser: user images or dataset samples, run through a trained model.

:class:`VisualSample` is one input picture with what is known about it (its ground truth when it
comes from a dataset split). :func:`predict` runs the model on one sample at its own (padded)
resolution and returns predictions cropped back to the image, and on request the model's internal
maps (see ``docs/internals.md``).
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import nn

from bridgenet_cli.config.schema import Recipe
from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.tasks import TASKS

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass
class VisualSample:
    """One input: the model's tensor, the picture to show, and ground truth when known."""

    id: str
    tensor: torch.Tensor  # (3, Hp, Wp) normalised, padded for the network
    rgb: np.ndarray  # (h, w, 3) uint8, what the user sees
    truths: dict[str, np.ndarray] = field(default_factory=dict)  # task -> map cropped to (h, w)


def _crop(array: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.ascontiguousarray(array[..., :height, :width])


def _from_item(item: dict[str, Any], tasks: list[str]) -> VisualSample:
    """A dataset item (the sample dict of ``docs/internals.md``) -> :class:`VisualSample`."""
    from bridgenet_cli.data import denormalize

    height, width = (int(v) for v in item["size"])
    truths = {}
    for task in tasks:
        if task in item:
            truths[task] = _crop(np.asarray(item[task]), height, width)
    rgb = denormalize(item["image"])[:height, :width]  # (3, Hp, Wp) -> (h, w, 3) uint8
    return VisualSample(
        id=str(item["id"]),
        tensor=torch.as_tensor(item["image"]),
        rgb=np.ascontiguousarray(rgb),
        truths=truths,
    )


def fit_within(rgb: np.ndarray, max_size: tuple[int, int]) -> np.ndarray:
    """Shrink ``rgb`` (keeping its aspect) to fit in ``max_size`` = (H, W); never enlarge."""
    height, width = rgb.shape[:2]
    scale = min(max_size[0] / height, max_size[1] / width, 1.0)
    if scale >= 1.0:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))


def read_image(path: str | Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB; an unreadable file is a :class:`BridgeNetError`."""
    path = Path(path)
    if not path.is_file():
        raise BridgeNetError(f"image not found: {path}", "check the path given to --images")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise BridgeNetError(
            f"cannot read {path} as an image ({exc})", "pass JPEG or PNG files to --images"
        ) from None


def image_samples(
    paths: list[str | Path], max_size: tuple[int, int] | None = None
) -> list[VisualSample]:
    """User image files as samples (no ground truth); larger images are shrunk to ``max_size``.

    A folder stands for the image files directly inside it.
    """
    from bridgenet_cli.data import image_to_sample

    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise BridgeNetError(f"no image files in {path}", "pass JPEG or PNG files")
            files += found
        else:
            files.append(path)

    samples = []
    for path in files:
        rgb = read_image(path)
        if max_size is not None:
            rgb = fit_within(rgb, max_size)
        samples.append(_from_item(image_to_sample(rgb, sample_id=path.stem), []))
    return samples


def split_samples(recipe: Recipe, split: str, num: int) -> list[VisualSample]:
    """The first ``num`` samples of a split of the recipe's dataset, with their ground truth."""
    from bridgenet_cli.engine.builders import build_split, recipe_tasks

    dataset = build_split(recipe, split, train=False)
    if len(dataset) == 0:
        raise BridgeNetError(f"the {split} split of {recipe.data.dataset} is empty", "")
    tasks = recipe_tasks(recipe)
    count = min(num, len(dataset))
    return [_from_item(dataset[i], tasks) for i in range(count)]


@torch.no_grad()
def predict(
    model: nn.Module, sample: VisualSample, device: torch.device, internals: bool = False
) -> tuple[dict[str, np.ndarray], dict[str, Any] | None]:
    """``(predictions, internals)`` for one sample.

    Predictions are ``TASKS[task].postprocess`` outputs without the batch axis, cropped to the
    sample's picture: class ids ``(h, w)``, depth ``(1, h, w)``, normals ``(3, h, w)``,
    probabilities ``(1, h, w)``. Internals (only when asked) are the model's internal maps with
    the batch axis dropped, as NumPy arrays, at their own resolution.
    """
    height, width = sample.rgb.shape[:2]
    batch = sample.tensor.unsqueeze(0).to(device)  # (3, Hp, Wp) -> (1, 3, Hp, Wp)

    output = model(batch, return_internals=internals) if internals else model(batch)

    predictions = {}
    for task, raw in output["final"].items():
        prediction = TASKS.get(task).postprocess(raw.float())[0]  # drop the batch axis
        predictions[task] = _crop(prediction.cpu().numpy(), height, width)
    found = _to_numpy(output.get("internals")) if internals else None
    return predictions, found


def _to_numpy(value: Any) -> Any:
    """Tensors (batch axis dropped) -> float32 arrays, inside nested dicts, lists and tuples."""
    if isinstance(value, torch.Tensor):
        tensor = value[0] if value.dim() > 0 else value
        return tensor.detach().float().cpu().numpy()
    if isinstance(value, dict):
        return {key: _to_numpy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_numpy(item) for item in value)
    return value
