"""The data pipeline: sample contract, augmentation, evaluation padding, lazy cache handles."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import bridgenet_cli.data.transforms as transforms
from bridgenet_cli.config.schema import DataConfig, SyntheticConfig
from bridgenet_cli.data import build_dataset, denormalize, ensure_cache, image_to_sample
from bridgenet_cli.data.cache import CacheSource
from bridgenet_cli.data.dataset import ReaderSource, dataset_from_source, resolve_train_size
from bridgenet_cli.data.prepare import prepare_cache
from bridgenet_cli.data.readers import make_reader
from bridgenet_cli.data.synthetic import GENERATOR_VERSION
from bridgenet_cli.data.transforms import EvalTransform, TrainTransform
from bridgenet_cli.errors import BridgeNetError
from tests.data import formats

SMALL = SyntheticConfig(num_train=4, num_val=2, height=32, width=48, seed=0)


@pytest.fixture()
def synthetic() -> DataConfig:
    return DataConfig(dataset="synthetic", synthetic=SyntheticConfig(**vars(SMALL)), num_workers=0)


@pytest.fixture()
def nyud_cache(tmp_path):
    formats.write_nyud(tmp_path / "nyud", "nyudv2", {"train": ["0001"], "val": ["0002"]})
    reader = make_reader("nyud", tmp_path / "nyud")
    return prepare_cache(reader, tmp_path / "nyud.h5", workers=1).path


def test_train_samples_follow_the_contract(synthetic):
    dataset = build_dataset(synthetic, "train", [], train=True)
    sample = dataset[0]

    assert dataset.tasks == dataset.info.tasks and len(dataset) == 4
    assert dataset.ids[0] == "train-00000" and sample["id"] == "train-00000"
    assert sample["image"].shape == (3, 32, 48) and sample["image"].dtype == torch.float32
    for task in ("semseg", "human_parts"):
        assert sample[task].shape == (32, 48) and sample[task].dtype == torch.int64
    for task in ("depth", "saliency", "edge"):
        assert sample[task].shape == (1, 32, 48) and sample[task].dtype == torch.float32
    assert sample["normals"].shape == (3, 32, 48)
    assert sample["valid"].dtype == torch.bool
    assert sample["size"].tolist() == [32, 48]
    # Padding (from scales below 1) carries the ignore values; real pixels are valid.
    invalid = ~sample["valid"]
    assert (sample["semseg"][invalid] == 255).all()
    assert (sample["depth"][0][invalid] == 0).all()
    assert (sample["normals"][:, invalid] == 0).all()
    assert (sample["edge"][0][invalid] == 255).all()


def test_eval_pads_bottom_right_to_the_patch_multiple(nyud_cache):
    config = DataConfig(dataset="nyud", cache=str(nyud_cache))
    dataset = build_dataset(config, "val", ["semseg", "depth", "normals", "edge"], train=False)
    sample = dataset[0]
    record = CacheSource(nyud_cache, "val").read(0)

    assert sample["image"].shape == (3, 16, 16)  # 12x16 padded to multiples of 16
    assert sample["size"].tolist() == [12, 16]
    assert sample["valid"][:12].all() and not sample["valid"][12:].any()
    assert (sample["semseg"][12:] == 255).all() and (sample["edge"][0, 12:] == 255).all()
    assert (sample["depth"][0, 12:] == 0).all() and (sample["normals"][:, 12:] == 0).all()
    assert (sample["image"][:, 12:] == 0).all()  # the normalised mean colour
    np.testing.assert_array_equal(sample["semseg"][:12].numpy(), record["semseg"])
    np.testing.assert_array_equal(sample["depth"][0, :12].numpy(), record["depth"])
    np.testing.assert_array_equal(denormalize(sample["image"])[:12], record["image"])


def test_raw_folder_source_gives_the_same_samples_as_the_cache(nyud_cache, tmp_path):
    config = DataConfig(dataset="nyud", cache=str(nyud_cache))
    tasks = ("semseg", "depth", "normals", "edge")
    raw = ReaderSource(make_reader("nyud", tmp_path / "nyud"), "val")

    from_raw = dataset_from_source(raw, tasks, False, config)[0]
    from_cache = build_dataset(config, "val", list(tasks), train=False)[0]

    for key in ("image", "semseg", "depth", "edge", "valid", "size"):
        assert torch.equal(from_raw[key], from_cache[key]), key
    assert torch.allclose(from_raw["normals"], from_cache["normals"], atol=0.01)


def constant_record(size=(8, 10)) -> dict:
    h, w = size
    semseg = np.zeros(size, dtype=np.uint8)
    semseg[:, : w // 2] = 1  # left half class 1, right half class 0
    normals = np.zeros((3, h, w), dtype=np.float32)
    normals[0], normals[2] = 0.6, 0.8
    return {
        "image": np.full((h, w, 3), 128, dtype=np.uint8),
        "semseg": semseg,
        "depth": np.full(size, 4.0, dtype=np.float32),
        "normals": normals,
    }


def test_flip_mirrors_labels_and_negates_the_x_of_normals():
    transform = TrainTransform(("semseg", "depth", "normals"), (8, 10), (1.0, 1.0), augment=True)
    seen = set()
    for seed in range(20):
        out = transform(constant_record(), np.random.default_rng(seed))
        flipped = bool(out["semseg"][0, -1] == 1)
        seen.add(flipped)
        assert np.allclose(out["normals"][0], -0.6 if flipped else 0.6)
        assert np.allclose(out["normals"][2], 0.8)
    assert seen == {True, False}


def test_scaling_divides_depth_by_the_scale():
    transform = TrainTransform(("depth",), (16, 20), (2.0, 2.0), augment=True)

    out = transform(constant_record(), np.random.default_rng(0))

    assert out["depth"].shape == (1, 16, 20)
    assert np.allclose(out["depth"], 2.0)  # twice as large looks twice as close
    assert out["valid"].all()


def test_crops_are_redrawn_when_one_class_dominates(monkeypatch):
    record = constant_record((40, 40))
    record["semseg"][:] = 0
    record["semseg"][:12, :12] = 1  # a small corner of class 1
    transform = TrainTransform(("semseg",), (16, 16), (1.0, 1.0), augment=True)

    def balanced_share() -> float:
        crops = [transform(record, np.random.default_rng(s))["semseg"] for s in range(40)]
        return np.mean([0 < (c == 1).mean() < 0.75 and (c == 0).mean() < 0.75 for c in crops])

    with_retries = balanced_share()
    monkeypatch.setattr(transforms, "CROP_TRIES", 1)
    single_try = balanced_share()

    assert with_retries > single_try + 0.3


def test_eval_transform_leaves_sizes_that_fit_alone():
    out = EvalTransform(("semseg",), pad_multiple=4)(constant_record((8, 12)))

    assert out["semseg"].shape == (8, 12) and out["valid"].all()


def test_image_to_sample_and_back():
    rgb = np.random.default_rng(0).integers(0, 256, size=(20, 30, 3), dtype=np.uint8)

    sample = image_to_sample(rgb, pad_multiple=16)

    assert sample["image"].shape == (3, 32, 32)
    assert sample["size"].tolist() == [20, 30]
    assert sample["valid"][:20, :30].all() and sample["valid"].sum() == 600
    np.testing.assert_array_equal(denormalize(sample["image"])[:20, :30], rgb)
    with pytest.raises(BridgeNetError, match="expected an 8-bit RGB image"):
        image_to_sample(rgb[..., 0])


def test_dataloader_workers_open_their_own_handles(synthetic):
    dataset = build_dataset(synthetic, "val", ["semseg", "depth"], train=False)
    loader = DataLoader(dataset, batch_size=2, num_workers=2)

    batch = next(iter(loader))

    assert batch["image"].shape == (2, 3, 32, 48)
    assert batch["id"] == ["val-00000", "val-00001"]
    assert dataset.source._handle is None  # only the worker processes opened the file


def test_synthetic_cache_is_named_by_its_settings(synthetic, tmp_path):
    path = ensure_cache(synthetic)
    synthetic.synthetic.seed = 1
    other = ensure_cache(synthetic)

    assert path.name == f"synthetic-v{GENERATOR_VERSION}-32x48-4+2-seed0.h5"
    assert other.name == f"synthetic-v{GENERATOR_VERSION}-32x48-4+2-seed1.h5" and other.exists()

    synthetic.cache = str(path)  # an explicit cache made with seed 0, a recipe asking for seed 1
    with pytest.raises(BridgeNetError, match="other synthetic settings: seed=0 \\(recipe: 1\\)"):
        ensure_cache(synthetic)


def test_train_size_defaults():
    assert resolve_train_size(DataConfig(dataset="nyud")) == (448, 576)
    assert resolve_train_size(DataConfig(synthetic=SyntheticConfig(height=64, width=80))) == (
        64,
        80,
    )
    assert resolve_train_size(DataConfig(dataset="pascal", train_size=[256, 320])) == (256, 320)
    with pytest.raises(BridgeNetError, match="data.train_size expects"):
        resolve_train_size(DataConfig(train_size=[256]))
