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

from bridgenet_cli.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "evaluator": (
            "EvalReport",
            "evaluate_model",
            "evaluate_checkpoint",
            "evaluate_predictions",
            "evaluate_run",
            "evaluate_during_training",
        ),
        "metrics": ("build_metrics", "METRICS", "MetricAccumulator"),
        "delta": ("delta_mtl", "load_references", "write_references", "References", "DeltaReport"),
    },
)
