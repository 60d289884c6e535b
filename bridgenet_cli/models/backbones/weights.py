"""Backbone weights from a local file: a timm state dict (``.pth``, ``.pt``) or ``.safetensors``.

Nothing is ever downloaded. Keys are matched after folding ``.`` and ``_`` together, because timm's
feature wrappers flatten nested module names (``layer1.0.conv1`` becomes ``layer1_0.conv1``). Any
key that does not fit is an error that counts missing, unexpected and wrongly shaped keys.
"""

import logging
from pathlib import Path

import torch
from torch import nn

from bridgenet_cli.errors import BridgeNetError

logger = logging.getLogger(__name__)

# Wrappers some training scripts put around a state dict, and prefixes they put on its keys.
_WRAPPER_KEYS = ("state_dict", "model", "module", "model_ema")
_KEY_PREFIXES = ("module.", "model.", "backbone.", "encoder.")
# Buffers that old checkpoints lack and that carry no learned value.
_OPTIONAL_SUFFIXES = ("num_batches_tracked",)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path``; unwrap ``{"state_dict": ...}``-style containers."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BridgeNetError(
            f"pretrained weights file not found: {path}",
            "set model.pretrained to a local .pth, .pt or .safetensors file, or leave it unset "
            "for random weights (nothing is downloaded)",
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any reader failure means the file is not a usable state dict
        raise BridgeNetError(
            f"cannot read weights from {path}: {type(exc).__name__}: {exc}",
            "give a timm state dict saved with torch.save, or a .safetensors file",
        ) from None
    for key in _WRAPPER_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BridgeNetError(
            f"{path} does not hold a state dict of tensors",
            "save the backbone with torch.save(model.state_dict(), path)",
        )
    for prefix in _KEY_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _fold(key: str) -> str:
    return key.replace("_", ".")


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> None:
    """Load ``path`` into ``backbone.weights_module()``; raise a counting error on any misfit."""
    state = backbone.adapt_state_dict(read_state_dict(path))
    target = backbone.weights_module()
    expected = target.state_dict()

    ignore = tuple(getattr(backbone, "checkpoint_ignore", ()))
    dropped = [k for k in state if ignore and k.startswith(ignore)]
    if dropped:
        logger.info("ignoring %d classifier keys of %s (%s, ...)", len(dropped), path, dropped[0])
    by_fold = {_fold(k): k for k in state if k not in dropped}

    matched: dict[str, torch.Tensor] = {}
    missing, wrong_shape = [], []
    for key, tensor in expected.items():
        source = by_fold.pop(_fold(key), None)
        if source is None:
            if not key.endswith(_OPTIONAL_SUFFIXES):
                missing.append(key)
            continue
        if state[source].shape != tensor.shape:
            wrong_shape.append(f"{key} {tuple(state[source].shape)} vs {tuple(tensor.shape)}")
            continue
        matched[key] = state[source]
    unexpected = sorted(by_fold.values())

    if missing or unexpected or wrong_shape:
        examples = (missing + unexpected + wrong_shape)[:3]
        raise BridgeNetError(
            f"weights in {path} do not fit the backbone: {len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(wrong_shape)} with a wrong shape "
            f"(e.g. {', '.join(examples)})",
            getattr(backbone, "checkpoint_hint", None)
            or "use a timm checkpoint of the same architecture as model.backbone",
        )
    target.load_state_dict(matched, strict=False)
    logger.info("loaded %d tensors from %s", len(matched), path)
