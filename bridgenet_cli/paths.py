"""Where prepared datasets live by default."""

import os
from pathlib import Path

DATA_DIR_ENV = "BRIDGENET_DATA"


def data_dir() -> Path:
    """The folder holding prepared caches: ``$BRIDGENET_DATA``, else ``~/.cache/bridgenet/data``."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "bridgenet" / "data"


def default_cache_path(dataset: str) -> Path:
    return data_dir() / f"{dataset}.h5"
