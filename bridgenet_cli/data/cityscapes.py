"""Cityscapes (2975 train / 500 val): 19 classes and disparity, or metric depth.

Layout below the root (``<id>`` is ``<city>/<city>_<seq>_<frame>``):

- images ``leftImg8bit/<split>/<id>_leftImg8bit.png`` (the splits are these folders);
- semseg ``gtFine/<split>/<id>_gtFine_labelIds.png``: label ids 0..33 mapped to the 19 train ids
  with the official table (``cityscapesscripts.helpers.labels`` when installed, else the same
  facts in :data:`CITYSCAPES_ID_TO_TRAIN_ID`); every other id is ignore (255);
- depth ``disparity/<split>/<id>_disparity.png`` (uint16 ``p``): disparity ``(p - 1) / 256`` for
  ``p > 0``, 0 = invalid. With ``depth="metres"`` it becomes ``baseline * fx / disparity`` from
  ``camera/<split>/<id>_camera.json``.

``size=(384, 768)`` downsamples as the BridgeNet paper does: the image bilinearly, labels and
disparity by nearest neighbour. Disparity values are kept in pixels of the full 2048-wide frame,
so numbers stay comparable across resolutions (metric depth does not depend on it).
"""

import numpy as np

from bridgenet_cli.data.info import CITYSCAPES_ID_TO_TRAIN_ID
from bridgenet_cli.data.readers import READERS, FolderReader, with_depth_unit
from bridgenet_cli.data.records import (
    IGNORE,
    SampleError,
    SampleFiles,
    as_rgb,
    image_size,
    same_shape_or_error,
    single_channel,
)
from bridgenet_cli.errors import BridgeNetError

DEPTH_UNITS = ("disparity", "metres")


def train_id_table() -> np.ndarray:
    """Lookup table ``(256,)`` uint8: label id -> train id, 255 for ignored or unknown ids."""
    table = np.full(256, IGNORE, dtype=np.uint8)
    try:
        from cityscapesscripts.helpers.labels import labels
    except ImportError:
        table[: len(CITYSCAPES_ID_TO_TRAIN_ID)] = CITYSCAPES_ID_TO_TRAIN_ID
        return table
    for label in labels:
        if 0 <= label.id < 256 and label.trainId not in (-1, 255):
            table[label.id] = label.trainId
    return table


MAX_LABEL_ID = len(CITYSCAPES_ID_TO_TRAIN_ID) - 1


@READERS.register("cityscapes")
class CityscapesReader(FolderReader):
    dataset = "cityscapes"

    def __init__(
        self, root, tasks=None, size: tuple[int, int] | None = None, depth: str = "disparity"
    ):
        if depth not in DEPTH_UNITS:
            raise BridgeNetError(
                f"unknown Cityscapes depth unit {depth!r}", f"use one of {', '.join(DEPTH_UNITS)}"
            )
        self.size = tuple(size) if size else None
        self.depth_unit = depth
        self._table = train_id_table()
        super().__init__(root, tasks)

    @property
    def info(self):
        return with_depth_unit(super().info, self.depth_unit)

    def detect_variant(self) -> str:
        if not (self.root / "leftImg8bit").is_dir():
            raise BridgeNetError(
                f"cityscapes folder {self.root} has no leftImg8bit/ folder",
                "pass the folder that holds leftImg8bit/, gtFine/ and disparity/ as --root",
            )
        return "fine"

    def check_task_folder(self, task: str) -> None:
        folders = {"semseg": ["gtFine"], "depth": ["disparity"]}[task]
        if task == "depth" and self.depth_unit == "metres":
            folders.append("camera")
        for folder in folders:
            if not (self.root / folder).is_dir():
                raise self.missing_folder(task, folder)

    def split_ids(self, split: str) -> list[str]:
        folder = self.root / "leftImg8bit" / split
        if not folder.is_dir():
            raise BridgeNetError(
                f"cityscapes folder {self.root} has no split folder leftImg8bit/{split}",
                "check that --root is the folder that holds leftImg8bit/",
            )
        suffix = "_leftImg8bit.png"
        ids = sorted(
            f"{path.parent.name}/{path.name[: -len(suffix)]}"
            for path in folder.glob(f"*/*{suffix}")
        )
        if not ids:
            raise BridgeNetError(
                f"cityscapes split folder {folder} holds no *{suffix} images", "restore the images"
            )
        return ids

    def options(self) -> dict[str, object]:
        return {"size": list(self.size) if self.size else None, "depth": self.depth_unit}

    def prepare_command(self) -> str:
        command = super().prepare_command()
        if self.size:
            command += f" --size {self.size[0]}x{self.size[1]}"
        if self.depth_unit != "disparity":
            command += f" --depth {self.depth_unit}"
        return command

    def output_size(self, split: str, sample_id: str) -> tuple[int, int]:
        size = image_size(self.root / f"leftImg8bit/{split}/{sample_id}_leftImg8bit.png")
        return self.size or size

    def decode(self, files: SampleFiles, split: str, sample_id: str) -> dict[str, np.ndarray]:
        image_path = f"leftImg8bit/{split}/{sample_id}_leftImg8bit.png"
        record = {"image": as_rgb(files.image(image_path, "RGB"), image_path)}

        if "semseg" in self.tasks:
            path = f"gtFine/{split}/{sample_id}_gtFine_labelIds.png"
            ids = single_channel(files.image(path), path)
            if ids.max(initial=0) > MAX_LABEL_ID:
                raise SampleError(
                    f"{path}: label id {int(ids.max())} out of range (0..{MAX_LABEL_ID})"
                )
            record["semseg"] = self._table[ids]

        if "depth" in self.tasks:
            path = f"disparity/{split}/{sample_id}_disparity.png"
            raw = single_channel(files.image(path), path)
            if raw.dtype not in (np.uint16, np.int32, np.uint8):
                raise SampleError(f"{path}: expected a 16-bit PNG, got {raw.dtype}")
            raw = raw.astype(np.float32)
            disparity = np.where(raw > 0, (raw - 1.0) / 256.0, 0.0).astype(np.float32)
            if self.depth_unit == "metres":
                record["depth"] = self._metric_depth(files, split, sample_id, disparity)
            else:
                record["depth"] = disparity

        if self.size:
            same_shape_or_error(record, "image")
            record = resize_record(record, self.size)
        return record

    def _metric_depth(self, files, split, sample_id, disparity: np.ndarray) -> np.ndarray:
        path = f"camera/{split}/{sample_id}_camera.json"
        camera = files.json(path)
        try:
            baseline = float(camera["extrinsic"]["baseline"])
            fx = float(camera["intrinsic"]["fx"])
        except (KeyError, TypeError, ValueError):
            raise SampleError(f"{path}: no extrinsic.baseline or intrinsic.fx") from None
        valid = disparity > 0
        depth = np.zeros_like(disparity)
        depth[valid] = baseline * fx / disparity[valid]
        return depth


def resize_record(record: dict[str, np.ndarray], size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Image bilinear, every other map nearest-neighbour, to ``size`` ``(H, W)``."""
    from PIL import Image

    H, W = size
    resized = {}
    for key, value in record.items():
        if key == "image":
            resized[key] = np.array(Image.fromarray(value).resize((W, H), Image.BILINEAR))
        else:
            h, w = value.shape[-2:]
            rows = np.minimum(((np.arange(H) + 0.5) * h / H).astype(np.int64), h - 1)
            cols = np.minimum(((np.arange(W) + 0.5) * w / W).astype(np.int64), w - 1)
            resized[key] = np.ascontiguousarray(value[..., rows, :][..., cols])
    return resized
