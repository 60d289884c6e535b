"""Prepared datasets: one HDF5 file per dataset, read lazily.

Layout (``<split>`` is ``train`` or ``val``; ``N`` samples, ``Hm x Wm`` the largest image)::

    /                      attributes: see ATTRIBUTES
    /<split>/ids           (N,) str
    /<split>/sizes         (N, 2) int32, the (h, w) of each sample
    /<split>/image         (N, Hm, Wm, 3) uint8
    /<split>/semseg        (N, Hm, Wm) uint8, 255 = ignore      (likewise human_parts)
    /<split>/depth         (N, Hm, Wm) float32, 0 = invalid
    /<split>/normals       (N, 3, Hm, Wm) int8, round(127 n), zero vector = invalid
    /<split>/saliency      (N, Hm, Wm) uint8, 0 / 1             (likewise edge)
    /<split>/intrinsics    (N, 4) float32 fx, fy, cx, cy         (synthetic scenes only)
    /<split>/digests       (N,) str, blake2b of each sample's stored arrays

Every per-image array is chunked one image per chunk, so a sample costs one chunk read per task.
Smaller images sit in the top-left corner of their chunk; ``sizes`` crops them back. The
``<split>`` group's ``skipped`` attribute lists the samples left out with ``--skip-bad`` (JSON,
``[{"id", "problem"}]``).

Integrity: a truncated file fails when opened; gzip's adler32 fails a damaged compressed chunk
when it is read; and ``/<split>/digests`` holds a blake2b digest of each sample's stored bytes,
which ``verify`` recomputes, so damage anywhere is found without slowing every read down (HDF5's
fletcher32 filter would cost about a third of the read time of an uncompressed sample).

Compression (:data:`COMPRESSION_POLICIES`): class maps, edges and saliency are always
gzip-compressed (they shrink 10-50x and inflate in a fraction of a millisecond). Images, depth
and normals compress less losslessly (to about 85%, 45% and 40% of their size) and inflating them
costs about as much as decoding the original PNG files, which would defeat the cache; the default
``fast`` policy stores them uncompressed (measured with ``bridgenet prepare-data benchmark``), and
``small`` compresses them too, for when disk space matters more than reading speed.

Precision: normals lose at most 0.5 degrees to the int8 encoding and are re-normalised to unit
length when read; depth is float32 (disparity needs its 1/256-pixel steps, metres stay exact).
"""

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from bridgenet_cli import __version__
from bridgenet_cli.data.info import DATASETS, DatasetInfo
from bridgenet_cli.data.records import EXTRA_KEYS, SampleError, check_record, decode_normals
from bridgenet_cli.errors import BridgeNetError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
NORMAL_SCALE = 127.0
GZIP_LEVEL = 1  # inflating costs the same at any level; higher levels only slow writing

# Which per-image arrays are gzip-compressed, per policy (see the module docstring).
COMPRESSION_POLICIES: dict[str, frozenset[str]] = {
    "fast": frozenset({"semseg", "human_parts", "saliency", "edge"}),
    "small": frozenset({"image", "depth", "semseg", "human_parts", "normals", "saliency", "edge"}),
}

# Per-image arrays: dtype and axis order (as in records: the image channel-last, normals
# channel-first).
LAYOUT: dict[str, tuple[type, str]] = {
    "image": (np.uint8, "HWC"),
    "semseg": (np.uint8, "HW"),
    "human_parts": (np.uint8, "HW"),
    "depth": (np.float32, "HW"),
    "normals": (np.int8, "CHW"),
    "saliency": (np.uint8, "HW"),
    "edge": (np.uint8, "HW"),
}


def _shape(order: str, height: int, width: int) -> tuple[int, ...]:
    return {"HWC": (height, width, 3), "HW": (height, width), "CHW": (3, height, width)}[order]


def _region(order: str, h: int, w: int) -> tuple[slice, ...]:
    """The top-left ``h`` x ``w`` part of one image's array."""
    if order == "CHW":
        return slice(None), slice(0, h), slice(0, w)
    return slice(0, h), slice(0, w)


EXTRA_LAYOUT: dict[str, tuple[type, tuple[int, ...]]] = {"intrinsics": (np.float32, (4,))}


ATTRIBUTES = (
    "format_version",  # this module's layout version
    "toolkit_version",  # bridgenet_cli.__version__ of the writer
    "dataset",  # name in DATASETS
    "variant",  # package or generator variant (e.g. nyudv2, nyud_mt)
    "tasks",  # JSON list
    "class_names",  # JSON {task: [names]}
    "depth_unit",  # metres | disparity
    "splits",  # JSON {split: count}
    "source_checksum",  # blake2b over every source byte decoded, in order
    "settings",  # JSON: the options that shaped the content
    "prepare_command",  # the command that re-creates this file
    "compression",  # a COMPRESSION_POLICIES name
    "created",  # ISO time
)


def sample_digest(stored: dict[str, np.ndarray]) -> str:
    """blake2b over a sample's stored arrays, in key order."""
    digest = hashlib.blake2b(digest_size=16)
    for key in sorted(stored):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(stored[key]).tobytes())
    return digest.hexdigest()


def encode(task: str, array: np.ndarray) -> np.ndarray:
    """Record form -> stored form."""
    if task == "normals":
        return np.round(array * NORMAL_SCALE).astype(np.int8)
    return array.astype(LAYOUT[task][0], copy=False)


def decode(task: str, array: np.ndarray) -> np.ndarray:
    """Stored form -> record form."""
    if task == "normals":
        return decode_normals(array, scale=NORMAL_SCALE)
    return array


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


class CacheWriter:
    """Fills an open, empty ``h5py.File`` split by split, one record at a time."""

    def __init__(self, handle: h5py.File, compression: str = "fast"):
        if compression not in COMPRESSION_POLICIES:
            raise BridgeNetError(
                f"unknown compression {compression!r}",
                f"use one of {', '.join(COMPRESSION_POLICIES)}",
            )
        self.handle = handle
        self.compressed = COMPRESSION_POLICIES[compression]
        self._ids: dict[str, list[str]] = {}
        self._sizes: dict[str, list[tuple[int, int]]] = {}
        self._digests: dict[str, list[str]] = {}

    def begin_split(
        self, split: str, capacity: int, max_size: tuple[int, int], keys: tuple[str, ...]
    ) -> None:
        """Allocate ``capacity`` samples of at most ``max_size`` for ``image``, tasks, extras."""
        group = self.handle.create_group(split)
        Hm, Wm = max_size
        for key in keys:
            if key in EXTRA_LAYOUT:
                dtype, shape = EXTRA_LAYOUT[key]
                group.create_dataset(
                    key, shape=(capacity, *shape), maxshape=(None, *shape), dtype=dtype
                )
                continue
            dtype, order = LAYOUT[key]
            shape = _shape(order, Hm, Wm)
            compress = key in self.compressed
            group.create_dataset(
                key,
                shape=(capacity, *shape),
                maxshape=(None, *shape),
                chunks=(1, *shape),
                dtype=dtype,
                compression="gzip" if compress else None,
                compression_opts=GZIP_LEVEL if compress else None,
                shuffle=compress and key == "depth",
            )
        self._ids[split] = []
        self._sizes[split] = []
        self._digests[split] = []

    def add(self, split: str, sample_id: str, record: dict[str, np.ndarray]) -> None:
        group = self.handle[split]
        index = len(self._ids[split])
        h, w = record["image"].shape[:2]
        stored = {}
        for key in group:
            if key in EXTRA_LAYOUT:
                stored[key] = np.asarray(record[key], dtype=EXTRA_LAYOUT[key][0])
                group[key][index] = stored[key]
            else:
                stored[key] = encode(key, record[key])
                group[key][(index, *_region(LAYOUT[key][1], h, w))] = stored[key]
        self._ids[split].append(sample_id)
        self._sizes[split].append((h, w))
        self._digests[split].append(sample_digest(stored))

    def end_split(self, split: str, skipped: list[tuple[str, str]]) -> int:
        """Trim to the samples written, store ids and sizes; returns the sample count."""
        group = self.handle[split]
        count = len(self._ids[split])
        for key in list(group):
            group[key].resize(count, axis=0)
        group.create_dataset(
            "ids", data=np.array(self._ids[split], dtype=object), dtype=h5py.string_dtype()
        )
        sizes = np.array(self._sizes[split], dtype=np.int32).reshape(count, 2)
        group.create_dataset("sizes", data=sizes)
        digests = np.array(self._digests[split], dtype=object)
        group.create_dataset("digests", data=digests, dtype=h5py.string_dtype())
        group.attrs["skipped"] = json.dumps([{"id": i, "problem": p} for i, p in skipped])
        return count

    def write_attributes(self, attributes: dict[str, object]) -> None:
        for key in ATTRIBUTES:
            value = attributes[key]
            self.handle.attrs[key] = value if isinstance(value, str | int) else json.dumps(value)


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------


@dataclass
class CacheHeader:
    """The attributes of a cache, read and checked once."""

    path: Path
    dataset: str
    variant: str
    tasks: tuple[str, ...]
    class_names: dict[str, tuple[str, ...]]
    depth_unit: str
    splits: dict[str, int]
    settings: dict[str, object]
    prepare_command: str
    source_checksum: str
    toolkit_version: str
    compression: str
    skipped: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    @property
    def info(self) -> DatasetInfo:
        """The dataset's facts as this cache holds them (its tasks and depth unit)."""
        base = DATASETS.get(self.dataset)
        return dataclasses.replace(base, depth_unit=self.depth_unit)


def _recreate_hint(command: str | None) -> str:
    command = command or "bridgenet prepare-data <dataset> --root DIR --out FILE"
    return f"delete it and re-create it with: {command}"


def corrupted_error(path: Path, reason: str, command: str | None = None) -> BridgeNetError:
    return BridgeNetError(
        f"cache {path} is corrupted or not a bridgenet cache ({reason})", _recreate_hint(command)
    )


def read_header(path: str | Path, command_hint: str | None = None) -> CacheHeader:
    """Open ``path``, check it is a complete cache of this toolkit version, return its header.

    ``command_hint`` is the command suggested when the file is unreadable (its own stored
    command is used when it can be read).
    """
    path = Path(path)
    if not path.is_file():
        raise BridgeNetError(
            f"cache not found: {path}",
            f"create it with: {command_hint}" if command_hint else "check the path",
        )
    try:
        with h5py.File(path, "r") as handle:
            attrs = {key: handle.attrs[key] for key in handle.attrs}
            groups = {name: handle[name] for name in handle if isinstance(handle[name], h5py.Group)}
            skipped = {name: json.loads(g.attrs.get("skipped", "[]")) for name, g in groups.items()}
            counts = {name: len(g["ids"]) for name, g in groups.items() if "ids" in g}
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise corrupted_error(path, _first_line(exc), command_hint) from None

    missing = [key for key in ATTRIBUTES if key not in attrs]
    if missing:
        raise corrupted_error(path, f"attribute {missing[0]!r} missing", command_hint)
    command = str(attrs["prepare_command"])
    writer = str(attrs["toolkit_version"])
    if writer != __version__ or int(attrs["format_version"]) != FORMAT_VERSION:
        raise BridgeNetError(
            f"cache {path} was written by bridgenet {writer}; this is bridgenet {__version__}",
            f"re-create it with: {command} --force",
        )
    try:
        splits = json.loads(attrs["splits"])
        header = CacheHeader(
            path=path,
            dataset=str(attrs["dataset"]),
            variant=str(attrs["variant"]),
            tasks=tuple(json.loads(attrs["tasks"])),
            class_names={k: tuple(v) for k, v in json.loads(attrs["class_names"]).items()},
            depth_unit=str(attrs["depth_unit"]),
            splits={k: int(v) for k, v in splits.items()},
            settings=json.loads(attrs["settings"]),
            prepare_command=command,
            source_checksum=str(attrs["source_checksum"]),
            toolkit_version=writer,
            compression=str(attrs["compression"]),
            skipped=skipped,
        )
    except (ValueError, TypeError) as exc:
        raise corrupted_error(path, f"bad attribute: {_first_line(exc)}", command) from None
    for split, count in header.splits.items():
        if counts.get(split) != count:
            raise corrupted_error(path, f"split {split!r} should hold {count} samples", command)
    if header.dataset not in DATASETS:
        raise corrupted_error(path, f"unknown dataset {header.dataset!r}", command)
    return header


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


class CacheSource:
    """The samples of one split of a cache, read lazily.

    The HDF5 file is opened on first access in each process (the process id is checked on every
    access), so a source may be handed to several DataLoader workers and DDP ranks.
    """

    def __init__(self, path: str | Path, split: str, header: CacheHeader | None = None):
        self.header = header or read_header(path)
        self.path = Path(path)
        self.split = split
        if split not in self.header.splits:
            raise BridgeNetError(
                f"cache {self.path} has no {split!r} split",
                f"use one of {', '.join(self.header.splits)}",
            )
        self.info = self.header.info
        self.tasks = self.header.tasks
        try:
            with h5py.File(self.path, "r") as handle:
                group = handle[split]
                self.ids = [s.decode() if isinstance(s, bytes) else str(s) for s in group["ids"][:]]
                self.sizes = group["sizes"][:].astype(np.int64)
                self.extras = tuple(k for k in EXTRA_LAYOUT if k in group)
        except (OSError, KeyError, ValueError) as exc:
            raise corrupted_error(
                self.path, _first_line(exc), self.header.prepare_command
            ) from None
        self._handle: h5py.File | None = None
        self._datasets: dict[str, h5py.Dataset] = {}
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handle"] = None
        state["_datasets"] = {}
        state["_pid"] = None
        return state

    def _dataset(self, key: str) -> h5py.Dataset:
        if self._handle is None or self._pid != os.getpid():
            # A handle inherited through fork belongs to the parent: leave it alone, open anew.
            self._handle = h5py.File(self.path, "r")
            self._datasets = {}
            self._pid = os.getpid()
        if key not in self._datasets:  # looking a dataset up by name costs as much as reading it
            self._datasets[key] = self._handle[self.split][key]
        return self._datasets[key]

    def read(self, index: int, tasks: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """The record of sample ``index`` with the image, ``tasks`` (all when None) and extras."""
        wanted = self.tasks if tasks is None else tasks
        stored = self.read_stored(index, wanted)
        return {
            key: decode(key, value) if key in wanted else value for key, value in stored.items()
        }

    def read_stored(
        self, index: int, tasks: tuple[str, ...] | None = None
    ) -> dict[str, np.ndarray]:
        """Sample ``index`` as stored (normals still int8), for reading and for verification."""
        h, w = (int(v) for v in self.sizes[index])
        wanted = self.tasks if tasks is None else tasks
        try:
            stored = {"image": self._dataset("image")[index, :h, :w]}
            for task in wanted:
                stored[task] = self._dataset(task)[(index, *_region(LAYOUT[task][1], h, w))]
            for key in self.extras:
                stored[key] = self._dataset(key)[index]
        except (OSError, KeyError, ValueError) as exc:
            raise BridgeNetError(
                f"cache {self.path}: sample {self.ids[index]!r} of {self.split} is unreadable "
                f"({_first_line(exc)})",
                f"check it with `bridgenet prepare-data verify {self.path}`, or "
                + _recreate_hint(self.header.prepare_command + " --force"),
            ) from None
        return stored

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = None
        self._datasets = {}


# ----------------------------------------------------------------------------------------------
# Verification
# ----------------------------------------------------------------------------------------------


@dataclass
class VerifyReport:
    path: Path
    dataset: str
    variant: str
    splits: dict[str, int]
    skipped: dict[str, int]
    problems: list[str]


def verify_cache(path: str | Path, progress=None) -> VerifyReport:
    """Re-read every sample of a cache and check it; raises BridgeNetError listing problems.

    ``progress(advance)`` is called once per sample when given.
    """
    header = read_header(path)
    info = header.info
    problems: list[str] = []
    for split in header.splits:
        source = CacheSource(path, split, header)
        if len(set(source.ids)) != len(source.ids):
            problems.append(f"{split}: duplicate sample ids")
        with h5py.File(path, "r") as handle:
            digests = [d.decode() if isinstance(d, bytes) else d for d in handle[split]["digests"]]
        for index in range(len(source)):
            try:
                stored = source.read_stored(index)
                if sample_digest(stored) != digests[index]:
                    raise SampleError("stored data does not match its digest (damaged file)")
                record = {k: decode(k, v) if k in header.tasks else v for k, v in stored.items()}
                check_record(record, info, header.tasks)
                for key in EXTRA_KEYS:
                    if key in record and not np.isfinite(record[key]).all():
                        raise SampleError(f"non-finite {key}")
            except BridgeNetError as exc:
                problems.append(f"{split}/{source.ids[index]}: unreadable ({exc.message})")
            except SampleError as exc:
                problems.append(f"{split}/{source.ids[index]}: {exc}")
            if progress is not None:
                progress(1)
        source.close()
    report = VerifyReport(
        path=Path(path),
        dataset=header.dataset,
        variant=header.variant,
        splits=dict(header.splits),
        skipped={k: len(v) for k, v in header.skipped.items()},
        problems=problems,
    )
    if problems:
        shown = "; ".join(problems[:10])
        more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise BridgeNetError(
            f"cache {path} failed verification: {len(problems)} problems: {shown}{more}",
            _recreate_hint(header.prepare_command + " --force"),
        )
    return report
