"""``bridgenet visualize`` end to end on a tiny model and tiny synthetic data."""

import re

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from bridgenet_cli.cli.app import app
from bridgenet_cli.config.recipe import load_recipe, recipe_to_dict
from bridgenet_cli.engine import checkpoint as ckpt
from bridgenet_cli.engine.builders import build_recipe_model
from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.visualization.visualize import visualize_features, visualize_predictions

from .vis_helpers import distinct_colours, open_rgb

runner = CliRunner()

TINY_RECIPE = """
name = "tiny"
[data]
dataset = "synthetic"
tasks = ["semseg", "depth", "normals", "edge"]
num_workers = 0
cache = "{cache}"
[data.synthetic]
num_train = 4
num_val = 3
height = 64
width = 96
[model]
backbone = "vit-tiny"
backbone_depth = 2
decoder_width = 32
stage_widths = [32, 16, 8]
head_width = 16
prelim_width = 32
tfr_size = "base"
[train]
max_iters = 2
batch_size = 2
eval_every = 0
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run folder whose ``checkpoints/last.pt`` holds a freshly initialised tiny model."""
    root = tmp_path_factory.mktemp("tiny-run")
    recipe_path = root / "tiny.toml"
    recipe_path.write_text(TINY_RECIPE.format(cache=root / "synthetic.h5"))
    recipe = load_recipe(recipe_path)
    torch.manual_seed(0)
    model = build_recipe_model(recipe)
    checkpoint = {
        "format": ckpt.FORMAT,
        "version": ckpt.VERSION,
        "model": model.state_dict(),
        "iteration": 0,
        "recipe": recipe_to_dict(recipe),
        "tasks": list(model.tasks),
        "dataset": recipe.data.dataset,
    }
    run_dir = root / "run"
    ckpt.save_checkpoint(checkpoint, ckpt.last_path(run_dir))
    return run_dir


def gallery_sources(index):
    return re.findall(r'src="([^"]+)"', index.read_text())


def test_predictions_on_split_samples(tiny_run, tmp_path):
    index = visualize_predictions(tiny_run, tmp_path / "pred", split="val", num=2, device="cpu")

    sources = gallery_sources(index)
    figures = [s for s in sources if "/" not in s]
    assert sorted(figures) == ["val-00000.png", "val-00001.png"]
    for source in sources:
        assert (index.parent / source).is_file()  # relative links resolve offline
    panel_dir = index.parent / figures[0].removesuffix(".png")
    for name in ("input", "semseg_truth", "semseg_prediction", "depth_prediction", "edge_truth"):
        rgb = open_rgb(panel_dir / f"{name}.png")
        assert rgb.shape == (64, 96, 3), name
        assert distinct_colours(rgb) > 1, name
    figure = open_rgb(index.parent / figures[0])
    assert figure.shape[1] > 5 * 150 and distinct_colours(figure) > 50


def test_predictions_on_a_user_image_of_another_size(tiny_run, tmp_path):
    rng = np.random.default_rng(0)
    photo = tmp_path / "photo.jpg"
    Image.fromarray(rng.integers(0, 255, (150, 200, 3), dtype=np.uint8)).save(photo)

    index = visualize_predictions(tiny_run, tmp_path / "pred", images=[str(photo)], device="cpu")

    rgb = open_rgb(index.parent / "photo" / "depth_prediction.png")
    assert rgb.shape == (64, 85, 3)  # shrunk to fit the model's 64x96 training size
    assert not (index.parent / "photo" / "depth_truth.png").exists()


def test_features_and_attention_figures(tiny_run, tmp_path):
    index = visualize_features(
        tiny_run, tmp_path / "feat", split="val", num=1, reduce="mean", device="cpu"
    )

    names = sorted(gallery_sources(index))
    assert len(names) == 2 and names[0].endswith("_features.png")
    assert names[1].endswith("_tpp_attention.png")
    for name in names:
        assert distinct_colours(open_rgb(index.parent / name)) > 50


def test_out_folder_with_user_files_is_refused(tiny_run, tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")

    with pytest.raises(BridgeNetError, match="not empty"):
        visualize_predictions(tiny_run, tmp_path, num=1, device="cpu")
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_cli_reports_a_missing_checkpoint_in_one_line(tmp_path):
    result = runner.invoke(
        app, ["visualize", "predictions", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]
    )

    assert result.exit_code != 0
    assert isinstance(result.exception, BridgeNetError)
    assert "no run folder or checkpoint" in str(result.exception)


def test_cli_rejects_a_malformed_point(tiny_run, tmp_path):
    result = runner.invoke(
        app,
        ["visualize", "features", str(tiny_run), "--out", str(tmp_path), "--points", "0.5"],
    )

    assert isinstance(result.exception, BridgeNetError)
    assert "is not x,y" in str(result.exception)
