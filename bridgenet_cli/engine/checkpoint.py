"""Training checkpoints: what they hold, atomic writes, safe reads and loading for inference.

A checkpoint is a dict (see ``docs/internals.md``) with ``model``, ``optimizer``, ``scheduler``,
``scaler``, ``rng`` (Python, NumPy, torch CPU and CUDA generator states, one set per rank),
``iteration`` (optimiser steps done), ``data_state`` (epoch and step within it), ``recipe`` (the
resolved recipe as a dict), ``tasks``, ``dataset``, ``best`` (the selection metric, its value and
iteration), ``last_eval`` (the latest validation results), ``format`` and ``version``.

Everything in it is a tensor or a plain Python value, so it loads with ``weights_only=True``: a
checkpoint can never run code when read. A run folder keeps ``checkpoints/last.pt`` (the latest
state) and ``checkpoints/best.pt`` (the state with the best validation score).
"""

import logging
import random
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bridgenet_cli.config.recipe import recipe_from_dict, recipe_to_dict
from bridgenet_cli.config.schema import Recipe
from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.io import atomic_torch_save, atomic_write

logger = logging.getLogger(__name__)

FORMAT = "bridgenet-checkpoint"
VERSION = 1
CHECKPOINT_DIR = "checkpoints"
LAST_NAME = "last.pt"
BEST_NAME = "best.pt"

# Recipe keys that may change between a run and its resumption: they do not change what is
# learned, only how often it is logged, saved or validated and how fast data is loaded.
RESUMABLE_CHANGES = (
    "train.eval_every",
    "train.checkpoint_every",
    "train.log_every",
    "data.num_workers",
    "eval.",
)


def last_path(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / LAST_NAME


def best_path(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / BEST_NAME


# ----------------------------------------------------------------------------------------------
# Random generator states
# ----------------------------------------------------------------------------------------------


def capture_rng() -> dict[str, Any]:
    """This process's generator states, as tensors and plain values."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the generator states captured by :func:`capture_rng`."""
    random.setstate(_as_python_state(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        if len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
        else:
            logger.warning("the checkpoint's CUDA generator states are for another device count")


def _as_python_state(state: Any) -> tuple:
    """``random.setstate`` wants nested tuples; a round trip may have turned them into lists."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside a DistributedDataParallel (or compiled) wrapper."""
    while hasattr(model, "module"):
        model = model.module
    return getattr(model, "_orig_mod", model)


def build_checkpoint(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler | None,
    rng_per_rank: list[dict[str, Any]],
    iteration: int,
    data_state: dict[str, int],
    recipe: Recipe,
    tasks: list[str],
    best: dict[str, Any],
    last_eval: dict[str, Any] | None,
) -> dict[str, Any]:
    """Assemble the checkpoint dict (see the module docstring)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_per_rank,
        "iteration": iteration,
        "data_state": data_state,
        "recipe": recipe_to_dict(recipe),
        "tasks": list(tasks),
        "dataset": recipe.data.dataset,
        "best": dict(best),
        "last_eval": last_eval,
    }


def save_checkpoint(checkpoint: dict[str, Any], path: Path) -> None:
    """Write atomically: a crash mid-write leaves the previous file intact."""
    atomic_torch_save(checkpoint, path)
    logger.debug("saved %s (iteration %d)", path, checkpoint["iteration"])


def copy_checkpoint(source: Path, target: Path) -> None:
    """Atomically copy ``source`` over ``target`` (used to promote ``last.pt`` to ``best.pt``)."""
    atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint file, raising a :class:`BridgeNetError` that says what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise BridgeNetError(
            f"checkpoint not found: {path}",
            "pass a run folder or a .pt file written by 'bridgenet train'",
        )
    if path.is_dir():
        raise BridgeNetError(
            f"{path} is a folder, not a checkpoint file",
            "pass the checkpoint file, or use load_for_inference with the run folder",
        )
    if not zipfile.is_zipfile(path):
        if _starts_like_zip(path):
            raise BridgeNetError(
                f"{path} is truncated or corrupt (an incomplete zip archive)",
                "use the other checkpoint of the run (last.pt or best.pt) or train again",
            )
        raise BridgeNetError(
            f"{path} is not a bridgenet checkpoint (not a torch.save archive)",
            "pass a .pt file written by 'bridgenet train'",
        )
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for damaged archives
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise BridgeNetError(
                f"{path} is not a bridgenet checkpoint (it holds arbitrary Python objects)",
                "pass a .pt file written by 'bridgenet train'; never load untrusted pickles",
            ) from None
        raise BridgeNetError(
            f"{path} is truncated or corrupt ({type(exc).__name__}: {_first_line(exc)})",
            "use the other checkpoint of the run (last.pt or best.pt) or train again",
        ) from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise BridgeNetError(
            f"{path} is not a bridgenet checkpoint (a torch file without the bridgenet layout)",
            "pass a .pt file written by 'bridgenet train'",
        )
    if checkpoint.get("version", 0) > VERSION:
        raise BridgeNetError(
            f"{path} was written by a newer bridgenet (checkpoint version "
            f"{checkpoint['version']}, this one reads up to {VERSION})",
            "upgrade bridgenet",
        )
    return checkpoint


def _starts_like_zip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no details"


def find_checkpoint(run_or_checkpoint: str | Path) -> Path:
    """A checkpoint file: the path itself, or in a run folder ``best.pt``, else ``last.pt``."""
    path = Path(run_or_checkpoint)
    if not path.exists():
        raise BridgeNetError(
            f"no run folder or checkpoint at {path}",
            "pass a run folder made by 'bridgenet train' or one of its checkpoints/*.pt files",
        )
    if path.is_file():
        return path
    for candidate in (best_path(path), last_path(path)):
        if candidate.is_file():
            return candidate
    raise BridgeNetError(
        f"{path} holds no checkpoints/best.pt or checkpoints/last.pt",
        f"train first with 'bridgenet train RECIPE --out {path}', or pass a checkpoint file",
    )


def checkpoint_recipe(checkpoint: dict[str, Any], source: str) -> Recipe:
    return recipe_from_dict(checkpoint["recipe"], source=source)


def load_for_inference(
    run_or_checkpoint: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, Recipe, Path]:
    """``(model, recipe, checkpoint_path)`` from a run folder or a checkpoint file.

    A run folder gives its ``best.pt``, else its ``last.pt``. The model has the checkpoint's
    weights, is on ``device`` and in eval mode; the recipe is the one it was trained with.
    """
    from bridgenet_cli.engine.builders import build_recipe_model

    path = find_checkpoint(run_or_checkpoint)
    checkpoint = read_checkpoint(path)
    recipe = checkpoint_recipe(checkpoint, source=str(path))
    model = build_recipe_model(recipe, with_pretrained=False)
    load_model_state(model, checkpoint["model"], path)
    model.to(device)
    model.eval()
    return model, recipe, path


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Load weights strictly; a shape or key mismatch is a :class:`BridgeNetError`."""
    try:
        unwrap(model).load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise BridgeNetError(
            f"{path}: weights do not fit the model its recipe builds ({_first_line(exc)})",
            "the checkpoint comes from another version of the model code; retrain or use the "
            "matching bridgenet version",
        ) from None


# ----------------------------------------------------------------------------------------------
# Resuming
# ----------------------------------------------------------------------------------------------


def recipe_differences(old: Recipe, new: Recipe) -> list[str]:
    """Dotted keys whose values differ, except those in :data:`RESUMABLE_CHANGES`."""
    differences = _diff(recipe_to_dict(old), recipe_to_dict(new), prefix="")
    return [key for key in differences if not any(key.startswith(ok) for ok in RESUMABLE_CHANGES)]


def _diff(old: Any, new: Any, prefix: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for key in keys for d in _diff(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [prefix.rstrip(".")]


def check_same_recipe(saved: Recipe, new: Recipe, run_dir: Path) -> None:
    """Refuse to resume (or overwrite) a run folder with a recipe that changes what is learned."""
    differences = recipe_differences(saved, new)
    if not differences:
        return
    shown = ", ".join(
        f"{key} ({_lookup(saved, key)!r} -> {_lookup(new, key)!r})" for key in differences[:4]
    )
    more = f" and {len(differences) - 4} more" if len(differences) > 4 else ""
    raise BridgeNetError(
        f"run folder {run_dir} was started with a different recipe: {shown}{more}",
        f"train into a new folder with --out, or use the run's own recipe "
        f"({Path(run_dir) / 'recipe.toml'}) to resume it",
    )


def _lookup(recipe: Recipe, dotted: str) -> Any:
    node: Any = recipe_to_dict(recipe)
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node
