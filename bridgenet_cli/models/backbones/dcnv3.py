"""Deformable convolution v3 (DCNv3), the core operator of InternImage, in pure PyTorch.

DCNv3 splits the channels into ``groups``. For every output position and group it samples the
input at ``K = kernel_size**2`` points: the points of a regular (dilated) kernel grid around the
position, each moved by a learned offset; kernel displacements and offsets are both multiplied by
``offset_scale``. Samples are bilinearly interpolated (zeros outside the image) and summed with
per-point weights (the "mask") that are soft-maxed over the ``K`` points of each group.

Layouts are channels-last, as in the official release, so its checkpoints and its compiled
operator plug in unchanged:

- ``value``: ``(B, H, W, C)``, ``C = groups * group_channels``;
- ``offset``: ``(B, H_out, W_out, groups * K * 2)``, an ``(x, y)`` pair in pixels per point;
- ``mask``: ``(B, H_out, W_out, groups * K)``;
- points are ordered column by column: point ``p`` sits in kernel column ``p // kernel_size`` and
  kernel row ``p % kernel_size`` (the order of the official CUDA kernel).

A compiled operator is used when ``impl="compiled"``: the ``DCNv3`` extension module that the
official release builds (its ``ops_dcnv3`` Python package is a wrapper over that same module).
"""

import importlib
import logging
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import nn

from bridgenet_cli.errors import BridgeNetError

logger = logging.getLogger(__name__)

DCNV3_IMPLS = ("pytorch", "compiled")
COMPILED_MODULE = "DCNv3"  # the extension module name of the official ops_dcnv3 build
_IM2COL_STEP = 256  # images per im2col chunk inside the compiled operator (the release's value)


def output_size(size: int, kernel_size: int, stride: int, pad: int, dilation: int) -> int:
    """Output length of a DCNv3 along one axis (the convolution formula)."""
    return (size + 2 * pad - dilation * (kernel_size - 1) - 1) // stride + 1


def dcnv3_pytorch(
    value: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    groups: int,
    kernel_size: int = 3,
    stride: int = 1,
    pad: int = 1,
    dilation: int = 1,
    offset_scale: float = 1.0,
) -> torch.Tensor:
    """Deformable sampling with ``grid_sample``: all positions, groups and points at once.

    Takes the layouts in the module docstring; returns ``(B, H_out, W_out, C)`` in the dtype of
    ``value``. Sampling runs in float32 (float64 for float64 inputs) even under autocast, because
    half-precision pixel coordinates are off by whole pixels on large maps.
    """
    B, H, W, C = value.shape
    _, H_out, W_out, _ = offset.shape
    K = kernel_size * kernel_size
    G = groups
    group_channels = C // G
    out_dtype = value.dtype
    expected = tuple(output_size(n, kernel_size, stride, pad, dilation) for n in (H, W))
    if C % G or (H_out, W_out) != expected or offset.shape[-1] != G * K * 2:
        raise ValueError(
            f"DCNv3 shapes do not fit: value {tuple(value.shape)}, offset {tuple(offset.shape)}, "
            f"groups {G}, kernel {kernel_size} (expected output {expected})"
        )
    compute_dtype = torch.promote_types(value.dtype, torch.float32)

    with torch.autocast(device_type=value.device.type, enabled=False):
        value = value.to(compute_dtype)
        offset = offset.to(compute_dtype)
        mask = mask.to(compute_dtype)

        # Pixel coordinates (pixel centres at integers) of the kernel centres and of the points.
        half = dilation * (kernel_size - 1) // 2
        kw = dict(device=value.device, dtype=compute_dtype)
        centre_y = torch.arange(H_out, **kw) * stride - pad + half
        centre_x = torch.arange(W_out, **kw) * stride - pad + half
        centres = torch.stack(torch.meshgrid(centre_x, centre_y, indexing="xy"), dim=-1)
        steps = torch.arange(kernel_size, **kw) * dilation - half
        points = torch.stack(torch.meshgrid(steps, steps, indexing="ij"), dim=-1).view(K, 2)
        # centres (H_out, W_out, 2) -> (H_out, W_out, 1, 1, 2); points (K, 2) as (x, y)
        base = centres.view(H_out, W_out, 1, 1, 2) + points.view(1, 1, 1, K, 2) * offset_scale

        # To grid_sample's coordinates (align_corners=False: -1 and 1 are the outer pixel edges),
        # x -> (2x + 1) / size - 1, so an offset of d pixels moves by d * 2 * scale / size.
        size = torch.tensor([W, H], **kw)
        base = (2 * base + 1) / size - 1
        # (B, H_out, W_out, G*K*2) -> (B, H_out, W_out, G, K, 2)
        grid = torch.addcmul(base, offset.view(B, H_out, W_out, G, K, 2), 2 * offset_scale / size)
        # (B, H_out, W_out, G, K, 2) -> (B*G, H_out*W_out, K, 2)
        grid = grid.permute(0, 3, 1, 2, 4, 5).reshape(B * G, H_out * W_out, K, 2)

        # (B, H, W, G*Cg) -> (B*G, Cg, H, W)
        value = value.view(B, H * W, G, group_channels).permute(0, 2, 3, 1)
        value = value.reshape(B * G, group_channels, H, W)
        sampled = F.grid_sample(
            value, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )  # (B*G, Cg, H_out*W_out, K)

        # (B, H_out, W_out, G*K) -> (B*G, 1, H_out*W_out, K)
        weights = mask.view(B, H_out * W_out, G, K).permute(0, 2, 1, 3)
        weights = weights.reshape(B * G, 1, H_out * W_out, K)
        out = (sampled * weights).sum(-1)  # (B*G, Cg, H_out*W_out)

        # (B*G, Cg, H_out*W_out) -> (B, H_out, W_out, G*Cg)
        out = out.view(B, G * group_channels, H_out, W_out).permute(0, 2, 3, 1)
    return out.to(out_dtype).contiguous()


def load_compiled_dcnv3() -> ModuleType | None:
    """The official compiled DCNv3 extension if it can be imported, else None."""
    try:
        return importlib.import_module(COMPILED_MODULE)
    except ImportError:
        return None


def require_compiled_dcnv3() -> ModuleType:
    """The compiled extension; raises a user-facing error when it is not installed."""
    module = load_compiled_dcnv3()
    if module is None:
        raise BridgeNetError(
            f"model.dcnv3_impl = 'compiled' needs the compiled DCNv3 operator, but the "
            f"{COMPILED_MODULE!r} module cannot be imported",
            hint="build ops_dcnv3 from the official InternImage release (needs CUDA), "
            "or set model.dcnv3_impl = 'pytorch'",
        )
    return module


class _CompiledDCNv3(torch.autograd.Function):
    """Autograd wrapper around the official extension's forward and backward kernels."""

    @staticmethod
    def forward(ctx, value, offset, mask, groups, kernel_size, stride, pad, dilation, scale):
        module = require_compiled_dcnv3()
        geometry = (kernel_size, kernel_size, stride, stride, pad, pad, dilation, dilation)
        ctx.settings = (*geometry, groups, value.shape[-1] // groups, scale, _IM2COL_STEP)
        ctx.module = module
        ctx.save_for_backward(value, offset, mask)
        return _call_compiled(module.dcnv3_forward, value, offset, mask, ctx.settings)

    @staticmethod
    def backward(ctx, grad_out):
        value, offset, mask = ctx.saved_tensors
        grads = _call_compiled(
            ctx.module.dcnv3_backward, value, offset, mask, ctx.settings, grad_out.contiguous()
        )
        grad_value, grad_offset, grad_mask = grads
        return grad_value, grad_offset, grad_mask, None, None, None, None, None, None


def _call_compiled(function, value, offset, mask, settings, *grad):
    """Call an extension function; releases after early 2023 take a trailing remove_center."""
    *geometry, im2col_step = settings
    try:
        return function(value, offset, mask, *geometry, *grad, im2col_step, 0)
    except TypeError:
        return function(value, offset, mask, *geometry, *grad, im2col_step)


def dcnv3_compiled(
    value: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    groups: int,
    kernel_size: int = 3,
    stride: int = 1,
    pad: int = 1,
    dilation: int = 1,
    offset_scale: float = 1.0,
) -> torch.Tensor:
    """The same contract as :func:`dcnv3_pytorch`, computed by the compiled CUDA operator."""
    if not value.is_cuda:
        raise BridgeNetError(
            "model.dcnv3_impl = 'compiled' runs only on CUDA tensors",
            hint="set model.dcnv3_impl = 'pytorch' on CPU",
        )
    mask = mask.to(value.dtype)
    return _CompiledDCNv3.apply(
        value.contiguous(),
        offset.contiguous(),
        mask.contiguous(),
        groups,
        kernel_size,
        stride,
        pad,
        dilation,
        offset_scale,
    )


class DCNv3(nn.Module):
    """The DCNv3 layer of InternImage: ``(B, H, W, C) -> (B, H, W, C)``.

    The input is projected linearly to the sampled values. Offsets and point weights come from a
    separate branch on the unprojected input: depth-wise convolution, LayerNorm and GELU, then
    one linear layer each; weights are soft-maxed over each group's points. The sampled result is
    projected linearly. Output size equals input size (stride 1, padding from the dilation).
    """

    def __init__(
        self,
        channels: int,
        groups: int,
        kernel_size: int = 3,
        dilation: int = 1,
        offset_scale: float = 1.0,
        impl: str = "pytorch",
    ):
        super().__init__()
        if channels % groups:
            raise ValueError(f"DCNv3 channels {channels} are not divisible by groups {groups}")
        if impl not in DCNV3_IMPLS:
            raise BridgeNetError(
                f"unknown model.dcnv3_impl {impl!r}; valid values: {', '.join(DCNV3_IMPLS)}"
            )
        if impl == "compiled":
            require_compiled_dcnv3()
        self.groups = groups
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.pad = dilation * (kernel_size - 1) // 2
        self.offset_scale = offset_scale
        self.impl = impl
        points = kernel_size * kernel_size

        self.input_proj = nn.Linear(channels, channels)
        self.dw_conv = nn.Conv2d(
            channels, channels, kernel_size, padding=(kernel_size - 1) // 2, groups=channels
        )
        self.dw_norm = nn.LayerNorm(channels, eps=1e-6)
        self.offset = nn.Linear(channels, groups * points * 2)
        self.mask = nn.Linear(channels, groups * points)
        self.output_proj = nn.Linear(channels, channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero offsets and uniform point weights at the start; Xavier for the projections."""
        for layer in (self.offset, self.mask):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        for layer in (self.input_proj, self.output_proj):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        value = self.input_proj(x)

        # Offset and weight branch: (B, H, W, C) -> (B, C, H, W) -> conv -> (B, H, W, C)
        context = self.dw_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        context = F.gelu(self.dw_norm(context))
        offset = self.offset(context)  # (B, H, W, G*K*2)
        mask = self.mask(context).view(B, H, W, self.groups, -1).softmax(dim=-1)
        mask = mask.view(B, H, W, -1)  # (B, H, W, G*K)

        sample = dcnv3_compiled if self.impl == "compiled" else dcnv3_pytorch
        out = sample(
            value,
            offset,
            mask,
            self.groups,
            self.kernel_size,
            1,
            self.pad,
            self.dilation,
            self.offset_scale,
        )
        return self.output_proj(out)
