"""Lazy package exports: a package lists its public names and imports each module on first use.

A package ``__init__`` that would otherwise import heavy modules (torch datasets, models) at
import time writes instead::

    __getattr__, __all__ = lazy_exports(__name__, {"dataset": ("build_dataset",)})

and ``from bridgenet_cli.data import build_dataset`` imports ``bridgenet_cli.data.dataset`` only
then (PEP 562 module ``__getattr__``).
"""

from collections.abc import Callable, Mapping, Sequence
from importlib import import_module


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], object], list[str]]:
    """A module-level ``__getattr__`` for ``package``, and its sorted ``__all__``.

    ``exports`` maps a submodule name (relative to ``package``) to the public names it defines.
    The ``__getattr__`` imports that submodule when one of its names is first looked up and
    returns the attribute; any other name raises the ``AttributeError`` Python raises for a
    missing module attribute.
    """
    owner = {name: f"{package}.{module}" for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> object:
        if name in owner:
            return getattr(import_module(owner[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(owner)
