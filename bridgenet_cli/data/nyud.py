"""NYUD-v2 in either of the two packages that circulate (795 train / 654 val frames).

Both packages share the layout ``gt_sets/{train,val}.txt``, ``images/``, ``segmentation/``,
``depth/``, ``normals/`` and ``edge/``, and differ in encodings:

| | ``nyudv2`` (ATRC; InvPT, BridgeNet) | ``nyud_mt`` (ASTMT; MTI-Net) |
|---|---|---|
| RGB | ``images/<id>.png``, 425x560 | ``images/<id>.jpg``, 480x640 |
| normals | ``normals/<id>.png``, ``n = 2 v / 255 - 1`` | ``normals/<id>.npy``, float in [-1, 1] |
| edge | ``edge/<id>.png``, 0 / 255 | ``edge/<id>.npy``, 0 / 1 |

Semantic labels are ``segmentation/<id>.png`` with 0 = unlabelled and 1..40 the classes (stored
as 0..39, unlabelled as 255); depth is ``depth/<id>.npy`` in metres, 0 = invalid. The package is
detected from the extension of the first training image.
"""

import numpy as np

from bridgenet_cli.data.readers import READERS, FolderReader
from bridgenet_cli.data.records import (
    IGNORE,
    SampleError,
    SampleFiles,
    as_rgb,
    decode_normals,
    decode_normals_png,
    image_size,
    single_channel,
)
from bridgenet_cli.errors import BridgeNetError

# TODO(nyud-raw): the original labelled release (nyu_depth_v2_labeled.mat, 894 raw classes mapped
# to 40 by classMapping40, or to 13 for MTAN/LibMTL) is not read; only the two packages are.
VARIANTS = {
    # variant: (image extension, normals extension, edge extension)
    "nyudv2": (".png", ".png", ".png"),
    "nyud_mt": (".jpg", ".npy", ".npy"),
}
TASK_FOLDERS = {"semseg": "segmentation", "depth": "depth", "normals": "normals", "edge": "edge"}
NUM_CLASSES = 40


@READERS.register("nyud")
class NyudReader(FolderReader):
    dataset = "nyud"

    def detect_variant(self) -> str:
        if not (self.root / "images").is_dir():
            raise BridgeNetError(
                f"nyud folder {self.root} has no images/ folder",
                "pass the folder that holds images/, gt_sets/, depth/, ... with --root",
            )
        first = self.split_ids("train")[0]
        for variant, (image_ext, _, _) in VARIANTS.items():
            if (self.root / "images" / f"{first}{image_ext}").is_file():
                return variant
        raise BridgeNetError(
            f"nyud folder {self.root}: neither images/{first}.png (NYUDv2 package) nor "
            f"images/{first}.jpg (NYUD_MT package) exists",
            "check that gt_sets/train.txt matches the files in images/",
        )

    def check_task_folder(self, task: str) -> None:
        folder = TASK_FOLDERS[task]
        if not (self.root / folder).is_dir():
            raise self.missing_folder(task, folder)

    def split_ids(self, split: str) -> list[str]:
        return self.read_split_file(f"gt_sets/{split}.txt")

    def options(self) -> dict[str, object]:
        return {"package": self.variant}

    def _paths(self, sample_id: str) -> dict[str, str]:
        image_ext, normals_ext, edge_ext = VARIANTS[self.variant]
        return {
            "image": f"images/{sample_id}{image_ext}",
            "semseg": f"segmentation/{sample_id}.png",
            "depth": f"depth/{sample_id}.npy",
            "normals": f"normals/{sample_id}{normals_ext}",
            "edge": f"edge/{sample_id}{edge_ext}",
        }

    def output_size(self, split: str, sample_id: str) -> tuple[int, int]:
        return image_size(self.root / self._paths(sample_id)["image"])

    def decode(self, files: SampleFiles, split: str, sample_id: str) -> dict[str, np.ndarray]:
        paths = self._paths(sample_id)
        record = {"image": as_rgb(files.image(paths["image"], "RGB"), paths["image"])}

        if "semseg" in self.tasks:
            raw = single_channel(files.image(paths["semseg"]), paths["semseg"]).astype(np.int64)
            if raw.max(initial=0) > NUM_CLASSES:
                raise SampleError(
                    f"{paths['semseg']}: label {int(raw.max())} out of range "
                    f"(0 = unlabelled, 1..{NUM_CLASSES} = classes)"
                )
            record["semseg"] = np.where(raw == 0, IGNORE, raw - 1).astype(np.uint8)

        if "depth" in self.tasks:
            depth = single_channel(np.squeeze(files.npy(paths["depth"])), paths["depth"])
            record["depth"] = depth.astype(np.float32)

        if "normals" in self.tasks:
            if self.variant == "nyudv2":
                record["normals"] = decode_normals_png(
                    files.image(paths["normals"]), paths["normals"]
                )
            else:
                vectors = files.npy(paths["normals"])
                if vectors.ndim == 3 and vectors.shape[2] == 3:
                    vectors = vectors.transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)
                if vectors.ndim != 3 or vectors.shape[0] != 3:
                    raise SampleError(
                        f"{paths['normals']}: expected (H, W, 3), got {vectors.shape}"
                    )
                record["normals"] = decode_normals(vectors)

        if "edge" in self.tasks:
            if self.variant == "nyudv2":
                edge = single_channel(files.image(paths["edge"]), paths["edge"])
                record["edge"] = (edge > 127).astype(np.uint8)
            else:
                edge = single_channel(np.squeeze(files.npy(paths["edge"])), paths["edge"])
                record["edge"] = (edge > 0.5).astype(np.uint8)
        return record
