"""Optimisers and the learning-rate schedule of the paper.

The paper trains ViT and ResNet models with Adam (lr 2e-5, weight decay 1e-6), HRNet models with
SGD (lr 0.01, weight decay 5e-4, momentum 0.9) and InternImage models with AdamW (lr 6e-5 or 2e-5,
weight decay 0.05, betas 0.9 and 0.999), all with polynomial decay of power 0.9 per iteration.
"""

import torch
from torch import nn

from bridgenet_cli.registry import Registry

OPTIMIZERS: Registry = Registry("optimizer")
OPTIMIZERS.register("adam", torch.optim.Adam)
OPTIMIZERS.register("adamw", torch.optim.AdamW)
OPTIMIZERS.register("sgd", torch.optim.SGD)


def build_optimizer(
    model: nn.Module,
    name: str,
    lr: float,
    weight_decay: float,
    momentum: float,
    betas: tuple[float, float],
) -> torch.optim.Optimizer:
    """An optimiser over the model's trainable parameters, all in one group.

    Weight decay applies to every parameter, as in the paper's optimiser description.
    """
    # TODO(optim): InternImage's own recipes exempt norms and biases from AdamW decay and use
    # layer-wise lr decay; the paper does not say whether BridgeNet did, so one group is used.
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer_class = OPTIMIZERS.get(name)
    if name == "sgd":
        return optimizer_class(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return optimizer_class(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)


class PolySchedule:
    """Learning-rate factor at an iteration: linear warm-up, then ``(1 - t / T) ** power``.

    A callable object (not a lambda) so that ``LambdaLR.state_dict`` stores its settings.
    """

    def __init__(self, max_iters: int, power: float, warmup_iters: int = 0) -> None:
        self.max_iters = max_iters
        self.power = power
        self.warmup_iters = warmup_iters

    def __call__(self, iteration: int) -> float:
        if iteration < self.warmup_iters:
            return (iteration + 1) / self.warmup_iters
        progress = min(iteration, self.max_iters) / self.max_iters
        return (1.0 - progress) ** self.power


def build_scheduler(
    optimizer: torch.optim.Optimizer, max_iters: int, power: float, warmup_iters: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-iteration schedule: call ``step()`` once after every optimiser step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, PolySchedule(max_iters=max_iters, power=power, warmup_iters=warmup_iters)
    )
