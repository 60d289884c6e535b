"""The model library: backbones (``BACKBONES``), the BridgeNet decoder and its variants.

``build_model(model_cfg, tasks, dataset, img_size)`` is the entry point; see
:class:`bridgenet_cli.models.bridgenet.BridgeNet` for what the model returns.
"""

from bridgenet_cli.models.backbones import BACKBONES, build_backbone
from bridgenet_cli.models.bridgenet import BridgeNet
from bridgenet_cli.models.build import build_model

__all__ = ["BACKBONES", "BridgeNet", "build_backbone", "build_model"]
