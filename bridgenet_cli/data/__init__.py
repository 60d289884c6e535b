"""Datasets: readers of the published formats, the synthetic generator, HDF5 caches, transforms.

Public entry points (imported lazily, so that ``bridgenet_cli.tasks`` can import
``bridgenet_cli.data.info`` without pulling in torch datasets, and worker processes stay light):

- :func:`build_dataset` — the dataset of a recipe's split, items as in ``docs/internals.md``;
- :func:`ensure_cache` — the prepared cache for a recipe (generates the synthetic one);
- :func:`image_to_sample`, :func:`denormalize` — single images in and out of the sample form;
- :func:`resolve_train_size` — the training crop ``(H, W)`` a recipe implies.
"""

from bridgenet_cli.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "dataset": (
            "build_dataset",
            "ensure_cache",
            "image_to_sample",
            "resolve_train_size",
            "dataset_from_source",
            "MultiTaskDataset",
            "ReaderSource",
        ),
        "cache": ("CacheSource",),
        "transforms": ("denormalize", "normalize"),
    },
)
