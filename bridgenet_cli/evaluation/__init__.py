"""Evaluation: metrics with the field's conventions, the edge benchmark, Delta_MTL, online and
offline evaluation.

Public entry points (imported lazily, so that the edge benchmark's worker processes import only
NumPy and SciPy):

- :func:`evaluate_model` — a model on a dataset, task -> metric -> value (distributed-aware);
- :func:`evaluate_checkpoint` — a run folder or checkpoint, as ``bridgenet eval`` does;
- :func:`evaluate_predictions` — a saved predictions folder against a dataset split;
- :func:`evaluate_run` — a finished run under given ``[eval]`` settings (ablation studies);
- :func:`evaluate_during_training` — the trainer's validation, with Delta_MTL;
- :func:`build_metrics`, :data:`METRICS` — the per-task accumulators;
- :func:`delta_mtl`, :func:`load_references`, :func:`write_references` — Delta_MTL.
"""

from importlib import import_module

_EXPORTS = {
    "EvalReport": "bridgenet_cli.evaluation.evaluator",
    "evaluate_model": "bridgenet_cli.evaluation.evaluator",
    "evaluate_checkpoint": "bridgenet_cli.evaluation.evaluator",
    "evaluate_predictions": "bridgenet_cli.evaluation.evaluator",
    "evaluate_run": "bridgenet_cli.evaluation.evaluator",
    "evaluate_during_training": "bridgenet_cli.evaluation.evaluator",
    "build_metrics": "bridgenet_cli.evaluation.metrics",
    "METRICS": "bridgenet_cli.evaluation.metrics",
    "MetricAccumulator": "bridgenet_cli.evaluation.metrics",
    "delta_mtl": "bridgenet_cli.evaluation.delta",
    "load_references": "bridgenet_cli.evaluation.delta",
    "write_references": "bridgenet_cli.evaluation.delta",
    "References": "bridgenet_cli.evaluation.delta",
    "DeltaReport": "bridgenet_cli.evaluation.delta",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'bridgenet_cli.evaluation' has no attribute {name!r}")
