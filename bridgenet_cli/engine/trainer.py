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
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from bridgenet_cli.config.schema import Recipe
from bridgenet_cli.engine import checkpoint as ckpt
from bridgenet_cli.engine.builders import build_split
from bridgenet_cli.engine.distributed import (
    DistContext,
    barrier,
    init_distributed,
    mean_across_ranks,
    shutdown_distributed,
)
from bridgenet_cli.engine.losses import compute_losses, term_task
from bridgenet_cli.engine.monitor import TrainProgress
from bridgenet_cli.engine.session import (
    Session,
    build_session,
    build_train_data,
    check_settings,
    configure_backends,
    make_loader,
    prepare_run_dir,
)
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


def _train(
    recipe: Recipe,
    run_dir: Path,
    resume: bool,
    argv: list[str] | None,
    on_step: StepCallback | None,
    ctx: DistContext,
) -> TrainResult:
    started = time.perf_counter()
    check_settings(recipe, ctx)
    checkpoint = prepare_run_dir(run_dir, recipe, resume, ctx)
    if ctx.is_main:
        describe_run(run_dir, recipe, argv)

    configure_backends(ctx.device)
    train_dataset = build_train_data(recipe, ctx)
    session = build_session(recipe, run_dir, ctx, len(train_dataset), checkpoint, train_dataset)
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
            progress.update(session.iteration, _bar_losses(values), values["lr"], images_per_s)
            if session.iteration % cfg.log_every == 0 or session.iteration == cfg.max_iters:
                log_train(session, window)
                window.reset()

            after_step(session)
            if on_step is not None:
                on_step(session.iteration)
            if session.stop_requested:
                stop_after_interrupt(session)
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
        stop_after_interrupt(session)
        raise  # not reached


def stop_after_interrupt(session: Session) -> None:
    """Save the last completed step (unless just saved) and stop with KeyboardInterrupt."""
    if session.saved_iteration != session.iteration:
        save(session, promote_to_best=False)
    logger.warning("stopped at iteration %d; run the same command to resume", session.iteration)
    raise KeyboardInterrupt


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

    values["lr"] = _lr(session)  # the rate this step uses
    grad_norm = apply_gradients(session)
    if grad_norm is not None:
        values["grad_norm"] = grad_norm
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


def apply_gradients(session: Session) -> float | None:
    """Unscale (fp16), clip, step the optimiser, the scaler and the schedule.

    Returns the gradient norm before clipping (None when clipping is off).
    """
    cfg = session.recipe.train
    scaler = session.precision.scaler
    if scaler is not None:
        scaler.unscale_(session.optimizer)
    grad_norm = None
    if cfg.clip_grad > 0:
        norm = torch.nn.utils.clip_grad_norm_(session.model.parameters(), cfg.clip_grad)
        grad_norm = float(norm)
    if scaler is not None:
        scaler.step(session.optimizer)
        scaler.update()
    else:
        session.optimizer.step()
    session.scheduler.step()
    return grad_norm


def log_train(session: Session, window: Window) -> None:
    cfg = session.recipe.train
    record = {
        "iter": session.iteration,
        "split": "train",
        **window.means(),
        "images_per_s": cfg.batch_size * window.steps / max(window.seconds, 1e-9),
    }
    session.metrics.write(record)
    logger.debug("iteration %d: %s", session.iteration, record)


def after_step(session: Session) -> None:
    """Validate and checkpoint when the schedule says so (always after the last step)."""
    cfg = session.recipe.train
    done = session.iteration >= cfg.max_iters
    evaluate_now = done or (cfg.eval_every > 0 and session.iteration % cfg.eval_every == 0)
    save_now = evaluate_now or session.iteration % cfg.checkpoint_every == 0

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
    session.saved_iteration = session.iteration
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
