"""Delta_MTL: the multi-task model's average relative gain over single-task (STL) references.

``Delta_MTL = mean over tasks of (-1)^l * (M_mtl - M_stl) / M_stl * 100`` with ``l = 1`` when lower
is better (``TASKS[t].higher_is_better``) and M each task's primary metric (``TASKS[t].metric``).

References file (JSON), written by ``bridgenet eval STL_RUN --as-reference FILE`` (several STL
runs merge into one file) or by hand::

    {
      "format": "bridgenet-references",
      "version": 1,
      "dataset": "nyud",
      "split": "val",
      "tasks": {
        "semseg": {"miou": 45.1, "pixel_acc": 71.3},
        "depth": {"rmse": 0.55}
      },
      "sources": {"semseg": "runs/stl-semseg/checkpoints/best.pt"}
    }

Only ``dataset`` and ``tasks`` (each with at least its primary metric) are required.
"""

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bridgenet_cli.data.info import DATASETS
from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.io import atomic_write_text
from bridgenet_cli.tasks import TASKS

logger = logging.getLogger(__name__)

FORMAT = "bridgenet-references"
VERSION = 1

Results = dict[str, dict[str, float | None]]


@dataclass
class References:
    dataset: str
    tasks: dict[str, dict[str, float]]
    split: str = "val"
    sources: dict[str, str] = field(default_factory=dict)
    backbone: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "dataset": self.dataset,
            "split": self.split,
            "tasks": self.tasks,
            "sources": self.sources,
        }
        if self.backbone:
            out["backbone"] = self.backbone
        return out


@dataclass
class DeltaReport:
    value: float | None  # Delta_MTL in percent; None when a task has no reference
    gains: dict[str, float | None]  # task -> relative gain in percent
    metrics: dict[str, str]  # task -> the metric compared
    missing: list[str]  # tasks without a usable reference

    def to_dict(self) -> dict[str, Any]:
        return {
            "delta_mtl": self.value,
            "gains": self.gains,
            "metrics": self.metrics,
            "missing": self.missing,
            "formula": "mean over tasks of (-1)^l * (M_mtl - M_stl) / M_stl * 100, "
            "l = 1 when lower is better",
        }


def load_references(path: str | Path) -> References:
    """Read and check a references file."""
    path = Path(path)
    hint = "write it with 'bridgenet eval STL_RUN --as-reference FILE' or see the README format"
    if not path.is_file():
        raise BridgeNetError(f"references file not found: {path}", hint)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BridgeNetError(f"{path}: not valid JSON ({exc})", hint) from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict):
        raise BridgeNetError(f"{path}: expected an object with a 'tasks' table", hint)
    if not isinstance(data.get("dataset"), str):
        raise BridgeNetError(f"{path}: key 'dataset' (the dataset name) is missing", hint)
    DATASETS.get(data["dataset"])
    tasks: dict[str, dict[str, float]] = {}
    for task, metrics in data["tasks"].items():
        TASKS.get(task)
        if not isinstance(metrics, dict):
            raise BridgeNetError(f"{path}: tasks.{task} must map metric names to numbers", hint)
        clean = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
        tasks[task] = clean
    return References(
        dataset=data["dataset"],
        tasks=tasks,
        split=str(data.get("split", "val")),
        sources={str(k): str(v) for k, v in dict(data.get("sources", {})).items()},
        backbone=data.get("backbone"),
    )


def write_references(
    path: str | Path,
    results: Results,
    dataset: str,
    split: str,
    source: str,
    backbone: str | None = None,
) -> References:
    """Merge ``results`` (task -> metric -> value) into the references file at ``path``.

    An existing file must be for the same dataset; its other tasks are kept, the evaluated
    tasks are replaced. The file is written atomically.
    """
    path = Path(path)
    if path.exists():
        references = load_references(path)
        if references.dataset != dataset:
            raise BridgeNetError(
                f"{path} holds references for {references.dataset}, not {dataset}",
                "use one references file per dataset",
            )
        replaced = [task for task in results if task in references.tasks]
        if replaced:
            logger.info("replacing the references of %s in %s", ", ".join(replaced), path)
    else:
        references = References(dataset=dataset, tasks={}, split=split)
    if backbone and references.backbone and backbone != references.backbone:
        logger.warning(
            "%s holds references of backbone %s; adding %s", path, references.backbone, backbone
        )
    for task, metrics in results.items():
        references.tasks[task] = {k: float(v) for k, v in metrics.items() if v is not None}
        references.sources[task] = source
    references.backbone = references.backbone or backbone
    text = json.dumps({**references.to_dict(), "updated": _now()}, indent=2) + "\n"
    atomic_write_text(path, text)
    return references


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def relative_gain(value: float, reference: float, higher_is_better: bool) -> float | None:
    """``(-1)^l (value - reference) / reference * 100``; None for a zero or non-finite input."""
    if reference == 0 or not math.isfinite(reference) or not math.isfinite(value):
        return None
    sign = 1.0 if higher_is_better else -1.0
    return sign * (value - reference) / reference * 100.0


def delta_mtl(results: Results, references: References, dataset: str | None = None) -> DeltaReport:
    """Per-task gains and their mean over the tasks of ``results``.

    ``value`` is None (with a warning) when a task lacks a reference for its primary metric.
    """
    if dataset is not None and references.dataset != dataset:
        raise BridgeNetError(
            f"the references are for {references.dataset}, the evaluation is on {dataset}",
            "pass a references file of the same dataset",
        )
    gains: dict[str, float | None] = {}
    metrics: dict[str, str] = {}
    missing: list[str] = []
    for task, values in results.items():
        spec = TASKS.get(task)
        metrics[task] = spec.metric
        mine = values.get(spec.metric)
        theirs = references.tasks.get(task, {}).get(spec.metric)
        gain = None
        if mine is not None and theirs is not None:
            gain = relative_gain(float(mine), float(theirs), spec.higher_is_better)
        if gain is None:
            missing.append(task)
        gains[task] = gain
    value = None
    if gains and not missing:
        value = sum(g for g in gains.values() if g is not None) / len(gains)
    elif missing:
        logger.warning(
            "no Delta_MTL: no usable single-task reference for %s", ", ".join(sorted(missing))
        )
    return DeltaReport(value=value, gains=gains, metrics=metrics, missing=missing)
