"""Raw-folder decoding versus cache reading on the same samples (``prepare-data benchmark``)."""

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bridgenet_cli.data.cache import CacheSource, read_header
from bridgenet_cli.data.prepare import prepare_cache
from bridgenet_cli.data.readers import make_reader
from bridgenet_cli.data.records import SampleFiles
from bridgenet_cli.errors import BridgeNetError


@dataclass
class BenchmarkResult:
    samples: int
    size: tuple[int, int]
    tasks: tuple[str, ...]
    raw_rate: float  # images per second of wall-clock time, best round
    cache_rate: float
    raw_cpu_rate: float  # images per second of this process's CPU time, best round
    cache_cpu_rate: float
    compression: str


def _timed(work) -> tuple[float, float]:
    """Wall-clock and CPU seconds of ``work()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, max(time.process_time() - cpu, 1e-9)


class _SplitSubset:
    """A reader restricted to the first samples of one split (for a throw-away cache)."""

    def __init__(self, reader, split: str, ids: list[str]):
        self._reader = reader
        self._ids = ids
        self.splits = (split,)
        self.dataset, self.variant, self.tasks = reader.dataset, reader.variant, reader.tasks

    def __getattr__(self, name):
        return getattr(self._reader, name)

    def split_ids(self, split: str) -> list[str]:
        return list(self._ids)


def benchmark_sources(
    dataset: str,
    root: Path,
    cache: Path | None,
    samples: int,
    split: str = "val",
    repeat: int = 3,
    compression: str = "fast",
) -> BenchmarkResult:
    """Time decoding ``samples`` samples of ``split`` from ``root`` and reading them from a cache.

    Raw reading is the decoding alone (no checksum, no validation); the cache read returns the
    same record. Both run in this process after one untimed warm-up read each, so the operating
    system's file cache holds both, in ``repeat`` alternating rounds of which the best counts
    (other load on the machine only ever slows a round down). Wall-clock and CPU time are both
    measured; on a shared machine the CPU time is the steadier figure. ``cache`` defaults to a
    temporary cache of these samples written with ``compression``.
    """
    if samples < 1 or repeat < 1:
        raise BridgeNetError(
            f"--samples and --repeat must be at least 1, got {samples} and {repeat}",
            "use 1 or more",
        )
    reader = make_reader(dataset, root)
    ids = reader.split_ids(split)[:samples]

    with tempfile.TemporaryDirectory(prefix="bridgenet-benchmark-") as tmp:
        if cache is None:
            cache = Path(tmp) / f"{dataset}.h5"
            prepare_cache(
                _SplitSubset(reader, split, ids),
                cache,
                dataset_root=reader.root,
                compression=compression,
            )
        header = read_header(cache)
        if header.dataset != dataset:
            raise BridgeNetError(
                f"cache {cache} holds {header.dataset}, not {dataset}", "pass its cache"
            )
        source = CacheSource(cache, split, header)
        positions = {sample_id: i for i, sample_id in enumerate(source.ids)}
        missing = [i for i in ids if i not in positions]
        if missing:
            raise BridgeNetError(
                f"cache {cache} lacks {len(missing)} of the benchmarked samples "
                f"(e.g. {missing[0]})",
                "leave out --cache to benchmark against a cache made from the same samples",
            )
        indices = [positions[i] for i in ids]
        tasks = tuple(t for t in reader.tasks if t in header.tasks)

        def read_raw(sample_id: str):
            return reader.decode(SampleFiles(reader.root, checksum=False), split, sample_id)

        first = read_raw(ids[0])
        source.read(indices[0], tasks)

        def raw_round() -> None:
            for sample_id in ids:  # each record is dropped before the next, as in training
                read_raw(sample_id)

        def cache_round() -> None:
            for index in indices:
                source.read(index, tasks)

        raw_wall = raw_cpu = cache_wall = cache_cpu = float("inf")
        for _ in range(repeat):
            wall, cpu = _timed(raw_round)
            raw_wall, raw_cpu = min(raw_wall, wall), min(raw_cpu, cpu)
            wall, cpu = _timed(cache_round)
            cache_wall, cache_cpu = min(cache_wall, wall), min(cache_cpu, cpu)
        source.close()

    return BenchmarkResult(
        samples=len(ids),
        size=first["image"].shape[:2],
        tasks=tasks,
        raw_rate=len(ids) / raw_wall,
        cache_rate=len(ids) / cache_wall,
        raw_cpu_rate=len(ids) / raw_cpu,
        cache_cpu_rate=len(ids) / cache_cpu,
        compression=header.compression,
    )
