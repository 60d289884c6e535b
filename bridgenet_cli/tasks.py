"""The dense prediction tasks, each defined once.

A :class:`TaskSpec` holds everything the toolkit needs to know about a task: its output channels
(per dataset), its loss, its ignore value, how a horizontal flip changes its target, how raw network
outputs become predictions, its primary metric and its colour map. The model, the data pipeline,
the trainer, the evaluator and the visualiser all read it from :data:`TASKS`.

Target conventions, shared by data readers, losses and metrics (B = batch):

- ``semseg``, ``human_parts``: int64 ``(B, H, W)`` class ids, ``255`` = ignore.
- ``depth``: float32 ``(B, 1, H, W)`` in the dataset's unit, ``0`` = invalid.
- ``normals``: float32 ``(B, 3, H, W)`` unit vectors in the camera frame, zero vector = invalid.
- ``saliency``, ``edge``: float32 ``(B, 1, H, W)`` in ``{0, 1}``, ``255`` = ignore.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from bridgenet_cli.data.info import DATASETS
from bridgenet_cli.registry import Registry

IGNORE_INDEX = 255


# ----------------------------------------------------------------------------------------------
# Losses. Each takes raw network output ``pred`` (already at the target's size) and the target.
# ----------------------------------------------------------------------------------------------


def cross_entropy_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over classes, ignoring label 255."""
    if not (target != IGNORE_INDEX).any():
        return pred.sum() * 0.0
    return F.cross_entropy(pred, target.long(), ignore_index=IGNORE_INDEX)


def depth_l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 on valid pixels (target > 0)."""
    valid = target > 0
    if not valid.any():
        return pred.sum() * 0.0
    return (pred[valid] - target[valid]).abs().mean()


def normals_l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the L2-normalised prediction and the target, on pixels with a non-zero target."""
    valid = (target != 0).any(dim=1, keepdim=True)  # (B, 1, H, W)
    if not valid.any():
        return pred.sum() * 0.0
    unit = F.normalize(pred, p=2, dim=1)
    diff = (unit - target).abs() * valid
    return diff.sum() / valid.sum()


def balanced_bce_loss(
    pred: torch.Tensor, target: torch.Tensor, pos_weight: float | None = None
) -> torch.Tensor:
    """Class-balanced binary cross-entropy on logits, ignoring label 255.

    With ``pos_weight=None`` the positive weight is the fraction of negatives in the batch (the
    saliency convention); edges use a fixed 0.95.
    """
    valid = target != IGNORE_INDEX
    if not valid.any():
        return pred.sum() * 0.0
    logits = pred[valid]
    labels = (target[valid] > 0.5).to(logits.dtype)
    if pos_weight is None:
        pos_weight = float(1.0 - labels.mean())
    per_pixel = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    weights = torch.where(labels > 0, pos_weight, 1.0 - pos_weight)
    return (weights * per_pixel).mean()


def edge_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Balanced BCE with the field's fixed positive weight of 0.95."""
    return balanced_bce_loss(pred, target, pos_weight=0.95)


# ----------------------------------------------------------------------------------------------
# Post-processing: raw output -> prediction in the target's units.
# ----------------------------------------------------------------------------------------------


def _argmax(pred: torch.Tensor) -> torch.Tensor:
    return pred.argmax(dim=1)  # (B, K, H, W) -> (B, H, W)


def _identity(pred: torch.Tensor) -> torch.Tensor:
    return pred


def _normalize(pred: torch.Tensor) -> torch.Tensor:
    return F.normalize(pred, p=2, dim=1)


def _sigmoid(pred: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(pred)


# ----------------------------------------------------------------------------------------------
# Flip rules: how a horizontally flipped image changes a target of shape (..., C, H, W) or (H, W).
# ----------------------------------------------------------------------------------------------


def _flip_plain(target: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(target[..., ::-1])


def _flip_normals(target: np.ndarray) -> np.ndarray:
    """Flip a ``(3, H, W)`` normal map and negate its x component."""
    flipped = np.array(target[..., ::-1], copy=True)
    flipped[..., 0, :, :] *= -1
    return flipped


@dataclass(frozen=True)
class TaskSpec:
    """Everything about one task, in one place."""

    name: str
    title: str
    kind: str  # "classes", "depth", "normals" or "binary"
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    postprocess: Callable[[torch.Tensor], torch.Tensor]
    flip: Callable[[np.ndarray], np.ndarray]
    metric: str  # primary metric key in the evaluator's output
    higher_is_better: bool
    colormap: str  # "palette", "depth", "normals" or "gray"
    fixed_channels: int | None = None  # None: the dataset's class count
    ignore_value: float = IGNORE_INDEX
    # Loss weights of the field (reference table); "default" for datasets without their own.
    weights: tuple[tuple[str, float], ...] = (("default", 1.0),)

    def channels(self, dataset: str) -> int:
        """Output channels of this task's head on ``dataset``."""
        if self.fixed_channels is not None:
            return self.fixed_channels
        return DATASETS.get(dataset).num_classes(self.name)

    def weight(self, dataset: str) -> float:
        table = dict(self.weights)
        return table.get(dataset, table["default"])


TASKS: Registry[TaskSpec] = Registry("task")

TASKS.register(
    "semseg",
    TaskSpec(
        name="semseg",
        title="Semantic segmentation",
        kind="classes",
        loss=cross_entropy_loss,
        postprocess=_argmax,
        flip=_flip_plain,
        metric="miou",
        higher_is_better=True,
        colormap="palette",
    ),
)
TASKS.register(
    "human_parts",
    TaskSpec(
        name="human_parts",
        title="Human parts",
        kind="classes",
        loss=cross_entropy_loss,
        postprocess=_argmax,
        flip=_flip_plain,
        metric="miou",
        higher_is_better=True,
        colormap="palette",
        weights=(("default", 2.0),),
    ),
)
TASKS.register(
    "depth",
    TaskSpec(
        name="depth",
        title="Depth",
        kind="depth",
        loss=depth_l1_loss,
        postprocess=_identity,
        flip=_flip_plain,
        metric="rmse",
        higher_is_better=False,
        colormap="depth",
        fixed_channels=1,
        ignore_value=0.0,
    ),
)
TASKS.register(
    "normals",
    TaskSpec(
        name="normals",
        title="Surface normals",
        kind="normals",
        loss=normals_l1_loss,
        postprocess=_normalize,
        flip=_flip_normals,
        metric="mean",
        higher_is_better=False,
        colormap="normals",
        fixed_channels=3,
        ignore_value=0.0,
        weights=(("default", 10.0),),
    ),
)
TASKS.register(
    "saliency",
    TaskSpec(
        name="saliency",
        title="Saliency",
        kind="binary",
        loss=balanced_bce_loss,
        postprocess=_sigmoid,
        flip=_flip_plain,
        metric="maxf",
        higher_is_better=True,
        colormap="gray",
        fixed_channels=1,
        weights=(("default", 5.0),),
    ),
)
TASKS.register(
    "edge",
    TaskSpec(
        name="edge",
        title="Edges",
        kind="binary",
        loss=edge_loss,
        postprocess=_sigmoid,
        flip=_flip_plain,
        metric="odsf",
        higher_is_better=True,
        colormap="gray",
        fixed_channels=1,
        weights=(("default", 50.0),),
    ),
)


def voc_palette(num_classes: int) -> np.ndarray:
    """The PASCAL VOC bit-interleaved palette, ``(num_classes, 3)`` uint8, deterministic."""
    palette = np.zeros((num_classes, 3), dtype=np.uint8)
    for index in range(num_classes):
        label, r, g, b = index, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((label >> 0) & 1) << shift
            g |= ((label >> 1) & 1) << shift
            b |= ((label >> 2) & 1) << shift
            label >>= 3
        palette[index] = (r, g, b)
    return palette
