"""Setting up a training run: the run folder, data, model, optimiser and their restored state.

:func:`build_session` gathers everything the loop of :mod:`bridgenet_cli.engine.trainer` needs
into a :class:`Session`: on a fresh run with weights initialised from ``train.seed`` (the same on
every rank), on a resumed one with the model, optimiser, schedule, loss scaler, generator states
and data position of ``checkpoints/last.pt``.
"""

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from bridgenet_cli.config.recipe import load_recipe
from bridgenet_cli.config.schema import Recipe
from bridgenet_cli.engine import checkpoint as ckpt
from bridgenet_cli.engine.builders import (
    build_recipe_model,
    build_split,
    prepare_data,
    recipe_tasks,
)
from bridgenet_cli.engine.distributed import DistContext, barrier
from bridgenet_cli.engine.losses import task_weights
from bridgenet_cli.engine.monitor import MetricsLog
from bridgenet_cli.engine.optim import build_optimizer, build_scheduler
from bridgenet_cli.engine.precision import Precision, build_precision
from bridgenet_cli.engine.sampler import SeededSamples, StepBatchSampler, StepLayout
from bridgenet_cli.engine.selection import Selection, build_selection
from bridgenet_cli.errors import BridgeNetError

logger = logging.getLogger(__name__)

DEPTH_PRIOR_SAMPLES = 64  # training samples whose mean depth starts the depth heads


@dataclass
class Session:
    """Everything a running training holds; the loop of the trainer reads and updates it."""

    recipe: Recipe
    run_dir: Path
    ctx: DistContext
    tasks: list[str]
    weights: dict[str, float]
    model: nn.Module  # the bare model
    train_model: nn.Module  # the model the forward pass goes through (DDP-wrapped or bare)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    precision: Precision
    layout: StepLayout
    selection: Selection
    metrics: MetricsLog
    iteration: int = 0
    best: dict[str, Any] = field(default_factory=dict)
    last_eval: dict[str, Any] | None = None
    val_dataset: Dataset | None = None
    stop_requested: bool = False  # set by Ctrl-C; the loop saves and stops after the step
    saved_iteration: int = -1  # iteration of the last checkpoint this process wrote


# ----------------------------------------------------------------------------------------------


def prepare_run_dir(
    run_dir: Path, recipe: Recipe, resume: bool, ctx: DistContext
) -> dict[str, Any] | None:
    """The checkpoint to resume from, or None for a fresh run; refuse to overwrite anything.

    A folder holding a run of another recipe, or a run when ``resume`` is False, is an error;
    so is a non-empty folder that is not a run folder.
    """
    last = ckpt.last_path(run_dir)
    if last.exists():
        if not resume:
            raise BridgeNetError(
                f"run folder {run_dir} already holds a run ({last})",
                "resume it (drop --no-resume) or train into a new folder with --out",
            )
        checkpoint = ckpt.read_checkpoint(last, map_location="cpu")
        ckpt.check_same_recipe(ckpt.checkpoint_recipe(checkpoint, str(last)), recipe, run_dir)
        return checkpoint

    recipe_file = run_dir / "recipe.toml"
    if recipe_file.exists():
        # A run that stopped before its first checkpoint: start again only with the same recipe.
        ckpt.check_same_recipe(load_recipe(recipe_file), recipe, run_dir)
    elif run_dir.exists() and any(run_dir.iterdir()) and ctx.is_main:
        raise BridgeNetError(
            f"{run_dir} is not empty and is not a bridgenet run folder",
            "train into a new or empty folder with --out",
        )
    return None


def check_settings(recipe: Recipe, ctx: DistContext) -> None:
    """Catch recipe mistakes that are cheap to find before any data or model is built."""
    cfg = recipe.train
    tasks = recipe_tasks(recipe)
    task_weights(tasks, recipe.data.dataset, cfg.loss_weights)
    build_selection(cfg.select_metric, tasks, recipe.eval.references is not None)
    build_precision(cfg.amp, ctx.device)
    # The split of the batch over ranks and micro-batches (the data size is checked later).
    StepLayout(cfg.batch_size, cfg.batch_size, cfg.grad_accum, ctx.world_size).check()
    if cfg.sync_bn and ctx.distributed and ctx.device.type != "cuda":
        raise BridgeNetError(
            "train.sync_bn needs CUDA devices (torch's SyncBatchNorm has no CPU kernels)",
            "set --set train.sync_bn=false for CPU runs",
        )


def configure_backends(device: torch.device) -> None:
    """Fast kernels on CUDA (TF32 matmuls, cuDNN autotuning); CPU runs stay bit-reproducible."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_train_data(recipe: Recipe, ctx: DistContext) -> Dataset:
    """The training split; rank 0 prepares the cache first while the other ranks wait."""
    if ctx.is_main:
        prepare_data(recipe)
    barrier(ctx)
    return build_split(recipe, "train", train=True)


def build_session(
    recipe: Recipe,
    run_dir: Path,
    ctx: DistContext,
    num_samples: int,
    checkpoint: dict[str, Any] | None,
    train_dataset: Dataset | None = None,
) -> Session:
    """Model, optimiser, schedule and bookkeeping, restored from ``checkpoint`` when given.

    A fresh run with ``train_dataset`` starts its depth outputs at the split's mean depth
    (:func:`init_depth_prior`).
    """
    cfg = recipe.train
    tasks = recipe_tasks(recipe)
    layout = StepLayout(num_samples, cfg.batch_size, cfg.grad_accum, ctx.world_size)
    layout.check()

    seed_everything(cfg.seed)  # the same initial weights on every rank
    model = build_recipe_model(recipe, with_pretrained=checkpoint is None)
    if checkpoint is not None:
        ckpt.load_model_state(model, checkpoint["model"], ckpt.last_path(run_dir))
    elif train_dataset is not None:
        init_depth_prior(model, tasks, train_dataset)
    model = place_model(model, recipe, ctx)

    optimizer = build_optimizer(
        model, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum, tuple(cfg.betas)
    )
    scheduler = build_scheduler(optimizer, cfg.max_iters, cfg.lr_power, cfg.warmup_iters)
    precision = build_precision(cfg.amp, ctx.device)
    resume_iter = checkpoint["iteration"] if checkpoint is not None else 0

    session = Session(
        recipe=recipe,
        run_dir=run_dir,
        ctx=ctx,
        tasks=tasks,
        weights=task_weights(tasks, recipe.data.dataset, cfg.loss_weights),
        model=model,
        train_model=wrap_distributed(model, recipe, ctx),
        optimizer=optimizer,
        scheduler=scheduler,
        precision=precision,
        layout=layout,
        selection=build_selection(cfg.select_metric, tasks, recipe.eval.references is not None),
        metrics=MetricsLog(run_dir, enabled=ctx.is_main, resume_iter=resume_iter),
    )
    session.best = {
        "metric": session.selection.name,
        "value": None,
        "iteration": None,
        "higher_is_better": session.selection.higher_is_better,
    }
    if checkpoint is not None:
        restore_session(session, checkpoint)
    else:
        seed_everything(cfg.seed + ctx.rank)  # distinct stochastic-depth masks per rank
    return session


def init_depth_prior(model: nn.Module, tasks: list[str], dataset: Dataset) -> None:
    """Start the depth heads at the mean valid depth of (up to) the first 64 training samples.

    A head that starts near zero spends its first few hundred iterations learning only the offset
    to depths of several metres; short runs and small models then end with a depth worse than
    predicting the mean. Reading samples draws no random numbers, so every rank and every rerun
    starts the same.
    """
    if "depth" not in tasks or not hasattr(model, "init_output_bias"):
        return
    source = getattr(dataset, "source", None)
    if source is None:
        return
    total, count = 0.0, 0
    for index in range(min(len(source), DEPTH_PRIOR_SAMPLES)):
        depth = source.read(index, ("depth",))["depth"]
        valid = depth > 0
        total += float(depth[valid].sum(dtype=np.float64))
        count += int(valid.sum())
    if count == 0:
        return
    mean = total / count
    model.init_output_bias("depth", mean)
    logger.info("depth outputs start at the mean training depth, %.3f", mean)


def place_model(model: nn.Module, recipe: Recipe, ctx: DistContext) -> nn.Module:
    """Move to the device, optionally channels-last and SyncBatchNorm; training mode."""
    if recipe.train.sync_bn and ctx.distributed:  # CUDA only, see check_settings
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(ctx.device)
    if recipe.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    return model


def wrap_distributed(model: nn.Module, recipe: Recipe, ctx: DistContext) -> nn.Module:
    if not ctx.distributed:
        return model
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    # Without deep supervision the intermediate heads get no gradient; DDP must look for them.
    find_unused = recipe.train.deep_supervision == 0
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=find_unused)


def restore_session(session: Session, checkpoint: dict[str, Any]) -> None:
    """Optimiser, schedule, scaler, generators, position and best score from ``checkpoint``."""
    data_state = checkpoint["data_state"]
    if (data_state["num_samples"], data_state["batch_size"]) != (
        session.layout.num_samples,
        session.layout.batch_size,
    ):
        raise BridgeNetError(
            f"the training split changed since {session.run_dir} was checkpointed "
            f"({data_state['num_samples']} samples then, {session.layout.num_samples} now)",
            "resume with the same prepared dataset, or train into a new folder with --out",
        )

    session.optimizer.load_state_dict(checkpoint["optimizer"])
    session.scheduler.load_state_dict(checkpoint["scheduler"])
    if session.precision.scaler is not None and checkpoint["scaler"] is not None:
        session.precision.scaler.load_state_dict(checkpoint["scaler"])
    session.iteration = int(checkpoint["iteration"])
    session.best = dict(checkpoint["best"])
    session.last_eval = checkpoint.get("last_eval")
    restore_rank_rng(checkpoint["rng"], session)
    logger.info("resumed %s at iteration %d", session.run_dir, session.iteration)


def restore_rank_rng(states: list[dict[str, Any]], session: Session) -> None:
    """Each rank takes back its own generator states; a changed world size re-seeds instead."""
    ctx = session.ctx
    if len(states) == ctx.world_size:
        ckpt.restore_rng(states[ctx.rank])
        return
    logger.warning(
        "the checkpoint has generator states of %d rank(s), this run has %d; re-seeding "
        "(the run continues, but not bit-identically)",
        len(states),
        ctx.world_size,
    )
    seed_everything(session.recipe.train.seed + ctx.rank + 1_000_003 * session.iteration)


def make_loader(session: Session, dataset: Dataset) -> Iterator[dict[str, Any]]:
    """This rank's micro-batches from the current iteration to the end of the run."""
    recipe = session.recipe
    sampler = StepBatchSampler(
        session.layout,
        rank=session.ctx.rank,
        seed=recipe.train.seed,
        start_iter=session.iteration,
        max_iters=recipe.train.max_iters,
    )
    workers = recipe.data.num_workers
    loader = DataLoader(
        SeededSamples(dataset),
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=session.ctx.device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if workers > 0 else None,
        # A private generator: creating the iterator must not draw from the global stream.
        generator=torch.Generator().manual_seed(recipe.train.seed),
    )
    return iter(loader)
