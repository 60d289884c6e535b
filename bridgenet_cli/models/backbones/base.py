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
    """Base class: subclasses set ``self.levels`` and implement ``forward``.

    ``decoder_levels`` is how many of the coarsest levels a decoder uses unless told otherwise (the
    paper: the last three; HRNet all four). ``load_pretrained`` reads a local weights file into
    ``weights_module()`` with the key checks of :mod:`bridgenet_cli.models.backbones.weights`.
    """

    levels: list[FeatureLevel]
    decoder_levels: int = 3
    # Hidden width of the preliminary decoders; None: the coarsest level's channels (the paper's
    # rule for ViT, HRNet and InternImage).
    prelim_width: int | None = None
    # True when every level must feed the decoder: with parallel branches (HRNet) an unused level
    # leaves parameters without gradients.
    needs_all_levels: bool = False
    # Checkpoint keys under these prefixes (classifier heads and the like) are dropped on loading.
    checkpoint_ignore: tuple[str, ...] = ()

    def weights_module(self) -> nn.Module:
        """The module whose state-dict keys match the original checkpoints (default: self)."""
        return self

    def adapt_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Fix up a checkpoint before the key check (e.g. resize position embeddings)."""
        return state

    def load_pretrained(self, path: str) -> None:
        from bridgenet_cli.models.backbones.weights import load_backbone_weights

        load_backbone_weights(self, path)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


BACKBONES: Registry = Registry("backbone")
