"""Backbone registry; every module in this package registers its backbones on import."""

import importlib
import pkgutil

from bridgenet_cli.models.backbones.base import BACKBONES, Backbone, BackboneArgs, FeatureLevel

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["BACKBONES", "Backbone", "BackboneArgs", "FeatureLevel"]
