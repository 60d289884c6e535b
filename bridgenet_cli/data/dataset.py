"""The dataset the trainer and evaluator iterate, and where its cache comes from.

``build_dataset(data_cfg, split, tasks, train)`` resolves the cache (``ensure_cache``), opens
the split lazily and applies the training or evaluation transform; items are the sample dicts of
``docs/internals.md``. ``ReaderSource`` serves a dataset folder (or the synthetic generator)
through the same interface as the cache, without preparing anything.
"""

import contextlib
import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from bridgenet_cli.config.schema import DataConfig
from bridgenet_cli.data.cache import CacheSource, read_header
from bridgenet_cli.data.info import DATASETS, DatasetInfo
from bridgenet_cli.data.records import SampleError
from bridgenet_cli.data.transforms import EvalTransform, TrainTransform, normalize, pad_to
from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.paths import data_dir, default_cache_path
from bridgenet_cli.tasks import TASKS

logger = logging.getLogger(__name__)

# Synthetic maps are smooth or piecewise constant and shrink about 5x compressed, and small
# synthetic images inflate quickly, so their caches are compressed throughout.
SYNTHETIC_COMPRESSION = "small"


class ReaderSource:
    """One split of a folder reader or the synthetic generator, as a source of records."""

    def __init__(self, reader, split: str):
        self.reader = reader
        self.split = split
        self.info: DatasetInfo = reader.info
        self.tasks = tuple(reader.tasks)
        self.ids = reader.split_ids(split)

    def __len__(self) -> int:
        return len(self.ids)

    def read(self, index: int, tasks: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        try:
            record, _ = self.reader.read(self.split, self.ids[index], checksum=False)
        except SampleError as exc:
            raise BridgeNetError(
                f"{self.reader.dataset} sample {self.split}/{self.ids[index]}: {exc}",
                "fix the file, or prepare a cache with --skip-bad to leave such samples out",
            ) from None
        wanted = self.tasks if tasks is None else tasks
        return {k: v for k, v in record.items() if k == "image" or k in wanted}


class MultiTaskDataset(Dataset):
    """Samples of ``source`` for ``tasks``, through ``transform`` (train or eval)."""

    def __init__(self, source, tasks: tuple[str, ...], transform, train: bool):
        self.source = source
        self.tasks = tuple(tasks)
        self.transform = transform
        self.train = train
        self.info: DatasetInfo = source.info
        self.ids: list[str] = list(source.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        record = self.source.read(index, self.tasks)
        h, w = record["image"].shape[:2]

        # Draw augmentation randomness from torch, which DataLoader seeds per worker.
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item())) if self.train else None
        arrays = self.transform(record, rng)

        sample = {
            key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in arrays.items()
        }
        sample["size"] = torch.tensor([h, w], dtype=torch.int64)
        sample["id"] = self.ids[index]
        return sample


# ----------------------------------------------------------------------------------------------
# Resolving the cache
# ----------------------------------------------------------------------------------------------


def synthetic_reader(data_cfg: DataConfig):
    from bridgenet_cli.data.synthetic import SyntheticReader

    s = data_cfg.synthetic
    return SyntheticReader(s.num_train, s.num_val, s.height, s.width, s.seed)


@contextlib.contextmanager
def _exclusive(path: Path):
    """Hold an exclusive lock beside ``path`` (so DDP ranks generate a cache only once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.parent / f".{path.name}.lock"
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        yield
        return
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_cache(data_cfg: DataConfig) -> Path:
    """The prepared cache for ``data_cfg``: ``data.cache``, else the data directory by name.

    The synthetic dataset is generated when its cache is missing. Its default file name encodes
    the generator settings (``synthetic-v2-192x256-800+200-seed0.h5``), so changing
    ``data.synthetic`` makes a new cache rather than reusing a different one; an explicit
    ``data.cache`` holding other settings is an error. A missing real-dataset cache is an error
    naming the ``bridgenet prepare-data`` command that creates it.
    """
    name = data_cfg.dataset
    DATASETS.get(name)  # unknown names list the valid ones
    explicit = data_cfg.cache is not None and str(data_cfg.cache) != ""
    if name == "synthetic":
        return _ensure_synthetic(data_cfg, explicit)

    path = Path(data_cfg.cache).expanduser() if explicit else default_cache_path(name)
    out = f" --out {path}" if explicit else ""
    command = f"bridgenet prepare-data {name} --root DIR{out}"
    if not path.exists():
        raise BridgeNetError(
            f"no prepared {name} cache at {path}",
            f"create it from the dataset folder DIR with: {command}",
        )
    header = read_header(path, command_hint=command)
    _check_dataset(header.dataset, name, path)
    return path


def _check_dataset(found: str, wanted: str, path: Path) -> None:
    if found != wanted:
        raise BridgeNetError(
            f"cache {path} holds the {found} dataset, but data.dataset is {wanted!r}",
            f"set data.dataset = {found!r} or point data.cache at a {wanted} cache",
        )


def _ensure_synthetic(data_cfg: DataConfig, explicit: bool) -> Path:
    from bridgenet_cli.data.prepare import prepare_cache

    reader = synthetic_reader(data_cfg)
    path = Path(data_cfg.cache).expanduser() if explicit else data_dir() / reader.cache_name()
    wanted = reader.options()
    with _exclusive(path):
        if path.exists():
            try:
                header = read_header(path, command_hint=reader.prepare_command() + f" --out {path}")
            except BridgeNetError:
                if explicit:
                    raise
                logger.warning("the synthetic cache %s is outdated or damaged; regenerating", path)
            else:
                _check_dataset(header.dataset, "synthetic", path)
                if header.settings == wanted:
                    return path
                if explicit:
                    differ = ", ".join(
                        f"{k}={header.settings.get(k)!r} (recipe: {v!r})"
                        for k, v in wanted.items()
                        if header.settings.get(k) != v
                    )
                    raise BridgeNetError(
                        f"cache {path} was generated with other synthetic settings: {differ}",
                        "unset data.cache (each setting gets its own cache) or make "
                        "data.synthetic match",
                    )
                logger.warning("the synthetic cache %s holds other settings; regenerating", path)
        logger.info("generating the synthetic dataset into %s", path)
        prepare_cache(reader, path, force=True, compression=SYNTHETIC_COMPRESSION)
    return path


# ----------------------------------------------------------------------------------------------
# Building datasets
# ----------------------------------------------------------------------------------------------


def resolve_train_size(data_cfg: DataConfig) -> tuple[int, int]:
    """``(H, W)`` of training crops: ``data.train_size``, else the synthetic image size or the
    dataset's default (``DATASETS[...].train_size``)."""
    if data_cfg.train_size:
        size = tuple(int(v) for v in data_cfg.train_size)
        if len(size) != 2 or min(size) < 1:
            raise BridgeNetError(
                f"data.train_size expects [height, width], got {list(data_cfg.train_size)}",
                "write it like train_size = [448, 576]",
            )
        return size
    if data_cfg.dataset == "synthetic":
        return data_cfg.synthetic.height, data_cfg.synthetic.width
    return DATASETS.get(data_cfg.dataset).train_size


def resolve_tasks(requested, available: tuple[str, ...], where: str) -> tuple[str, ...]:
    """Check ``requested`` (all of ``available`` when empty) against what ``where`` holds."""
    tasks = tuple(requested) if requested else tuple(available)
    for task in tasks:
        TASKS.get(task)
        if task not in available:
            raise BridgeNetError(
                f"{where} has no {task} labels (it has {', '.join(available)})",
                f"remove {task!r} from data.tasks, or prepare a cache that includes it",
            )
    return tasks


def _scale_range(data_cfg: DataConfig) -> tuple[float, float]:
    values = list(data_cfg.scale_range)
    if len(values) != 2 or not 0 < values[0] <= values[1]:
        raise BridgeNetError(
            f"data.scale_range expects [low, high] with 0 < low <= high, got {values}",
            "write it like scale_range = [0.5, 2.0]",
        )
    return float(values[0]), float(values[1])


def build_dataset(
    data_cfg: DataConfig, split: str, tasks: list[str], train: bool, pad_multiple: int = 16
) -> MultiTaskDataset:
    """The ``split`` of the recipe's dataset for ``tasks`` (empty: data.tasks, else all).

    ``train`` applies the augmentation and crops/pads to the train size; otherwise images are
    padded bottom/right to a multiple of ``pad_multiple``.
    """
    path = ensure_cache(data_cfg)
    header = read_header(path)
    source = CacheSource(path, split, header)
    chosen = resolve_tasks(tasks or data_cfg.tasks, header.tasks, f"cache {path}")
    return dataset_from_source(source, chosen, train, data_cfg, pad_multiple)


def dataset_from_source(
    source, tasks: tuple[str, ...], train: bool, data_cfg: DataConfig, pad_multiple: int = 16
) -> MultiTaskDataset:
    """Wrap any source (cache or :class:`ReaderSource`) with the recipe's transform."""
    if train:
        transform = TrainTransform(
            tasks, resolve_train_size(data_cfg), _scale_range(data_cfg), data_cfg.augment
        )
    else:
        transform = EvalTransform(tasks, pad_multiple)
    return MultiTaskDataset(source, tasks, transform, train)


def image_to_sample(rgb: np.ndarray, pad_multiple: int = 16, sample_id: str = "image") -> dict:
    """A single image as an evaluation sample: ``image``, ``valid``, ``size`` and ``id``.

    ``rgb`` is uint8 ``(H, W, 3)``; the image is normalised and padded bottom/right to a multiple
    of ``pad_multiple`` (``valid`` is False on the padding).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise BridgeNetError(
            f"expected an 8-bit RGB image of shape (H, W, 3), got {rgb.dtype} {rgb.shape}",
            "convert the image to RGB first",
        )
    h, w = rgb.shape[:2]
    m = max(1, int(pad_multiple))
    arrays = {"image": normalize(rgb), "valid": np.ones((h, w), dtype=bool)}
    arrays = pad_to(arrays, -(-h // m) * m, -(-w // m) * m)
    sample = {key: torch.from_numpy(value) for key, value in arrays.items()}
    sample["size"] = torch.tensor([h, w], dtype=torch.int64)
    sample["id"] = sample_id
    return sample
