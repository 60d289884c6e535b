"""Turn a sample source (a dataset folder or the synthetic generator) into an HDF5 cache.

Steps: list the ids of each split, read every sample's size from its header, decode all samples
over worker processes (in order, so the file is the same whatever the worker count), write them
into a temporary file beside the target, and rename it only when complete. Bad samples are
collected on the way; unless ``skip_bad`` is set they fail the whole run with a summary of every
one, and with it they are left out and listed in the cache.
"""

import hashlib
import logging
import multiprocessing
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import h5py
import numpy as np

from bridgenet_cli import __version__
from bridgenet_cli.data.cache import COMPRESSION_POLICIES, FORMAT_VERSION, CacheWriter
from bridgenet_cli.data.info import DatasetInfo
from bridgenet_cli.data.records import SampleError
from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.io import atomic_write

logger = logging.getLogger(__name__)

SHOWN_BAD = 20  # bad samples named in the error message; the full list goes to a file


class SampleSource(Protocol):
    """What the preparer needs from a reader (see ``bridgenet_cli.data.readers``)."""

    dataset: str
    variant: str
    tasks: tuple[str, ...]
    splits: tuple[str, ...]

    @property
    def info(self) -> DatasetInfo: ...

    def split_ids(self, split: str) -> list[str]: ...

    def output_size(self, split: str, sample_id: str) -> tuple[int, int]: ...

    def read(self, split: str, sample_id: str) -> tuple[dict[str, np.ndarray], str]: ...

    def options(self) -> dict[str, object]: ...

    def prepare_command(self) -> str: ...


@dataclass
class PrepareResult:
    path: Path
    splits: dict[str, int]
    skipped: dict[str, list[tuple[str, str]]]
    seconds: float
    checksum: str


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


# ----------------------------------------------------------------------------------------------
# Worker processes
# ----------------------------------------------------------------------------------------------

_worker_source: SampleSource | None = None


def _init_worker(source: SampleSource) -> None:
    global _worker_source
    _worker_source = source


def _decode_job(job: tuple[str, str]) -> tuple[str, str, dict | None, str, str]:
    """(split, id) -> (split, id, record or None, problem, digest)."""
    split, sample_id = job
    try:
        record, digest = _worker_source.read(split, sample_id)
    except SampleError as exc:
        return split, sample_id, None, str(exc), ""
    return split, sample_id, record, "", digest


def _pool_context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def decode_all(source: SampleSource, jobs: list[tuple[str, str]], workers: int):
    """Yield decoded jobs in order, over ``workers`` processes (in this process when <= 1).

    TODO(parallel-compression): gzip runs in the writing process, serially; workers could hand
    over compressed chunks (h5py write_direct_chunk) to take it off the critical path.
    """
    if workers <= 1 or len(jobs) < 2:
        _init_worker(source)
        for job in jobs:
            yield _decode_job(job)
        return
    with _pool_context().Pool(min(workers, len(jobs)), _init_worker, (source,)) as pool:
        yield from pool.imap(_decode_job, jobs, chunksize=2)


# ----------------------------------------------------------------------------------------------
# Preparation
# ----------------------------------------------------------------------------------------------


def _check_output(out: Path, force: bool, dataset_root: Path | None) -> None:
    if dataset_root is not None:
        root = dataset_root.resolve()
        target = out.resolve()
        if target == root or root in target.parents:
            raise BridgeNetError(
                f"--out {out} is inside the dataset folder {dataset_root}",
                "choose a path outside it; the dataset folder is never written to",
            )
    if out.exists() and not force:
        raise BridgeNetError(
            f"cache {out} already exists", "pass --force to replace it, or choose another --out"
        )
    if out.suffix not in (".h5", ".hdf5"):
        raise BridgeNetError(f"--out {out} should end in .h5", "name the cache like nyud.h5")


def bad_sample_error(bad: list[tuple[str, str, str]], out: Path, total: int) -> BridgeNetError:
    """One line naming every bad sample (the first SHOWN_BAD, the rest in a file beside ``out``)."""
    shown = "; ".join(
        f"{split}/{sample_id}: {problem}" for split, sample_id, problem in bad[:SHOWN_BAD]
    )
    more = ""
    if len(bad) > SHOWN_BAD:
        listing = out.with_name(out.name + ".bad-samples.txt")
        listing.parent.mkdir(parents=True, exist_ok=True)
        listing.write_text("".join(f"{s}/{i}\t{p}\n" for s, i, p in bad))
        more = f"; and {len(bad) - SHOWN_BAD} more, all listed in {listing}"
    return BridgeNetError(
        f"{len(bad)} of {total} samples are bad: {shown}{more}",
        "fix or remove them, or pass --skip-bad to leave them out (they are listed in the cache)",
    )


def prepare_cache(
    source: SampleSource,
    out: str | Path,
    *,
    skip_bad: bool = False,
    workers: int | None = None,
    force: bool = False,
    dataset_root: Path | None = None,
    compression: str = "fast",
) -> PrepareResult:
    """Decode every sample of ``source`` into the HDF5 cache ``out`` (atomically).

    ``compression`` names a policy of ``bridgenet_cli.data.cache.COMPRESSION_POLICIES``;
    ``dataset_root`` (default: the source's ``root``) is refused as a place for ``out``.
    """
    from bridgenet_cli.log import console, progress_enabled

    out = Path(out).expanduser()
    dataset_root = dataset_root or getattr(source, "root", None)
    _check_output(out, force, dataset_root)
    if compression not in COMPRESSION_POLICIES:
        raise BridgeNetError(
            f"unknown --compression {compression!r}",
            f"use one of {', '.join(COMPRESSION_POLICIES)}",
        )
    workers = default_workers() if workers is None else workers
    start = time.perf_counter()

    # 1. Ids and sizes (header reads only); unreadable samples are bad from the start.
    bad: list[tuple[str, str, str]] = []
    plan: dict[str, list[str]] = {}
    max_sizes: dict[str, tuple[int, int]] = {}
    for split in source.splits:
        good = []
        height, width = 0, 0
        for sample_id in source.split_ids(split):
            try:
                h, w = source.output_size(split, sample_id)
            except SampleError as exc:
                bad.append((split, sample_id, str(exc)))
                continue
            good.append(sample_id)
            height, width = max(height, h), max(width, w)
        plan[split] = good
        max_sizes[split] = (height, width)
    total = sum(len(ids) for ids in plan.values()) + len(bad)
    jobs = [(split, sample_id) for split, ids in plan.items() for sample_id in ids]
    logger.info(
        "preparing %s (%s) from %d samples with %d worker(s) -> %s",
        source.dataset, source.variant, total, workers, out,
    )  # fmt: skip

    counts: dict[str, int] = {}
    digests = hashlib.blake2b(digest_size=16)

    def write(tmp: Path) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        with h5py.File(tmp, "w") as handle:
            writer = CacheWriter(handle, compression)
            keys = ("image", *source.tasks)
            for split, ids in plan.items():
                extras = _extra_keys(source)
                writer.begin_split(split, len(ids), max_sizes[split], keys + extras)

            columns = (
                "{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
            )
            with Progress(*columns, console=console, disable=not progress_enabled()) as progress:
                bar = progress.add_task(f"{source.dataset} samples", total=len(jobs))
                for split, sample_id, record, problem, digest in decode_all(source, jobs, workers):
                    digests.update(f"{split}/{sample_id}:{digest or 'bad'}\n".encode())
                    if record is None:
                        bad.append((split, sample_id, problem))
                    else:
                        writer.add(split, sample_id, record)
                    progress.advance(bar)

            if bad and not skip_bad:
                raise bad_sample_error(bad, out, total)
            for split in plan:
                skipped = [(i, p) for s, i, p in bad if s == split]
                counts[split] = writer.end_split(split, skipped)
                if counts[split] == 0:
                    raise BridgeNetError(
                        f"no usable sample in the {split} split of {source.dataset}",
                        "check the dataset folder",
                    )
            info = source.info
            writer.write_attributes(
                {
                    "format_version": FORMAT_VERSION,
                    "toolkit_version": __version__,
                    "dataset": source.dataset,
                    "variant": source.variant,
                    "tasks": list(source.tasks),
                    "class_names": {
                        t: list(info.class_names[t]) for t in source.tasks if t in info.class_names
                    },
                    "depth_unit": info.depth_unit,
                    "splits": counts,
                    "source_checksum": digests.hexdigest(),
                    "settings": source.options(),
                    "prepare_command": source.prepare_command()
                    + f" --out {out}"
                    + ("" if compression == "fast" else f" --compression {compression}"),
                    "compression": compression,
                    "created": datetime.now().isoformat(timespec="seconds"),
                }
            )

    atomic_write(out, write)
    if bad:
        logger.warning(
            "left out %d bad samples (listed in the cache's 'skipped' attributes)", len(bad)
        )
        for split, sample_id, problem in bad[:SHOWN_BAD]:
            logger.warning("  %s/%s: %s", split, sample_id, problem)
    skipped = {split: [(i, p) for s, i, p in bad if s == split] for split in plan}
    return PrepareResult(out, counts, skipped, time.perf_counter() - start, digests.hexdigest())


def _extra_keys(source: SampleSource) -> tuple[str, ...]:
    return tuple(getattr(source, "extras", ()))
