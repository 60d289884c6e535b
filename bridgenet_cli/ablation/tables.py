"""Study results as tables (Markdown, CSV, JSON) and a bar chart of the gains over STL.

A table has one column per task (its primary metric, ``TASKS[task].metric``) and one gain column
per task, the relative gain over the single-task run of that task in percent,

    gain = (-1)^l * (M_mtl - M_stl) / M_stl * 100,   l = 1 when lower is better,

and Delta_MTL, the mean gain over the row's tasks (the paper's Eq. 8 and 9; the gain itself is
:func:`bridgenet_cli.evaluation.delta.relative_gain`). The first row is STL, built from the
single-task runs.
"""

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from bridgenet_cli.evaluation.delta import relative_gain
from bridgenet_cli.io import atomic_write, atomic_write_text
from bridgenet_cli.tasks import TASKS

# Short task names for table headers, as in the paper's tables.
SHORT_TITLES = {
    "semseg": "Seg.",
    "human_parts": "H.Parts",
    "depth": "Dep.",
    "normals": "Norm.",
    "saliency": "Sal.",
    "edge": "Edge.",
}
# Metric names as the paper's tables write them.
METRIC_TITLES = {"miou": "mIoU", "rmse": "rmse", "mean": "mErr", "maxf": "maxF", "odsf": "odsF"}


@dataclass
class TableRow:
    """One row: metrics and gains per task (``None`` where the row lacks the task)."""

    label: str
    run: str  # run name(s) the numbers come from
    metrics: dict[str, float | None] = field(default_factory=dict)
    gains: dict[str, float | None] = field(default_factory=dict)  # percent
    delta_mtl: float | None = None  # percent
    params_m: float | None = None  # parameter increment in millions (refine study)


@dataclass
class StudyTable:
    study: str
    dataset: str
    tasks: list[str]
    rows: list[TableRow]
    show_params: bool = False

    def to_dict(self) -> dict:
        return {
            "study": self.study,
            "dataset": self.dataset,
            "tasks": self.tasks,
            "metrics": {t: TASKS.get(t).metric for t in self.tasks},
            "higher_is_better": {t: TASKS.get(t).higher_is_better for t in self.tasks},
            "gain_formula": "(-1)^l * (M_mtl - M_stl) / M_stl * 100, l = 1 if lower is better",
            "rows": [asdict(row) for row in self.rows],
        }


def primary_metric(metrics: dict[str, dict[str, float]], task: str) -> float | None:
    """The task's primary metric from an evaluation result ``task -> metric -> value``."""
    value = metrics.get(task, {}).get(TASKS.get(task).metric)
    return float(value) if isinstance(value, int | float) else None


def build_table(
    study: str,
    dataset: str,
    tasks: list[str],
    stl: dict[str, dict[str, dict[str, float]]],
    rows: list[tuple[str, str, list[str], dict[str, dict[str, float]]]],
    params_m: dict[str, float] | None = None,
) -> StudyTable:
    """Assemble a table.

    ``stl`` maps each task to its single-task run's evaluation; ``rows`` are ``(label, run name,
    the row's tasks, evaluation)``; ``params_m`` maps run names to parameter increments.
    """
    stl_row = TableRow(label="STL", run=", ".join(f"stl-{t}" for t in tasks if t in stl))
    for task in tasks:
        stl_row.metrics[task] = primary_metric(stl.get(task, {}), task)
        stl_row.gains[task] = None
    table_rows = [stl_row]

    for label, run, row_tasks, metrics in rows:
        row = TableRow(label=label, run=run)
        gains = []
        for task in tasks:
            value = primary_metric(metrics, task) if task in row_tasks else None
            reference = stl_row.metrics.get(task)
            gain = None
            if value is not None and reference is not None:
                gain = relative_gain(value, reference, TASKS.get(task).higher_is_better)
            row.metrics[task] = value
            row.gains[task] = gain
            if task in row_tasks:
                gains.append(gain)
        if gains and all(g is not None for g in gains):
            row.delta_mtl = float(np.mean(gains))
        if params_m is not None:
            row.params_m = params_m.get(run)
        table_rows.append(row)
    return StudyTable(study, dataset, tasks, table_rows, show_params=params_m is not None)


def _header(table: StudyTable) -> list[str]:
    header = ["Model"]
    if table.show_params:
        header.append("Params (M)")
    for task in table.tasks:
        spec = TASKS.get(task)
        arrow = "↑" if spec.higher_is_better else "↓"
        short = SHORT_TITLES.get(task, spec.title)
        metric = METRIC_TITLES.get(spec.metric, spec.metric)
        header += [f"{short} {metric} {arrow}", f"Δ{short} (%)"]
    header.append("Δ_MTL (%) ↑")
    return header


def _decimals(values: list[float | None], small: int, large: int) -> int:
    """One number of decimals for a whole column: ``small`` when every value is below 10."""
    present = [abs(v) for v in values if v is not None]
    return small if present and max(present) < 10 else large


def _number(value: float | None, decimals: int, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{decimals}f}" if sign else f"{value:.{decimals}f}"


def _cells(table: StudyTable, row: TableRow) -> list[str]:
    cells = [row.label]
    if table.show_params:
        decimals = _decimals([r.params_m for r in table.rows], small=2, large=1)
        cells.append(_number(row.params_m, decimals, sign=True))
    for task in table.tasks:
        decimals = _decimals([r.metrics.get(task) for r in table.rows], small=4, large=2)
        cells += [
            _number(row.metrics.get(task), decimals),
            _number(row.gains.get(task), 2, sign=True),
        ]
    cells.append(_number(row.delta_mtl, 2, sign=True))
    return cells


def to_markdown(table: StudyTable) -> str:
    header = _header(table)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in table.rows:
        lines.append("| " + " | ".join(_cells(table, row)) + " |")
    return "\n".join(lines) + "\n"


def to_csv(table: StudyTable) -> str:
    """Machine-readable: full-precision numbers, empty cells where a row lacks a task."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["model", "run"] + (["params_m"] if table.show_params else [])
    for task in table.tasks:
        header += [f"{task}.{TASKS.get(task).metric}", f"{task}.gain_pct"]
    writer.writerow(header + ["delta_mtl_pct"])
    for row in table.rows:
        cells: list[object] = [row.label, row.run]
        if table.show_params:
            cells.append("" if row.params_m is None else row.params_m)
        for task in table.tasks:
            for value in (row.metrics.get(task), row.gains.get(task)):
                cells.append("" if value is None else value)
        cells.append("" if row.delta_mtl is None else row.delta_mtl)
        writer.writerow(cells)
    return buffer.getvalue()


def plot_gains(table: StudyTable, path: str | Path) -> Path:
    """Grouped bars: per row (STL left out), each task's gain and Delta_MTL, in percent."""
    rows = table.rows[1:]
    series = [*table.tasks, "delta_mtl"]
    width = 0.8 / len(series)
    figure = Figure(figsize=(max(6.0, 1.3 * len(rows) * len(series) * 0.35 + 3), 4.5))
    axis = figure.subplots()
    positions = np.arange(len(rows))

    for index, name in enumerate(series):
        if name == "delta_mtl":
            heights = [row.delta_mtl for row in rows]
            label, style = "Δ_MTL", {"color": "black"}
        else:
            heights = [row.gains.get(name) for row in rows]
            label, style = SHORT_TITLES.get(name, name), {"color": f"C{index % 10}"}
        values = [np.nan if h is None else h for h in heights]
        offsets = positions - 0.4 + width * (index + 0.5)
        bars = axis.bar(offsets, values, width=width, label=label, **style)
        texts = ["" if np.isnan(v) else f"{v:+.1f}" for v in values]
        axis.bar_label(bars, labels=texts, fontsize=6, padding=1)

    axis.axhline(0.0, color="grey", linewidth=0.8)
    axis.set_xticks(positions)
    axis.set_xticklabels([row.label for row in rows], rotation=20, ha="right", fontsize=8)
    axis.set_ylabel("gain over STL (%)")
    axis.set_title(f"{table.study} study on {table.dataset}: gains over single-task runs")
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside the bars
    figure.tight_layout()

    path = Path(path)
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    return path


def write_tables(table: StudyTable, folder: str | Path) -> dict[str, Path]:
    """Write ``results.md``, ``results.csv``, ``results.json`` and ``gains.png`` into ``folder``."""
    folder = Path(folder)
    paths = {
        "markdown": folder / "results.md",
        "csv": folder / "results.csv",
        "json": folder / "results.json",
        "chart": folder / "gains.png",
    }
    atomic_write_text(paths["markdown"], to_markdown(table))
    atomic_write_text(paths["csv"], to_csv(table))
    atomic_write_text(paths["json"], json.dumps(table.to_dict(), indent=2) + "\n")
    plot_gains(table, paths["chart"])
    return paths
