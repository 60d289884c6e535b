"""Training curves from metrics.jsonl, and the offline HTML gallery."""

import json
import re
from pathlib import Path

import pytest

from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.visualization.curves import read_metrics, visualize_curves
from bridgenet_cli.visualization.gallery import GalleryItem, GallerySection, write_gallery

from .vis_helpers import distinct_colours, open_rgb


def write_metrics(run_dir: Path, broken_tail: bool = False) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for step in range(10, 110, 10):
        lines.append(
            {"iter": step, "split": "train", "loss": 3.0 / step, "loss_semseg": 2.0 / step,
             "loss_depth": 1.0 / step, "lr": 1e-3 * (1 - step / 120), "images_per_s": 12.5}
        )  # fmt: skip
        if step % 50 == 0:
            lines.append(
                {"iter": step, "split": "val", "semseg": {"miou": step / 200, "pixel_acc": 0.7,
                                                          "iou/wall": 0.5, "iou/floor": 0.6},
                 "depth": {"rmse": 1.0 / step}, "delta_mtl": step / 10}
            )  # fmt: skip
    text = "\n".join(json.dumps(line) for line in lines) + "\n"
    if broken_tail:
        text += '{"iter": 110, "split": "tr'
    (run_dir / "metrics.jsonl").write_text(text)


def test_read_metrics_flattens_and_skips_a_torn_last_line(tmp_path):
    write_metrics(tmp_path, broken_tail=True)

    metrics = read_metrics(tmp_path / "metrics.jsonl")

    assert metrics["train"]["loss_semseg"].iters[-1] == 100
    assert metrics["val"]["semseg.miou"].values == [0.25, 0.5]
    assert "iter" not in metrics["train"]


def test_curves_write_pictures_and_an_offline_index(tmp_path):
    run_dir = tmp_path / "run"
    write_metrics(run_dir)

    index = visualize_curves(run_dir, tmp_path / "out")

    names = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert names == [
        "learning_rate.png", "losses.png", "train_other.png", "val_depth.png", "val_other.png",
        "val_semseg.png", "val_semseg_per_class.png",
    ]  # fmt: skip
    for name in names:
        rgb = open_rgb(tmp_path / "out" / name)
        assert rgb.shape[0] > 200 and rgb.shape[1] > 300
        assert distinct_colours(rgb) > 10
    page = index.read_text()
    sources = re.findall(r'src="([^"]+)"', page)
    assert sorted(sources) == names  # every picture, by a relative path
    assert "http" not in page


def test_curves_of_a_folder_without_metrics_is_a_clear_error(tmp_path):
    with pytest.raises(BridgeNetError, match="no metrics file"):
        visualize_curves(tmp_path, tmp_path / "out")


def test_gallery_links_are_relative_and_escaped(tmp_path):
    (tmp_path / "sub").mkdir()
    picture = tmp_path / "sub" / "a b.png"
    picture.write_bytes(b"")

    index = write_gallery(
        tmp_path, "Title <1>", [GallerySection("S & T", [GalleryItem(picture, "x < y")])]
    )

    page = index.read_text()
    assert 'src="sub/a b.png"' in page
    assert "Title &lt;1&gt;" in page and "S &amp; T" in page and "x &lt; y" in page


def test_gallery_refuses_pictures_outside_its_folder(tmp_path):
    with pytest.raises(ValueError, match="outside the gallery folder"):
        write_gallery(tmp_path / "g", "t", [GallerySection("s", [GalleryItem(tmp_path / "x.png")])])
