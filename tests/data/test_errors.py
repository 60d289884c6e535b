"""Bad input is caught with one line saying what is wrong and what to do."""

import shutil

import h5py
import numpy as np
import pytest
from PIL import Image

from bridgenet_cli import __version__
from bridgenet_cli.config.schema import DataConfig
from bridgenet_cli.data.cache import CacheSource, read_header, verify_cache
from bridgenet_cli.data.dataset import build_dataset, ensure_cache
from bridgenet_cli.data.prepare import prepare_cache
from bridgenet_cli.data.readers import make_reader
from bridgenet_cli.errors import BridgeNetError
from tests.data import formats

IDS = {"train": ["0001", "0002", "0003"], "val": ["0004"]}


@pytest.fixture()
def nyud(tmp_path):
    root = tmp_path / "nyud"
    formats.write_nyud(root, "nyudv2", IDS)
    return root


def one_line(exc: BridgeNetError) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


def test_missing_split_file(nyud):
    (nyud / "gt_sets" / "val.txt").unlink()

    with pytest.raises(BridgeNetError) as caught:
        make_reader("nyud", nyud).split_ids("val")

    text = one_line(caught.value)
    assert f"nyud folder {nyud} has no split file gt_sets/val.txt" in text
    assert "check that --root is the folder that holds gt_sets/" in text


def test_missing_task_folder(nyud):
    shutil.rmtree(nyud / "edge")

    with pytest.raises(BridgeNetError) as caught:
        make_reader("nyud", nyud)

    text = one_line(caught.value)
    assert "has no edge/ folder for the edge task" in text
    assert "--tasks semseg,depth,normals" in text
    assert make_reader("nyud", nyud, ("semseg", "depth")).tasks == ("semseg", "depth")


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(BridgeNetError, match="nyud folder not found"):
        make_reader("nyud", tmp_path / "nowhere")


def truncate(path, keep: int = 60) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def test_bad_samples_fail_with_a_summary_of_every_one(nyud, tmp_path):
    truncate(nyud / "images" / "0002.png")
    labels = np.array(Image.open(nyud / "segmentation" / "0003.png"))
    labels[0, 0] = 45
    Image.fromarray(labels).save(nyud / "segmentation" / "0003.png")
    out = tmp_path / "nyud.h5"

    with pytest.raises(BridgeNetError) as caught:
        prepare_cache(make_reader("nyud", nyud), out, workers=1)

    text = one_line(caught.value)
    assert text.startswith("2 of 4 samples are bad: ")
    assert "train/0002: unreadable image images/0002.png" in text
    assert "train/0003: segmentation/0003.png: label 45 out of range" in text
    assert "pass --skip-bad to leave them out" in text
    assert not out.exists()
    assert list(tmp_path.glob("*.tmp")) == []  # the temporary file is gone too


def test_skip_bad_leaves_samples_out_and_records_them(nyud, tmp_path):
    truncate(nyud / "depth" / "0001.npy")

    result = prepare_cache(make_reader("nyud", nyud), tmp_path / "n.h5", skip_bad=True, workers=1)

    header = read_header(result.path)
    assert result.splits == {"train": 2, "val": 1}
    assert CacheSource(result.path, "train").ids == ["0002", "0003"]
    assert header.skipped["train"][0]["id"] == "0001"
    assert "unreadable array depth/0001.npy" in header.skipped["train"][0]["problem"]


def test_size_mismatch_and_empty_mask_are_bad_samples(nyud, tmp_path):
    np.save(nyud / "depth" / "0001.npy", np.ones((5, 5), np.float32))
    Image.fromarray(np.zeros((formats.H, formats.W), np.uint8)).save(
        nyud / "segmentation" / "0002.png"
    )

    with pytest.raises(BridgeNetError) as caught:
        prepare_cache(make_reader("nyud", nyud), tmp_path / "n.h5", workers=1)

    text = one_line(caught.value)
    assert "train/0001: size mismatch: depth is 5x5, image is 12x16" in text
    assert "train/0002: empty semseg mask: no labelled pixel" in text


def test_the_dataset_folder_is_never_written_to(nyud):
    with pytest.raises(BridgeNetError, match="is inside the dataset folder"):
        prepare_cache(make_reader("nyud", nyud), nyud / "cache.h5", workers=1)


def test_an_existing_cache_is_not_replaced_without_force(nyud, tmp_path):
    out = tmp_path / "nyud.h5"
    out.write_bytes(b"precious")

    with pytest.raises(BridgeNetError, match="already exists.*pass --force"):
        prepare_cache(make_reader("nyud", nyud), out, workers=1)
    assert out.read_bytes() == b"precious"


@pytest.fixture()
def cache(nyud, tmp_path):
    return prepare_cache(make_reader("nyud", nyud), tmp_path / "nyud.h5", workers=1).path


def test_cache_from_another_toolkit_version(cache, nyud):
    with h5py.File(cache, "r+") as handle:
        handle.attrs["toolkit_version"] = "0.0.1"

    with pytest.raises(BridgeNetError) as caught:
        read_header(cache)

    text = one_line(caught.value)
    assert f"cache {cache} was written by bridgenet 0.0.1; this is bridgenet {__version__}" in text
    assert f"re-create it with: bridgenet prepare-data nyud --root {nyud} --out {cache}" in text


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupted_cache(cache, damage):
    if damage == "truncated":
        cache.write_bytes(cache.read_bytes()[:2000])
    else:
        cache.write_bytes(b"not an hdf5 file at all" * 100)

    with pytest.raises(BridgeNetError) as caught:
        read_header(cache)

    text = one_line(caught.value)
    assert f"cache {cache} is corrupted or not a bridgenet cache" in text
    assert "delete it and re-create it with: bridgenet prepare-data" in text


def damage(cache, task: str, index: int) -> None:
    """Overwrite 8 bytes inside the stored chunk of sample ``index``'s ``task``."""
    with h5py.File(cache, "r") as handle:
        offset = handle["train"][task].id.get_chunk_info(index).byte_offset
    data = bytearray(cache.read_bytes())
    data[offset + 4 : offset + 12] = b"\xff" * 8
    cache.write_bytes(bytes(data))


def test_damaged_compressed_chunk_fails_when_read(cache):
    damage(cache, "semseg", 1)

    with pytest.raises(BridgeNetError) as caught:
        CacheSource(cache, "train").read(1)

    text = one_line(caught.value)
    assert "sample '0002' of train is unreadable" in text
    assert f"check it with `bridgenet prepare-data verify {cache}`" in text


def test_damage_anywhere_is_found_by_verify(cache):
    damage(cache, "depth", 1)  # uncompressed: reads succeed, the digest does not match

    with pytest.raises(BridgeNetError) as caught:
        verify_cache(cache)

    text = one_line(caught.value)
    assert "failed verification: 1 problems: train/0002: stored data does not match" in text
    assert "re-create it with: bridgenet prepare-data nyud" in text


def test_verify_passes_a_good_cache(cache):
    report = verify_cache(cache)

    assert report.splits == {"train": 3, "val": 1}
    assert report.problems == []


def test_missing_real_cache_names_the_prepare_command(tmp_path):
    config = DataConfig(dataset="pascal", cache=str(tmp_path / "p.h5"))

    with pytest.raises(BridgeNetError) as caught:
        ensure_cache(config)

    text = one_line(caught.value)
    assert f"no prepared pascal cache at {tmp_path / 'p.h5'}" in text
    assert f"bridgenet prepare-data pascal --root DIR --out {tmp_path / 'p.h5'}" in text


def test_cache_of_another_dataset_or_without_a_task(cache):
    with pytest.raises(
        BridgeNetError, match="holds the nyud dataset, but data.dataset is 'pascal'"
    ):
        ensure_cache(DataConfig(dataset="pascal", cache=str(cache)))

    config = DataConfig(dataset="nyud", cache=str(cache))
    with pytest.raises(BridgeNetError, match="has no saliency labels"):
        build_dataset(config, "val", ["saliency"], train=False)
    with pytest.raises(BridgeNetError, match="has no 'test' split"):
        build_dataset(config, "test", [], train=False)
