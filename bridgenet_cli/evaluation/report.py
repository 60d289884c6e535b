"""Presenting an evaluation: a rich table (per-class IoUs left to the JSON) or JSON text."""

import json

from rich.table import Table

from bridgenet_cli.evaluation.evaluator import EvalReport
from bridgenet_cli.evaluation.metrics import metric_label
from bridgenet_cli.tasks import TASKS


def _format(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def results_table(report: EvalReport) -> Table:
    """One row per task and metric; the primary metric of each task first and in bold."""
    title = f"{report.source} - {report.dataset} {report.split} ({report.num_samples} images)"
    table = Table(title=title, title_justify="left")
    table.add_column("task")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for task, metrics in report.results.items():
        primary = TASKS.get(task).metric
        keys = [primary] + [k for k in metrics if k != primary and not k.startswith("iou/")]
        for position, key in enumerate(k for k in keys if k in metrics):
            label = metric_label(task, key)
            value = _format(metrics[key])
            if key == primary:
                label, value = f"[bold]{label}[/]", f"[bold]{value}[/]"
            table.add_row(TASKS.get(task).title if position == 0 else "", label, value)
        table.add_section()
    if report.delta is not None:
        for task, gain in report.delta.gains.items():
            table.add_row("gain vs STL", f"{task} ({report.delta.metrics[task]}) %", _format(gain))
        table.add_row(
            "[bold]Delta_MTL[/]", "mean gain %", f"[bold]{_format(report.delta.value)}[/]"
        )
    return table


def results_json(report: EvalReport) -> str:
    return json.dumps(report.to_dict(), indent=2)
