"""A tiny real recipe (synthetic scenes at 64x64, a 2-block ViT-tiny, 16-wide decoder)."""

from pathlib import Path

from bridgenet_cli.config.recipe import load_recipe
from bridgenet_cli.config.schema import Recipe

TINY_RECIPE = """
name = "tiny"
description = "engine tests"

[data]
dataset = "synthetic"
tasks = ["semseg", "depth"]
num_workers = 0

[data.synthetic]
num_train = 16
num_val = 4
height = 64
width = 64

[model]
backbone = "vit-tiny"
backbone_depth = 2
decoder_width = 16
prelim_width = 16
stage_widths = [16, 8, 8]
head_width = 16
refine = "add"  # the lightest refiner: these tests are about the engine

[train]
max_iters = 4
batch_size = 4
lr = 1e-3
eval_every = 0
checkpoint_every = 2
log_every = 1

[eval]
batch_size = 2
max_samples = 2
edge_benchmark = false
"""


def write_tiny_recipe(folder: Path) -> Path:
    path = Path(folder) / "tiny.toml"
    path.write_text(TINY_RECIPE)
    return path


def tiny_recipe(folder: Path, *overrides: str) -> Recipe:
    """The tiny recipe with ``--set`` style overrides, e.g. ``"train.max_iters=6"``."""
    return load_recipe(write_tiny_recipe(folder), list(overrides))
