"""Task maps to colours: palettes, depth scale, normals and grey maps."""

import numpy as np
import pytest

from bridgenet_cli.tasks import IGNORE_INDEX
from bridgenet_cli.visualization.colors import (
    IGNORE_COLOUR,
    INVALID_COLOUR,
    class_palette,
    classes_present,
    colorize,
    colorize_classes,
    colorize_depth,
    colorize_gray,
    colorize_normals,
    depth_range,
)


@pytest.mark.parametrize(("dataset", "task"), [("nyud", "semseg"), ("pascal", "human_parts")])
def test_palette_is_deterministic_and_distinct(dataset, task):
    first = class_palette(dataset, task)
    second = class_palette(dataset, task)

    assert np.array_equal(first, second)
    assert first.dtype == np.uint8
    assert len({tuple(c) for c in first}) == len(first)  # every class its own colour


def test_voc_palette_matches_the_published_first_colours():
    palette = class_palette("pascal", "semseg")

    assert palette[:4].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]


def test_class_map_colours_and_ignore():
    palette = class_palette("synthetic", "semseg")
    labels = np.array([[0, 1], [2, IGNORE_INDEX]])

    rgb = colorize_classes(labels, palette)

    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert rgb[0, 1].tolist() == palette[1].tolist()
    assert rgb[1, 1].tolist() == list(IGNORE_COLOUR)


def test_class_id_outside_the_palette_is_an_error():
    with pytest.raises(ValueError, match="outside the palette"):
        colorize_classes(np.array([[99]]), class_palette("synthetic", "semseg"))


def test_classes_present_skips_ignore():
    maps = (np.array([[3, 3], [IGNORE_INDEX, 1]]), np.array([[1, 7]]))

    assert classes_present(*maps, num_classes=10) == [1, 3, 7]


def test_depth_range_is_shared_and_ignores_invalid_pixels():
    truth = np.array([[0.0, 1.0], [2.0, 3.0]])
    prediction = np.array([[1.0, 5.0], [np.nan, 2.0]])

    low, high = depth_range(truth, prediction, percentiles=(0, 100))

    assert (low, high) == (1.0, 5.0)


def test_depth_colours_follow_the_scale_and_mark_invalid():
    depth = np.array([[1.0, 2.0, 3.0, 0.0]])

    rgb = colorize_depth(depth, 1.0, 3.0)

    brightness = rgb.astype(int).sum(axis=2)[0]
    assert brightness[0] < brightness[1] < brightness[2]  # magma: near dark, far bright
    assert rgb[0, 3].tolist() == list(INVALID_COLOUR)


def test_normals_map_to_rgb():
    normals = np.zeros((3, 1, 3))
    normals[:, 0, 0] = (1.0, 0.0, 0.0)
    normals[:, 0, 1] = (0.0, -1.0, 0.0)

    rgb = colorize_normals(normals)

    assert rgb[0, 0].tolist() == [255, 128, 128]
    assert rgb[0, 1].tolist() == [128, 0, 128]
    assert rgb[0, 2].tolist() == list(INVALID_COLOUR)  # zero vector: no label


def test_gray_map_and_ignore():
    rgb = colorize_gray(np.array([[[0.0, 0.5, 1.0, IGNORE_INDEX]]]))

    assert rgb[0, :3, 0].tolist() == [0, 128, 255]
    assert rgb[0, 3].tolist() == list(IGNORE_COLOUR)


@pytest.mark.parametrize(
    ("task", "values"),
    [
        ("semseg", np.zeros((4, 5), dtype=np.int64)),
        ("human_parts", np.ones((4, 5), dtype=np.int64)),
        ("depth", np.ones((1, 4, 5))),
        ("normals", np.ones((3, 4, 5)) / np.sqrt(3)),
        ("saliency", np.full((1, 4, 5), 0.3)),
        ("edge", np.zeros((4, 5))),
    ],
)
def test_every_task_renders_to_rgb(task, values):
    rgb = colorize(task, values, "synthetic")

    assert rgb.shape == (4, 5, 3) and rgb.dtype == np.uint8
