"""Datasets: readers of the published formats, the synthetic generator, HDF5 caches, transforms.

Public entry points (imported lazily, so that ``bridgenet_cli.tasks`` can import
``bridgenet_cli.data.info`` without pulling in torch datasets, and worker processes stay light):

- :func:`build_dataset` — the dataset of a recipe's split, items as in ``docs/internals.md``;
- :func:`ensure_cache` — the prepared cache for a recipe (generates the synthetic one);
- :func:`image_to_sample`, :func:`denormalize` — single images in and out of the sample form;
- :func:`resolve_train_size` — the training crop ``(H, W)`` a recipe implies.
"""

from importlib import import_module

_EXPORTS = {
    "build_dataset": "bridgenet_cli.data.dataset",
    "ensure_cache": "bridgenet_cli.data.dataset",
    "image_to_sample": "bridgenet_cli.data.dataset",
    "resolve_train_size": "bridgenet_cli.data.dataset",
    "dataset_from_source": "bridgenet_cli.data.dataset",
    "MultiTaskDataset": "bridgenet_cli.data.dataset",
    "ReaderSource": "bridgenet_cli.data.dataset",
    "CacheSource": "bridgenet_cli.data.cache",
    "denormalize": "bridgenet_cli.data.transforms",
    "normalize": "bridgenet_cli.data.transforms",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'bridgenet_cli.data' has no attribute {name!r}")
