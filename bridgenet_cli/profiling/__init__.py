"""FLOPs, parameters, latency and memory of a model configuration, per component."""

from bridgenet_cli.profiling.flops import (
    FLOP_CONVENTION,
    component_parameters,
    count_flops,
    count_parameters,
)
from bridgenet_cli.profiling.profile import TABLE4, ProfileRequest, profile_model
from bridgenet_cli.profiling.render import render_report

__all__ = [
    "FLOP_CONVENTION",
    "TABLE4",
    "ProfileRequest",
    "component_parameters",
    "count_flops",
    "count_parameters",
    "profile_model",
    "render_report",
]
