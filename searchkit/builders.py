"""Building backends and rewards by registry name, for the CLI, configs and benchmarks.

A backend class is built with ``cls.build(**options)`` when it defines that classmethod
(backends that load weights take ``model_path`` there), else ``cls(**options)``. A reward
class is built with ``cls.build(backend, **options)`` when defined, else
``cls(backend, **options)``. With no reward name, the backend's ``default_reward``
attribute names one. Options are checked as :func:`searchkit.construct.construct` checks them:
an unknown option, a value a field refuses, or any ``ValueError``/``TypeError`` raised
while building (the constructors' way of refusing an option) is an
:class:`~searchkit.errors.InputError` naming the backend or reward, the field and the value.
"""

from __future__ import annotations

from typing import Any

from searchkit.backend import Backend
from searchkit.construct import construct
from searchkit.errors import InputError
from searchkit.registry import get_backend, get_reward
from searchkit.reward import Reward


def build_backend(name: str, **options: Any) -> Backend:
    cls = get_backend(name)
    builder = getattr(cls, "build", None)
    return construct(builder or cls, owner=f"backend {name!r}", refusals=True, **options)


def build_reward(name: str | None, backend: Backend, **options: Any) -> Reward:
    if name is None:
        name = getattr(backend, "default_reward", None)
        if name is None:
            raise InputError(f"backend {backend.name!r} has no default reward; name a reward")
    cls = get_reward(name)
    builder = getattr(cls, "build", None)
    return construct(builder or cls, backend, owner=f"reward {name!r}", refusals=True, **options)
