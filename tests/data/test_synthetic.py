"""The synthetic scenes: deterministic, and their six targets agree with each other."""

import numpy as np
import pytest

from bridgenet_cli.data.info import HUMAN_PARTS_CLASSES, SYNTHETIC_CLASSES
from bridgenet_cli.data.prepare import prepare_cache
from bridgenet_cli.data.records import check_record
from bridgenet_cli.data.synthetic import DEPTH_JUMP, SyntheticReader, generate_sample

H, W = 96, 128
PERSON = SYNTHETIC_CLASSES.index("person")


@pytest.fixture(scope="module")
def scenes():
    return [generate_sample(0, "train", index, H, W) for index in range(4)]


def test_same_seed_same_scene_other_seed_other_scene():
    first = generate_sample(3, "val", 5, 48, 64)
    again = generate_sample(3, "val", 5, 48, 64)
    other = generate_sample(4, "val", 5, 48, 64)

    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["image"], other["image"])


def test_records_follow_the_contract(scenes):
    reader = SyntheticReader(1, 1, H, W, 0)
    for record in scenes:
        check_record(record, reader.info, reader.tasks)
        assert record["image"].shape == (H, W, 3) and record["image"].dtype == np.uint8
        assert record["normals"].shape == (3, H, W)
        assert np.isfinite(record["depth"]).all() and (record["depth"] > 0).all()
        np.testing.assert_allclose(np.linalg.norm(record["normals"], axis=0), 1.0, atol=1e-5)
        assert record["human_parts"].max() < len(HUMAN_PARTS_CLASSES)


def test_parts_cover_exactly_the_figure_and_the_figure_is_salient(scenes):
    for record in scenes:
        person = record["semseg"] == PERSON
        assert person.any()
        np.testing.assert_array_equal(record["human_parts"] > 0, person)
        assert record["saliency"][person].all()


def backprojected_normals(depth: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Normals (3, H-2, W-2) from central differences of the back-projected depth map."""
    fx, fy, cx, cy = intrinsics
    rows, cols = np.mgrid[0 : depth.shape[0], 0 : depth.shape[1]]
    points = np.stack(
        [depth * (cols + 0.5 - cx) / fx, -depth * (rows + 0.5 - cy) / fy, -depth]
    ).astype(np.float64)  # camera frame: x right, y up, z towards the viewer
    along_u = points[:, 1:-1, 2:] - points[:, 1:-1, :-2]
    along_v = points[:, 2:, 1:-1] - points[:, :-2, 1:-1]
    normals = np.cross(along_v, along_u, axis=0)  # faces the camera for visible surfaces
    return normals / np.linalg.norm(normals, axis=0)


def test_normals_agree_with_depth_gradients(scenes):
    errors = []
    for record in scenes:
        from_depth = backprojected_normals(record["depth"], record["intrinsics"])
        given = record["normals"][:, 1:-1, 1:-1].astype(np.float64)
        labels = record["semseg"]
        edge = record["edge"].astype(bool)

        # Pixels whose 3x3 neighbourhood is one surface: no edge, one label.
        smooth = np.ones_like(labels[1:-1, 1:-1], dtype=bool)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                window = (slice(1 + dy, H - 1 + dy), slice(1 + dx, W - 1 + dx))
                smooth &= ~edge[window] & (labels[window] == labels[1:-1, 1:-1])
        cos = np.clip((from_depth * given).sum(axis=0), -1.0, 1.0)
        errors.append(np.degrees(np.arccos(cos))[smooth])
    errors = np.concatenate(errors)

    assert len(errors) > 0.5 * len(scenes) * H * W
    assert np.median(errors) < 1.0
    assert np.percentile(errors, 90) < 5.0


def test_every_normal_faces_the_camera(scenes):
    for record in scenes:
        fx, fy, cx, cy = record["intrinsics"]
        rows, cols = np.mgrid[0:H, 0:W]
        rays = np.stack([(cols + 0.5 - cx) / fx, -(rows + 0.5 - cy) / fy, -np.ones((H, W))])

        assert ((record["normals"] * rays).sum(axis=0) < 0).all()


def test_edges_sit_on_label_boundaries_and_depth_discontinuities(scenes):
    for record in scenes:
        labels, depth = record["semseg"], record["depth"]
        edge = record["edge"].astype(bool)
        near_change = np.zeros_like(edge)
        for axis in (0, 1):
            a = (slice(None, -1), slice(None)) if axis == 0 else (slice(None), slice(None, -1))
            b = (slice(1, None), slice(None)) if axis == 0 else (slice(None), slice(1, None))
            differs = labels[a] != labels[b]
            jumps = np.abs(depth[a] - depth[b]) > DEPTH_JUMP * np.minimum(depth[a], depth[b])

            # Every semantic boundary is marked on at least one side of it.
            assert (edge[a] | edge[b])[differs].all()
            change = differs | jumps
            near_change[a] |= change
            near_change[b] |= change

        assert near_change[edge].all()  # no edge away from a boundary
        assert 0.005 < edge.mean() < 0.15


def test_scenes_vary_enough_to_need_learning():
    records = [generate_sample(1, "train", index, 48, 64) for index in range(12)]

    classes = set(np.concatenate([np.unique(r["semseg"]) for r in records]).tolist())
    assert len(classes) >= 8
    floor = SYNTHETIC_CLASSES.index("floor")
    floor_colours = [r["image"][r["semseg"] == floor].mean(axis=0) for r in records]
    assert np.std(floor_colours, axis=0).mean() > 15  # the floor has no colour of its own
    depths = [np.median(r["depth"]) for r in records]
    assert np.std(depths) > 0.2  # camera and room vary


def test_generation_does_not_depend_on_the_worker_count(tmp_path):
    reader = SyntheticReader(3, 2, 32, 48, 7)

    one = prepare_cache(reader, tmp_path / "one.h5", workers=1)
    two = prepare_cache(reader, tmp_path / "two.h5", workers=2)

    assert one.checksum == two.checksum
    assert one.splits == {"train": 3, "val": 2}
