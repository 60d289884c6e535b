"""InternImage backbones (T, B, L) on a pure-PyTorch DCNv3 operator.

InternImage is a four-stage convolutional backbone whose core layer is DCNv3 (deformable
convolution with grouped offsets and soft-maxed sampling weights, see ``dcnv3.py``). A stem of two
stride-2 convolutions reaches stride 4; each stage is a stack of blocks (DCNv3 then an MLP, each
with a residual); a stride-2 convolution doubles the width between stages. The four stage outputs
(strides 4, 8, 16, 32; widths C, 2C, 4C, 8C) are the feature levels.

Sizes follow the official release (classification and segmentation configs): see
:data:`INTERNIMAGE_SIZES`. Official checkpoint files load by key renaming (:func:`official_key`).
"""

import logging
import re
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from torch import nn

from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.models.backbones.base import BACKBONES, Backbone, FeatureLevel
from bridgenet_cli.models.backbones.dcnv3 import DCNv3

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InternImageSize:
    """The structural settings of one published InternImage size."""

    channels: int  # width of stage 1; stage i has channels * 2**i
    depths: tuple[int, int, int, int]  # blocks per stage
    groups: tuple[int, int, int, int]  # DCNv3 groups per stage
    offset_scale: float  # multiplies DCNv3 kernel displacements and offsets
    post_norm: bool  # LayerNorm after each residual branch (no stage-end norm) instead of before
    layer_scale: float | None  # initial per-channel residual scale; None: no layer scale
    mlp_ratio: float = 4.0
    release_drop_path_rate: float = 0.0  # the official segmentation configs' stochastic depth


# Official classification/segmentation configs. T has no layer scale in its classification
# config (its checkpoint has none). B and L use layer scale, initialised at 1.0 as in the
# segmentation configs (a loaded checkpoint overwrites it). L's configs leave level-2 post-norm
# blocks, centre feature scale, residual post-norm and the 5x5 depth-wise kernel off: those
# belong to InternImage-H/G only, so they are not built here.
INTERNIMAGE_SIZES: dict[str, InternImageSize] = {
    "t": InternImageSize(64, (4, 4, 18, 4), (4, 8, 16, 32), 1.0, False, None, 4.0, 0.2),
    "b": InternImageSize(112, (4, 4, 21, 4), (7, 14, 28, 56), 1.0, True, 1.0, 4.0, 0.4),
    "l": InternImageSize(160, (5, 5, 22, 5), (10, 20, 40, 80), 2.0, True, 1.0, 4.0, 0.4),
}

CLASSIFIER_WIDTH_SCALE = 1.5  # the release's classification head widens 8C to 12C


class ChannelsLastNorm(nn.LayerNorm):
    """LayerNorm over the channels of a ``(B, C, H, W)`` map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) -> (B, H, W, C) -> norm -> (B, C, H, W)
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Stem(nn.Module):
    """Two stride-2 3x3 convolutions: ``(B, 3, H, W) -> (B, H/4, W/4, C)`` channels-last."""

    def __init__(self, channels: int, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels // 2, 3, stride=2, padding=1)
        self.norm1 = ChannelsLastNorm(channels // 2, eps=1e-6)
        self.conv2 = nn.Conv2d(channels // 2, channels, 3, stride=2, padding=1)
        self.norm2 = nn.LayerNorm(channels, eps=1e-6)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.norm1(self.conv1(images)))
        x = self.conv2(x).permute(0, 2, 3, 1)  # (B, C, H/4, W/4) -> (B, H/4, W/4, C)
        return self.norm2(x)


class Downsample(nn.Module):
    """Stride-2 3x3 convolution doubling the width: ``(B, H, W, C) -> (B, H/2, W/2, 2C)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1, bias=False)
        self.norm = nn.LayerNorm(2 * channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, H, W, C) -> (B, C, H, W) -> conv -> (B, H/2, W/2, 2C)
        x = self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.norm(x)


class Mlp(nn.Module):
    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class InternImageBlock(nn.Module):
    """DCNv3 then MLP, each in a residual branch; channels-last ``(B, H, W, C)`` in and out.

    Pre-norm: ``x + f(norm(x))``. Post-norm: ``x + norm(f(x))``. With layer scale the branch
    output is multiplied by a learned per-channel vector (``gamma1``, ``gamma2``).
    """

    def __init__(
        self,
        channels: int,
        groups: int,
        mlp_ratio: float,
        offset_scale: float,
        post_norm: bool,
        layer_scale: float | None,
        drop_path: float,
        dcnv3_impl: str,
    ):
        super().__init__()
        self.post_norm = post_norm
        self.norm1 = nn.LayerNorm(channels, eps=1e-6)
        self.dcn = DCNv3(channels, groups, offset_scale=offset_scale, impl=dcnv3_impl)
        self.norm2 = nn.LayerNorm(channels, eps=1e-6)
        self.mlp = Mlp(channels, int(channels * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        if layer_scale is not None:
            self.gamma1 = nn.Parameter(torch.full((channels,), float(layer_scale)))
            self.gamma2 = nn.Parameter(torch.full((channels,), float(layer_scale)))
        else:
            self.gamma1 = self.gamma2 = None

    def _branch(
        self, x: torch.Tensor, layer: nn.Module, norm: nn.Module, gamma: torch.Tensor | None
    ) -> torch.Tensor:
        y = norm(layer(x)) if self.post_norm else layer(norm(x))
        if gamma is not None:
            y = gamma * y
        return x + self.drop_path(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._branch(x, self.dcn, self.norm1, self.gamma1)
        return self._branch(x, self.mlp, self.norm2, self.gamma2)


class InternImageStage(nn.Module):
    """Blocks at one resolution, a closing LayerNorm (pre-norm only) and the downsampling."""

    def __init__(
        self,
        channels: int,
        depth: int,
        groups: int,
        mlp_ratio: float,
        offset_scale: float,
        post_norm: bool,
        layer_scale: float | None,
        drop_paths: list[float],
        dcnv3_impl: str,
        downsample: bool,
    ):
        super().__init__()
        self.blocks = nn.ModuleList(
            InternImageBlock(
                channels,
                groups,
                mlp_ratio,
                offset_scale,
                post_norm,
                layer_scale,
                drop_paths[i],
                dcnv3_impl,
            )
            for i in range(depth)
        )
        self.norm = nn.Identity() if post_norm else nn.LayerNorm(channels, eps=1e-6)
        self.downsample = Downsample(channels) if downsample else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(B, H, W, C)`` -> (stage output ``(B, H, W, C)``, next input or None)."""
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return x, self.downsample(x) if self.downsample is not None else None


class ClassifierHead(nn.Module):
    """The release's ImageNet head: 1x1 conv to 1.5x width + BN + GELU, pooling, linear."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        width = int(channels * CLASSIFIER_WIDTH_SCALE)
        self.conv = nn.Conv2d(channels, width, 1, bias=False)
        self.norm = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> logits ``(B, num_classes)``."""
        x = F.gelu(self.norm(self.conv(x)))
        return self.fc(x.mean(dim=(2, 3)))


class InternImage(Backbone):
    """``images (B, 3, H, W)`` -> four maps ``(B, C * 2**i, H / 2**(i+2), W / 2**(i+2))``.

    ``num_classes > 0`` adds the release's classification head (for :meth:`classify` and for
    counting classification parameters); dense models leave it at 0. Weights files of the
    official release (classification ``{"model": ...}`` or mmseg ``{"state_dict": ...}``) load
    with :meth:`load_pretrained`; their ImageNet head is dropped unless this model has one.
    """

    checkpoint_hint = (
        "use an official InternImage checkpoint (classification or segmentation release) of the "
        "size named in model.backbone"
    )

    def __init__(
        self,
        channels: int,
        depths: tuple[int, ...],
        groups: tuple[int, ...],
        offset_scale: float = 1.0,
        post_norm: bool = False,
        layer_scale: float | None = None,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        dcnv3_impl: str = "pytorch",
        num_classes: int = 0,
    ):
        super().__init__()
        if len(depths) != len(groups):
            raise ValueError(f"InternImage needs one group count per stage: {depths}, {groups}")
        widths = [channels * 2**i for i in range(len(depths))]
        self.levels = [FeatureLevel(width, 4 * 2**i) for i, width in enumerate(widths)]

        self.stem = Stem(channels)
        drop_paths = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        for i, (width, depth, group) in enumerate(zip(widths, depths, groups, strict=True)):
            first = sum(depths[:i])
            stage = InternImageStage(
                width,
                depth,
                group,
                mlp_ratio,
                offset_scale,
                post_norm,
                layer_scale,
                drop_paths[first : first + depth],
                dcnv3_impl,
                downsample=i < len(depths) - 1,
            )
            self.stages.append(stage)
        self.head = ClassifierHead(widths[-1], num_classes) if num_classes > 0 else None
        self.checkpoint_ignore = ("head.",) if self.head is None else ()

        self.apply(_init_weights)
        for module in self.modules():
            if isinstance(module, DCNv3):
                module.reset_parameters()

    def adapt_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rename the official release's keys to ours; keep only the backbone of mmseg files."""
        if any(key.startswith("backbone.") for key in state):
            state = {
                key.removeprefix("backbone."): value
                for key, value in state.items()
                if key.startswith("backbone.")
            }
        return {official_key(key): value for key, value in state.items()}

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(images)  # (B, H/4, W/4, C)

        features = []
        for stage in self.stages:
            out, x = stage(x)
            features.append(out.permute(0, 3, 1, 2).contiguous())  # (B, h, w, c) -> (B, c, h, w)
        return features

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``(B, num_classes)``; needs ``num_classes > 0``."""
        if self.head is None:
            raise ValueError("this InternImage was built without a classification head")
        return self.head(self.forward(images)[-1])


def _init_weights(module: nn.Module) -> None:
    """The release's initialisation: truncated normal linears, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# ---------------------------------------------------------------------------------------------
# Official checkpoints

# Official key -> our key, applied in order. The release wraps LayerNorms in nn.Sequential with
# layout permutes, hence the ``.0.`` / ``.1.`` indices; its stages are called ``levels``.
_OFFICIAL_KEY_RULES: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^patch_embed\.conv(\d)\."), r"stem.conv\1."),
    (re.compile(r"^patch_embed\.norm(\d)\.1\."), r"stem.norm\1."),
    (re.compile(r"^levels\.(\d+)\."), r"stages.\1."),
    (re.compile(r"\.blocks\.(\d+)\.norm([12])\.0\."), r".blocks.\1.norm\2."),
    (re.compile(r"\.dcn\.dw_conv\.0\."), r".dcn.dw_conv."),
    (re.compile(r"\.dcn\.dw_conv\.1\.1\."), r".dcn.dw_norm."),
    (re.compile(r"^(stages\.\d+)\.norm\.0\."), r"\1.norm."),
    (re.compile(r"\.downsample\.norm\.1\."), r".downsample.norm."),
    (re.compile(r"^conv_head\.0\."), r"head.conv."),
    (re.compile(r"^conv_head\.1\.0\."), r"head.norm."),
    (re.compile(r"^head\.(weight|bias)$"), r"head.fc.\1"),
]


def official_key(key: str) -> str:
    """Our parameter name for a key of the official release (keys already ours pass through)."""
    for pattern, replacement in _OFFICIAL_KEY_RULES:
        key = pattern.sub(replacement, key)
    return key


# ---------------------------------------------------------------------------------------------
# Registry

_EXTRA_OPTIONS = {
    "dcnv3_impl": "pytorch | compiled (model.dcnv3_impl)",
    "channels": "stage-1 width override (tests)",
    "depths": "blocks per stage override (tests)",
    "groups": "DCNv3 groups per stage override (tests)",
    "num_classes": "add the release's classification head (parameter counts)",
}


def build_internimage(
    size: str,
    *,
    img_size: tuple[int, int] = (512, 512),
    pretrained: str | None = None,
    drop_path_rate: float = 0.0,
    extra: tuple[tuple[str, object], ...] = (),
) -> InternImage:
    """Build a published InternImage size; ``extra`` carries the options in ``_EXTRA_OPTIONS``.

    ``img_size`` is unused (the backbone is fully convolutional). ``drop_path_rate`` is applied as
    given; the release's segmentation value is ``INTERNIMAGE_SIZES[size].release_drop_path_rate``.
    """
    name = f"internimage-{size}"
    options = dict(extra)
    if options.get("depth"):
        raise BridgeNetError(
            f"model.backbone_depth only applies to ViT backbones, not {name}",
            "leave model.backbone_depth at 0",
        )
    options.pop("depth", None)
    unknown = sorted(set(options) - set(_EXTRA_OPTIONS))
    if unknown:
        raise BridgeNetError(
            f"unknown option(s) {', '.join(unknown)} for backbone {name!r}; valid options: "
            f"{', '.join(_EXTRA_OPTIONS)}"
        )
    spec = INTERNIMAGE_SIZES[size]
    if "channels" in options:
        spec = replace(spec, channels=int(options["channels"]))
    for key in ("depths", "groups"):
        if key in options:
            spec = replace(spec, **{key: tuple(int(n) for n in options[key])})

    model = InternImage(
        channels=spec.channels,
        depths=spec.depths,
        groups=spec.groups,
        offset_scale=spec.offset_scale,
        post_norm=spec.post_norm,
        layer_scale=spec.layer_scale,
        mlp_ratio=spec.mlp_ratio,
        drop_path_rate=drop_path_rate,
        dcnv3_impl=str(options.get("dcnv3_impl", "pytorch")),
        num_classes=int(options.get("num_classes", 0)),
    )
    if pretrained:
        model.load_pretrained(pretrained)
    return model


def classification_parameter_count(size: str) -> int:
    """Parameters of the release's ImageNet classifier of this size (1000-class head)."""
    model = build_internimage(size, extra=(("num_classes", 1000),))
    return sum(p.numel() for p in model.parameters())


def _factory(size: str):
    def factory(**kwargs) -> InternImage:
        return build_internimage(size, **kwargs)

    factory.__doc__ = f"InternImage-{size.upper()} (see INTERNIMAGE_SIZES[{size!r}])."
    return factory


for _size in INTERNIMAGE_SIZES:
    BACKBONES.register(f"internimage-{_size}", _factory(_size))
