"""Backbone registry; every module in this package registers its backbones on import.

``build_backbone(name, args)`` accepts a registered name or ``timm:<model name>`` (the generic route
for any timm model with feature maps).
"""

import dataclasses
import importlib
import pkgutil

from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.models.backbones.base import BACKBONES, Backbone, BackboneArgs, FeatureLevel

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

from bridgenet_cli.models.backbones.timm_features import (  # noqa: E402 - after the registrations
    TIMM_PREFIX,
    build_timm_backbone,
)


def build_backbone(name: str, args: BackboneArgs) -> Backbone:
    """Build the backbone ``name`` (registered, or ``timm:<model name>``) with ``args``."""
    kwargs = {f.name: getattr(args, f.name) for f in dataclasses.fields(args)}
    if name.startswith(TIMM_PREFIX):
        return build_timm_backbone(name[len(TIMM_PREFIX) :], **kwargs)
    if name not in BACKBONES:
        raise BridgeNetError(
            BACKBONES.unknown_message(name),
            f"or use {TIMM_PREFIX}<model name> for any timm model with feature maps",
        )
    return BACKBONES.get(name)(**kwargs)


__all__ = ["BACKBONES", "Backbone", "BackboneArgs", "FeatureLevel", "build_backbone"]
