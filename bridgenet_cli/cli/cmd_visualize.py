"""``bridgenet visualize``: predictions, internal features and training curves as pictures."""

from pathlib import Path

import typer

from bridgenet_cli.cli.common import DeviceOption
from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.visualization.curves import visualize_curves
from bridgenet_cli.visualization.features import DEFAULT_POINTS
from bridgenet_cli.visualization.visualize import visualize_features, visualize_predictions

MODEL_ARGUMENT = typer.Argument(
    ..., help="A run folder (its best checkpoint, else its last) or a checkpoint file."
)
OUT_OPTION = typer.Option(..., "--out", "-o", help="Folder for the pictures and index.html.")
IMAGES_OPTION = typer.Option(
    None,
    "--images",
    "-i",
    help="Image files (JPEG, PNG) or folders of them; repeatable. Default: dataset samples.",
)
SPLIT_OPTION = typer.Option("val", "--split", help="Dataset split to take samples from.")

visualize_app = typer.Typer(
    help="Draw a model's predictions, its internal features and its training curves, each "
    "folder with an index.html that opens offline.\n\n"
    "Examples:\n\n"
    "  bridgenet visualize predictions runs/quickstart --out pictures/pred\n\n"
    "  bridgenet visualize features runs/quickstart --out pictures/feat --reduce mean\n\n"
    "  bridgenet visualize curves runs/quickstart --out pictures/curves",
    no_args_is_help=True,
)


@visualize_app.command("predictions")
def predictions(
    model: str = MODEL_ARGUMENT,
    out: Path = OUT_OPTION,
    images: list[str] | None = IMAGES_OPTION,
    split: str = SPLIT_OPTION,
    num: int = typer.Option(8, "--num", "-n", help="Number of split samples."),
    device: DeviceOption = "auto",
) -> None:
    """Input, ground truth (when known) and prediction of every task, one figure per image.

    Class maps: a fixed palette and a legend of the classes present.

    Depth: a perceptual colour map on a scale shared with the truth, and a colour bar.

    Normals: RGB. Edges and saliency: grey maps.

    --images takes any JPEG or PNG (larger ones are shrunk to the model's training size).

    Examples:

      bridgenet visualize predictions runs/quickstart --out pictures/pred --num 8

      bridgenet visualize predictions runs/quickstart --images photo.jpg --out pictures/photo
    """
    index = visualize_predictions(model, out, images or None, split, num, device)
    typer.echo(f"wrote {index}")


def _parse_points(texts: list[str]) -> tuple[tuple[float, float], ...]:
    points = []
    for text in texts:
        try:
            x, y = (float(part) for part in text.split(","))
        except ValueError:
            raise BridgeNetError(
                f"--points {text!r} is not x,y", "write --points 0.5,0.5 (fractions of the image)"
            ) from None
        points.append((x, y))
    return tuple(points) or DEFAULT_POINTS


@visualize_app.command("features")
def features(
    model: str = MODEL_ARGUMENT,
    out: Path = OUT_OPTION,
    images: list[str] | None = IMAGES_OPTION,
    split: str = SPLIT_OPTION,
    num: int = typer.Option(4, "--num", "-n", help="Number of split samples."),
    reduce: str = typer.Option(
        "pca", "--reduce", help="pca (3 principal components as RGB) or mean (|activation|)."
    ),
    points: list[str] = typer.Option(
        [],
        "--points",
        "-p",
        help="TPP query point x,y as fractions of width and height; repeatable. "
        "Default: 0.5,0.5 0.25,0.75 0.75,0.3",
    ),
    device: DeviceOption = "auto",
) -> None:
    """Task-generic S, bridge S' and task-specific P at each stage, and TPP attention maps.

    As in the paper's Figures 3 and 10; maps become pictures by PCA or mean |activation|.

    For each query point, each task's TPP attention is drawn over the image.

    Examples:

      bridgenet visualize features runs/quickstart --out pictures/feat

      bridgenet visualize features runs/quickstart --images room.png --points 0.3,0.8 --out x
    """
    index = visualize_features(
        model, out, images or None, split, num, reduce, _parse_points(points), device
    )
    typer.echo(f"wrote {index}")


@visualize_app.command("curves")
def curves(
    run_dir: Path = typer.Argument(..., help="A run folder (holding metrics.jsonl)."),
    out: Path = OUT_OPTION,
) -> None:
    """Training losses per task, learning rate and validation metrics against iterations.

    Examples:

      bridgenet visualize curves runs/quickstart --out pictures/curves
    """
    from bridgenet_cli.visualization.visualize import prepare_out

    index = visualize_curves(run_dir, prepare_out(out))
    typer.echo(f"wrote {index}")


def register(app: typer.Typer) -> None:
    app.add_typer(visualize_app, name="visualize")
