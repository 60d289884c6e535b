"""Study tables: gains over STL, Delta_MTL, and the Markdown, CSV, JSON and chart outputs."""

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from bridgenet_cli.ablation.tables import build_table, to_csv, to_markdown, write_tables
from bridgenet_cli.evaluation.delta import relative_gain

STL = {
    "semseg": {"semseg": {"miou": 50.0}},
    "depth": {"depth": {"rmse": 0.5}},
    "normals": {"normals": {"mean": 20.0}},
}


def sample_table():
    rows = [
        ("both", "set-semseg+depth", ["semseg", "depth"],
         {"semseg": {"miou": 55.0}, "depth": {"rmse": 0.45}}),
        ("geometry", "set-depth+normals", ["depth", "normals"],
         {"depth": {"rmse": 0.55}, "normals": {"mean": 19.0}}),
    ]  # fmt: skip
    return build_table("task-sets", "synthetic", ["semseg", "depth", "normals"], STL, rows)


@pytest.mark.parametrize(
    ("value", "reference", "higher", "expected"),
    [(55.0, 50.0, True, 10.0), (45.0, 50.0, True, -10.0), (0.45, 0.5, False, 10.0),
     (0.55, 0.5, False, -10.0)],
)  # fmt: skip
def test_relative_gain_follows_the_papers_sign_convention(value, reference, higher, expected):
    assert relative_gain(value, reference, higher) == pytest.approx(expected)


def test_relative_gain_of_a_zero_reference_is_undefined():
    assert relative_gain(1.0, 0.0, True) is None


def test_rows_hold_metrics_gains_and_delta_mtl():
    table = sample_table()

    stl, both, geometry = table.rows
    assert stl.metrics == {"semseg": 50.0, "depth": 0.5, "normals": 20.0}
    assert both.gains["semseg"] == pytest.approx(10.0)
    assert both.gains["depth"] == pytest.approx(10.0)
    assert both.gains["normals"] is None and both.metrics["normals"] is None
    assert both.delta_mtl == pytest.approx(10.0)
    assert geometry.delta_mtl == pytest.approx((-10.0 + 5.0) / 2)


def test_markdown_table_has_a_column_per_metric_and_gain():
    text = to_markdown(sample_table())

    lines = text.strip().splitlines()
    assert lines[0].startswith("| Model | Seg. mIoU ↑ | ΔSeg. (%) | Dep. rmse ↓")
    assert lines[0].endswith("Δ_MTL (%) ↑ |")
    assert len(lines) == 2 + 3
    assert "| both | 55.00 | +10.00 | 0.4500 | +10.00 | - | - | +10.00 |" in text


def test_csv_keeps_full_precision_and_empty_cells():
    rows = list(csv.DictReader(io.StringIO(to_csv(sample_table()))))

    assert [r["model"] for r in rows] == ["STL", "both", "geometry"]
    assert float(rows[2]["delta_mtl_pct"]) == pytest.approx(-2.5)
    assert rows[1]["normals.mean"] == ""


def test_write_tables_writes_every_format_and_a_chart(tmp_path):
    paths = write_tables(sample_table(), tmp_path)

    data = json.loads(paths["json"].read_text())
    assert data["rows"][1]["delta_mtl"] == pytest.approx(10.0)
    assert data["metrics"] == {"semseg": "miou", "depth": "rmse", "normals": "mean"}
    with Image.open(paths["chart"]) as chart:
        assert chart.format == "PNG" and chart.width > 300
        pixels = np.asarray(chart.convert("RGB")).reshape(-1, 3)
        assert len(np.unique(pixels, axis=0)) > 10  # bars, not a blank picture
    assert paths["markdown"].read_text() == to_markdown(sample_table())


def test_missing_metric_leaves_delta_mtl_empty():
    rows = [("one", "r", ["semseg", "depth"], {"semseg": {"miou": 55.0}, "depth": {}})]

    table = build_table("task-sets", "synthetic", ["semseg", "depth"], STL, rows)

    assert table.rows[1].gains["depth"] is None
    assert table.rows[1].delta_mtl is None


def test_a_column_uses_one_number_format():
    rows = [("low", "r", ["semseg"], {"semseg": {"miou": 5.8553}})]

    text = to_markdown(build_table("task-sets", "synthetic", ["semseg"], STL, rows))

    assert "| low | 5.86 |" in text and "| STL | 50.00 |" in text
