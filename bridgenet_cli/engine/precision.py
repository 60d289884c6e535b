"""Mixed precision: autocast settings and the fp16 loss scaler, chosen from ``train.amp``.

- ``none``: float32 everywhere.
- ``bf16``: bfloat16 autocast on CUDA (GPUs with bf16 support) or on CPU. On CPUs without native
  bf16 instructions (AVX512-BF16 or AMX) it is emulated and usually slower; a warning says so.
- ``fp16``: float16 autocast with dynamic loss scaling (``GradScaler``); CUDA only.
"""

import contextlib
import logging
from dataclasses import dataclass

import torch

from bridgenet_cli.errors import BridgeNetError

logger = logging.getLogger(__name__)


@dataclass
class Precision:
    """How forward passes run and whether gradients go through a loss scaler."""

    device_type: str  # "cuda" or "cpu"
    dtype: torch.dtype | None  # autocast dtype; None: float32
    scaler: torch.amp.GradScaler | None  # fp16 only

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)


def cpu_has_native_bf16() -> bool:
    capability = str(torch.backends.cpu.get_cpu_capability()).upper()
    return "AVX512" in capability or "AMX" in capability


def build_precision(amp: str, device: torch.device) -> Precision:
    """Check ``amp`` (none | bf16 | fp16) against ``device`` and return the settings."""
    if amp == "none":
        return Precision(device_type=device.type, dtype=None, scaler=None)

    if amp == "fp16":
        if device.type != "cuda":
            raise BridgeNetError(
                "train.amp='fp16' needs a CUDA device (loss scaling is a GPU feature)",
                "use --set train.amp=bf16 or train.amp=none on CPU",
            )
        return Precision("cuda", torch.float16, torch.amp.GradScaler("cuda"))

    if amp == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise BridgeNetError(
                f"train.amp='bf16' but {torch.cuda.get_device_name(device)} lacks bfloat16",
                "use --set train.amp=fp16 on this GPU",
            )
        if device.type == "cpu" and not cpu_has_native_bf16():
            logger.warning(
                "train.amp='bf16' on a CPU without native bfloat16 (%s): expect it to be slower "
                "than float32",
                torch.backends.cpu.get_cpu_capability(),
            )
        return Precision(device.type, torch.bfloat16, None)

    raise BridgeNetError(f"unknown train.amp {amp!r}", "use one of none, bf16, fp16")
