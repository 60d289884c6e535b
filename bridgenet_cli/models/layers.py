"""Small building blocks shared by the decoder modules.

Token layout conversions are written so that a channels-last ``(B, C, H, W)`` map becomes
``(B, H*W, C)`` tokens without a copy (and back), and resizes are skipped when sizes already match.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def grid_size(size: tuple[int, int], stride: int) -> tuple[int, int]:
    """The ``(h, w)`` of a map at ``stride`` for an input of ``size``, rounding up."""
    return math.ceil(size[0] / stride), math.ceil(size[1] / stride)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize to ``size``; the input itself when it already has that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def reduce_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Shrink a map to ``size`` by average pooling over whole cells (bilinear when not integral).

    Halving by exact 2x2 averages equals bilinear halving with ``align_corners=False``, which is
    what the authors' release does to the final ViT map.
    """
    H, W = x.shape[-2:]
    if tuple(size) == (H, W):
        return x
    factor = math.ceil(H / size[0])
    if factor > 1 and grid_size((H, W), factor) == tuple(size):
        return F.avg_pool2d(x, factor, factor, ceil_mode=True)
    return resize(x, size)


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, H*W, C)``; free for channels-last maps."""
    return x.flatten(2).transpose(1, 2)


def to_map(tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(B, H*W, C) -> (B, C, H, W)``; a channels-last view of contiguous tokens."""
    B, N, C = tokens.shape
    return tokens.transpose(1, 2).reshape(B, C, size[0], size[1])


class ConvBNAct(nn.Sequential):
    """Convolution (no bias) + BatchNorm + activation (ReLU unless ``act`` says otherwise)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        act: type[nn.Module] | None = nn.ReLU,
    ):
        padding = dilation * (kernel_size // 2)
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class Mlp(nn.Module):
    """Pre-norm feed-forward on tokens: LayerNorm, Linear (C -> ratio*C), GELU, Linear back."""

    def __init__(self, channels: int, ratio: int = 4):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.fc1 = nn.Linear(channels, ratio * channels)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(ratio * channels, channels)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(tokens))))


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of a ``(B, C, H, W)`` map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # (B, C, H, W) -> (B, H, W, C)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def init_interaction_weights(module: nn.Module) -> None:
    """The release's initialisation inside TPP, BFE and the refiners.

    Linear layers: normal, std 0.02; convolutions: normal, std 0.001 (each is followed by a norm,
    or closes a residual branch that should start near zero); biases zero. The release draws from
    a normal truncated at +-2 in absolute units, which never binds at these deviations, so a plain
    normal is the same distribution (and much faster to draw).
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
        elif isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=0.001)
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)
