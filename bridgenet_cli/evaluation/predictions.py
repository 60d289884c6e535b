"""The prediction file format: ``DIR/<task>/<sample id>.<ext>``, written and read.

| task | file | content |
|---|---|---|
| semseg, human_parts | ``.png`` | 8-bit single-channel (grayscale or palette) class ids |
| depth | ``.npy`` | float32 ``(H, W)`` in the dataset's unit (metres; disparity on Cityscapes) |
| normals | ``.npy`` | float32 ``(H, W, 3)``, x y z in the camera frame (normalised when scored) |
| saliency, edge | ``.png`` | 8-bit single-channel probability, ``round(255 * p)`` |

``H, W`` is the image's native size. A sample id with ``/`` makes sub-folders.
``--save-predictions`` writes this format and offline evaluation reads it; online evaluation
scores the same 8-bit probabilities and float32 arrays, so both give the same numbers.
"""

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.io import atomic_write
from bridgenet_cli.tasks import TASKS

logger = logging.getLogger(__name__)

EXTENSIONS = {"classes": ".png", "depth": ".npy", "normals": ".npy", "binary": ".png"}
SHOWN = 5  # offenders listed in an error message


def extension(task: str) -> str:
    return EXTENSIONS[TASKS.get(task).kind]


def describe_format(task: str) -> str:
    return {
        "classes": "an 8-bit single-channel PNG of class ids",
        "depth": "a float32 .npy of shape (H, W)",
        "normals": "a float32 .npy of shape (H, W, 3)",
        "binary": "an 8-bit single-channel PNG of probabilities (0-255)",
    }[TASKS.get(task).kind]


# ----------------------------------------------------------------------------------------------
# Conversions
# ----------------------------------------------------------------------------------------------


def _numpy(value: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return (
            value.detach().float().cpu().numpy()
            if value.is_floating_point()
            else (value.detach().cpu().numpy())
        )
    return np.asarray(value)


def prediction_array(task: str, pred: torch.Tensor | np.ndarray) -> np.ndarray:
    """One image's post-processed prediction (``TASKS[task].postprocess`` output, without the
    batch axis: ``(H, W)`` class ids, ``(1, H, W)`` depth or probability, ``(3, H, W)`` normals)
    in its saved form (see the module docstring)."""
    kind = TASKS.get(task).kind
    array = _numpy(pred)
    if kind == "classes":
        return array.astype(np.uint8)
    if kind == "depth":
        return array.reshape(array.shape[-2:]).astype(np.float32)
    if kind == "normals":
        return np.ascontiguousarray(np.moveaxis(array.reshape(3, *array.shape[-2:]), 0, -1)).astype(
            np.float32
        )
    probability = array.reshape(array.shape[-2:]).astype(np.float64)
    return np.round(np.clip(probability, 0.0, 1.0) * 255.0).astype(np.uint8)


def target_array(task: str, target: torch.Tensor | np.ndarray) -> np.ndarray:
    """A sample's label (``docs/internals.md`` layout, padding already cut) in the canonical form
    the accumulators take: class ids int64 ``(H, W)``, depth float32 ``(H, W)``, normals float32
    ``(H, W, 3)``, saliency/edge uint8 ``(H, W)`` with 0, 1 and 255."""
    kind = TASKS.get(task).kind
    array = _numpy(target)
    if kind == "classes":
        return array.astype(np.int64)
    if kind == "depth":
        return array.reshape(array.shape[-2:]).astype(np.float32)
    if kind == "normals":
        return np.ascontiguousarray(np.moveaxis(array.reshape(3, *array.shape[-2:]), 0, -1)).astype(
            np.float32
        )
    values = array.reshape(array.shape[-2:])
    out = np.where(values == 255, 255, values > 0.5).astype(np.uint8)
    return out


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def prediction_path(root: Path, task: str, sample_id: str) -> Path:
    return Path(root) / task / f"{sample_id}{extension(task)}"


def check_output_folder(root: Path, tasks: list[str]) -> None:
    """Refuse a folder that already holds predictions for one of ``tasks`` (nothing is
    overwritten)."""
    for task in tasks:
        folder = Path(root) / task
        if folder.is_dir() and any(folder.iterdir()):
            raise BridgeNetError(
                f"{folder} already holds files",
                "save predictions into a new or empty folder",
            )


def save_prediction(root: Path, task: str, sample_id: str, array: np.ndarray) -> None:
    """Write one saved-form array (from :func:`prediction_array`)."""
    path = prediction_path(root, task, sample_id)
    if extension(task) == ".png":
        atomic_write(path, lambda tmp: Image.fromarray(array).save(tmp, format="PNG"))
    else:
        atomic_write(path, lambda tmp: _save_npy(tmp, array))


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array)


# ----------------------------------------------------------------------------------------------
# Reading and checking a folder
# ----------------------------------------------------------------------------------------------


def _first(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def folder_tasks(root: Path, dataset_tasks: tuple[str, ...]) -> list[str]:
    """The tasks a predictions folder holds (sub-folders), in the dataset's order."""
    root = Path(root)
    if not root.is_dir():
        raise BridgeNetError(
            f"predictions folder not found: {root}",
            "pass the folder written by --save-predictions (DIR/<task>/<sample id>.<ext>)",
        )
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [name for name in folders if name not in dataset_tasks]
    if unknown:
        raise BridgeNetError(
            f"{root}: sub-folders {', '.join(unknown)} are not tasks of this dataset "
            f"({', '.join(dataset_tasks)})",
            "name each sub-folder after a task, or remove the others",
        )
    if not folders:
        raise BridgeNetError(
            f"{root} holds no task sub-folders",
            f"expected DIR/<task>/<sample id>.<ext> with tasks among {', '.join(dataset_tasks)}",
        )
    return [task for task in dataset_tasks if task in folders]


def check_ids(root: Path, task: str, expected: list[str]) -> None:
    """Every expected sample has a file of the task's type, and there is nothing else."""
    folder = Path(root) / task
    ext = extension(task)
    found: set[str] = set()
    others: list[str] = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        relative = path.relative_to(folder).as_posix()
        if relative.endswith(ext):
            found.add(relative[: -len(ext)])
        else:
            others.append(relative)
    wanted = set(expected)
    missing = [i for i in expected if i not in found]
    extra = sorted(found - wanted) + others
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({_first(missing)})")
    if extra:
        problems.append(f"{len(extra)} unexpected ({_first(extra)})")
    if problems:
        raise BridgeNetError(
            f"{folder}: {' and '.join(problems)} of {len(expected)} {task} predictions "
            f"({ext} per sample id of the split)",
            "write one file per sample of the split, named <sample id>" + ext,
        )


def check_headers(root: Path, task: str, ids: list[str]) -> None:
    """File type, dtype and layout of every prediction of ``task`` (sizes are checked later)."""
    offenders = []
    for sample_id in ids:
        problem = _header_problem(prediction_path(root, task, sample_id), task)
        if problem:
            offenders.append(f"{sample_id}{extension(task)}: {problem}")
    if offenders:
        raise BridgeNetError(
            f"{Path(root) / task}: {len(offenders)} files of the wrong type: {_first(offenders)}",
            f"each {task} prediction must be {describe_format(task)}",
        )


def _header_problem(path: Path, task: str) -> str | None:
    kind = TASKS.get(task).kind
    try:
        if extension(task) == ".png":
            with Image.open(path) as image:
                allowed = ("L", "P") if kind == "classes" else ("L",)
                if image.format != "PNG":
                    return f"not a PNG ({image.format})"
                if image.mode not in allowed:
                    return f"mode {image.mode}, expected 8-bit single channel"
            return None
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        return f"unreadable ({str(exc).splitlines()[0][:80]})"
    want_ndim = 2 if kind == "depth" else 3
    if array.dtype != np.float32:
        return f"dtype {array.dtype}, expected float32"
    if array.ndim != want_ndim or (kind == "normals" and array.shape[-1] != 3):
        expected = "(H, W)" if kind == "depth" else "(H, W, 3)"
        return f"shape {tuple(array.shape)}, expected {expected}"
    return None


def read_prediction(root: Path, task: str, sample_id: str) -> np.ndarray:
    """A prediction file as its saved-form array (its header is assumed checked)."""
    path = prediction_path(root, task, sample_id)
    if extension(task) == ".png":
        with Image.open(path) as image:
            return np.asarray(image, dtype=np.uint8)
    return np.load(path, allow_pickle=False)


class ContentChecker:
    """Collects predictions of the wrong size or with class ids the dataset does not have;
    raises once ``limit`` are seen (or at the end, for fewer)."""

    def __init__(self, root: Path, limit: int = SHOWN):
        self.root = Path(root)
        self.limit = limit
        self.offenders: list[str] = []

    def check(
        self, task: str, sample_id: str, pred: np.ndarray, size: tuple[int, int], classes: int
    ) -> bool:
        """True when ``pred`` can be scored against an image of ``size``."""
        name = f"{task}/{sample_id}{extension(task)}"
        problem = None
        if tuple(pred.shape[:2]) != tuple(size):
            problem = f"{name} is {pred.shape[0]}x{pred.shape[1]}, image {size[0]}x{size[1]}"
        elif TASKS.get(task).kind == "classes" and pred.size and int(pred.max()) >= classes:
            problem = f"{name} has class id {int(pred.max())}, the dataset has {classes} classes"
        if problem is None:
            return True
        self.offenders.append(problem)
        if len(self.offenders) >= self.limit:
            self.raise_if_any()
        return False

    def raise_if_any(self) -> None:
        if self.offenders:
            raise BridgeNetError(
                f"{self.root}: {len(self.offenders)} unusable predictions: "
                f"{_first(self.offenders)}",
                "save predictions at the image's native size (H, W), without padding, with class "
                "ids below the dataset's class count",
            )
