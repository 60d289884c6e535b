"""A profile report (see :mod:`bridgenet_cli.profiling.profile`) as rich tables for a terminal."""

from rich.console import Group
from rich.table import Table


def _share(part: float | None, total: float | None) -> str:
    if part is None or not total:
        return "-"
    return f"{100 * part / total:.1f}%"


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render_report(report: dict) -> Group:
    """The per-component table, the timing summary and, if present, the Table 4 comparison."""
    cfg = report["config"]
    title = (
        f"{cfg['backbone']} {cfg['variant']} on {cfg['dataset']} ({len(cfg['tasks'])} tasks), "
        f"{cfg['resolution'][0]}x{cfg['resolution'][1]}, batch {cfg['batch']}, {cfg['device']}"
        f"{'' if cfg['amp'] == 'none' else ' ' + cfg['amp']}"
    )
    components = Table(title=title, title_justify="left")
    components.add_column("component")
    components.add_column("params (M)", justify="right")
    components.add_column("share", justify="right")
    components.add_column("GFLOPs", justify="right")
    components.add_column("share", justify="right")
    total_params, total_gflops = report["params_m"], report.get("gflops")
    for name, row in report["components"].items():
        components.add_row(
            name,
            f"{row['params_m']:.4g}",
            _share(row["params_m"], total_params),
            _num(row["gflops"], ".4g"),
            _share(row["gflops"], total_gflops),
        )
    components.add_section()
    components.add_row("total", f"{total_params:.4g}", "", _num(total_gflops, ".4g"), "")
    parts = [components]
    if total_gflops is not None:
        parts.append(f"FLOPs: {report['flop_convention']}, for one image")

    if "latency_s" in report:
        timing = Table(show_header=False, box=None)
        latency = report["latency_s"]
        text = f"median {latency['median']:.3f}, p90 {latency['p90']:.3f}"
        if "cpu_median" in latency:
            text += f" (process CPU time: median {latency['cpu_median']:.3f})"
        timing.add_row("latency (s)", text)
        timing.add_row(
            "bare backbone (s)",
            f"median {report['backbone_latency_s']['median']:.3f} "
            f"(model / backbone = {report['latency_vs_backbone']:.2f})",
        )
        timing.add_row("throughput", f"{report['throughput_img_s']:.2f} images/s")
        memory = f"{report['peak_memory_gb']:.2f} GiB"
        if "peak_rss_gb" in report:
            memory += f" (process peak {report['peak_rss_gb']:.2f} GiB)"
        timing.add_row("peak memory", memory)
        timing.add_row("", report["memory_method"])
        parts.append(timing)

    if "paper" in report:
        paper = Table(title=report["paper_note"], title_justify="left")
        for column in ("figure", "paper", "measured", "measured / paper"):
            paper.add_column(column, justify="left" if column == "figure" else "right")
        for key, row in report["paper"].items():
            paper.add_row(key, f"{row['paper']:g}", _num(row["measured"], ".3f"),
                          _num(row["ratio"], ".3f"))  # fmt: skip
        parts.append(paper)
    return Group(*parts)
