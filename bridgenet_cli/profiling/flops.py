"""Parameter and FLOP counts, for the whole model and per component.

FLOPs are counted by fvcore on a traced forward pass: one multiply-add counts as one FLOP (the
convention of the paper's Table 4). fvcore has no rule for fused attention, so one is added here:
``scaled_dot_product_attention`` costs ``B*heads*Nq*Nk*(E + Ev)`` multiply-adds (the two matrix
products). Element-wise operations (additions, activations, pooling) are not counted.
"""

import logging
import math
import warnings
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import nn

logger = logging.getLogger(__name__)

FLOP_CONVENTION = "fvcore; one multiply-add counts as one FLOP"


def _sdpa_flops(inputs: list, outputs: list) -> int:
    from fvcore.nn.jit_handles import get_shape

    q, k, v = (get_shape(value) for value in inputs[:3])
    return math.prod(q[:-1]) * k[-2] * (q[-1] + v[-1])


class _FlatOutputs(nn.Module):
    """Wraps a model so that tracing sees a tuple of tensors instead of nested dicts."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(images)
        return tuple(outputs["final"].values()) + tuple(outputs["inter"].values())


@dataclass
class FlopCount:
    total: float  # FLOPs (multiply-adds) for the given input
    by_component: dict[str, float]  # component name -> FLOPs
    outside_components: float  # FLOPs in the top-level forward, outside every component
    skipped_ops: dict[str, int] = field(default_factory=dict)  # op -> calls fvcore did not count


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(total, trainable)`` parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def component_parameters(model: nn.Module) -> dict[str, int]:
    """Parameters per entry of ``model.components()``."""
    return {
        name: sum(p.numel() for module in modules for p in module.parameters())
        for name, modules in model.components().items()
    }


def count_flops(model: nn.Module, images: torch.Tensor) -> FlopCount:
    """Count the FLOPs of ``model(images)`` (eval mode, no gradients), split by component."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # fvcore's import uses torch.jit.script
        from fvcore.nn import FlopCountAnalysis

    wrapped = _FlatOutputs(model)
    analysis = FlopCountAnalysis(wrapped, (images,))
    analysis.set_op_handle("aten::scaled_dot_product_attention", _sdpa_flops)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and torch.jit deprecation chatter
            total = analysis.total()
            by_module = analysis.by_module()
    finally:
        model.train(was_training)

    names = {id(module): name for name, module in model.named_modules()}
    by_component = {
        name: sum(by_module.get(f"model.{names[id(m)]}", 0) for m in modules)
        for name, modules in model.components().items()
    }
    outside = total - sum(by_component.values())
    skipped = Counter(dict(analysis.unsupported_ops()))
    return FlopCount(
        float(total), {k: float(v) for k, v in by_component.items()}, outside, dict(skipped)
    )
