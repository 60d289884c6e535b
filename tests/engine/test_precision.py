"""Mixed-precision settings per device."""

import pytest
import torch

from bridgenet_cli.engine.precision import build_precision
from bridgenet_cli.errors import BridgeNetError


def test_none_is_float32_without_scaler():
    precision = build_precision("none", torch.device("cpu"))
    assert precision.dtype is None and precision.scaler is None
    with precision.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_bf16_autocasts_on_cpu():
    precision = build_precision("bf16", torch.device("cpu"))
    assert precision.scaler is None
    with precision.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


def test_fp16_on_cpu_says_to_use_bf16():
    with pytest.raises(BridgeNetError, match="train.amp=bf16"):
        build_precision("fp16", torch.device("cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fp16_on_cuda_has_a_loss_scaler():
    precision = build_precision("fp16", torch.device("cuda"))
    assert precision.dtype == torch.float16 and precision.scaler is not None
