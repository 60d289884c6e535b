"""What a run reports while it trains: a progress bar, ``metrics.jsonl`` and TensorBoard events.

Only rank 0 reports. ``metrics.jsonl`` holds one JSON object a line, ``{"iter": ..., "split":
"train" | "val", ...}``; TensorBoard events go to ``<run>/tensorboard`` when TensorBoard is
installed (the ``tensorboard`` extra).
"""

import json
import logging
import math
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bridgenet_cli.io import atomic_write_text
from bridgenet_cli.log import console, progress_enabled

logger = logging.getLogger(__name__)

METRICS_NAME = "metrics.jsonl"


def _tensorboard_writer(log_dir: Path, purge_step: int | None) -> Any | None:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is an optional extra
        return None
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


def flatten_results(results: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """``{"semseg": {"miou": 0.4}}`` -> ``{"semseg/miou": 0.4}`` (numbers only)."""
    flat: dict[str, float] = {}
    for key, value in results.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_results(value, name + "/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


class MetricsLog:
    """Appends records to ``metrics.jsonl``, mirrored to TensorBoard; inert when disabled."""

    def __init__(self, run_dir: Path, enabled: bool, resume_iter: int) -> None:
        self.enabled = enabled
        self.path = Path(run_dir) / METRICS_NAME
        self.writer = None
        if not enabled:
            return
        self._drop_after(resume_iter)
        purge = resume_iter if resume_iter > 0 else None
        self.writer = _tensorboard_writer(Path(run_dir) / "tensorboard", purge)

    def _drop_after(self, iteration: int) -> None:
        """Forget records a killed run wrote after its last checkpoint; they will be redone."""
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by the kill
            if record.get("iter", 0) <= iteration:
                kept.append(line)
        atomic_write_text(self.path, "".join(f"{line}\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        """Append one record; it must hold ``iter`` and ``split``."""
        if not self.enabled:
            return
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in record.items()}  # fmt: skip
        with self.path.open("a") as handle:
            handle.write(json.dumps(clean) + "\n")
        if self.writer is not None:
            step, split = record["iter"], record["split"]
            for key, value in flatten_results(record).items():
                if key != "iter":
                    self.writer.add_scalar(f"{split}/{key}", value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """All records of a run's ``metrics.jsonl`` (empty if there is none)."""
    path = Path(run_dir) / METRICS_NAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class TrainProgress:
    """A rich progress bar: iterations, loss per task, learning rate, images/s and ETA."""

    def __init__(self, total: int, start: int, enabled: bool) -> None:
        self.enabled = enabled and progress_enabled()
        self.progress: Progress | None = None
        self.task_id = None
        self.total = total
        self.start = start

    def __enter__(self) -> "TrainProgress":
        if self.enabled:
            self.progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self.progress.start()
            self.task_id = self.progress.add_task(
                "train", total=self.total, completed=self.start, stats=""
            )
        return self

    def update(self, iteration: int, losses: dict[str, float], lr: float, images_per_s: float):
        if self.progress is None:
            return
        parts = [f"{name} {value:.3f}" for name, value in losses.items()]
        parts.append(f"lr {lr:.2e}")
        parts.append(f"{images_per_s:.1f} img/s")
        self.progress.update(self.task_id, completed=iteration, stats=" | ".join(parts))

    def __exit__(self, *exc_info: object) -> None:
        if self.progress is not None:
            self.progress.stop()
