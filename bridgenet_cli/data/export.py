"""Synthetic scenes written as a NYUD folder in one of the real packages' formats.

For trying ``prepare-data`` and measuring the cache without the real dataset. Synthetic classes
map to their NYU-40 counterparts (shapes without one become "otherprop").
"""

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from bridgenet_cli.data.info import NYU40_CLASSES, SYNTHETIC_CLASSES
from bridgenet_cli.data.nyud import VARIANTS
from bridgenet_cli.data.synthetic import generate_sample
from bridgenet_cli.errors import BridgeNetError

logger = logging.getLogger(__name__)

SYNTHETIC_TO_NYU40 = {
    "floor": "floor",
    "wall": "wall",
    "ceiling": "ceiling",
    "box": "box",
    "sphere": "otherprop",
    "cylinder": "otherprop",
    "person": "person",
    "table": "table",
    "lamp": "lamp",
    "rug": "floor mat",
}


def export_nyud_folder(
    out: str | Path, package: str, num_train: int, num_val: int, height: int, width: int, seed: int
) -> Path:
    """Write ``num_train`` + ``num_val`` scenes into a new folder ``out`` in ``package`` format."""
    out = Path(out)
    if package not in VARIANTS:
        raise BridgeNetError(
            f"unknown NYUD package {package!r}", f"use one of {', '.join(VARIANTS)}"
        )
    if out.exists() and any(out.iterdir()):
        raise BridgeNetError(f"{out} already exists and is not empty", "choose a new folder")
    image_ext, normals_ext, edge_ext = VARIANTS[package]
    for folder in ("gt_sets", "images", "segmentation", "depth", "normals", "edge"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    # NYU-40 PNG values are class index + 1 (0 = unlabelled).
    lut = np.array(
        [NYU40_CLASSES.index(SYNTHETIC_TO_NYU40[name]) + 1 for name in SYNTHETIC_CLASSES],
        dtype=np.uint8,
    )

    for split, count in (("train", num_train), ("val", num_val)):
        ids = [f"{split}{index:05d}" for index in range(count)]
        (out / "gt_sets" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        for index, sample_id in enumerate(ids):
            record = generate_sample(seed, split, index, height, width)
            image = Image.fromarray(record["image"])
            if image_ext == ".jpg":
                image.save(out / "images" / f"{sample_id}.jpg", quality=95)
            else:
                image.save(out / "images" / f"{sample_id}.png")
            Image.fromarray(lut[record["semseg"]]).save(out / "segmentation" / f"{sample_id}.png")
            np.save(out / "depth" / f"{sample_id}.npy", record["depth"].astype(np.float32))
            normals = record["normals"].transpose(1, 2, 0)  # (3, H, W) -> (H, W, 3)
            if normals_ext == ".png":
                encoded = np.clip(np.round((normals + 1.0) * 127.5), 0, 255).astype(np.uint8)
                Image.fromarray(encoded).save(out / "normals" / f"{sample_id}.png")
            else:
                np.save(out / "normals" / f"{sample_id}.npy", normals.astype(np.float32))
            if edge_ext == ".png":
                Image.fromarray(record["edge"] * 255).save(out / "edge" / f"{sample_id}.png")
            else:
                np.save(out / "edge" / f"{sample_id}.npy", record["edge"].astype(np.float32))
        logger.info("wrote %d %s scenes", count, split)
    return out
