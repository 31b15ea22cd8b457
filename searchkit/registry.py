"""Name -> class registries for strategies, rewards and backends.

Each registry maps a short name (``"rgrp"``, ``"best-of-n"``) to a class. Registering a
name twice is an error; looking up an unknown name lists the known ones. Third-party
packages add entries through the entry-point groups ``searchkit.strategies``,
``searchkit.rewards`` and ``searchkit.backends``: each entry point names a class, and the
entry point's name becomes the registry name. Plugins are loaded lazily, on the first
lookup or listing.

The Python API takes instances (``RGRP(...).run(backend, reward, prompt)``); names are for
the command line, configuration files and benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from difflib import get_close_matches
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from searchkit.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to classes with a collision error and entry-point discovery."""

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, type[T]] = {}
        self._plugins_loaded = False

    def register(self, name: str, cls: type[T] | None = None, *, override: bool = False):
        """Register ``cls`` under ``name``; usable as ``register(name, cls)`` or a decorator."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")

        def add(target: type[T]) -> type[T]:
            existing = self._entries.get(name)
            if existing is not None and existing is not target and not override:
                raise RegistryError(
                    f"{self.kind} name {name!r} is already registered to "
                    f"{existing.__module__}.{existing.__qualname__}; pass override=True to replace it"
                )
            self._entries[name] = target
            return target

        return add(cls) if cls is not None else add

    def get(self, name: str) -> type[T]:
        self._load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            close = get_close_matches(str(name), list(self._entries), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise RegistryError(f"unknown {self.kind} {name!r}; {hint}known: {known}") from None

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.group):
            if ep.name in self._entries:
                continue  # built-ins and explicit registrations win over plugins of the same name
            self.register(ep.name, ep.load())


STRATEGIES: Registry = Registry("strategy", "searchkit.strategies")
REWARDS: Registry = Registry("reward", "searchkit.rewards")
BACKENDS: Registry = Registry("backend", "searchkit.backends")


def register_strategy(name: str, cls: type | None = None, *, override: bool = False) -> Callable:
    """Register a strategy class under ``name`` (decorator or direct call)."""
    return STRATEGIES.register(name, cls, override=override)


def get_strategy(name: str) -> type:
    """The strategy class registered under ``name``; unknown names list the known ones."""
    return STRATEGIES.get(name)


def register_reward(name: str, cls: type | None = None, *, override: bool = False) -> Callable:
    return REWARDS.register(name, cls, override=override)


def get_reward(name: str) -> type:
    return REWARDS.get(name)


def register_backend(name: str, cls: type | None = None, *, override: bool = False) -> Callable:
    return BACKENDS.register(name, cls, override=override)


def get_backend(name: str) -> type:
    return BACKENDS.get(name)
