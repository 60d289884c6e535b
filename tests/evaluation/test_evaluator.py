"""Online evaluation, saved predictions, offline evaluation of a predictions folder."""

import numpy as np
import pytest
import torch
from PIL import Image

from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.evaluation import evaluate_model, evaluate_predictions
from bridgenet_cli.evaluation.predictions import prediction_array, target_array
from tests.evaluation.helpers import SYNTHETIC_OVERRIDES, PixelModel, listing, synthetic_val

ALL = ["semseg", "human_parts", "depth", "normals", "saliency", "edge"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Online results of the pixel model and the predictions it saved."""
    folder = tmp_path_factory.mktemp("preds") / "predictions"
    with pytest.MonkeyPatch.context() as patch:
        # module scope runs before the per-test data folder of conftest.py: use the same one
        patch.setenv("BRIDGENET_DATA", str(tmp_path_factory.getbasetemp() / "bridgenet-data"))
        dataset = synthetic_val(ALL)
        model = PixelModel(ALL)
        results = evaluate_model(model, dataset, edge_workers=1, save_predictions_dir=folder)
    return results, folder, dataset


def test_online_results_cover_every_task(saved):
    results, _, _ = saved
    assert set(results) == set(ALL)
    assert results["edge"]["odsf"] is not None and results["depth"]["rmse"] > 0


def test_offline_reproduces_online(saved):
    results, folder, _ = saved
    report = evaluate_predictions(folder, "synthetic", "val", SYNTHETIC_OVERRIDES + [
        "eval.edge_workers=1"])  # fmt: skip
    assert report.results == results
    assert report.num_samples == 3


def test_saved_files_follow_the_format(saved):
    _, folder, dataset = saved
    files = listing(folder)
    assert len(files) == 6 * len(dataset)
    sample = dataset[0]
    h, w = (int(v) for v in sample["size"])
    semseg = np.asarray(Image.open(folder / "semseg" / f"{sample['id']}.png"))
    assert semseg.dtype == np.uint8 and semseg.shape == (h, w)
    normals = np.load(folder / "normals" / f"{sample['id']}.npy")
    assert normals.dtype == np.float32 and normals.shape == (h, w, 3)
    depth = np.load(folder / "depth" / f"{sample['id']}.npy")
    assert depth.dtype == np.float32 and depth.shape == (h, w)


def test_padding_is_cut_away():
    """Garbage predicted on the padding must not change anything."""
    dataset = synthetic_val(["semseg", "depth"])
    model = PixelModel(["semseg", "depth"])

    class PaddedWithGarbage(torch.nn.Module):
        tasks, dataset = model.tasks, model.dataset

        def forward(self, images):
            out = model(images)["final"]
            for value in out.values():  # the last 8 rows and columns are padding
                value[..., -8:, :] = 50.0
                value[..., :, -8:] = 50.0
            return {"final": out}

    class Padded(torch.utils.data.Dataset):
        info = dataset.info

        def __len__(self):
            return len(dataset)

        def __getitem__(self, index):
            sample = dict(dataset[index])
            sample["image"] = torch.nn.functional.pad(sample["image"], (0, 8, 0, 8))
            for task in ("semseg", "depth"):
                fill = 255 if task == "semseg" else 0
                sample[task] = torch.nn.functional.pad(sample[task], (0, 8, 0, 8), value=fill)
            return sample

    plain = evaluate_model(model, dataset)
    garbage = evaluate_model(PaddedWithGarbage(), Padded())
    assert garbage == plain


def test_batched_equals_one_by_one():
    dataset = synthetic_val(["semseg", "saliency"])
    model = PixelModel(["semseg", "saliency"])
    assert evaluate_model(model, dataset, batch_size=2) == evaluate_model(model, dataset)


def test_conversions_to_saved_form():
    logits = torch.tensor([[[0.2, 2.0]], [[1.0, -1.0]]])  # (K=2, 1, 2)
    assert prediction_array("semseg", logits.argmax(0)).tolist() == [[1, 0]]
    prob = torch.tensor([[[0.0, 0.5, 1.0]]])
    assert prediction_array("edge", prob).tolist() == [[0, 128, 255]]
    normals = torch.zeros(3, 2, 2)
    normals[2] = 1
    assert prediction_array("normals", normals).shape == (2, 2, 3)
    target = torch.tensor([[[0.0, 1.0, 255.0]]])
    assert target_array("saliency", target).tolist() == [[0, 1, 255]]


# ---- bad prediction folders -------------------------------------------------------------------


def _copy(folder, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def _offline(folder):
    return evaluate_predictions(folder, "synthetic", "val", SYNTHETIC_OVERRIDES + [
        "eval.edge_benchmark=false"])  # fmt: skip


def test_missing_and_extra_ids_are_listed(saved, tmp_path):
    _, folder, dataset = saved
    broken = _copy(folder, tmp_path)
    first = dataset.ids[0]
    (broken / "depth" / f"{first}.npy").unlink()
    np.save(broken / "depth" / "intruder.npy", np.zeros((2, 2), np.float32))
    with pytest.raises(BridgeNetError) as error:
        _offline(broken)
    message = str(error.value)
    assert "1 missing" in message and first in message
    assert "1 unexpected" in message and "intruder" in message
    assert "\n" not in message


def test_wrong_dtypes_are_listed(saved, tmp_path):
    _, folder, dataset = saved
    broken = _copy(folder, tmp_path)
    first = dataset.ids[0]
    np.save(broken / "depth" / f"{first}.npy", np.zeros((40, 56), np.float64))
    with pytest.raises(BridgeNetError, match=rf"{first}\.npy: dtype float64, expected float32"):
        _offline(broken)
    broken = _copy(folder, tmp_path / "b")
    Image.new("RGB", (56, 40)).save(broken / "saliency" / f"{first}.png")
    with pytest.raises(BridgeNetError, match=r"mode RGB, expected 8-bit single channel"):
        _offline(broken)


def test_wrong_sizes_are_listed(saved, tmp_path):
    _, folder, dataset = saved
    broken = _copy(folder, tmp_path)
    for sample_id in dataset.ids[:2]:
        Image.fromarray(np.zeros((30, 56), np.uint8)).save(broken / "semseg" / f"{sample_id}.png")
    with pytest.raises(BridgeNetError) as error:
        _offline(broken)
    message = str(error.value)
    assert "2 unusable predictions" in message and "is 30x56, image 40x56" in message
    assert all(sample_id in message for sample_id in dataset.ids[:2])


def test_class_ids_beyond_the_dataset_are_listed(saved, tmp_path):
    _, folder, dataset = saved
    broken = _copy(folder, tmp_path)
    first = dataset.ids[0]
    Image.fromarray(np.full((40, 56), 12, np.uint8)).save(broken / "semseg" / f"{first}.png")
    with pytest.raises(BridgeNetError, match=rf"{first}\.png has class id 12, the dataset has 10"):
        _offline(broken)


def test_unknown_task_folder_and_missing_folder(saved, tmp_path):
    _, folder, _ = saved
    broken = _copy(folder, tmp_path)
    (broken / "segmentation").mkdir()
    with pytest.raises(BridgeNetError, match="segmentation"):
        _offline(broken)
    with pytest.raises(BridgeNetError, match="predictions folder not found"):
        _offline(tmp_path / "nowhere")


def test_saving_refuses_a_folder_with_predictions(saved):
    _, folder, dataset = saved
    with pytest.raises(BridgeNetError, match="already holds files"):
        evaluate_model(
            PixelModel(["semseg"]), synthetic_val(["semseg"]), save_predictions_dir=folder
        )
