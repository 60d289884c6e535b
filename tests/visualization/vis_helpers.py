"""Small helpers shared by the visualisation tests."""

from pathlib import Path

import numpy as np
from PIL import Image


def open_rgb(path: str | Path) -> np.ndarray:
    """Open a PNG (checking it is one) and return its pixels as ``(H, W, 3)`` uint8."""
    with Image.open(path) as image:
        assert image.format == "PNG", path
        image.verify()
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def distinct_colours(rgb: np.ndarray) -> int:
    return len(np.unique(rgb.reshape(-1, 3), axis=0))


def fake_scene(height: int = 24, width: int = 32, seed: int = 0) -> dict[str, np.ndarray]:
    """An image with ground truth and predictions for every synthetic task, all varied."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    rows = np.arange(height)[:, None].repeat(width, 1)
    cols = np.arange(width)[None, :].repeat(height, 0)
    semseg = (cols * 4 // width).astype(np.int64)
    semseg[0, 0] = 255
    normals = np.stack([np.sin(cols / 5.0), np.cos(rows / 5.0), np.ones_like(rows, float)])
    normals /= np.linalg.norm(normals, axis=0, keepdims=True)
    truths = {
        "semseg": semseg,
        "human_parts": (rows * 3 // height).astype(np.int64),
        "depth": (1.0 + rows / height * 4.0)[None].astype(np.float32),
        "normals": normals.astype(np.float32),
        "saliency": (cols > width // 2).astype(np.float32)[None],
        "edge": (cols == width // 2).astype(np.float32)[None],
    }
    predictions = {
        "semseg": np.roll(truths["semseg"].clip(0, 3), 2, axis=1),
        "human_parts": truths["human_parts"],
        "depth": truths["depth"] * 1.1,
        "normals": truths["normals"],
        "saliency": rng.random((1, height, width)).astype(np.float32),
        "edge": rng.random((1, height, width)).astype(np.float32),
    }
    return {"image": image, "truths": truths, "predictions": predictions}
