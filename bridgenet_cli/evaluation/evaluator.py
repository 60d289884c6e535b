"""Evaluation loops: a model on a dataset (online), a predictions folder (offline), a run.

- :func:`evaluate_model`: the core loop. The network sees each image padded (as the dataset
  serves it); each prediction and label is cut back to the native size, converted to the saved
  form and fed to the task's accumulator. Under ``torch.distributed`` each rank evaluates every
  ``world``-th sample and the accumulators' states are summed, which gives the numbers of one
  process.
- :func:`evaluate_predictions`: the same accumulators over a ``DIR/<task>/<id>.<ext>`` folder.
- :func:`evaluate_checkpoint` (the CLI), :func:`evaluate_run` (ablation studies) and
  :func:`evaluate_during_training` (the trainer's periodic validation) wrap them for a run.
"""

import json
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from bridgenet_cli.config.recipe import parse_override, recipe_from_dict, recipe_to_dict
from bridgenet_cli.config.schema import EvalConfig, Recipe
from bridgenet_cli.data.info import DATASETS, DatasetInfo
from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.evaluation import predictions as pred_io
from bridgenet_cli.evaluation.delta import DeltaReport, delta_mtl, load_references
from bridgenet_cli.evaluation.delta import write_references as write_references_file
from bridgenet_cli.evaluation.metrics import MetricAccumulator, build_metrics
from bridgenet_cli.io import atomic_write_text
from bridgenet_cli.log import console, progress_enabled
from bridgenet_cli.tasks import TASKS

logger = logging.getLogger(__name__)

Results = dict[str, dict[str, float | None]]


@dataclass
class EvalReport:
    """One evaluation: task -> metric -> value, Delta_MTL when references were given."""

    results: Results
    dataset: str
    split: str
    num_samples: int
    seconds: float
    source: str  # the checkpoint or predictions folder evaluated
    delta: DeltaReport | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dataset": self.dataset,
            "split": self.split,
            "num_samples": self.num_samples,
            "seconds": round(self.seconds, 2),
            "results": self.results,
            "delta_mtl": self.delta.to_dict() if self.delta else None,
            "conventions": CONVENTIONS,
            "written": datetime.now().isoformat(timespec="seconds"),
            **self.extra,
        }


# How each number was computed, stored with every result file.
CONVENTIONS = {
    "semseg/human_parts": "IoU per class from counts pooled over the split, mean over classes "
    "present in labels or predictions; human_parts skips images without labelled pixels",
    "depth": "errors pooled over all valid pixels (label > 0); predictions clamped to >= 1e-9",
    "normals": "angle in degrees after L2-normalising, pooled over valid pixels; median from "
    "0.001-degree bins",
    "saliency": "maxf: InvPT/ATRC (thresholds 0.05..0.95, pooled, beta^2=0.3); maxf_mtinet and "
    "miou: MTI-Net (15 thresholds in [0.2, 0.9], per-image averages, beta=1)",
    "edge": "odsf/oisf/ap: boundary benchmark (NMS, 101 thresholds, thinning, one-to-one matching "
    "within edge_tolerance x diagonal); bce_proxy: balanced BCE of published code, a proxy only",
    "units": "ratios in percent; depth in the dataset unit; angles in degrees",
}


# ----------------------------------------------------------------------------------------------
# Distributed helpers
# ----------------------------------------------------------------------------------------------


def _world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def reduce_states(accumulators: dict[str, MetricAccumulator], device: torch.device) -> None:
    """Sum every accumulator's state over the ranks (each rank ends with the total)."""
    import torch.distributed as dist

    for task in sorted(accumulators):
        accumulator = accumulators[task]
        state = accumulator.state()
        keys = sorted(state)
        flat = np.concatenate([state[k].ravel() for k in keys])
        # gloo and NCCL both sum float64 exactly enough: counts stay below 2^53.
        tensor = torch.from_numpy(flat).to(device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        total = tensor.cpu().numpy()
        reduced, start = {}, 0
        for key in keys:
            size = state[key].size
            reduced[key] = total[start : start + size].reshape(state[key].shape)
            start += size
        accumulator.load_state(reduced)


# ----------------------------------------------------------------------------------------------
# The online loop
# ----------------------------------------------------------------------------------------------


def _collate(samples: list[dict]) -> dict[str, Any]:
    """Stack images (padded bottom/right to the largest in the batch); keep labels per sample."""
    H = max(s["image"].shape[-2] for s in samples)
    W = max(s["image"].shape[-1] for s in samples)
    images = torch.zeros(len(samples), 3, H, W)
    for i, sample in enumerate(samples):
        _, h, w = sample["image"].shape
        images[i, :, :h, :w] = sample["image"]
    return {"image": images, "samples": samples}


def dataset_info(dataset: Dataset, model: nn.Module | None = None) -> DatasetInfo:
    """The dataset's facts: ``dataset.info`` when it has one, else the model's dataset name."""
    info = getattr(dataset, "info", None)
    if isinstance(info, DatasetInfo):
        return info
    name = getattr(model, "dataset", None)
    if name is None:
        raise ValueError("cannot tell which dataset this is: give the dataset an .info")
    return DATASETS.get(name)


def _progress(total: int, description: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    if not progress_enabled():
        return nullcontext(None)
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def evaluate_model(
    model: nn.Module,
    dataset: Dataset,
    tasks: list[str] | None = None,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    max_samples: int = 0,
    num_workers: int = 0,
    edge_benchmark: bool = True,
    edge_workers: int = 0,
    save_predictions_dir: str | Path | None = None,
    distributed: bool | None = None,
) -> Results:
    """Evaluate ``model`` on ``dataset`` at native resolution; returns task -> metric -> value.

    ``dataset`` yields the samples of ``docs/internals.md`` (padded images with ``size``);
    ``tasks`` defaults to the model's. ``max_samples`` > 0 keeps the first N samples.
    ``save_predictions_dir`` also writes every prediction in the documented file format.
    ``distributed=None`` shards over the ranks when a process group is initialised (every rank
    must call this); pass False to evaluate everything in this process (e.g. rank 0 alone).
    """
    tasks = list(tasks if tasks is not None else model.tasks)
    info = dataset_info(dataset, model)
    device = torch.device(device)
    rank, world = _world()
    if distributed is False:
        rank, world = 0, 1
    count = len(dataset) if max_samples <= 0 else min(max_samples, len(dataset))
    indices = list(range(rank, count, world))
    if save_predictions_dir is not None:
        if rank == 0:
            pred_io.check_output_folder(Path(save_predictions_dir), tasks)
        if world > 1:
            import torch.distributed as dist

            dist.barrier()

    accumulators = build_metrics(tasks, info, edge_benchmark, edge_workers)
    loader = DataLoader(
        Subset(dataset, indices),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_collate,
    )
    was_training = model.training
    model.eval()
    try:
        with _progress(len(indices), "evaluating") as progress:
            bar = progress.add_task("evaluating", total=len(indices)) if progress else None
            for batch in loader:
                _evaluate_batch(model, batch, tasks, device, accumulators, save_predictions_dir)
                if progress:
                    progress.advance(bar, len(batch["samples"]))
            _finish_edges(accumulators, progress)
        if world > 1:
            reduce_states(accumulators, device if device.type == "cuda" else torch.device("cpu"))
        return {task: accumulators[task].compute() for task in tasks}
    finally:
        for accumulator in accumulators.values():
            accumulator.close()
        model.train(was_training)


def _finish_edges(accumulators: dict[str, MetricAccumulator], progress) -> None:
    edge = accumulators.get("edge")
    pending = getattr(edge, "pending", lambda: 0)()
    if not pending:
        return
    bar = progress.add_task("edge benchmark", total=pending) if progress else None
    edge.finish(on_image=(lambda: progress.advance(bar)) if progress else None)


@torch.no_grad()
def _evaluate_batch(
    model: nn.Module,
    batch: dict[str, Any],
    tasks: list[str],
    device: torch.device,
    accumulators: dict[str, MetricAccumulator],
    save_dir: str | Path | None,
) -> None:
    images = batch["image"].to(device)
    B, _, H, W = images.shape
    outputs = model(images)["final"]

    for task in tasks:
        raw = outputs[task].float()
        if raw.shape[-2:] != (H, W):
            raw = F.interpolate(raw, size=(H, W), mode="bilinear", align_corners=False)
        predicted = TASKS.get(task).postprocess(raw).cpu()  # (B, ...) at the padded size
        for i, sample in enumerate(batch["samples"]):
            h, w = (int(v) for v in sample["size"])
            pred = pred_io.prediction_array(task, predicted[i][..., :h, :w])
            target = pred_io.target_array(task, sample[task][..., :h, :w])
            accumulators[task].update(pred, target)
            if save_dir is not None:
                pred_io.save_prediction(Path(save_dir), task, sample["id"], pred)


# ----------------------------------------------------------------------------------------------
# Offline: a predictions folder
# ----------------------------------------------------------------------------------------------


def _apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        key, value = parse_override(text)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return data


def _offline_recipe(dataset: str, overrides: list[str]) -> Recipe:
    """A recipe for the dataset named ``dataset``, or for the prepared cache file it points at."""
    path = Path(dataset).expanduser()
    if dataset in DATASETS:
        data: dict[str, Any] = {"data": {"dataset": dataset}}
    elif path.suffix in (".h5", ".hdf5") or path.is_file():
        from bridgenet_cli.data.cache import read_header

        header = read_header(path)
        data = {"data": {"dataset": header.dataset, "cache": str(path)}}
    else:
        raise BridgeNetError(
            f"--dataset {dataset!r} is neither a dataset name nor a prepared cache file",
            f"use one of {', '.join(DATASETS.names())}, or the path of a .h5 cache",
        )
    return recipe_from_dict(_apply_overrides(data, list(overrides)), source="--dataset/--set")


def evaluate_predictions(
    predictions_dir: str | Path,
    dataset: str,
    split: str = "val",
    overrides: list[str] | None = None,
    references: str | Path | None = None,
) -> EvalReport:
    """Score a predictions folder (``DIR/<task>/<sample id>.<ext>``) against a dataset split.

    ``dataset`` is a dataset name or a prepared cache file; ``overrides`` are ``--set`` style
    ``data.*`` and ``eval.*`` keys (e.g. the synthetic generator's settings, eval.max_samples).
    Missing or extra ids, wrong file types and wrong sizes raise a :class:`BridgeNetError` listing
    the first offenders.
    """
    from bridgenet_cli.data import build_dataset

    start = time.perf_counter()
    root = Path(predictions_dir)
    recipe = _offline_recipe(dataset, overrides or [])
    info = DATASETS.get(recipe.data.dataset)
    tasks = pred_io.folder_tasks(root, info.tasks)
    samples = build_dataset(recipe.data, split, tasks, train=False)
    info = dataset_info(samples)
    count = (
        len(samples) if recipe.eval.max_samples <= 0 else min(recipe.eval.max_samples, len(samples))
    )
    ids = (
        list(samples.ids[:count])
        if hasattr(samples, "ids")
        else [samples[i]["id"] for i in range(count)]
    )
    for task in tasks:
        pred_io.check_ids(root, task, ids)
        pred_io.check_headers(root, task, ids)

    accumulators = build_metrics(tasks, info, recipe.eval.edge_benchmark, recipe.eval.edge_workers)
    checker = pred_io.ContentChecker(root)
    classes = {t: len(info.class_names.get(t, ())) for t in tasks}
    try:
        with _progress(count, "scoring") as progress:
            bar = progress.add_task("scoring predictions", total=count) if progress else None
            for index in range(count):
                sample = samples[index]
                h, w = (int(v) for v in sample["size"])
                for task in tasks:
                    pred = pred_io.read_prediction(root, task, sample["id"])
                    if checker.check(task, sample["id"], pred, (h, w), classes[task]):
                        target = pred_io.target_array(task, sample[task][..., :h, :w])
                        accumulators[task].update(pred, target)
                if progress:
                    progress.advance(bar)
            checker.raise_if_any()
            _finish_edges(accumulators, progress)
        results = {task: accumulators[task].compute() for task in tasks}
    finally:
        for accumulator in accumulators.values():
            accumulator.close()

    report = EvalReport(
        results=results,
        dataset=recipe.data.dataset,
        split=split,
        num_samples=count,
        seconds=time.perf_counter() - start,
        source=str(root),
    )
    _attach_delta(report, references)
    return report


def _attach_delta(report: EvalReport, references: str | Path | None) -> None:
    if references:
        report.delta = delta_mtl(report.results, load_references(references), report.dataset)


# ----------------------------------------------------------------------------------------------
# Runs and checkpoints
# ----------------------------------------------------------------------------------------------


def run_folder(checkpoint: Path) -> Path:
    """The run folder of a checkpoint (``RUN/checkpoints/x.pt`` -> ``RUN``)."""
    checkpoint = Path(checkpoint)
    if checkpoint.parent.name == "checkpoints":
        return checkpoint.parent.parent
    return checkpoint.parent


def eval_file(run_dir: Path, split: str) -> Path:
    """``eval.json`` for the val split, ``eval-<split>.json`` for another."""
    return Path(run_dir) / ("eval.json" if split == "val" else f"eval-{split}.json")


def _with_overrides(recipe: Recipe, overrides: list[str]) -> Recipe:
    if not overrides:
        return recipe
    data = _apply_overrides(recipe_to_dict(recipe), list(overrides))
    return recipe_from_dict(data, source="--set")


def evaluate_checkpoint(
    run_or_checkpoint: str | Path,
    split: str = "val",
    overrides: list[str] | None = None,
    save_predictions_dir: str | Path | None = None,
    references: str | Path | None = None,
    as_reference: str | Path | None = None,
    device: str = "auto",
    write: bool = True,
) -> EvalReport:
    """Evaluate a run folder's ``best.pt`` (else ``last.pt``) or a checkpoint file.

    The recipe is the checkpoint's, with ``overrides`` applied (``eval.*``, ``data.num_workers``,
    ``data.cache``...). With ``write``, rank 0 writes ``eval.json`` (``eval-<split>.json`` for
    another split) into the run folder; ``as_reference`` merges the results into a references
    file. ``references`` (else ``eval.references`` of the recipe) adds Delta_MTL. Runs under
    ``torchrun`` with each rank evaluating a shard.
    """
    from bridgenet_cli.engine.distributed import init_distributed, shutdown_distributed

    start = time.perf_counter()
    joined = _process_group_exists()
    ctx = init_distributed(device)
    try:
        return _evaluate_checkpoint(
            ctx, run_or_checkpoint, split, overrides, save_predictions_dir, references,
            as_reference, write, start,
        )  # fmt: skip
    finally:
        if ctx.distributed and not joined:
            shutdown_distributed()


def _process_group_exists() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def _evaluate_checkpoint(
    ctx, run_or_checkpoint, split, overrides, save_predictions_dir, references, as_reference,
    write, start,
) -> EvalReport:  # fmt: skip
    from bridgenet_cli.engine.builders import build_split, recipe_tasks
    from bridgenet_cli.engine.checkpoint import load_for_inference

    model, recipe, checkpoint = load_for_inference(run_or_checkpoint, ctx.device)
    recipe = _with_overrides(recipe, list(overrides or []))
    tasks = recipe_tasks(recipe)
    dataset = build_split(recipe, split, train=False)
    results = evaluate_model(
        model,
        dataset,
        tasks,
        device=ctx.device,
        batch_size=recipe.eval.batch_size,
        max_samples=recipe.eval.max_samples,
        num_workers=recipe.data.num_workers,
        edge_benchmark=recipe.eval.edge_benchmark,
        edge_workers=recipe.eval.edge_workers,
        save_predictions_dir=save_predictions_dir,
    )
    count = (
        len(dataset) if recipe.eval.max_samples <= 0 else min(recipe.eval.max_samples, len(dataset))
    )
    report = EvalReport(
        results=results,
        dataset=recipe.data.dataset,
        split=split,
        num_samples=count,
        seconds=time.perf_counter() - start,
        source=str(checkpoint),
        extra={"tasks": tasks, "eval_settings": recipe_to_dict(recipe)["eval"]},
    )
    _attach_delta(report, references or recipe.eval.references)
    if ctx.is_main:
        if write:
            path = eval_file(run_folder(checkpoint), split)
            atomic_write_text(path, json.dumps(report.to_dict(), indent=2) + "\n")
            report.extra["written_to"] = str(path)
            logger.info("wrote %s", path)
        if as_reference:
            write_references_file(
                as_reference, results, recipe.data.dataset, split, str(checkpoint),
                backbone=recipe.model.backbone,
            )  # fmt: skip
            logger.info("added %s to the references in %s", ", ".join(tasks), as_reference)
    return report


def evaluate_run(run_dir: str | Path, eval_cfg: EvalConfig | None = None) -> Results:
    """A finished run's validation results (task -> metric -> value) under ``eval_cfg``
    (default: the run's own ``[eval]`` settings); also writes the run's ``eval.json``."""
    overrides = []
    if eval_cfg is not None:
        for key, value in recipe_to_dict(Recipe(eval=eval_cfg))["eval"].items():
            if value is not None:
                overrides.append(f"eval.{key}={json.dumps(value)}")
    return evaluate_checkpoint(run_dir, "val", overrides).results


def evaluate_during_training(
    model: nn.Module, dataset: Dataset, recipe: Recipe, tasks: list[str], device: torch.device
) -> tuple[Results, float | None]:
    """The trainer's validation: ``(results, Delta_MTL or None)`` under the recipe's ``[eval]``
    settings, in this process only (rank 0 validates while the others wait)."""
    results = evaluate_model(
        model,
        dataset,
        tasks,
        device=device,
        batch_size=recipe.eval.batch_size,
        max_samples=recipe.eval.max_samples,
        edge_benchmark=recipe.eval.edge_benchmark,
        edge_workers=recipe.eval.edge_workers,
        distributed=False,
    )
    delta = None
    if recipe.eval.references:
        delta = delta_mtl(results, load_references(recipe.eval.references), recipe.data.dataset)
    return results, delta.value if delta else None
