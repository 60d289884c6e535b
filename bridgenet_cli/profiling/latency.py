"""Latency and peak memory of repeated forward passes.

- CUDA: each run is timed with CUDA events around the call, followed by a synchronisation; peak
  memory is the caching allocator's ``max_memory_allocated`` over the runs (weights included).
- CPU: each run is timed with ``time.perf_counter`` (monotonic), and its process CPU time is
  recorded too (``cpu_median``); peak memory is the growth of the process's peak resident set
  over the runs. On Linux the peak (``VmHWM``) is reset first by
  writing 5 to ``/proc/self/clear_refs``, so the figure is ``VmHWM after the runs - VmRSS before``
  and earlier peaks (model building, FLOP tracing) do not leak in. Where that reset is not
  possible the lifetime peak (``ru_maxrss``) is used and said so in ``method``.
"""

import logging
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from bridgenet_cli.log import console, progress_enabled

logger = logging.getLogger(__name__)

GIB = 2**30


@dataclass
class Timing:
    runs: list[float]  # wall-clock seconds per call, in order
    # CPU only: process CPU seconds per call (all threads, OpenMP spin-waits included). On a
    # shared machine this is steadier than wall-clock time, which waits for other processes.
    cpu_runs: list[float] | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def p90(self) -> float:
        """The 90th percentile (nearest rank)."""
        ordered = sorted(self.runs)
        return ordered[max(0, -(-9 * len(ordered) // 10) - 1)]

    def as_dict(self) -> dict[str, float | list[float]]:
        result = {"median": self.median, "p90": self.p90, "min": min(self.runs), "runs": self.runs}
        if self.cpu_runs:
            result["cpu_median"] = statistics.median(self.cpu_runs)
        return result


@dataclass
class Memory:
    peak_gb: float  # GiB: CUDA allocator peak, or CPU peak resident growth
    total_peak_gb: float | None  # GiB: CPU only, the process's peak resident set
    method: str


def _proc_status_kib(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _maxrss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB elsewhere


class CpuPeakMemory:
    """Measures the peak resident-memory growth of the code run inside ``with``."""

    def __enter__(self) -> "CpuPeakMemory":
        self.resettable = _reset_peak_rss() and _proc_status_kib("VmHWM") is not None
        rss = _proc_status_kib("VmRSS")
        self.before_kib = rss if rss is not None else _maxrss_kib()
        return self

    def __exit__(self, *exc) -> None:
        if self.resettable:
            self.peak_kib = _proc_status_kib("VmHWM") or 0
            self.method = (
                "CPU peak resident growth: VmHWM (reset via /proc/self/clear_refs) - VmRSS"
            )
        else:
            self.peak_kib = _maxrss_kib()
            self.method = "CPU peak resident growth from ru_maxrss (not resettable: may include "
            self.method += "earlier peaks)"

    def result(self) -> Memory:
        growth = max(0, self.peak_kib - self.before_kib) * 1024 / GIB
        return Memory(growth, self.peak_kib * 1024 / GIB, self.method)


def time_calls(
    call: Callable[[], object],
    repeats: int,
    warmup: int,
    device: torch.device,
    label: str = "timing",
) -> Timing:
    """Run ``call`` ``warmup`` times untimed, then ``repeats`` times timed."""
    cuda = device.type == "cuda"
    for _ in range(warmup):
        call()
    if cuda:
        torch.cuda.synchronize(device)

    runs: list[float] = []
    cpu_runs: list[float] = []
    progress: AbstractContextManager = nullcontext()
    if progress_enabled() and repeats > 1:
        from rich.progress import Progress

        progress = Progress(console=console, transient=True)
    with progress as bar:
        task = bar.add_task(label, total=repeats) if bar is not None else None
        for _ in range(repeats):
            if cuda:
                start, end = (
                    torch.cuda.Event(enable_timing=True),
                    torch.cuda.Event(enable_timing=True),
                )
                start.record()
                call()
                end.record()
                torch.cuda.synchronize(device)
                runs.append(start.elapsed_time(end) / 1000.0)
            else:
                began, began_cpu = time.perf_counter(), time.process_time()
                call()
                runs.append(time.perf_counter() - began)
                cpu_runs.append(time.process_time() - began_cpu)
            if bar is not None:
                bar.advance(task)
    return Timing(runs, cpu_runs or None)


def measure(
    call: Callable[[], object], repeats: int, warmup: int, device: torch.device, label: str
) -> tuple[Timing, Memory]:
    """Latency of ``call`` and the peak memory over its warm-up and timed runs."""
    # TODO(cuda-check): the CUDA branch has only been written against the documented API; it has
    # not run on a GPU yet (none was available while it was written).
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        timing = time_calls(call, repeats, warmup, device, label)
        peak = torch.cuda.max_memory_allocated(device) / GIB
        return timing, Memory(peak, None, "CUDA allocator peak (torch.cuda.max_memory_allocated)")

    with CpuPeakMemory() as memory:
        timing = time_calls(call, repeats, warmup, device, label)
    return timing, memory.result()
