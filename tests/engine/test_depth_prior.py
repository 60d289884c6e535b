"""Depth heads start at the training split's mean depth on fresh runs only."""

import numpy as np
import torch

from bridgenet_cli.data import build_dataset
from bridgenet_cli.engine import checkpoint as ckpt
from bridgenet_cli.engine.builders import build_recipe_model, recipe_tasks
from bridgenet_cli.engine.session import init_depth_prior
from bridgenet_cli.engine.trainer import train
from tests.engine.tiny import tiny_recipe


def _mean_valid_depth(dataset) -> float:
    """Independent of the code under test: the samples as the data pipeline hands them out."""
    depths = [np.asarray(dataset[i]["depth"]) for i in range(len(dataset))]
    values = np.concatenate([d[d > 0] for d in depths])
    return float(values.mean(dtype=np.float64))


def test_depth_heads_start_at_the_mean_training_depth(tmp_path):
    recipe = tiny_recipe(tmp_path)
    dataset = build_dataset(recipe.data, "train", [], train=False)
    model = build_recipe_model(recipe)
    depth = recipe_tasks(recipe).index("depth")

    init_depth_prior(model, recipe_tasks(recipe), dataset)

    expected = _mean_valid_depth(dataset)  # 16 samples: fewer than the 64 the prior reads
    assert expected > 1.0  # metres: far from the zero a fresh head starts at
    torch.testing.assert_close(
        model.heads[depth].conv.bias, torch.full_like(model.heads[depth].conv.bias, expected)
    )
    torch.testing.assert_close(
        model.inter_heads[depth].bias, torch.full_like(model.inter_heads[depth].bias, expected)
    )
    semseg = recipe_tasks(recipe).index("semseg")
    assert not torch.allclose(model.heads[semseg].conv.bias, torch.tensor(expected))


def test_recipe_without_depth_is_left_alone(tmp_path):
    recipe = tiny_recipe(tmp_path, 'data.tasks=["semseg"]')
    dataset = build_dataset(recipe.data, "train", [], train=False)
    model = build_recipe_model(recipe)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    init_depth_prior(model, recipe_tasks(recipe), dataset)

    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_trained_run_started_from_the_prior(tmp_path):
    """A 1-iteration run's depth bias sits near the prior, not near a fresh head's zero."""
    recipe = tiny_recipe(tmp_path, "train.max_iters=1", "train.checkpoint_every=1")
    result = train(recipe, tmp_path / "run")
    state = ckpt.read_checkpoint(result.last_checkpoint)["model"]
    depth = recipe_tasks(recipe).index("depth")
    expected = _mean_valid_depth(build_dataset(recipe.data, "train", [], train=False))

    bias = state[f"heads.{depth}.conv.bias"]
    assert torch.allclose(bias, torch.full_like(bias, expected), atol=0.05)
