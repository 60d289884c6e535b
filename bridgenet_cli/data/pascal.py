"""PASCAL-Context for multi-task learning ("PASCALContext" / "PASCAL_MT"; 4998 train / 5105 val).

Layout below the root:

- splits ``ImageSets/Context/{train,val}.txt``; images ``JPEGImages/<id>.jpg``;
- semseg ``semseg/VOC12/<id>.png``, else ``semseg/pascal-context/<id>.png``: 21 classes
  (background + 20 VOC classes), 255 = ignore;
- human parts ``human_parts/<id>.mat``: the PASCAL-Part ``anno`` struct; the parts of every
  person object (``class_ind`` 15) map to 7 classes (:data:`PASCAL_PERSON_PARTS`); an image with
  no annotated person gets an all-ignore (255) target;
- edge from ``pascal-context/trainval/<id>.mat`` (``LabelMap``): Laplacian non-zero, thinned;
- normals ``normals_distill/<id>.png`` (``n = 2 v / 255 - 1``), valid only where the context
  label is one of :data:`PASCAL_CONTEXT_NORMALS_VALID` (zero elsewhere);
- saliency ``sal_distill/<id>.png``, salient where ``v / 255 > 0.5``.

Unlike the published loaders, nothing (such as a parts cache) is written into the folder.
"""

import numpy as np

from bridgenet_cli.data.info import (
    PASCAL_CONTEXT_NORMALS_VALID,
    PASCAL_PERSON_CLASS,
    PASCAL_PERSON_PARTS,
)
from bridgenet_cli.data.readers import READERS, FolderReader
from bridgenet_cli.data.records import (
    IGNORE,
    SampleError,
    SampleFiles,
    as_rgb,
    decode_normals_png,
    edges_from_label_map,
    image_size,
    single_channel,
)
from bridgenet_cli.errors import BridgeNetError

SEMSEG_FOLDERS = ("semseg/VOC12", "semseg/pascal-context")
CONTEXT_FOLDER = "pascal-context/trainval"
TASK_FOLDERS = {
    "human_parts": ("human_parts",),
    "saliency": ("sal_distill",),
    "normals": ("normals_distill", CONTEXT_FOLDER),
    "edge": (CONTEXT_FOLDER,),
}

_VALID_IDS = np.array(sorted(PASCAL_CONTEXT_NORMALS_VALID))


@READERS.register("pascal")
class PascalReader(FolderReader):
    dataset = "pascal"

    def detect_variant(self) -> str:
        if not (self.root / "JPEGImages").is_dir():
            raise BridgeNetError(
                f"pascal folder {self.root} has no JPEGImages/ folder",
                "pass the PASCALContext folder (JPEGImages/, ImageSets/, semseg/, ...) as --root",
            )
        return "pascal_mt"

    def check_task_folder(self, task: str) -> None:
        if task == "semseg":
            if not any((self.root / f).is_dir() for f in SEMSEG_FOLDERS):
                raise self.missing_folder(task, SEMSEG_FOLDERS[0])
            return
        for folder in TASK_FOLDERS[task]:
            if not (self.root / folder).is_dir():
                raise self.missing_folder(task, folder)

    def split_ids(self, split: str) -> list[str]:
        return self.read_split_file(f"ImageSets/Context/{split}.txt")

    def output_size(self, split: str, sample_id: str) -> tuple[int, int]:
        return image_size(self.root / f"JPEGImages/{sample_id}.jpg")

    def decode(self, files: SampleFiles, split: str, sample_id: str) -> dict[str, np.ndarray]:
        image_path = f"JPEGImages/{sample_id}.jpg"
        record = {"image": as_rgb(files.image(image_path, "RGB"), image_path)}
        H, W = record["image"].shape[:2]

        if "semseg" in self.tasks:
            path = next(
                (
                    f"{f}/{sample_id}.png"
                    for f in SEMSEG_FOLDERS
                    if files.exists(f"{f}/{sample_id}.png")
                ),
                f"{SEMSEG_FOLDERS[0]}/{sample_id}.png",
            )
            record["semseg"] = single_channel(files.image(path), path).astype(np.uint8)

        label_map = None
        if "edge" in self.tasks or "normals" in self.tasks:
            path = f"{CONTEXT_FOLDER}/{sample_id}.mat"
            mat = files.mat(path)
            if "LabelMap" not in mat:
                raise SampleError(f"{path} has no LabelMap variable")
            label_map = np.asarray(mat["LabelMap"])
            if label_map.shape != (H, W):
                raise SampleError(
                    f"size mismatch: {path} LabelMap is {_hw(label_map)}, image is {H}x{W}"
                )

        if "human_parts" in self.tasks:
            record["human_parts"] = human_parts_from_mat(
                files.mat(f"human_parts/{sample_id}.mat"), f"human_parts/{sample_id}.mat", (H, W)
            )

        if "saliency" in self.tasks:
            path = f"sal_distill/{sample_id}.png"
            saliency = single_channel(files.image(path), path)
            record["saliency"] = (saliency.astype(np.float32) / 255.0 > 0.5).astype(np.uint8)

        if "normals" in self.tasks:
            path = f"normals_distill/{sample_id}.png"
            normals = decode_normals_png(files.image(path), path)
            if normals.shape[-2:] == label_map.shape:
                normals[:, ~np.isin(label_map, _VALID_IDS)] = 0.0
            record["normals"] = normals

        if "edge" in self.tasks:
            record["edge"] = edges_from_label_map(label_map)
        return record


def _hw(array: np.ndarray) -> str:
    return "x".join(str(s) for s in array.shape[:2])


def _struct_list(value) -> list:
    """MATLAB struct arrays come back as a struct, an array of structs or an empty array."""
    if isinstance(value, np.ndarray):
        return [] if value.size == 0 else list(value.ravel())
    return [value]


def human_parts_from_mat(mat: dict, relative: str, size: tuple[int, int]) -> np.ndarray:
    """The 7-class parts map of the persons in a PASCAL-Part ``anno`` struct.

    Pixels of annotated parts get their class (1..6), everything else 0; an image without a
    person that has part annotations gets 255 everywhere (left out of the parts metric).
    """
    if "anno" not in mat:
        raise SampleError(f"{relative} has no 'anno' struct")
    anno = mat["anno"]
    objects = _struct_list(getattr(anno, "objects", np.empty(0)))
    target = None
    for obj in objects:
        class_index = int(np.asarray(obj.class_ind).ravel()[0])
        parts = _struct_list(obj.parts)
        if class_index != PASCAL_PERSON_CLASS or not parts:
            continue
        if target is None:
            target = np.zeros(size, dtype=np.uint8)
        for part in parts:
            name = str(part.part_name)
            if name not in PASCAL_PERSON_PARTS:
                raise SampleError(f"{relative}: unknown person part {name!r}")
            mask = np.asarray(part.mask).astype(bool)
            if mask.shape != size:
                image = f"{size[0]}x{size[1]}"
                raise SampleError(
                    f"size mismatch: {relative} part mask is {_hw(mask)}, image is {image}"
                )
            target[mask] = PASCAL_PERSON_PARTS[name]
    if target is None:
        return np.full(size, IGNORE, dtype=np.uint8)
    return target
