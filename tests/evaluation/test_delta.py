"""Delta_MTL and the single-task references file."""

import json

import pytest

from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.evaluation.delta import delta_mtl, load_references, write_references


def test_delta_mtl_signs_and_mean(tmp_path):
    path = tmp_path / "refs.json"
    path.write_text(json.dumps({
        "dataset": "nyud",
        "tasks": {"semseg": {"miou": 40.0}, "depth": {"rmse": 0.5}, "normals": {"mean": 20.0}},
    }))  # fmt: skip
    results = {"semseg": {"miou": 44.0}, "depth": {"rmse": 0.45}, "normals": {"mean": 21.0}}
    report = delta_mtl(results, load_references(path), "nyud")
    # semseg +10 %, depth (lower is better) +10 %, normals (lower is better) -5 %
    assert report.gains["semseg"] == pytest.approx(10.0)
    assert report.gains["depth"] == pytest.approx(10.0)
    assert report.gains["normals"] == pytest.approx(-5.0)
    assert report.value == pytest.approx(5.0)


def test_missing_reference_gives_no_delta(tmp_path):
    path = tmp_path / "refs.json"
    path.write_text(json.dumps({"dataset": "nyud", "tasks": {"semseg": {"miou": 40.0}}}))
    report = delta_mtl({"semseg": {"miou": 40.0}, "depth": {"rmse": 1.0}}, load_references(path))
    assert report.value is None and report.missing == ["depth"]
    assert report.gains["semseg"] == pytest.approx(0.0)


def test_references_merge_across_stl_runs(tmp_path):
    path = tmp_path / "refs.json"
    write_references(path, {"semseg": {"miou": 40.0, "iou/wall": None}}, "nyud", "val", "a.pt")
    write_references(path, {"depth": {"rmse": 0.5}}, "nyud", "val", "b.pt")
    write_references(path, {"semseg": {"miou": 41.0}}, "nyud", "val", "c.pt")
    references = load_references(path)
    assert references.tasks == {"semseg": {"miou": 41.0}, "depth": {"rmse": 0.5}}
    assert references.sources == {"semseg": "c.pt", "depth": "b.pt"}
    with pytest.raises(BridgeNetError, match="holds references for nyud, not pascal"):
        write_references(path, {"semseg": {"miou": 1.0}}, "pascal", "val", "d.pt")


def test_reference_of_another_dataset_is_refused(tmp_path):
    path = tmp_path / "refs.json"
    write_references(path, {"semseg": {"miou": 40.0}}, "nyud", "val", "a.pt")
    with pytest.raises(BridgeNetError, match="references are for nyud"):
        delta_mtl({"semseg": {"miou": 1.0}}, load_references(path), "pascal")


def test_bad_references_files(tmp_path):
    with pytest.raises(BridgeNetError, match="references file not found"):
        load_references(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(BridgeNetError, match="not valid JSON"):
        load_references(bad)
    bad.write_text(json.dumps({"tasks": {}}))
    with pytest.raises(BridgeNetError, match="'dataset'"):
        load_references(bad)
