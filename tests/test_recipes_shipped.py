"""Every shipped recipe parses, says what it reproduces, and builds its model at a tiny size."""

from pathlib import Path

import pytest
import torch

from bridgenet_cli.config.recipe import load_recipe
from bridgenet_cli.engine.builders import build_recipe_model, model_image_size, recipe_tasks
from bridgenet_cli.tasks import TASKS

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
ALL = sorted(RECIPES.glob("*.toml"))
BASES = {"nyud_base.toml", "pascal_base.toml", "cityscapes_base.toml"}
PAPER = [p for p in ALL if p.name not in BASES and p.name != "quickstart.toml"]
# Backbones without a reduced-size option build at full size: too slow for the default run.
FULL_SIZE_ONLY = {"internimage-b", "internimage-l", "hrnet-w48"}


def tiny_overrides(recipe_path: Path) -> list[str]:
    """--set overrides that shrink a recipe's model to a few million parameters at 64x64."""
    recipe = load_recipe(recipe_path)
    stages = 4 if recipe.model.backbone.startswith("hrnet") else 3
    overrides = [
        "data.train_size=[64, 64]",
        "model.decoder_width=16",
        "model.head_width=16",
        "model.prelim_width=16",
        f"model.stage_widths={[16] + [8] * (stages - 1)}",
    ]
    if recipe.model.backbone.startswith("vit-"):
        overrides.append("model.backbone_depth=2")
    return overrides


def test_every_configuration_of_the_paper_is_shipped():
    names = {p.name for p in ALL}
    for backbone in ("vitb", "large", "hrnet18", "hrnet48", "internimage_b", "internimage_l"):
        assert f"nyud_{backbone}.toml" in names and f"pascal_{backbone}.toml" in names
    assert {"pascal_resnet50d.toml", "cityscapes_large.toml", "quickstart.toml"} <= names
    assert {f"nyud_vitb_stl_{t}.toml" for t in ("semseg", "depth", "normals", "edge")} <= names
    assert {"nyud_vitb_mtl_baseline.toml", "pascal_vitb_mtl_baseline.toml"} <= names


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_recipe_parses(path):
    recipe = load_recipe(path)
    assert recipe.name and recipe.description
    for task in recipe_tasks(recipe):
        TASKS.get(task)
    height, width = model_image_size(recipe)
    assert height % 32 == 0 and width % 32 == 0


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.name)
def test_paper_recipe_says_what_it_reproduces(path):
    recipe = load_recipe(path)
    assert recipe.reproduces
    assert "Reproduces:" in path.read_text()


def test_pascal_large_is_the_vit_large_pascal_recipe():
    recipe = load_recipe(RECIPES / "pascal_large.toml")
    assert (recipe.data.dataset, recipe.model.backbone) == ("pascal", "vit-large")


@pytest.mark.parametrize(
    ("name", "optimizer", "lr", "weight_decay"),
    [
        ("nyud_vitb.toml", "adam", 2e-5, 1e-6),
        ("pascal_resnet50d.toml", "adam", 2e-5, 1e-6),
        ("nyud_hrnet48.toml", "sgd", 0.01, 5e-4),
        ("pascal_internimage_b.toml", "adamw", 6e-5, 0.05),
        ("nyud_internimage_l.toml", "adamw", 2e-5, 0.05),
    ],
)
def test_optimisers_follow_the_paper(name, optimizer, lr, weight_decay):
    train = load_recipe(RECIPES / name).train
    assert (train.optimizer, train.lr, train.weight_decay) == (optimizer, lr, weight_decay)
    assert (train.max_iters, train.batch_size, train.lr_power) == (40000, 6, 0.9)


def _build_tiny(path: Path):
    recipe = load_recipe(path, tiny_overrides(path))
    recipe.model.pretrained = None
    model = build_recipe_model(recipe)
    height, width = model_image_size(recipe)
    with torch.no_grad():
        outputs = model.eval()(torch.randn(1, 3, height, width))
    for task in recipe_tasks(recipe):
        channels = TASKS.get(task).channels(recipe.data.dataset)
        assert outputs["final"][task].shape == (1, channels, height, width)


@pytest.mark.parametrize(
    "path",
    [p for p in ALL if load_recipe(p).model.backbone not in FULL_SIZE_ONLY],
    ids=lambda p: p.name,
)
def test_recipe_builds_its_model_at_tiny_size(path):
    _build_tiny(path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "path",
    [p for p in ALL if load_recipe(p).model.backbone in FULL_SIZE_ONLY],
    ids=lambda p: p.name,
)
def test_recipe_with_full_size_backbone_builds_with_a_tiny_decoder(path):
    _build_tiny(path)
