"""Figures from arrays: prediction figures, native-size panels, feature and attention figures."""

import numpy as np
import pytest

from bridgenet_cli.visualization.features import (
    attention_for_point,
    reduce_feature,
    reduce_pca,
    render_attention_figure,
    render_feature_figure,
    token_grid,
)
from bridgenet_cli.visualization.render import (
    render_prediction_figure,
    safe_name,
    save_prediction_panels,
)

from .vis_helpers import distinct_colours, fake_scene, open_rgb


def test_panels_have_the_image_size_and_are_not_constant(tmp_path):
    scene = fake_scene(height=24, width=32)

    written = save_prediction_panels(
        tmp_path, scene["image"], scene["predictions"], scene["truths"], "synthetic"
    )

    assert set(written) == {"input"} | {
        f"{task}_{kind}" for task in scene["predictions"] for kind in ("prediction", "truth")
    }
    for name, path in written.items():
        rgb = open_rgb(path)
        assert rgb.shape == (24, 32, 3), name
        assert distinct_colours(rgb) > 1, name


def test_palette_pictures_are_deterministic(tmp_path):
    scene = fake_scene()
    args = (scene["image"], scene["predictions"], scene["truths"], "synthetic")

    first = save_prediction_panels(tmp_path / "a", *args)
    second = save_prediction_panels(tmp_path / "b", *args)

    for name in ("semseg_prediction", "human_parts_truth"):
        assert np.array_equal(open_rgb(first[name]), open_rgb(second[name]))


def test_prediction_figure_with_and_without_truth(tmp_path):
    scene = fake_scene()

    with_truth = render_prediction_figure(
        tmp_path / "a.png", scene["image"], scene["predictions"], scene["truths"], "synthetic", "x"
    )
    without = render_prediction_figure(
        tmp_path / "b.png", scene["image"], scene["predictions"], {}, "synthetic"
    )

    tall, short = open_rgb(with_truth), open_rgb(without)
    assert tall.shape[0] > short.shape[0]  # a second row of ground truth
    assert tall.shape[1] > 7 * 100  # input and six task columns
    assert distinct_colours(tall) > 50


def test_safe_name_keeps_ids_usable_as_file_names():
    assert safe_name("frankfurt/000001_left") == "frankfurt_000001_left"
    assert safe_name("../..") == "image"


def test_pca_reduction_is_deterministic_and_separates_regions():
    feature = np.zeros((16, 6, 8))
    feature[:4, :, :4] = 1.0  # left half fires on some channels, right half on others
    feature[4:8, :, 4:] = 1.0
    feature += np.random.default_rng(0).normal(0, 0.01, feature.shape)

    first, second = reduce_pca(feature), reduce_pca(feature.copy())

    assert first.shape == (6, 8, 3) and first.dtype == np.uint8
    assert np.array_equal(first, second)
    left, right = first[:, :4].reshape(-1, 3).mean(0), first[:, 4:].reshape(-1, 3).mean(0)
    assert np.abs(left - right).max() > 100


def test_pca_with_fewer_pixels_than_channels():
    feature = np.random.default_rng(0).normal(size=(64, 2, 3))

    assert reduce_pca(feature).shape == (2, 3, 3)


def test_mean_reduction_follows_activation():
    feature = np.zeros((4, 2, 2))
    feature[:, 0, 0] = -5.0  # strong activation, negative sign

    rgb = reduce_feature(feature, "mean")

    assert rgb[0, 0].sum() > rgb[1, 1].sum()


def test_unknown_reduction_is_an_error():
    with pytest.raises(ValueError, match="unknown reduction"):
        reduce_feature(np.zeros((2, 2, 2)), "tsne")


@pytest.mark.parametrize(
    ("tokens", "height", "width", "grid"),
    [(12, 192, 256, (3, 4)), (48, 192, 256, (6, 8)), (16, 512, 512, (4, 4)), (7, 10, 10, (1, 7))],
)
def test_token_grid_matches_the_image_aspect(tokens, height, width, grid):
    assert token_grid(tokens, height, width) == grid


def test_attention_for_point_picks_the_query_row():
    attention = np.zeros((2, 12, 12))
    attention[:, 7, 3] = 1.0  # query token 7 = row 1, col 3 of a 3x4 grid

    weights = attention_for_point(attention, (0.9, 0.5), (3, 4))

    assert weights.shape == (3, 4)
    assert weights[0, 3] == 1.0 and weights.sum() == 1.0


def test_feature_and_attention_figures(tmp_path):
    scene = fake_scene(height=32, width=32)
    rng = np.random.default_rng(0)
    levels = {"0": rng.normal(size=(8, 4, 4)), "1": rng.normal(size=(8, 8, 8))}
    specific = {"semseg": levels, "depth": {"1": rng.normal(size=(8, 8, 8))}}

    feature_path = render_feature_figure(
        tmp_path / "f.png", scene["image"], levels, levels, specific, "pca", "t"
    )
    attention = {t: rng.random((2, 16, 16)) for t in ("semseg", "depth")}
    attention_path = render_attention_figure(tmp_path / "a.png", scene["image"], attention)

    features, overlays = open_rgb(feature_path), open_rgb(attention_path)
    assert features.shape[1] > features.shape[0]  # 5 columns, 2 rows
    assert overlays.shape[0] > overlays.shape[1]  # 3 query points, 2 tasks
    assert distinct_colours(features) > 50 and distinct_colours(overlays) > 50
