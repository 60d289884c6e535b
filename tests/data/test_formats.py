"""Real on-disk formats in, records out: class mapping, ignore, units, invalid pixels, edges."""

import numpy as np
import pytest

from bridgenet_cli.data.cache import CacheSource, read_header
from bridgenet_cli.data.info import CITYSCAPES_ID_TO_TRAIN_ID
from bridgenet_cli.data.prepare import prepare_cache
from bridgenet_cli.data.readers import make_reader
from tests.data import formats

NYUD_IDS = {"train": ["0001", "0002"], "val": ["0003"]}
PASCAL_IDS = {"train": ["2008_000001", "2008_000002"], "val": ["2008_000003"]}
CITY_NAMES = {"train": ["aachen_000000_000019"], "val": ["aachen_000001_000019"]}


def angle_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles between (3, ...) vector fields."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    cos = (a * b).sum(axis=0) / np.linalg.norm(a, axis=0) / np.linalg.norm(b, axis=0)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


@pytest.mark.parametrize("package", ["nyudv2", "nyud_mt"])
def test_nyud_package_is_detected_and_decoded(tmp_path, package):
    raw = formats.write_nyud(tmp_path / "nyud", package, NYUD_IDS)

    reader = make_reader("nyud", tmp_path / "nyud")
    record, _ = reader.read("train", "0001")
    expected = raw["0001"]

    assert reader.variant == package
    labels = expected["labels"]
    assert (record["semseg"][labels == 0] == 255).all()  # unlabelled -> ignore
    assert (record["semseg"][labels == 1] == 0).all()  # 1..40 -> 0..39
    assert (record["semseg"][labels == 40] == 39).all()
    assert (record["semseg"][labels == 5] == 4).all()
    np.testing.assert_array_equal(record["depth"], expected["depth"])  # metres, 0 = invalid
    assert record["edge"].dtype == np.uint8
    np.testing.assert_array_equal(record["edge"], expected["edge"])

    normals = record["normals"]
    invalid = expected["invalid_normals"]
    assert normals.shape == (3, formats.H, formats.W)
    assert (normals[:, invalid] == 0).all()
    length = np.linalg.norm(normals[:, ~invalid], axis=0)
    np.testing.assert_allclose(length, 1.0, atol=1e-5)
    tolerance = 0.6 if package == "nyudv2" else 1e-3  # 8-bit PNG quantisation
    truth = expected["normals"].transpose(2, 0, 1)
    assert angle_degrees(normals[:, ~invalid], truth[:, ~invalid]).max() < tolerance


def test_nyud_cache_round_trip_keeps_values(tmp_path):
    raw = formats.write_nyud(tmp_path / "nyud", "nyudv2", NYUD_IDS)
    reader = make_reader("nyud", tmp_path / "nyud")

    result = prepare_cache(reader, tmp_path / "nyud.h5", workers=1)
    source = CacheSource(result.path, "train")
    direct, _ = reader.read("train", "0002")
    cached = source.read(source.ids.index("0002"))

    assert result.splits == {"train": 2, "val": 1}
    for key in ("image", "semseg", "depth", "edge"):
        np.testing.assert_array_equal(cached[key], direct[key])
    np.testing.assert_array_equal(cached["image"], raw["0002"]["image"])
    valid = (direct["normals"] != 0).any(axis=0)
    assert (cached["normals"][:, ~valid] == 0).all()
    assert angle_degrees(cached["normals"][:, valid], direct["normals"][:, valid]).max() < 0.7
    header = read_header(result.path)
    assert header.variant == "nyudv2"
    assert header.tasks == ("semseg", "depth", "normals", "edge")
    assert header.class_names["semseg"][0] == "wall"
    assert header.settings == {"package": "nyudv2"}
    assert len(header.source_checksum) == 32


def test_source_checksum_follows_the_files(tmp_path):
    formats.write_nyud(tmp_path / "nyud", "nyudv2", NYUD_IDS)
    reader = make_reader("nyud", tmp_path / "nyud")
    first = prepare_cache(reader, tmp_path / "a.h5", workers=1).checksum
    again = prepare_cache(reader, tmp_path / "b.h5", workers=2).checksum

    np.save(tmp_path / "nyud" / "depth" / "0003.npy", np.ones((formats.H, formats.W), np.float32))
    changed = prepare_cache(reader, tmp_path / "c.h5", workers=1).checksum

    assert first == again
    assert changed != first


def test_pascal_parts_edges_normals_and_saliency(tmp_path):
    raw = formats.write_pascal(tmp_path / "pascal", PASCAL_IDS)

    reader = make_reader("pascal", tmp_path / "pascal")
    record, _ = reader.read("train", "2008_000002")
    expected = raw["2008_000002"]

    np.testing.assert_array_equal(record["semseg"], expected["semseg"])  # 0..20 and 255 as is
    parts = record["human_parts"]
    assert (parts[expected["head"]] == 1).all()
    assert (parts[expected["neck"]] == 2).all()  # the neck belongs to the torso
    assert (parts[expected["lower_arm"]] == 4).all()
    assert (parts[expected["foot"]] == 6).all()  # feet belong to the lower legs
    labelled = expected["head"] | expected["neck"] | expected["lower_arm"] | expected["foot"]
    assert (parts[~labelled] == 0).all()  # the dog's "head" part is not a person part

    edge = record["edge"]
    assert edge[:, :7].sum() == 0 and edge[:, 9:].sum() == 0  # only at the 440 | 2 boundary
    assert (edge.sum(axis=1) <= 1).all()  # one pixel wide after thinning
    assert edge.sum() >= formats.H - 2

    normals = record["normals"]
    assert (normals[:, :, 8:] == 0).all()  # context class 2 (aeroplane) is not an NYU class
    truth = expected["normals"].transpose(2, 0, 1)[:, :, :8]
    assert angle_degrees(normals[:, :, :8], truth).max() < 0.6

    saliency = record["saliency"]
    assert saliency[4:8, 4:8].all() and saliency.sum() == 16  # 200/255 > 0.5 > 100/255


def test_pascal_semseg_fallback_and_image_without_person(tmp_path):
    formats.write_pascal(tmp_path / "pascal", PASCAL_IDS)
    reader = make_reader("pascal", tmp_path / "pascal")

    fallback, _ = reader.read("train", "2008_000001")  # only under semseg/pascal-context
    no_person, _ = reader.read("val", "2008_000003")

    assert (fallback["semseg"] == 15).sum() == 32
    assert (no_person["human_parts"] == 255).all()


@pytest.mark.parametrize("depth", ["disparity", "metres"])
def test_cityscapes_train_ids_and_depth(tmp_path, depth):
    expected = formats.write_cityscapes(tmp_path / "city", CITY_NAMES)

    reader = make_reader("cityscapes", tmp_path / "city", depth=depth)
    assert reader.split_ids("train") == ["aachen/aachen_000000_000019"]
    record, _ = reader.read("train", "aachen/aachen_000000_000019")

    np.testing.assert_array_equal(record["semseg"], expected["aachen/aachen_000000_000019"])
    values = record["depth"]
    assert (values[:6] == 0).all()  # p = 0 and p = 1 are invalid
    if depth == "disparity":
        assert np.allclose(values[6:9], 1.0) and np.allclose(values[9:], 100.0)
    else:  # baseline 0.2 m x fx 2000 px / disparity
        assert np.allclose(values[6:9], 400.0) and np.allclose(values[9:], 4.0)
    assert reader.info.depth_unit == depth


def test_cityscapes_downsampling_keeps_labels_and_disparity_values(tmp_path):
    formats.write_cityscapes(tmp_path / "city", CITY_NAMES, camera=False)

    reader = make_reader("cityscapes", tmp_path / "city", size=(6, 8))
    record, _ = reader.read("val", "aachen/aachen_000001_000019")

    assert record["image"].shape == (6, 8, 3)
    np.testing.assert_array_equal(record["semseg"][0], formats.CITY_TRAIN)  # nearest neighbour
    assert set(np.unique(record["depth"])) == {0.0, 1.0, 100.0}
    assert reader.output_size("val", "aachen/aachen_000001_000019") == (6, 8)


def test_embedded_cityscapes_table_matches_the_official_one():
    labels = pytest.importorskip("cityscapesscripts.helpers.labels")
    official = [255] * len(CITYSCAPES_ID_TO_TRAIN_ID)
    for label in labels.labels:
        if 0 <= label.id < len(official) and label.trainId not in (-1, 255):
            official[label.id] = label.trainId

    assert tuple(official) == CITYSCAPES_ID_TO_TRAIN_ID
