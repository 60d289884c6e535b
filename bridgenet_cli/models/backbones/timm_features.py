"""Convolutional backbones from timm's feature extractors (random weights unless a file is given).

- ``hrnet-w18``, ``hrnet-w48``: the four raw branch outputs (strides 4, 8, 16, 32; 18-144 and
  48-384 channels), all four used by the decoder, as in the paper.
- ``resnet50d``: ResNet-50-D dilated to output stride 8; its three deepest stages (512, 1024 and
  2048 channels, all at stride 8).
- ``timm:<name>``: any timm model that offers feature maps, with its default feature levels; the
  decoder uses the coarsest three.
"""

import difflib
import logging
from functools import partial

import timm
import torch
from torch import nn

from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.models.backbones.base import BACKBONES, Backbone, FeatureLevel

logger = logging.getLogger(__name__)

TIMM_PREFIX = "timm:"

# Parts of classification checkpoints that feature extractors do not build.
_CLASSIFIER_KEYS = ("fc.", "head.", "classifier.", "incre_modules.", "downsamp_modules.")
_HRNET_EXTRA_KEYS = ("final_layer.",)


class TimmFeatureBackbone(Backbone):
    """A timm ``features_only`` model; levels are read from its feature info."""

    def __init__(
        self,
        model_name: str,
        timm_kwargs: dict,
        decoder_levels: int = 3,
        checkpoint_ignore: tuple[str, ...] = _CLASSIFIER_KEYS,
    ):
        super().__init__()
        try:
            self.body = timm.create_model(
                model_name, pretrained=False, features_only=True, **timm_kwargs
            )
        except (RuntimeError, TypeError, AssertionError, ValueError) as exc:
            raise BridgeNetError(
                f"timm cannot build {model_name!r} as a feature extractor: {exc}",
                "pick a timm model that supports features_only (most CNNs and ViTs do)",
            ) from None
        info = self.body.feature_info
        self.levels = [
            FeatureLevel(c, r) for c, r in zip(info.channels(), info.reduction(), strict=True)
        ]
        self.decoder_levels = min(decoder_levels, len(self.levels))
        self.checkpoint_ignore = checkpoint_ignore

    def weights_module(self) -> nn.Module:
        return self.body

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(images))


def _no_depth_option(name: str, extra) -> None:
    if dict(extra).get("depth"):
        raise BridgeNetError(
            f"model.backbone_depth only applies to ViT backbones, not {name}",
            "leave model.backbone_depth at 0",
        )


def _finish(backbone: Backbone, pretrained: str | None) -> Backbone:
    if pretrained:
        backbone.load_pretrained(pretrained)
    return backbone


def _build_hrnet(width: int, img_size, pretrained=None, drop_path_rate=0.0, extra=()) -> Backbone:
    _no_depth_option(f"hrnet-w{width}", extra)
    if drop_path_rate:
        logger.warning("HRNet has no stochastic depth; model.backbone_drop_path_rate is ignored")
    backbone = TimmFeatureBackbone(
        f"hrnet_w{width}",
        {"feature_location": "", "out_indices": (1, 2, 3, 4)},
        decoder_levels=4,
        checkpoint_ignore=_CLASSIFIER_KEYS + _HRNET_EXTRA_KEYS,
    )
    backbone.needs_all_levels = True
    return _finish(backbone, pretrained)


def _build_resnet50d(img_size, pretrained=None, drop_path_rate=0.0, extra=()) -> Backbone:
    _no_depth_option("resnet50d", extra)
    kwargs = {"output_stride": 8, "out_indices": (2, 3, 4), "drop_path_rate": drop_path_rate}
    backbone = TimmFeatureBackbone("resnet50d", kwargs)
    # The paper gives no preliminary-decoder width for ResNet. Its rule for the other backbones
    # (keep the backbone's width) would mean 2048-wide 3x3 convs, 236 M parameters for 5 tasks;
    # our choice is 512, the decoder width.
    backbone.prelim_width = 512
    return _finish(backbone, pretrained)


def build_timm_backbone(
    model_name: str, img_size, pretrained=None, drop_path_rate=0.0, extra=()
) -> Backbone:
    """The generic ``timm:<name>`` route; unknown names list the closest timm names."""
    _no_depth_option(f"{TIMM_PREFIX}{model_name}", extra)
    if not timm.is_model(model_name):
        close = difflib.get_close_matches(model_name, timm.list_models(), n=5, cutoff=0.6)
        guess = f"; close timm names: {', '.join(close)}" if close else ""
        raise BridgeNetError(
            f"timm has no model {model_name!r}{guess}",
            "list valid names with "
            "python -c \"import timm; print(timm.list_models('*convnext*'))\"",
        )
    kwargs: dict = {"drop_path_rate": drop_path_rate} if drop_path_rate else {}
    try:
        backbone = TimmFeatureBackbone(model_name, {**kwargs, "img_size": tuple(img_size)})
    except BridgeNetError:
        backbone = TimmFeatureBackbone(model_name, kwargs)  # most CNNs take no img_size
    return _finish(backbone, pretrained)


BACKBONES.register("hrnet-w18", partial(_build_hrnet, 18))
BACKBONES.register("hrnet-w48", partial(_build_hrnet, 48))
BACKBONES.register("resnet50d", _build_resnet50d)
