"""Training a recipe: the iteration loop and the small steps it is made of.

:func:`train` takes a resolved recipe and a run folder. A fresh folder starts a run; a folder with
``checkpoints/last.pt`` and the same recipe resumes it exactly where the checkpoint left it
(weights, optimiser, schedule, loss scaler, random generators and data position), so that on the
CPU a killed and resumed run ends with the same weights as an uninterrupted one, bit for bit.

Under ``torchrun`` every rank runs :func:`train`; the global batch ``train.batch_size`` is split
over ranks and ``train.grad_accum`` micro-batches (see :mod:`bridgenet_cli.engine.sampler`),
gradients are averaged by DistributedDataParallel, loss values are averaged over ranks, and only
rank 0 validates and writes.
"""

import contextlib
import logging
import math
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
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
from bridgenet_cli.engine.distributed import (
    DistContext,
    barrier,
    init_distributed,
    mean_across_ranks,
    shutdown_distributed,
)
from bridgenet_cli.engine.losses import compute_losses, task_weights, term_task
from bridgenet_cli.engine.monitor import MetricsLog, TrainProgress
from bridgenet_cli.engine.optim import build_optimizer, build_scheduler
from bridgenet_cli.engine.precision import Precision, build_precision
from bridgenet_cli.engine.sampler import SeededSamples, StepBatchSampler, StepLayout
from bridgenet_cli.engine.selection import Selection, build_selection
from bridgenet_cli.engine.validation import validate
from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.rundir import describe_run

logger = logging.getLogger(__name__)

StepCallback = Callable[[int], None]


@dataclass
class TrainResult:
    """What a finished (or already complete) run reports."""

    run_dir: Path
    iteration: int  # optimiser steps done
    last_checkpoint: Path
    best_checkpoint: Path | None  # None when no validation has run
    best: dict[str, Any]  # {"metric", "value", "iteration", "higher_is_better"}
    final_eval: dict[str, Any] | None  # task -> metric -> value (plus "delta_mtl") at the end
    seconds: float  # wall time of this call
    images_per_s: float | None  # training throughput of this call (global, all ranks)


@dataclass
class Session:
    """Everything a running training holds; the step functions below read and update it."""

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
    stop_requested: bool = False


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------


def train(
    recipe: Recipe,
    run_dir: str | Path,
    resume: bool = True,
    argv: list[str] | None = None,
    on_step: StepCallback | None = None,
) -> TrainResult:
    """Train ``recipe`` into ``run_dir`` (resuming it if it holds a checkpoint and ``resume``).

    ``argv`` is recorded in ``command.txt``; ``on_step(iteration)`` is called after every
    optimiser step, once its checkpoint (if any) is written. Raises :class:`BridgeNetError` for a
    folder that holds another recipe's run, a non-finite loss, or any recipe mistake.
    """
    ctx = init_distributed(recipe.train.device)
    try:
        return _train(recipe, Path(run_dir), resume, argv, on_step, ctx)
    finally:
        shutdown_distributed()


def train_from_file(
    recipe_path: str | Path, run_dir: str | Path, overrides: list[str] | None = None, **kwargs: Any
) -> TrainResult:
    """Load a recipe file with ``--set`` style ``overrides`` and :func:`train` it."""
    return train(load_recipe(recipe_path, overrides), run_dir, **kwargs)


def _train(
    recipe: Recipe,
    run_dir: Path,
    resume: bool,
    argv: list[str] | None,
    on_step: StepCallback | None,
    ctx: DistContext,
) -> TrainResult:
    started = time.perf_counter()
    checkpoint = prepare_run_dir(run_dir, recipe, resume, ctx)
    if ctx.is_main:
        describe_run(run_dir, recipe, argv)

    configure_backends(ctx.device)
    train_dataset = build_train_data(recipe, ctx)
    session = build_session(recipe, run_dir, ctx, len(train_dataset), checkpoint)
    if session.iteration >= recipe.train.max_iters:
        logger.info("run %s is already complete (%d iterations)", run_dir, session.iteration)
        session.metrics.close()
        return _result(session, started, images_per_s=None)

    logger.info(
        "training %s on %s (%s) for %d iterations from iteration %d into %s",
        recipe.name or "recipe",
        recipe.data.dataset,
        ", ".join(session.tasks),
        recipe.train.max_iters,
        session.iteration,
        run_dir,
    )
    loader = make_loader(session, train_dataset)
    with _stop_on_interrupt(session):
        images_per_s = run_loop(session, loader, on_step)
    session.metrics.close()
    return _result(session, started, images_per_s)


def _result(session: Session, started: float, images_per_s: float | None) -> TrainResult:
    best_file = ckpt.best_path(session.run_dir)
    return TrainResult(
        run_dir=session.run_dir,
        iteration=session.iteration,
        last_checkpoint=ckpt.last_path(session.run_dir),
        best_checkpoint=best_file if best_file.exists() else None,
        best=dict(session.best),
        final_eval=session.last_eval,
        seconds=time.perf_counter() - started,
        images_per_s=images_per_s,
    )


# ----------------------------------------------------------------------------------------------
# Set-up
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
) -> Session:
    """Model, optimiser, schedule and bookkeeping, restored from ``checkpoint`` when given."""
    cfg = recipe.train
    tasks = recipe_tasks(recipe)
    layout = StepLayout(num_samples, cfg.batch_size, cfg.grad_accum, ctx.world_size)
    layout.check()

    seed_everything(cfg.seed)  # the same initial weights on every rank
    model = build_recipe_model(recipe, with_pretrained=checkpoint is None)
    if checkpoint is not None:
        ckpt.load_model_state(model, checkpoint["model"], ckpt.last_path(run_dir))
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


def place_model(model: nn.Module, recipe: Recipe, ctx: DistContext) -> nn.Module:
    """Move to the device, optionally channels-last and SyncBatchNorm; training mode."""
    if recipe.train.sync_bn and ctx.distributed:
        if ctx.device.type != "cuda":
            raise BridgeNetError(
                "train.sync_bn needs CUDA devices (torch's SyncBatchNorm has no CPU kernels)",
                "set --set train.sync_bn=false for CPU runs",
            )
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


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------


@dataclass
class Window:
    """Loss sums and timing since the last log line."""

    sums: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0
    total_seconds: float = 0.0
    total_steps: int = 0

    def add(self, values: dict[str, float], seconds: float) -> None:
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.steps += 1
        self.seconds += seconds
        self.total_steps += 1
        self.total_seconds += seconds

    def means(self) -> dict[str, float]:
        return {name: value / max(self.steps, 1) for name, value in self.sums.items()}

    def reset(self) -> None:
        self.sums, self.steps, self.seconds = {}, 0, 0.0


def run_loop(
    session: Session, loader: Iterator[dict[str, Any]], on_step: StepCallback | None
) -> float | None:
    """Steps until ``train.max_iters``; returns the training images/s of this call."""
    cfg = session.recipe.train
    window = Window()
    with TrainProgress(cfg.max_iters, session.iteration, enabled=session.ctx.is_main) as progress:
        while session.iteration < cfg.max_iters:
            tick = time.perf_counter()
            micro_batches = next_micro_batches(session, loader)
            values = train_step(session, micro_batches)
            window.add(values, time.perf_counter() - tick)

            images_per_s = cfg.batch_size * window.steps / max(window.seconds, 1e-9)
            progress.update(session.iteration, _bar_losses(values), _lr(session), images_per_s)
            if session.iteration % cfg.log_every == 0 or session.iteration == cfg.max_iters:
                log_train(session, window)
                window.reset()

            after_step(session)
            if on_step is not None:
                on_step(session.iteration)
            if session.stop_requested:
                raise KeyboardInterrupt
    if window.total_seconds == 0:
        return None
    return cfg.batch_size * window.total_steps / window.total_seconds


def next_micro_batches(session: Session, loader: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    """The next step's micro-batches; a Ctrl-C that took the loader's workers down stops cleanly."""
    try:
        return [next(loader) for _ in range(session.recipe.train.grad_accum)]
    except RuntimeError:
        if not session.stop_requested:
            raise
        save(session, promote_to_best=False)  # the state of the last completed step
        raise KeyboardInterrupt from None


def _bar_losses(values: dict[str, float]) -> dict[str, float]:
    """The progress bar shows the total and each task's final-prediction loss."""
    shown = {"loss": values["loss"]}
    for name, value in values.items():
        task = name.removeprefix("loss/")
        if name.startswith("loss/") and "/" not in task:
            shown[task] = value
    return shown


def _lr(session: Session) -> float:
    return session.optimizer.param_groups[0]["lr"]


def to_device(batch: dict[str, Any], device: torch.device, channels_last: bool) -> dict[str, Any]:
    moved = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=True)
            if key == "image" and channels_last:
                value = value.contiguous(memory_format=torch.channels_last)
        moved[key] = value
    return moved


def train_step(session: Session, micro_batches: list[dict[str, Any]]) -> dict[str, float]:
    """One optimiser step over accumulated micro-batches; returns rank-averaged loss values.

    A non-finite loss raises :class:`BridgeNetError` before the weights change.
    """
    cfg = session.recipe.train
    precision = session.precision
    session.optimizer.zero_grad(set_to_none=True)
    term_sums: dict[str, torch.Tensor] = {}
    total_sum = torch.zeros((), device=session.ctx.device)

    for index, batch in enumerate(micro_batches):
        batch = to_device(batch, session.ctx.device, cfg.channels_last)
        last = index == len(micro_batches) - 1
        sync = contextlib.nullcontext()
        if isinstance(session.train_model, DistributedDataParallel) and not last:
            sync = session.train_model.no_sync()  # all-reduce gradients once, on the last one

        with sync:
            with precision.autocast():
                outputs = session.train_model(batch["image"])
            losses = compute_losses(outputs, batch, session.weights, cfg.deep_supervision)
            scaled = losses.total / len(micro_batches)
            if precision.scaler is not None:
                scaled = precision.scaler.scale(scaled)
            scaled.backward()

        total_sum += losses.total.detach()
        for name, value in losses.terms.items():
            term_sums[name] = term_sums.get(name, 0.0) + value.detach()

    names = ["loss", *[f"loss/{name}" for name in term_sums]]
    stacked = torch.stack([total_sum, *term_sums.values()]) / len(micro_batches)
    values = dict(zip(names, mean_across_ranks(stacked, session.ctx).tolist(), strict=True))
    check_finite(session, values)

    apply_gradients(session)
    session.iteration += 1
    return values


def check_finite(session: Session, values: dict[str, float]) -> None:
    """Stop with a message naming the task and iteration if a loss is NaN or infinite."""
    bad = [name for name, value in values.items() if name != "loss" and not math.isfinite(value)]
    if not bad and math.isfinite(values["loss"]):
        return
    iteration = session.iteration + 1
    term = bad[0].removeprefix("loss/") if bad else "loss"
    task = term_task(term)
    last = ckpt.last_path(session.run_dir)
    if last.exists():
        kept = f"the last good checkpoint is {last}"
    else:
        kept = "no checkpoint was written yet"
    raise BridgeNetError(
        f"non-finite {task} loss ({term} = {values.get('loss/' + term, values['loss'])}) at "
        f"iteration {iteration}; training stopped and {kept}",
        f"lower train.lr, keep train.clip_grad on, or check the {task} labels; "
        "re-running the same command resumes from that checkpoint",
    )


def apply_gradients(session: Session) -> None:
    """Unscale (fp16), clip, step the optimiser, the scaler and the schedule."""
    cfg = session.recipe.train
    scaler = session.precision.scaler
    if scaler is not None:
        scaler.unscale_(session.optimizer)
    if cfg.clip_grad > 0:
        torch.nn.utils.clip_grad_norm_(session.model.parameters(), cfg.clip_grad)
    if scaler is not None:
        scaler.step(session.optimizer)
        scaler.update()
    else:
        session.optimizer.step()
    session.scheduler.step()


def log_train(session: Session, window: Window) -> None:
    cfg = session.recipe.train
    record = {
        "iter": session.iteration,
        "split": "train",
        **window.means(),
        "lr": _lr(session),
        "images_per_s": cfg.batch_size * window.steps / max(window.seconds, 1e-9),
    }
    session.metrics.write(record)
    logger.debug("iteration %d: %s", session.iteration, record)


def after_step(session: Session) -> None:
    """Validate and checkpoint when the schedule says so (always after the last step)."""
    cfg = session.recipe.train
    done = session.iteration >= cfg.max_iters
    evaluate_now = done or (cfg.eval_every > 0 and session.iteration % cfg.eval_every == 0)
    save_now = (
        evaluate_now or session.iteration % cfg.checkpoint_every == 0 or session.stop_requested
    )

    improved = False
    if evaluate_now:
        improved = run_validation(session)
    if save_now:
        save(session, promote_to_best=improved)


def run_validation(session: Session) -> bool:
    """Rank 0 validates (the other ranks wait); returns whether the best score improved."""
    improved = False
    if session.ctx.is_main:
        if session.val_dataset is None:
            session.val_dataset = build_split(session.recipe, "val", train=False)
        generators = ckpt.capture_rng()  # validation must not shift the training streams
        try:
            results, delta_mtl = validate(
                session.model,
                session.val_dataset,
                session.recipe,
                session.tasks,
                session.ctx.device,
            )
        finally:
            ckpt.restore_rng(generators)
            session.model.train()
        improved = record_validation(session, results, delta_mtl)
    barrier(session.ctx)
    return improved


def record_validation(session: Session, results: dict[str, Any], delta_mtl: float | None) -> bool:
    """Log validation results and update the best score; returns whether it improved."""
    session.last_eval = dict(results)
    if delta_mtl is not None:
        session.last_eval["delta_mtl"] = delta_mtl
    session.metrics.write({"iter": session.iteration, "split": "val", **session.last_eval})

    value = session.selection.value(results, delta_mtl)
    improved = session.selection.improves(value, session.best.get("value"))
    if improved:
        session.best.update(value=value, iteration=session.iteration)
    logger.info(
        "iteration %d: %s = %.4f (best %.4f at iteration %s)",
        session.iteration,
        session.selection.name,
        value,
        session.best["value"] if session.best["value"] is not None else float("nan"),
        session.best["iteration"],
    )
    return improved


def save(session: Session, promote_to_best: bool) -> None:
    """Write ``last.pt`` (all ranks give their generator states; rank 0 writes)."""
    rng_states = gather_rng(session.ctx)
    if session.ctx.is_main:
        checkpoint = ckpt.build_checkpoint(
            session.model,
            session.optimizer,
            session.scheduler,
            session.precision.scaler,
            rng_states,
            session.iteration,
            session.layout.position(session.iteration),
            session.recipe,
            session.tasks,
            session.best,
            session.last_eval,
        )
        last = ckpt.last_path(session.run_dir)
        ckpt.save_checkpoint(checkpoint, last)
        if promote_to_best:
            ckpt.copy_checkpoint(last, ckpt.best_path(session.run_dir))
    barrier(session.ctx)


def gather_rng(ctx: DistContext) -> list[dict[str, Any]]:
    state = ckpt.capture_rng()
    if not ctx.distributed:
        return [state]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, state)
    return gathered


@contextlib.contextmanager
def _stop_on_interrupt(session: Session) -> Iterator[None]:
    """Ctrl-C finishes the current step, writes ``last.pt`` and then stops (single process).

    A second Ctrl-C stops at once. Under ``torchrun`` the launcher handles signals instead.
    """
    if session.ctx.distributed or threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum: int, frame: object) -> None:
        session.stop_requested = True
        signal.signal(signal.SIGINT, previous)
        logger.warning("stopping after this step and saving a checkpoint (Ctrl-C again to abort)")

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
