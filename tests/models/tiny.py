"""Tiny model configurations shared by the model tests (seconds to build and run on a CPU)."""

import dataclasses

from bridgenet_cli.config.schema import ModelConfig

# A two-block ViT-tiny and a decoder a few channels wide; no stochastic depth, so that every
# parameter receives a gradient on every step.
TINY = ModelConfig(
    backbone="vit-tiny",
    backbone_depth=2,
    decoder_width=32,
    stage_widths=[32, 16, 8],
    head_width=32,
    prelim_width=32,
    tfr_size="base",
    drop_path_rate=0.0,
)
NYUD_TASKS = ["semseg", "depth", "normals", "edge"]


def tiny(**changes) -> ModelConfig:
    """``TINY`` with some fields changed."""
    return dataclasses.replace(TINY, **changes)
