"""The decoded form of a sample that every source produces, and the checks applied to it.

A *record* is a dict of numpy arrays, the same whether it comes from a raw dataset folder, the
synthetic generator or an HDF5 cache (transforms turn it into the tensors of a batch):

| key | dtype, shape | meaning |
|---|---|---|
| ``image`` | uint8 ``(H, W, 3)`` | RGB |
| ``semseg``, ``human_parts`` | uint8 ``(H, W)`` | class ids, 255 = ignore |
| ``depth`` | float32 ``(H, W)`` | dataset unit, 0 = invalid |
| ``normals`` | float32 ``(3, H, W)`` | unit vectors in the camera frame, zero vector = invalid |
| ``saliency``, ``edge`` | uint8 ``(H, W)`` | 0 / 1 |
| ``intrinsics`` | float32 ``(4,)`` | fx, fy, cx, cy in pixels (synthetic scenes only) |

Readers of real formats raise :class:`SampleError` for a sample they cannot use; the preparer
collects these into one summary (or skips the samples with ``--skip-bad``).
"""

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from bridgenet_cli.data.info import DatasetInfo

IGNORE = 255
EXTRA_KEYS = ("intrinsics",)  # per-sample arrays that are not task targets

# Decoded normals shorter than this are invalid: a stored zero vector, or the mid-grey value
# (127 or 128) of an 8-bit normal map, which is as close to zero as 8 bits get.
MIN_NORMAL_LENGTH = 0.5


class SampleError(Exception):
    """One sample cannot be used; the message names the file and the problem."""


class SampleFiles:
    """Reads the files of one sample below ``root``, hashing every byte it decodes.

    Each reader turns a missing or undecodable file into a :class:`SampleError` naming the file
    relative to ``root``; :meth:`digest` is the checksum of everything read, in order (empty
    with ``checksum=False``).
    """

    def __init__(self, root: Path, checksum: bool = True):
        self.root = root
        self._hash = hashlib.blake2b(digest_size=16) if checksum else None

    def exists(self, relative: str) -> bool:
        return (self.root / relative).is_file()

    def read_bytes(self, relative: str) -> bytes:
        path = self.root / relative
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SampleError(f"missing file {relative}") from None
        except OSError as exc:
            raise SampleError(f"unreadable file {relative} ({exc.strerror or exc})") from None
        if self._hash is not None:
            self._hash.update(relative.encode())
            self._hash.update(len(data).to_bytes(8, "little"))
            self._hash.update(data)
        return data

    def image(self, relative: str, mode: str | None = None) -> np.ndarray:
        """Decode a PNG/JPEG; ``mode`` "RGB" converts, None keeps the stored values."""
        from PIL import Image

        data = self.read_bytes(relative)
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                if mode is not None and img.mode != mode:
                    img = img.convert(mode)
                return np.array(img)
        except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, ...
            raise SampleError(f"unreadable image {relative} ({_short(exc)})") from None

    def npy(self, relative: str) -> np.ndarray:
        data = self.read_bytes(relative)
        try:
            return np.load(io.BytesIO(data), allow_pickle=False)
        except Exception as exc:
            raise SampleError(f"unreadable array {relative} ({_short(exc)})") from None

    def mat(self, relative: str) -> dict[str, Any]:
        from scipy.io import loadmat

        data = self.read_bytes(relative)
        try:
            return loadmat(io.BytesIO(data), squeeze_me=True, struct_as_record=False)
        except Exception as exc:
            raise SampleError(f"unreadable .mat file {relative} ({_short(exc)})") from None

    def json(self, relative: str) -> Any:
        data = self.read_bytes(relative)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise SampleError(f"unreadable JSON {relative} ({_short(exc)})") from None

    def digest(self) -> str:
        return self._hash.hexdigest() if self._hash is not None else ""


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]


def image_size(path: Path) -> tuple[int, int]:
    """``(H, W)`` from an image header without decoding it; SampleError if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            width, height = img.size
    except FileNotFoundError:
        raise SampleError(f"missing file {path.name}") from None
    except Exception as exc:
        raise SampleError(f"unreadable image {path.name} ({_short(exc)})") from None
    return height, width


# ----------------------------------------------------------------------------------------------
# Decoding helpers shared by the readers
# ----------------------------------------------------------------------------------------------


def as_rgb(image: np.ndarray, relative: str) -> np.ndarray:
    """``(H, W, 3)`` uint8 from a decoded image, or SampleError."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise SampleError(
            f"{relative}: expected an 8-bit RGB image, got {image.dtype} {image.shape}"
        )
    return np.ascontiguousarray(image[..., :3])


def single_channel(array: np.ndarray, relative: str) -> np.ndarray:
    """``(H, W)`` from a label image or array that may carry a trailing channel axis."""
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[..., 0]
    if array.ndim != 2:
        raise SampleError(f"{relative}: expected a single-channel map, got shape {array.shape}")
    return array


def decode_normals(vectors: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Unit normals float32 ``(3, H, W)`` from ``vectors / scale`` ``(3, H, W)``; vectors
    shorter than ``MIN_NORMAL_LENGTH`` become zero (invalid).

    Channel-first on purpose: whole contiguous planes are several times faster in numpy than a
    trailing axis of 3, and this runs for every sample read.
    """
    out = vectors.astype(np.float32)  # a copy, normalised in place
    length = out[0] * out[0]
    length += out[1] * out[1]
    length += out[2] * out[2]
    np.sqrt(length, out=length)
    valid = length > MIN_NORMAL_LENGTH * scale
    out *= np.divide(1.0, length, out=np.zeros_like(length), where=valid)
    return out


def decode_normals_png(rgb: np.ndarray, relative: str) -> np.ndarray:
    """8-bit normal map, ``n = 2 v / 255 - 1`` per channel, then unit length or invalid."""
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise SampleError(f"{relative}: expected an RGB normal map, got shape {rgb.shape}")
    vectors = rgb[..., :3].transpose(2, 0, 1).astype(np.float32)  # (H, W, 3) -> (3, H, W)
    vectors *= 2.0 / 255.0
    vectors -= 1.0
    return decode_normals(vectors)


def edges_from_label_map(label_map: np.ndarray) -> np.ndarray:
    """Edges where the 3x3 Laplacian of ``label_map`` is non-zero, thinned to one pixel.

    The PASCAL-Context convention. Borders are mirrored (the same as OpenCV's default border).
    """
    from skimage.morphology import thin

    laplacian = ndimage.laplace(label_map.astype(np.float64), mode="mirror")
    return thin(laplacian != 0).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------


def check_record(record: dict[str, np.ndarray], info: DatasetInfo, tasks: tuple[str, ...]) -> None:
    """Raise :class:`SampleError` if a decoded sample breaks the record contract.

    Checks: every task present, every map the size of the image, class ids in range (or 255),
    depth finite and non-negative, at least one labelled pixel for semseg and one valid depth.
    """
    image = record.get("image")
    if image is None or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise SampleError("no RGB image")
    H, W = image.shape[:2]
    if H < 2 or W < 2:
        raise SampleError(f"image is only {H}x{W} pixels")
    for task in tasks:
        if task not in record:
            raise SampleError(f"no {task} target")
        target = record[task]
        if task == "normals" and (target.ndim != 3 or target.shape[0] != 3):
            raise SampleError(f"normals must be (3, H, W), got {target.shape}")
        if target.shape[-2:] != (H, W):
            got = "x".join(str(s) for s in target.shape[-2:])
            raise SampleError(f"size mismatch: {task} is {got}, image is {H}x{W}")
        if task in ("semseg", "human_parts"):
            count = info.num_classes(task)
            bad = (target >= count) & (target != IGNORE)
            if bad.any():
                raise SampleError(
                    f"{task} label {int(target[bad].max())} out of range (0..{count - 1} or 255)"
                )
            if task == "semseg" and (target == IGNORE).all():
                raise SampleError("empty semseg mask: no labelled pixel")
        elif task == "depth":
            if not np.isfinite(target).all() or (target < 0).any():
                raise SampleError("depth has negative or non-finite values")
            if not (target > 0).any():
                raise SampleError("empty depth map: no valid pixel")
        elif task in ("saliency", "edge") and target.max(initial=0) > 1:
            raise SampleError(f"{task} values must be 0 or 1")


def same_shape_or_error(arrays: dict[str, np.ndarray], reference: str = "image") -> None:
    """SampleError if a map in ``arrays`` differs in ``(H, W)`` from ``arrays[reference]``.

    The image is ``(H, W, 3)``, normals ``(3, H, W)``, other maps ``(H, W)``.
    """

    def size(name: str) -> tuple[int, ...]:
        return arrays[name].shape[:2] if name == "image" else arrays[name].shape[-2:]

    expected = size(reference)
    for name in arrays:
        if name in EXTRA_KEYS:
            continue
        if size(name) != expected:
            got = "x".join(str(s) for s in size(name))
            want = "x".join(str(s) for s in expected)
            raise SampleError(f"size mismatch: {name} is {got}, {reference} is {want}")
