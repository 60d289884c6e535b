"""What every backbone declares and returns, and the backbone registry.

A backbone is an ``nn.Module`` whose ``forward(images)`` returns a list of feature maps, one per
declared :class:`FeatureLevel`, in the declared order (finest first). Necks and decoders are built
from ``backbone.levels``, never from hard-coded channel numbers.

Backbones are registered as factories: ``BACKBONES.register("name", factory)`` where
``factory(**BackboneArgs fields) -> Backbone``.
"""

from dataclasses import dataclass

import torch
from torch import nn

from bridgenet_cli.registry import Registry


@dataclass(frozen=True)
class FeatureLevel:
    """One output of a backbone: its channel count and its stride relative to the input."""

    channels: int
    stride: int


@dataclass(frozen=True)
class BackboneArgs:
    """The arguments every backbone factory accepts."""

    img_size: tuple[int, int] = (512, 512)  # (H, W) the model is built for
    pretrained: str | None = None  # local weights file; never downloaded
    drop_path_rate: float = 0.0
    extra: tuple[tuple[str, object], ...] = ()  # backbone-specific options, e.g. dcnv3_impl


class Backbone(nn.Module):
    """Base class: subclasses set ``self.levels`` and implement ``forward``."""

    levels: list[FeatureLevel]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


BACKBONES: Registry = Registry("backbone")
