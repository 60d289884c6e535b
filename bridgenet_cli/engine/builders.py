"""The one place where a recipe turns into the arguments of the model and the datasets.

The trainer, :func:`bridgenet_cli.engine.checkpoint.load_for_inference` and anything else that
needs "the model this recipe describes" call these, so the translation is written once.
"""

import dataclasses

from torch import nn
from torch.utils.data import Dataset

from bridgenet_cli import data as data_lib
from bridgenet_cli import models as model_lib
from bridgenet_cli.config.schema import Recipe
from bridgenet_cli.data.info import DATASETS
from bridgenet_cli.errors import BridgeNetError


def recipe_tasks(recipe: Recipe) -> list[str]:
    """The tasks a recipe trains (``data.tasks``, else all of the dataset's), in dataset order."""
    info = DATASETS.get(recipe.data.dataset)
    if not recipe.data.tasks:
        return list(info.tasks)
    unknown = [task for task in recipe.data.tasks if task not in info.tasks]
    if unknown:
        raise BridgeNetError(
            f"data.tasks names {', '.join(unknown)}, which {recipe.data.dataset} has no labels for",
            f"choose from {', '.join(info.tasks)}",
        )
    if len(set(recipe.data.tasks)) != len(recipe.data.tasks):
        raise BridgeNetError("data.tasks lists a task twice", "list each task once")
    return [task for task in info.tasks if task in recipe.data.tasks]


def model_image_size(recipe: Recipe) -> tuple[int, int]:
    """The ``(H, W)`` the model is built for: the recipe's training crop."""
    return data_lib.resolve_train_size(recipe.data)


def build_recipe_model(recipe: Recipe, with_pretrained: bool = True) -> nn.Module:
    """The model a recipe describes, on the CPU, with freshly initialised (or pretrained) weights.

    ``with_pretrained=False`` skips ``model.pretrained`` (for loading a checkpoint on top).
    """
    model_cfg = recipe.model
    if not with_pretrained:
        model_cfg = dataclasses.replace(model_cfg, pretrained=None)
    return model_lib.build_model(
        model_cfg, recipe_tasks(recipe), recipe.data.dataset, model_image_size(recipe)
    )


def build_split(recipe: Recipe, split: str, train: bool) -> Dataset:
    """A split of the recipe's dataset with its tasks; ``train`` turns augmentation on."""
    return data_lib.build_dataset(recipe.data, split, recipe_tasks(recipe), train)


def prepare_data(recipe: Recipe) -> None:
    """Make sure the recipe's prepared cache exists (the synthetic one is generated if missing)."""
    data_lib.ensure_cache(recipe.data)
