"""The multi-task training objective: weighted task losses plus deep supervision.

Each task's loss function and default weight come from :data:`bridgenet_cli.tasks.TASKS`;
``train.loss_weights`` overrides weights per task. BridgeNet's intermediate predictions (the
model's ``"inter"`` outputs, at a lower resolution) are bilinearly up-sampled to the target's size
and add their task loss at ``deep_supervision`` times the task weight.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.tasks import TASKS

INTER_SUFFIX = "/inter"


def task_weights(tasks: list[str], dataset: str, overrides: dict[str, float]) -> dict[str, float]:
    """Loss weight per task: the field's weight on ``dataset`` unless ``overrides`` names one."""
    unknown = sorted(set(overrides) - set(tasks))
    if unknown:
        raise BridgeNetError(
            f"train.loss_weights names task(s) {', '.join(unknown)} that this run does not train",
            f"use only the run's tasks: {', '.join(tasks)}",
        )
    return {task: float(overrides.get(task, TASKS.get(task).weight(dataset))) for task in tasks}


def resize_logits(pred: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize a raw ``(B, C, h, w)`` output to ``(B, C, *size)``; a no-op if it fits."""
    if tuple(pred.shape[-2:]) == tuple(size):
        return pred
    return F.interpolate(pred, size=size, mode="bilinear", align_corners=False)


@dataclass
class LossTerms:
    """The weighted sum to back-propagate and every unweighted term, for logging and checks.

    ``terms`` maps ``task`` (final prediction) and ``task/inter`` (deep supervision) to the
    unweighted loss, each a scalar tensor that still carries its graph.
    """

    total: torch.Tensor
    terms: dict[str, torch.Tensor]


def compute_losses(
    outputs: dict[str, dict[str, torch.Tensor]],
    batch: dict[str, torch.Tensor],
    weights: dict[str, float],
    deep_supervision: float,
) -> LossTerms:
    """Losses of the model's ``outputs`` against the targets in ``batch``, in float32.

    ``outputs["final"][task]`` is ``(B, C, H, W)``; ``outputs.get("inter", {})[task]`` is
    ``(B, C, h, w)`` at a lower resolution. Targets follow the conventions of
    :mod:`bridgenet_cli.tasks`.
    """
    terms: dict[str, torch.Tensor] = {}
    total = None
    inter = outputs.get("inter") or {}
    for task, weight in weights.items():
        spec = TASKS.get(task)
        target = batch[task]
        size = tuple(target.shape[-2:])

        final = resize_logits(outputs["final"][task].float(), size)
        terms[task] = spec.loss(final, target)
        task_total = weight * terms[task]

        if deep_supervision > 0 and task in inter:
            upsampled = resize_logits(inter[task].float(), size)
            terms[task + INTER_SUFFIX] = spec.loss(upsampled, target)
            task_total = task_total + deep_supervision * weight * terms[task + INTER_SUFFIX]

        total = task_total if total is None else total + task_total
    if total is None:
        raise ValueError("compute_losses needs at least one task")
    return LossTerms(total=total, terms=terms)


def term_task(term: str) -> str:
    """The task a loss term belongs to (``"depth/inter"`` -> ``"depth"``)."""
    return term.removesuffix(INTER_SUFFIX)
