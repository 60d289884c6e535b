"""Validation during training: the evaluator's metrics and Delta_MTL on the validation split."""

import logging
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from bridgenet_cli import evaluation as evaluation_lib
from bridgenet_cli.config.schema import Recipe

logger = logging.getLogger(__name__)


def validate(
    model: nn.Module, dataset: Dataset, recipe: Recipe, tasks: list[str], device: torch.device
) -> tuple[dict[str, Any], float | None]:
    """``(results, delta_mtl)``: task -> metric -> value on ``dataset``, and Delta_MTL (percent)
    against ``eval.references`` when the recipe names them (else None).

    The model is left in eval mode; the caller switches it back to training.
    """
    model.eval()
    return evaluation_lib.evaluate_during_training(model, dataset, recipe, tasks, device)
