"""A small name -> object registry, one per kind of thing (backbones, tasks, datasets, ...)."""

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from bridgenet_cli.errors import BridgeNetError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects; an unknown name raises an error listing the valid names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; without ``obj`` it works as a decorator."""
        if obj is not None:
            self._add(name, obj)
            return obj

        def decorator(item: T) -> T:
            self._add(name, item)
            return item

        return decorator

    def _add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj

    def get(self, name: str) -> T:
        if name not in self._items:
            raise BridgeNetError(self.unknown_message(name))
        return self._items[name]

    def unknown_message(self, name: str) -> str:
        valid = ", ".join(sorted(self._items))
        close = difflib.get_close_matches(name, list(self._items), n=1)
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {self.kind} {name!r}{guess}; valid names: {valid}"

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())
