"""``bridgenet profile``: parameters, FLOPs, latency and memory of a model, per component."""

import dataclasses
import json
import logging
import re

import typer

from bridgenet_cli.cli.common import SET_OPTION
from bridgenet_cli.config.recipe import CHOICES, load_recipe, parse_override, recipe_from_dict
from bridgenet_cli.config.schema import Recipe
from bridgenet_cli.errors import BridgeNetError

logger = logging.getLogger(__name__)


def parse_resolution(text: str) -> tuple[int, int]:
    """``"512x512"`` -> ``(512, 512)``; anything else is a one-line error."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or min(int(match.group(1)), int(match.group(2))) <= 0:
        raise BridgeNetError(
            f"--resolution expects HxW with positive integers, got {text!r}",
            "write it like --resolution 512x512",
        )
    return int(match.group(1)), int(match.group(2))


def _check_choice(option: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise BridgeNetError(
            f"{option} expects one of {', '.join(choices)}, got {value!r}", "use a listed value"
        )


def _overrides_only(overrides: list[str]) -> tuple[Recipe, dict]:
    """A recipe made of ``--set`` values alone, and the nested dict of what they set."""
    data: dict = {}
    for text in overrides:
        key, value = parse_override(text)
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return recipe_from_dict(data, source="--set"), data


def build_request(
    recipe_path: str | None,
    overrides: list[str],
    backbone: str | None,
    dataset: str | None,
    tasks: str | None,
    variant: str | None,
    tfr: str | None,
    resolution: str | None,
    **timing,
):
    """Merge a recipe (or ``--set`` values, over the paper's defaults) with the options, which win.

    Without ``--recipe``: ViT-B on PASCAL, the paper's TFR size for the dataset, all its tasks at
    its training size, unless ``--set`` or an option says otherwise.
    """
    from bridgenet_cli.data import resolve_train_size
    from bridgenet_cli.profiling.profile import PAPER_TFR_SIZE, ProfileRequest

    _check_choice("--variant", variant, CHOICES["model.variant"])
    _check_choice("--tfr", tfr, CHOICES["model.tfr_size"])
    _check_choice("--device", timing.get("device"), ("cpu", "cuda"))
    _check_choice("--amp", timing.get("amp"), ("none", "bf16", "fp16"))
    if recipe_path:
        recipe = load_recipe(recipe_path, overrides)
        model = dataclasses.replace(recipe.model)
        dataset = dataset or recipe.data.dataset
        task_list = list(recipe.data.tasks)
    else:
        recipe, given = _overrides_only(overrides)
        model = dataclasses.replace(recipe.model)
        dataset = dataset or (
            recipe.data.dataset if "dataset" in given.get("data", {}) else "pascal"
        )
        if "backbone" not in given.get("model", {}):
            model.backbone = "vit-base"
        if "tfr_size" not in given.get("model", {}):
            model.tfr_size = PAPER_TFR_SIZE.get(dataset, model.tfr_size)
        task_list = list(recipe.data.tasks)
    # The recipe's training size (synthetic scenes: their own size) when profiling its dataset.
    size = resolve_train_size(recipe.data) if dataset == recipe.data.dataset else None
    if backbone:
        model.backbone = backbone
    if variant:
        model.variant = variant
    if tfr:
        model.tfr_size = tfr
    if tasks:
        task_list = [t.strip() for t in tasks.split(",") if t.strip()]
    if resolution:
        size = parse_resolution(resolution)
    return ProfileRequest(model=model, dataset=dataset, tasks=task_list, resolution=size, **timing)


def profile(
    backbone: str | None = typer.Option(
        None, "--backbone", "-b", help="Backbone name or timm:<name>. Default: vit-base."
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", "-d", help="pascal | nyud | cityscapes | synthetic. Default: pascal."
    ),
    tasks: str | None = typer.Option(
        None, "--tasks", help="Comma-separated tasks. Default: all of the dataset's."
    ),
    variant: str | None = typer.Option(
        None, "--variant", help="bridgenet | mtl-baseline | stl. Default: bridgenet."
    ),
    tfr: str | None = typer.Option(
        None, "--tfr", help="TFR size base | large | huge. Default: the paper's for the dataset."
    ),
    resolution: str | None = typer.Option(
        None, "--resolution", "-r", help="Input HxW. Default: the dataset's training size."
    ),
    batch: int = typer.Option(1, "--batch", help="Images per forward pass."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda."),
    amp: str = typer.Option("none", "--amp", help="none | bf16 | fp16 (fp16: CUDA only)."),
    channels_last: bool = typer.Option(
        False, "--channels-last", help="Run convolutions in channels-last memory format."
    ),
    threads: int = typer.Option(0, "--threads", help="CPU threads; 0: torch's default."),
    repeats: int = typer.Option(3, "--repeats", help="Timed runs; 0 skips timing."),
    warmup: int = typer.Option(1, "--warmup", help="Untimed runs before timing."),
    no_flops: bool = typer.Option(False, "--no-flops", help="Skip the FLOP count."),
    compare: bool = typer.Option(
        False, "--compare", help="Show the paper's Table 4 figures next to the measured ones."
    ),
    output_format: str = typer.Option("table", "--format", help="table | json."),
    recipe: str | None = typer.Option(
        None, "--recipe", help="Take the model, dataset, tasks and size from a recipe."
    ),
    overrides: list[str] = SET_OPTION,
) -> None:
    """Profile a model: parameters, FLOPs, latency and memory, in total and per component.

    Weights are random (nothing is loaded or downloaded). FLOPs are counted by fvcore on one
    image, one multiply-add counting as one FLOP. Latency: warm-up runs, then timed runs (median
    and p90), with CUDA events on a GPU and a monotonic clock on CPU, also relative to the bare
    backbone on the same input. Peak memory: the CUDA allocator's peak, or on CPU the growth of
    the process's peak resident memory over the runs.

    Examples:

        bridgenet profile --backbone vit-large --format json

        bridgenet profile --backbone vit-base --compare

        bridgenet profile --dataset nyud --tfr base --repeats 0

        bridgenet profile --variant mtl-baseline --device cuda --amp bf16 --batch 8

        bridgenet profile --recipe recipes/nyud_vitb.toml --set model.tfr_size=huge
    """
    from bridgenet_cli.profiling import profile_model, render_report

    _check_choice("--format", output_format, ("table", "json"))
    request = build_request(
        recipe,
        overrides,
        backbone,
        dataset,
        tasks,
        variant,
        tfr,
        resolution,
        batch=batch,
        device=device,
        amp=amp,
        channels_last=channels_last,
        threads=threads,
        repeats=repeats,
        warmup=warmup,
        flops=not no_flops,
        compare=compare,
    )
    report = profile_model(request)
    if output_format == "json":
        typer.echo(json.dumps(report, indent=2))
    else:
        from rich.console import Console

        Console().print(render_report(report))


def register(app: typer.Typer) -> None:
    app.command("profile")(profile)
