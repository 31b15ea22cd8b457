"""Building backends and rewards by registry name, for the CLI, configs and benchmarks.

A backend class is built with ``cls.build(**options)`` when it defines that classmethod
(backends that load weights take ``model_path`` there), else ``cls(**options)``. A reward
class is built with ``cls.build(backend, **options)`` when defined, else
``cls(backend, **options)``. With no reward name, the backend's ``default_reward``
attribute names one.
"""

from __future__ import annotations

from typing import Any

from searchkit.backend import Backend
from searchkit.registry import get_backend, get_reward
from searchkit.reward import Reward


def build_backend(name: str, **options: Any) -> Backend:
    cls = get_backend(name)
    builder = getattr(cls, "build", None)
    return builder(**options) if builder is not None else cls(**options)


def build_reward(name: str | None, backend: Backend, **options: Any) -> Reward:
    if name is None:
        name = getattr(backend, "default_reward", None)
        if name is None:
            raise ValueError(f"backend {backend.name!r} has no default reward; pass --reward NAME")
    cls = get_reward(name)
    builder = getattr(cls, "build", None)
    return builder(backend, **options) if builder is not None else cls(backend, **options)
