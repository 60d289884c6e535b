"""``bridgenet eval``: evaluate a trained run, or a folder of saved predictions."""

from pathlib import Path

import typer

from bridgenet_cli.cli.common import SET_OPTION, DeviceOption
from bridgenet_cli.errors import BridgeNetError

FORMATS = ("table", "json")
DEVICES = ("auto", "cpu", "cuda")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)


def eval_command(
    run_or_checkpoint: str | None = typer.Argument(
        None,
        help="A run folder (its best.pt, else last.pt) or a checkpoint file.",
        show_default=False,
    ),
    split: str = typer.Option("val", "--split", help="Dataset split to evaluate."),
    save_predictions: Path | None = typer.Option(
        None, "--save-predictions", help="Also write every prediction into this (new) folder."
    ),
    output_format: str = typer.Option("table", "--format", help="Output: table or json."),
    as_reference: Path | None = typer.Option(
        None, "--as-reference", help="Merge the results into this single-task references file."
    ),
    references: Path | None = typer.Option(
        None, "--references", help="Single-task references (JSON) for Delta_MTL."
    ),
    predictions: Path | None = typer.Option(
        None, "--predictions", help="Offline mode: score this predictions folder instead."
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", help="Offline mode: dataset name or prepared cache file (.h5)."
    ),
    device: DeviceOption = "auto",
    overrides: list[str] = SET_OPTION,
) -> None:
    """Evaluate a trained model at native resolution, or score saved predictions.

    Prints a table (or JSON) and writes eval.json into the run folder.

    Metrics follow the conventions of published numbers; eval.json names each one.

    Under torchrun each rank evaluates a shard and the numbers are those of one process.

    Examples:

      bridgenet eval runs/nyud-bridgenet

      bridgenet eval runs/nyud-bridgenet/checkpoints/last.pt --format json

      bridgenet eval runs/stl-semseg --as-reference refs/nyud.json

      bridgenet eval runs/nyud-bridgenet --references refs/nyud.json --save-predictions preds/

      bridgenet eval --predictions preds/ --dataset nyud

      bridgenet eval runs/quick --set eval.max_samples=50 --set eval.edge_benchmark=false

    Prediction files are DIR/<task>/<sample id>.<ext>:

      semseg, human_parts: 8-bit PNG of class ids

      depth: float32 .npy (H, W) in the dataset's unit

      normals: float32 .npy (H, W, 3)

      saliency, edge: 8-bit PNG of probabilities (0-255)
    """
    from bridgenet_cli.evaluation import evaluate_checkpoint, evaluate_predictions

    if output_format not in FORMATS:
        raise BridgeNetError(f"--format {output_format!r} is not one of {', '.join(FORMATS)}",
                             "use --format table or --format json")  # fmt: skip
    if device not in DEVICES:
        raise BridgeNetError(f"--device {device!r} is not one of {', '.join(DEVICES)}",
                             "use --device auto, cpu or cuda")  # fmt: skip
    if predictions is not None:
        if run_or_checkpoint is not None:
            raise BridgeNetError(
                "give either RUN_OR_CHECKPOINT or --predictions, not both",
                "drop one of them",
            )
        if dataset is None:
            raise BridgeNetError(
                "--predictions needs --dataset (a dataset name or a prepared cache file)",
                "add e.g. --dataset nyud",
            )
        for flag, value in (
            ("--save-predictions", save_predictions),
            ("--as-reference", as_reference),
        ):
            if value is not None:
                raise BridgeNetError(f"{flag} applies to a model, not to --predictions",
                                     f"drop {flag}")  # fmt: skip
        report = evaluate_predictions(predictions, dataset, split, list(overrides), references)
    else:
        if run_or_checkpoint is None:
            raise BridgeNetError(
                "nothing to evaluate",
                "pass a run folder or checkpoint, or --predictions DIR --dataset NAME",
            )
        if dataset is not None:
            raise BridgeNetError("--dataset applies to --predictions only",
                                 "the run's recipe names its dataset; use --set data.cache=... "
                                 "to point at another cache")  # fmt: skip
        report = evaluate_checkpoint(
            run_or_checkpoint,
            split=split,
            overrides=list(overrides),
            save_predictions_dir=save_predictions,
            references=references,
            as_reference=as_reference,
            device=device,
        )
    _show(report, output_format)


def _show(report, output_format: str) -> None:
    import os

    from rich.console import Console

    from bridgenet_cli.evaluation.report import results_json, results_table

    if int(os.environ.get("RANK", "0")) != 0:
        return
    if output_format == "json":
        typer.echo(results_json(report))
    else:
        Console(soft_wrap=True).print(results_table(report))
