"""Record -> training or evaluation arrays: the field's augmentation and evaluation padding.

Training (the InvPT/BridgeNet recipe): random scale (depth divided by the scale), a random crop
to the train size retried so that no single class covers more than 75% of it, a horizontal flip
with probability 0.5 (each task's flip rule from ``TASKS``; normals negate x), photometric
distortion, ImageNet normalisation, and padding up to the train size with ignore labels.
Evaluation: no resizing; pad bottom/right to a multiple of the patch size.

Both return numpy arrays in the layouts of a sample (``docs/internals.md``): image ``(3, H, W)``,
class maps ``(H, W)``, depth/saliency/edge ``(1, H, W)``, normals ``(3, H, W)``, and ``valid``
``(H, W)`` (False on padding).
"""

import numpy as np
from PIL import Image

from bridgenet_cli.tasks import IGNORE_INDEX, TASKS

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255.0
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255.0
MAX_CLASS_RATIO = 0.75  # a crop where one class covers more than this is redrawn
CROP_TRIES = 10

# Value written into padding, per key.
PAD_VALUES = {
    "image": 0.0,  # after normalisation: the mean colour
    "semseg": IGNORE_INDEX,
    "human_parts": IGNORE_INDEX,
    "depth": 0.0,
    "normals": 0.0,
    "saliency": IGNORE_INDEX,
    "edge": IGNORE_INDEX,
    "valid": False,
}


def normalize(image: np.ndarray) -> np.ndarray:
    """uint8 or float ``(H, W, 3)`` in 0..255 -> float32 ``(3, H, W)``, ImageNet-normalised."""
    out = (image.astype(np.float32) - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(out.transpose(2, 0, 1))  # (H, W, 3) -> (3, H, W)


def denormalize(image) -> np.ndarray:
    """ImageNet-normalised ``(3, H, W)`` tensor or array -> uint8 ``(H, W, 3)`` for display."""
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    rgb = array.astype(np.float32).transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def to_layout(record: dict[str, np.ndarray], tasks: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Record maps -> sample layouts (no normalisation); the image stays ``(H, W, 3)`` float32."""
    out = {"image": record["image"].astype(np.float32)}
    for task in tasks:
        value = record[task]
        if task in ("semseg", "human_parts"):
            out[task] = value.astype(np.int64)
        elif task == "normals":
            out[task] = value.astype(np.float32, copy=False)
        else:  # depth, saliency, edge: (H, W) -> (1, H, W)
            out[task] = value.astype(np.float32)[None]
    out["valid"] = np.ones(record["image"].shape[:2], dtype=bool)
    return out


def _nearest_indices(old: int, new: int) -> np.ndarray:
    return np.minimum(((np.arange(new) + 0.5) * old / new).astype(np.int64), old - 1)


def resize_record(record: dict[str, np.ndarray], height: int, width: int) -> dict[str, np.ndarray]:
    """Image bilinear (antialiased when shrinking), every other map nearest-neighbour.

    Maps are ``(H, W)`` or channel-first ``(C, H, W)``; other entries pass through.
    """
    h, w = record["image"].shape[:2]
    rows, cols = _nearest_indices(h, height), _nearest_indices(w, width)
    out = {}
    for key, value in record.items():
        if key == "image":
            out[key] = np.array(Image.fromarray(value).resize((width, height), Image.BILINEAR))
        elif value.ndim >= 2 and value.shape[-2:] == (h, w):
            out[key] = value[..., rows, :][..., cols]
        else:
            out[key] = value
    return out


def pad_to(arrays: dict[str, np.ndarray], height: int, width: int) -> dict[str, np.ndarray]:
    """Pad every map bottom/right to ``height`` x ``width`` with its PAD_VALUES entry."""
    out = {}
    for key, value in arrays.items():
        h, w = value.shape[-2:]
        if (h, w) == (height, width):
            out[key] = value
            continue
        padded = np.full((*value.shape[:-2], height, width), PAD_VALUES[key], dtype=value.dtype)
        padded[..., :h, :w] = value
        out[key] = padded
    return out


def photometric_distortion(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, saturation and hue, each with probability 0.5.

    ``image`` is float32 ``(H, W, 3)`` in 0..255; returns the same layout, clipped.
    """
    image = image.copy()
    if rng.random() < 0.5:
        image += rng.uniform(-32.0, 32.0)
    contrast_first = rng.random() < 0.5
    contrast = rng.uniform(0.5, 1.5) if rng.random() < 0.5 else None
    if contrast is not None and contrast_first:
        image *= contrast
    if rng.random() < 0.5:  # saturation: blend with the grey image
        grey = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        factor = rng.uniform(0.5, 1.5)
        image = grey[..., None] + factor * (image - grey[..., None])
    if rng.random() < 0.5:  # hue: rotate the chroma plane of YIQ by up to 18 degrees
        angle = np.radians(rng.uniform(-18.0, 18.0))
        to_yiq = np.array(
            [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
            dtype=np.float32,
        )
        c, s = np.cos(angle), np.sin(angle)
        rotate = np.array([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=np.float32)
        matrix = np.linalg.inv(to_yiq) @ rotate @ to_yiq
        image = image @ matrix.T.astype(np.float32)
    if contrast is not None and not contrast_first:
        image *= contrast
    return np.clip(image, 0.0, 255.0)


class TrainTransform:
    """The field's training augmentation, ending in arrays of exactly ``crop_size``."""

    def __init__(
        self,
        tasks: tuple[str, ...],
        crop_size: tuple[int, int],
        scale_range: tuple[float, float] = (0.5, 2.0),
        augment: bool = True,
    ):
        self.tasks = tuple(tasks)
        self.crop_size = tuple(crop_size)
        self.scale_range = tuple(scale_range)
        self.augment = augment

    def __call__(self, record: dict[str, np.ndarray], rng: np.random.Generator) -> dict:
        record = {k: record[k] for k in ("image", *self.tasks)}

        if self.augment:
            scale = rng.uniform(*self.scale_range)
            h, w = record["image"].shape[:2]
            record = resize_record(record, max(1, round(h * scale)), max(1, round(w * scale)))
            if "depth" in record:
                record["depth"] = record["depth"] / np.float32(scale)  # closer-looking scene

        record = self._crop(record, rng)
        arrays = to_layout(record, self.tasks)

        if self.augment and rng.random() < 0.5:
            arrays["image"] = np.ascontiguousarray(arrays["image"][:, ::-1])
            arrays["valid"] = np.ascontiguousarray(arrays["valid"][:, ::-1])
            for task in self.tasks:
                arrays[task] = TASKS.get(task).flip(arrays[task])

        image = arrays["image"]
        if self.augment:
            image = photometric_distortion(image, rng)
        arrays["image"] = normalize(image)
        return pad_to(arrays, *self.crop_size)

    def _crop(self, record: dict[str, np.ndarray], rng: np.random.Generator) -> dict:
        crop_h, crop_w = self.crop_size
        h, w = record["image"].shape[:2]
        room_y, room_x = max(h - crop_h, 0), max(w - crop_w, 0)
        if room_y == 0 and room_x == 0:
            return record
        if not self.augment:
            y0, x0 = room_y // 2, room_x // 2
        else:
            for _ in range(CROP_TRIES):
                y0, x0 = int(rng.integers(0, room_y + 1)), int(rng.integers(0, room_x + 1))
                if "semseg" not in record or self._balanced(record["semseg"], y0, x0):
                    break
        cropped = {
            key: value[..., y0 : y0 + crop_h, x0 : x0 + crop_w]
            for key, value in record.items()
            if key != "image"
        }
        cropped["image"] = record["image"][y0 : y0 + crop_h, x0 : x0 + crop_w]
        return cropped

    def _balanced(self, labels: np.ndarray, y0: int, x0: int) -> bool:
        crop = labels[y0 : y0 + self.crop_size[0], x0 : x0 + self.crop_size[1]]
        counts = np.bincount(crop[crop != IGNORE_INDEX].ravel(), minlength=1)
        counts = counts[counts > 0]
        return len(counts) > 1 and counts.max() / counts.sum() < MAX_CLASS_RATIO


class EvalTransform:
    """No resizing; pad bottom/right to a multiple of ``pad_multiple`` (``valid`` marks it).

    TODO(eval-collate): images of different sizes (PASCAL) pad to different sizes, so evaluation
    batches of more than one image need a collate function that pads to the largest.
    """

    def __init__(self, tasks: tuple[str, ...], pad_multiple: int = 16):
        self.tasks = tuple(tasks)
        self.pad_multiple = max(1, int(pad_multiple))

    def __call__(
        self, record: dict[str, np.ndarray], rng: np.random.Generator | None = None
    ) -> dict:
        arrays = to_layout({k: record[k] for k in ("image", *self.tasks)}, self.tasks)
        arrays["image"] = normalize(arrays["image"])
        h, w = arrays["valid"].shape
        m = self.pad_multiple
        return pad_to(arrays, -(-h // m) * m, -(-w // m) * m)
