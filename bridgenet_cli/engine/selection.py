"""Which validation score picks the best checkpoint.

``train.select_metric``:

- ``auto``: Delta_MTL when ``eval.references`` gives single-task references, else the first task's
  primary metric (``TASKS[task].metric``) with its direction;
- ``delta_mtl``: Delta_MTL (needs ``eval.references``);
- ``task.metric``, e.g. ``depth.rmse``: that entry of the validation results.
"""

import math
from dataclasses import dataclass
from typing import Any

from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.tasks import TASKS

DELTA_MTL = "delta_mtl"

# Secondary metrics that improve downwards (primary metrics carry their direction in TASKS).
LOWER_IS_BETTER = {"rmse", "log_rmse", "abs_rel", "sq_rel", "mean", "median", "loss", "bce"}


@dataclass(frozen=True)
class Selection:
    """A named validation score and its direction."""

    name: str  # "delta_mtl" or "task.metric"
    higher_is_better: bool

    def value(self, results: dict[str, Any], delta_mtl: float | None) -> float:
        """The score in ``results`` (task -> metric -> value) or the given Delta_MTL."""
        if self.name == DELTA_MTL:
            if delta_mtl is None:
                raise BridgeNetError(
                    "best-checkpoint selection needs Delta_MTL but validation gave none",
                    "check eval.references, or set train.select_metric to task.metric",
                )
            return float(delta_mtl)
        task, metric = self.name.split(".", 1)
        available = results.get(task, {})
        if metric not in available:
            raise BridgeNetError(
                f"train.select_metric={self.name!r}: validation has no {metric!r} for {task}",
                f"choose one of {', '.join(f'{task}.{m}' for m in sorted(available))}",
            )
        return float(available[metric])

    def improves(self, value: float, best: float | None) -> bool:
        if not math.isfinite(value):
            return False
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best


def build_selection(select_metric: str, tasks: list[str], has_references: bool) -> Selection:
    """Resolve ``train.select_metric`` for a run of ``tasks``."""
    if select_metric == "auto":
        if has_references:
            return Selection(DELTA_MTL, higher_is_better=True)
        spec = TASKS.get(tasks[0])
        return Selection(f"{tasks[0]}.{spec.metric}", spec.higher_is_better)

    if select_metric == DELTA_MTL:
        if not has_references:
            raise BridgeNetError(
                "train.select_metric='delta_mtl' needs single-task references",
                "set eval.references to a JSON of single-task results, or select a task metric",
            )
        return Selection(DELTA_MTL, higher_is_better=True)

    task, dot, metric = select_metric.partition(".")
    if not dot or not metric:
        raise BridgeNetError(
            f"train.select_metric={select_metric!r} is not auto, delta_mtl or task.metric",
            f"for example --set train.select_metric={tasks[0]}.{TASKS.get(tasks[0]).metric}",
        )
    if task not in tasks:
        raise BridgeNetError(
            f"train.select_metric={select_metric!r} names {task!r}, which this run does not train",
            f"choose a metric of {', '.join(tasks)}",
        )
    spec = TASKS.get(task)
    higher = spec.higher_is_better if metric == spec.metric else metric not in LOWER_IS_BETTER
    return Selection(select_metric, higher)
