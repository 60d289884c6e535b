"""Tiny dataset folders in exactly the published on-disk formats, with known values.

Each writer returns what the reader must make of the files, so tests compare against values
stated here rather than recomputed with the code under test.
"""

import json
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import savemat

H, W = 12, 16  # fixture image size


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


# ----------------------------------------------------------------------------------------------
# NYUD-v2
# ----------------------------------------------------------------------------------------------


def nyud_sample(seed: int) -> dict[str, np.ndarray]:
    """Raw NYUD values: 0-40 labels, metres with invalid zeros, unit normals, 0/1 edges."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((H, W), dtype=np.uint8)  # 0 = unlabelled
    labels[:, 4:8] = 1  # wall -> class 0
    labels[:, 8:12] = 40  # otherprop -> class 39
    labels[:, 12:] = 5  # chair -> class 4
    depth = np.full((H, W), 2.5, dtype=np.float32)
    depth[:3, :3] = 0.0  # invalid
    depth[6:, :] = 4.25
    normals = _unit(rng.normal(size=(H, W, 3))).astype(np.float32)
    edge = np.zeros((H, W), dtype=np.uint8)
    edge[:, 7] = 1
    image = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    return {"image": image, "labels": labels, "depth": depth, "normals": normals, "edge": edge}


def write_nyud(root: Path, package: str, ids: dict[str, list[str]]) -> dict[str, dict]:
    """A NYUD folder of ``package`` "nyudv2" (PNG) or "nyud_mt" (JPEG + .npy); returns raw
    values per id, with ``invalid_normals`` marking pixels written as invalid."""
    samples = {}
    for split, split_ids in ids.items():
        (root / "gt_sets").mkdir(parents=True, exist_ok=True)
        (root / "gt_sets" / f"{split}.txt").write_text("".join(f"{i}\n" for i in split_ids))
        for n, sample_id in enumerate(split_ids):
            s = nyud_sample(hash((split, n)) % 1000)
            invalid = np.zeros((H, W), dtype=bool)
            invalid[-2:, -3:] = True
            if package == "nyudv2":
                _png(root / "images" / f"{sample_id}.png", s["image"])
                encoded = np.round((s["normals"] + 1.0) * 127.5).astype(np.uint8)
                encoded[invalid] = 128  # mid-grey: the zero vector of an 8-bit normal map
                _png(root / "normals" / f"{sample_id}.png", encoded)
                _png(root / "edge" / f"{sample_id}.png", s["edge"] * 255)
            else:
                (root / "images").mkdir(parents=True, exist_ok=True)
                Image.fromarray(s["image"]).save(root / "images" / f"{sample_id}.jpg", quality=95)
                normals = s["normals"].copy()
                normals[invalid] = 0.0
                for folder in ("normals", "edge"):
                    (root / folder).mkdir(parents=True, exist_ok=True)
                np.save(root / "normals" / f"{sample_id}.npy", normals)
                np.save(root / "edge" / f"{sample_id}.npy", s["edge"].astype(np.float32))
            _png(root / "segmentation" / f"{sample_id}.png", s["labels"])
            (root / "depth").mkdir(parents=True, exist_ok=True)
            np.save(root / "depth" / f"{sample_id}.npy", s["depth"])
            samples[sample_id] = {**s, "invalid_normals": invalid}
    return samples


# ----------------------------------------------------------------------------------------------
# PASCAL-Context (multi-task package)
# ----------------------------------------------------------------------------------------------


def _struct_array(dtype: list[tuple[str, str]], rows: list[tuple]) -> np.ndarray:
    """A 1xN MATLAB struct array for scipy.io.savemat."""
    array = np.empty((1, len(rows)), dtype=dtype)
    for i, row in enumerate(rows):
        for (name, _), value in zip(dtype, row, strict=True):
            array[0, i][name] = value
    return array


def write_parts_mat(path: Path, objects: list[tuple[str, int, np.ndarray, list]]) -> None:
    """A PASCAL-Part annotation: ``anno.objects(k)`` with class, class_ind, mask and
    ``parts(j)`` with part_name and mask, as the dataset's .mat files hold them."""
    object_rows = []
    for name, class_index, mask, parts in objects:
        if parts:
            part_rows = [(part_name, part_mask.astype(np.uint8)) for part_name, part_mask in parts]
            part_array = _struct_array([("part_name", "O"), ("mask", "O")], part_rows)
        else:
            part_array = np.zeros((0, 0))  # MATLAB []
        object_rows.append(
            (name, np.array([[class_index]], dtype=np.uint8), mask.astype(np.uint8), part_array)
        )
    objects_array = _struct_array(
        [("class", "O"), ("class_ind", "O"), ("mask", "O"), ("parts", "O")], object_rows
    )
    anno = _struct_array([("imname", "O"), ("objects", "O")], [(path.stem, objects_array)])
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"anno": anno})


def write_pascal(root: Path, ids: dict[str, list[str]]) -> dict[str, dict]:
    """A PASCAL-Context folder. Every sample: semseg with background/person/ignore, a context
    label map split in a left part (wall, 440: normals valid) and a right part (aeroplane, 2:
    normals invalid) at column 8, saliency 100 (not salient) / 200 (salient), and a person with
    head, neck, left lower arm and right foot parts plus a dog with parts (ignored). The first
    id's semseg lives only under semseg/pascal-context; the last id has no person."""
    samples = {}
    rng = np.random.default_rng(0)
    for split, split_ids in ids.items():
        folder = root / "ImageSets" / "Context"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{split}.txt").write_text("".join(f"{i}\n" for i in split_ids))
        for sample_id in split_ids:
            image = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
            (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / "JPEGImages" / f"{sample_id}.jpg", quality=95)

            semseg = np.zeros((H, W), dtype=np.uint8)
            semseg[2:10, 2:6] = 15  # person
            semseg[0, :] = 255
            first = sample_id == ids["train"][0]
            folder = "pascal-context" if first else "VOC12"
            _png(root / "semseg" / folder / f"{sample_id}.png", semseg)

            label_map = np.full((H, W), 440, dtype=np.uint16)
            label_map[:, 8:] = 2
            (root / "pascal-context" / "trainval").mkdir(parents=True, exist_ok=True)
            savemat(
                root / "pascal-context" / "trainval" / f"{sample_id}.mat", {"LabelMap": label_map}
            )

            normals = _unit(rng.normal(size=(H, W, 3)))
            _png(
                root / "normals_distill" / f"{sample_id}.png",
                np.round((normals + 1.0) * 127.5).astype(np.uint8),
            )
            saliency = np.full((H, W), 100, dtype=np.uint8)
            saliency[4:8, 4:8] = 200
            _png(root / "sal_distill" / f"{sample_id}.png", saliency)

            has_person = sample_id != ids["val"][-1]
            person = semseg == 15
            head = np.zeros((H, W), dtype=bool)
            head[2:4, 2:6] = True
            neck = np.zeros((H, W), dtype=bool)
            neck[4, 2:6] = True
            lower_arm = np.zeros((H, W), dtype=bool)
            lower_arm[5:7, 2] = True
            foot = np.zeros((H, W), dtype=bool)
            foot[9, 3:5] = True
            dog_mask = np.zeros((H, W), dtype=bool)
            dog_mask[10:, 10:] = True
            dog = ("dog", 12, dog_mask, [("head", dog_mask)])
            objects = [dog]
            if has_person:
                parts = [("head", head), ("neck", neck), ("llarm", lower_arm), ("rfoot", foot)]
                objects.insert(0, ("person", 15, person, parts))
            write_parts_mat(root / "human_parts" / f"{sample_id}.mat", objects)
            samples[sample_id] = {
                "semseg": semseg,
                "normals": normals,
                "has_person": has_person,
                "head": head,
                "neck": neck,
                "lower_arm": lower_arm,
                "foot": foot,
                "person": person,
            }
    return samples


# ----------------------------------------------------------------------------------------------
# Cityscapes
# ----------------------------------------------------------------------------------------------

CITY_IDS = np.array([7, 26, 0, 33, 9, 24, 23, 11], dtype=np.uint8)  # one label id per column pair
CITY_TRAIN = np.array([0, 13, 255, 18, 255, 11, 10, 2], dtype=np.uint8)  # their train ids


def write_cityscapes(root: Path, names: dict[str, list[str]], camera: bool = True) -> dict:
    """A Cityscapes folder (city "aachen"); disparity PNG values 0, 1, 257 and 25601 in rows."""
    expected = {}
    for split, split_names in names.items():
        for name in split_names:
            sample_id = f"aachen/{name}"
            image = np.full((H, W, 3), 90, dtype=np.uint8)
            _png(root / "leftImg8bit" / split / f"{sample_id}_leftImg8bit.png", image)
            label_ids = np.repeat(CITY_IDS, 2)[None, :].repeat(H, axis=0)
            _png(root / "gtFine" / split / f"{sample_id}_gtFine_labelIds.png", label_ids)
            disparity = np.zeros((H, W), dtype=np.uint16)
            disparity[3:6] = 1  # (1 - 1) / 256 = 0: invalid as well
            disparity[6:9] = 257  # 1.0 pixel
            disparity[9:] = 25601  # 100.0 pixels
            _png(root / "disparity" / split / f"{sample_id}_disparity.png", disparity)
            if camera:
                path = root / "camera" / split / f"{sample_id}_camera.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                info = {"extrinsic": {"baseline": 0.2}, "intrinsic": {"fx": 2000.0, "fy": 2000.0}}
                path.write_text(json.dumps(info))
            expected[sample_id] = np.repeat(CITY_TRAIN, 2)[None, :].repeat(H, axis=0)
    return expected
