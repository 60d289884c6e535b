"""The recipe system: inheritance, overrides, validation messages, round trips."""

import tomllib
from pathlib import Path

import pytest

from bridgenet_cli.config.recipe import (
    load_recipe,
    parse_override,
    recipe_from_dict,
    recipe_to_dict,
    recipe_to_toml,
)
from bridgenet_cli.errors import BridgeNetError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture()
def recipes(tmp_path: Path) -> Path:
    write(
        tmp_path / "base.toml",
        'name = "base"\n[train]\nmax_iters = 10\nlr = 1e-3\n[model]\nbackbone = "vit-base"\n'
        "[data.synthetic]\nheight = 64\n",
    )
    write(
        tmp_path / "child.toml",
        'base = "base.toml"\nname = "child"\n[train]\nlr = 2e-5\n[data.synthetic]\nwidth = 96\n',
    )
    return tmp_path


def test_base_is_deep_merged_and_child_wins(recipes: Path):
    recipe = load_recipe(recipes / "child.toml")

    assert recipe.name == "child"
    assert recipe.train.max_iters == 10  # from the base
    assert recipe.train.lr == 2e-5  # the child wins
    assert recipe.model.backbone == "vit-base"
    assert (recipe.data.synthetic.height, recipe.data.synthetic.width) == (64, 96)


def test_list_of_bases_merges_in_order(tmp_path: Path):
    write(tmp_path / "a.toml", "[train]\nmax_iters = 1\nbatch_size = 2\n")
    write(tmp_path / "b.toml", "[train]\nmax_iters = 3\n")
    write(tmp_path / "c.toml", 'base = ["a.toml", "b.toml"]\n')

    recipe = load_recipe(tmp_path / "c.toml")

    assert (recipe.train.max_iters, recipe.train.batch_size) == (3, 2)


def test_overrides_are_typed_by_the_schema(recipes: Path):
    recipe = load_recipe(
        recipes / "child.toml",
        [
            "train.max_iters=200",
            "train.lr=1",  # an integer where a float is expected becomes a float
            "model.backbone=vit-large",  # a bare word is a string
            'data.tasks=["semseg", "depth"]',
            "train.loss_weights.edge=70",
            "model.pretrained=/weights/vit.pth",
        ],
    )

    assert recipe.train.max_iters == 200
    assert recipe.train.lr == 1.0 and isinstance(recipe.train.lr, float)
    assert recipe.model.backbone == "vit-large"
    assert recipe.data.tasks == ["semseg", "depth"]
    assert recipe.train.loss_weights == {"edge": 70.0}
    assert recipe.model.pretrained == "/weights/vit.pth"


def test_round_trip_through_toml(recipes: Path):
    recipe = load_recipe(recipes / "child.toml", ["train.loss_weights.edge=70"])

    text = recipe_to_toml(recipe)

    assert recipe_from_dict(tomllib.loads(text)) == recipe
    assert recipe_from_dict(recipe_to_dict(recipe)) == recipe


def error_text(path: Path, overrides: list[str] | None = None) -> str:
    with pytest.raises(BridgeNetError) as info:
        load_recipe(path, overrides)
    return str(info.value)


def test_error_unknown_key_names_file_key_and_closest(tmp_path: Path):
    path = write(tmp_path / "r.toml", "[train]\nmax_iter = 5\n")

    assert error_text(path) == (
        f"{path}: unknown key 'train.max_iter' "
        "(did you mean 'train.max_iters' or 'train.warmup_iters'?)"
    )


def test_error_unknown_key_in_base_names_the_base_file(tmp_path: Path):
    write(tmp_path / "base.toml", "[model]\nbackbon = 'vit-base'\n")
    child = write(tmp_path / "child.toml", 'base = "base.toml"\n')

    assert error_text(child) == (
        f"{tmp_path / 'base.toml'}: unknown key 'model.backbon' "
        "(did you mean 'model.backbone' or 'model.backbone_depth'?)"
    )


def test_error_wrong_type(tmp_path: Path):
    path = write(tmp_path / "r.toml", '[train]\nbatch_size = "six"\n')

    assert error_text(path) == (
        f"{path}: key 'train.batch_size' expects an integer, got 'six' (str) (fix the value's type)"
    )


def test_error_missing_base_file(tmp_path: Path):
    path = write(tmp_path / "r.toml", 'base = "nope.toml"\n')

    assert error_text(path) == (
        f"{path}: base recipe not found: {tmp_path / 'nope.toml'} "
        "(base paths are relative to the recipe that names them)"
    )


def test_error_cyclic_base(tmp_path: Path):
    write(tmp_path / "a.toml", 'base = "b.toml"\n')
    path = write(tmp_path / "b.toml", 'base = "a.toml"\n')

    assert error_text(path) == (
        f"{tmp_path / 'a.toml'}: cyclic base chain b.toml -> a.toml -> b.toml "
        "(remove the 'base' key that closes the loop)"
    )


def test_error_bad_override_syntax(recipes: Path):
    assert error_text(recipes / "child.toml", ["train.max_iters"]) == (
        "bad override 'train.max_iters': expected KEY=VALUE "
        "(write it like --set train.max_iters=200)"
    )


def test_error_override_unknown_key_is_attributed_to_set(recipes: Path):
    assert error_text(recipes / "child.toml", ["trian.lr=1"]) == (
        "--set: unknown key 'trian' (did you mean 'train'?)"
    )


def test_error_bad_choice_suggests_the_closest(tmp_path: Path):
    path = write(tmp_path / "r.toml", '[model]\nvariant = "bridge-net"\n')

    assert error_text(path) == (
        f"{path}: key 'model.variant' expects one of bridgenet, mtl-baseline, stl, "
        "got 'bridge-net' (did you mean 'bridgenet'? use one of the listed values)"
    )


def test_error_non_positive_value(recipes: Path):
    assert error_text(recipes / "child.toml", ["train.batch_size=0"]) == (
        "--set: key 'train.batch_size' must be greater than 0, got 0 (use a positive value)"
    )


def test_error_missing_recipe_file(tmp_path: Path):
    assert error_text(tmp_path / "absent.toml") == (
        f"recipe file not found: {tmp_path / 'absent.toml'} "
        "(check the path; shipped recipes live in the recipes/ folder)"
    )


def test_error_invalid_toml(tmp_path: Path):
    path = write(tmp_path / "r.toml", "[train\n")

    assert error_text(path).startswith(f"{path}: not valid TOML:")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("train.lr=3e-4", ("train.lr", 3e-4)),
        ("model.bfe=false", ("model.bfe", False)),
        ("model.backbone=timm:convnext_tiny", ("model.backbone", "timm:convnext_tiny")),
        ("data.train_size=[64, 96]", ("data.train_size", [64, 96])),
    ],
)
def test_parse_override_values(text, expected):
    assert parse_override(text) == expected
