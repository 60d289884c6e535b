"""``bridgenet prepare-data``: dataset folders and synthetic scenes into HDF5 caches."""

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from bridgenet_cli.errors import BridgeNetError

prepare_app = typer.Typer(
    name="prepare-data",
    help="Prepare datasets into one HDF5 cache each, verify caches, and measure their speed.\n\n"
    "Caches go to the data directory ($BRIDGENET_DATA, else ~/.cache/bridgenet/data) as "
    "<dataset>.h5, where recipes find them by dataset name; --out puts them elsewhere. "
    "The dataset folder is only read.\n\n"
    "Examples:\n\n"
    "  bridgenet prepare-data nyud --root ~/datasets/NYUDv2 --verify\n\n"
    "  bridgenet prepare-data cityscapes --root ~/datasets/cityscapes --size 384x768\n\n"
    "  bridgenet prepare-data benchmark nyud --root ~/datasets/NYUDv2",
    no_args_is_help=True,
)

RootOption = Annotated[
    Path, typer.Option("--root", help="The unpacked dataset folder (never written to).")
]
OutOption = Annotated[
    Path | None, typer.Option("--out", help="Cache file; default: <data dir>/<dataset>.h5.")
]
TasksOption = Annotated[
    str | None,
    typer.Option("--tasks", help="Comma-separated subset of the dataset's tasks; default: all."),
]
SkipBadOption = Annotated[
    bool,
    typer.Option(
        "--skip-bad", help="Leave bad samples out (listed in the cache) instead of failing."
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option("--workers", help="Decoding processes; default: CPU cores (max 8)."),
]
VerifyOption = Annotated[
    bool, typer.Option("--verify", help="Re-read the written cache and check every sample.")
]
ForceOption = Annotated[bool, typer.Option("--force", help="Replace an existing cache file.")]
CompressionOption = Annotated[
    str,
    typer.Option(
        "--compression",
        help="fast: images and depth uncompressed (several times faster to read than the raw "
        "files); small: everything gzip-compressed (smaller, slower to read).",
    ),
]
NumTrainOption = Annotated[int, typer.Option("--num-train", help="Scenes in the train split.")]
NumValOption = Annotated[int, typer.Option("--num-val", help="Scenes in the val split.")]


def _tasks(text: str | None) -> tuple[str, ...] | None:
    if not text:
        return None
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise BridgeNetError(
            f"bad --size {text!r}", "write it as HEIGHTxWIDTH, e.g. 384x768"
        ) from None
    if height < 1 or width < 1:
        raise BridgeNetError(f"bad --size {text!r}", "both sides must be positive")
    return height, width


def _report(result, verify: bool) -> None:
    from bridgenet_cli.data.cache import verify_cache

    counts = ", ".join(f"{split} {n}" for split, n in result.splits.items())
    skipped = sum(len(v) for v in result.skipped.values())
    note = f", skipped {skipped} bad" if skipped else ""
    typer.echo(f"wrote {result.path} ({counts}{note}) in {result.seconds:.1f} s")
    if verify:
        report = verify_cache(result.path)
        typer.echo(f"verified {report.path}: {sum(report.splits.values())} samples, no problems")


def _prepare_folder(
    dataset, root, out, tasks, skip_bad, workers, verify, force, compression, **options
):
    from bridgenet_cli.data.prepare import prepare_cache
    from bridgenet_cli.data.readers import make_reader
    from bridgenet_cli.paths import default_cache_path

    reader = make_reader(dataset, root, _tasks(tasks), **options)
    target = Path(out) if out else default_cache_path(dataset)
    result = prepare_cache(
        reader,
        target,
        skip_bad=skip_bad,
        workers=workers,
        force=force,
        dataset_root=reader.root,
        compression=compression,
    )
    _report(result, verify)


def _folder_command(dataset: str, doc: str) -> Callable[..., None]:
    """Register ``prepare-data <dataset>`` for a dataset folder that needs no options of its own.

    ``doc`` is the command's --help text; the command runs :func:`_prepare_folder`.
    """

    def command(
        root: RootOption,
        out: OutOption = None,
        tasks: TasksOption = None,
        skip_bad: SkipBadOption = False,
        workers: WorkersOption = None,
        verify: VerifyOption = False,
        force: ForceOption = False,
        compression: CompressionOption = "fast",
    ) -> None:
        _prepare_folder(dataset, root, out, tasks, skip_bad, workers, verify, force, compression)

    command.__doc__ = doc
    return prepare_app.command(dataset)(command)


nyud = _folder_command(
    "nyud",
    """NYUD-v2, either package (NYUDv2 with .png normals/edges, or NYUD_MT with .npy ones).

    Example: bridgenet prepare-data nyud --root ~/datasets/NYUDv2
    """,
)

pascal = _folder_command(
    "pascal",
    """PASCAL-Context multi-task (semseg, human parts, saliency, normals, edges).

    Example: bridgenet prepare-data pascal --root ~/datasets/PASCALContext --skip-bad
    """,
)


@prepare_app.command("cityscapes")
def cityscapes(
    root: RootOption,
    out: OutOption = None,
    tasks: TasksOption = None,
    size: str = typer.Option(
        None, "--size", help="Downsample to HEIGHTxWIDTH (the paper: 384x768); default: full."
    ),
    depth: str = typer.Option(
        "disparity", "--depth", help="disparity, or metres (needs the camera/ folder)."
    ),
    skip_bad: SkipBadOption = False,
    workers: WorkersOption = None,
    verify: VerifyOption = False,
    force: ForceOption = False,
    compression: CompressionOption = "fast",
) -> None:
    """Cityscapes: 19 classes and disparity (or metric depth).

    Example: bridgenet prepare-data cityscapes --root ~/datasets/cityscapes --size 384x768
    """
    _prepare_folder(
        "cityscapes", root, out, tasks, skip_bad, workers, verify, force, compression,
        size=_size(size), depth=depth,
    )  # fmt: skip


@prepare_app.command("synthetic")
def synthetic(
    num_train: NumTrainOption = 800,
    num_val: NumValOption = 200,
    height: int = typer.Option(192, "--height", help="Image height in pixels."),
    width: int = typer.Option(256, "--width", help="Image width in pixels."),
    seed: int = typer.Option(0, "--seed", help="Generator seed; the same seed, the same scenes."),
    out: Path = typer.Option(
        None, "--out", help="Cache file; default: the data directory, named by the settings."
    ),
    workers: WorkersOption = None,
    verify: VerifyOption = False,
    force: ForceOption = False,
    compression: str = typer.Option(
        "small", "--compression", help="small (default here: synthetic maps shrink ~5x) or fast."
    ),
) -> None:
    """Generate the synthetic scenes (all six tasks). Recipes generate them on first use too.

    Example: bridgenet prepare-data synthetic --num-train 1000 --num-val 200 --seed 1
    """
    from bridgenet_cli.data.prepare import prepare_cache
    from bridgenet_cli.data.synthetic import SyntheticReader
    from bridgenet_cli.paths import data_dir

    reader = SyntheticReader(num_train, num_val, height, width, seed)
    target = Path(out) if out else data_dir() / reader.cache_name()
    result = prepare_cache(reader, target, workers=workers, force=force, compression=compression)
    _report(result, verify)


@prepare_app.command("verify")
def verify(cache: Path = typer.Argument(..., help="The cache file to check.")) -> None:
    """Re-read every sample of a cache and check it (format, version, values, checksums).

    Example: bridgenet prepare-data verify ~/.cache/bridgenet/data/nyud.h5
    """
    from rich.progress import Progress

    from bridgenet_cli.data.cache import read_header, verify_cache
    from bridgenet_cli.log import console, progress_enabled

    header = read_header(cache)
    total = sum(header.splits.values())
    with Progress(console=console, disable=not progress_enabled()) as progress:
        bar = progress.add_task("verifying", total=total)
        report = verify_cache(cache, progress=lambda n: progress.advance(bar, n))
    counts = ", ".join(f"{split} {n}" for split, n in report.splits.items())
    skipped = sum(report.skipped.values())
    note = f"; {skipped} samples were skipped when it was prepared" if skipped else ""
    typer.echo(f"{cache}: {report.dataset} ({report.variant}), {counts}: no problems{note}")


@prepare_app.command("benchmark")
def benchmark(
    dataset: Annotated[str, typer.Argument(help="nyud, pascal or cityscapes.")],
    root: RootOption,
    cache: Path = typer.Option(
        None, "--cache", help="A cache of this folder; default: one of the samples, made now."
    ),
    samples: int = typer.Option(50, "--samples", help="Samples read from each source."),
    split: str = typer.Option("val", "--split", help="The split to read."),
    repeat: int = typer.Option(3, "--repeat", help="Rounds; the best round of each counts."),
    compression: CompressionOption = "fast",
) -> None:
    """Images per second decoding raw dataset files versus reading the HDF5 cache.

    Both read the same samples with all tasks, in one process.
    Example: bridgenet prepare-data benchmark nyud --root ~/datasets/NYUDv2
    """
    from bridgenet_cli.data.benchmark import benchmark_sources

    result = benchmark_sources(dataset, root, cache, samples, split, repeat, compression)
    typer.echo(
        f"{dataset} {split}, {result.samples} samples of {result.size[0]}x{result.size[1]}, "
        f"tasks {','.join(result.tasks)}, cache compression {result.compression}, "
        f"best of {repeat} rounds"
    )
    typer.echo("              wall clock     CPU time")
    typer.echo(f"raw folder : {result.raw_rate:8.1f} /s   {result.raw_cpu_rate:8.1f} /s  images")
    typer.echo(
        f"HDF5 cache : {result.cache_rate:8.1f} /s   {result.cache_cpu_rate:8.1f} /s  images"
    )
    wall = result.cache_rate / result.raw_rate
    cpu = result.cache_cpu_rate / result.raw_cpu_rate
    typer.echo(f"speed-up   : {wall:8.1f}x    {cpu:8.1f}x")


@prepare_app.command("export-folder")
def export_folder(
    out: Path = typer.Option(..., "--out", help="New folder to write (must not exist)."),
    package: str = typer.Option("nyudv2", "--package", help="nyudv2 or nyud_mt."),
    num_train: NumTrainOption = 8,
    num_val: NumValOption = 8,
    height: int = typer.Option(425, "--height", help="Image height (NYUDv2: 425)."),
    width: int = typer.Option(560, "--width", help="Image width (NYUDv2: 560)."),
    seed: int = typer.Option(0, "--seed", help="Generator seed."),
) -> None:
    """Write synthetic scenes as a NYUD folder in a real package's format.

    For trying prepare-data and the benchmark without the real dataset.
    Example: bridgenet prepare-data export-folder --out /tmp/nyud-fake --num-val 50
    """
    from bridgenet_cli.data.export import export_nyud_folder

    export_nyud_folder(out, package, num_train, num_val, height, width, seed)
    typer.echo(f"wrote a {package} folder with {num_train}+{num_val} scenes to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(prepare_app, name="prepare-data")
