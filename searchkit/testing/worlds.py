"""Worlds for the strategy conformance suite: a backend, its reward and a prompt.

A world is built by a *factory*, a function of no arguments returning a :class:`World`;
suites take a mapping ``{name: factory}`` so that a test id names the world and nothing is
built before a test needs it. Each factory is called once per process (:func:`build`), as
building a model is the slow part of a small test.

The default worlds are the analytic world with a deterministic solver (UniPC) and with a
stochastic one (SDE-DPM++), and the tiny random Wan2.1 backend whenever a backend named
``"wan"`` is registered; each uses its backend's default reward (the Wan world's reads
decoded video, so decode metering is exercised too). All run :data:`NUM_STEPS` denoising
steps at small latent sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs

from searchkit.backend import Backend
from searchkit.builders import build_reward
from searchkit.registry import BACKENDS, get_backend
from searchkit.reward import Reward

__all__ = [
    "DEFAULT_WORLDS",
    "NUM_STEPS",
    "PROMPT",
    "World",
    "WorldFactory",
    "analytic_world",
    "available_worlds",
    "build",
    "build_world",
    "wan_tiny_world",
]

#: Denoising steps of every default world; small strategy settings must schedule below it.
NUM_STEPS = 8
PROMPT = "a red fox running through fresh snow"


@attrs.frozen(eq=False)
class World:
    """A backend, the reward a search optimises on it, and a prompt to search."""

    name: str
    backend: Backend
    reward: Reward
    prompt: str = PROMPT

    @classmethod
    def of(
        cls, name: str, backend: Backend, reward: Reward | None = None, prompt: str = PROMPT
    ) -> World:
        """A world on ``backend``; without ``reward``, the backend's default reward."""
        return cls(
            name, backend, reward if reward is not None else build_reward(None, backend), prompt
        )


WorldFactory = Callable[[], World]


def analytic_world(solver: str = "unipc", name: str = "analytic") -> World:
    """The analytic world at a small latent ``[2, 3, 4, 4]`` with ``solver``."""
    backend = get_backend("analytic")(
        channels=2, frames=3, height=4, width=4, num_steps=NUM_STEPS, solver=solver
    )
    return World.of(name, backend)


def wan_tiny_world() -> World:
    """The tiny random Wan2.1 backend at 16x16 pixels and 5 frames, with its pixel reward."""
    backend = get_backend("wan").tiny(num_steps=NUM_STEPS, height=16, width=16, num_frames=5)
    return World.of("wan-tiny", backend)


def _default_worlds() -> dict[str, WorldFactory]:
    worlds: dict[str, WorldFactory] = {
        "analytic": analytic_world,
        "analytic-sde": lambda: analytic_world("sde-dpmsolver++", "analytic-sde"),
    }
    if "wan" in BACKENDS:
        worlds["wan-tiny"] = wan_tiny_world
    return worlds


#: The worlds a strategy suite runs on unless a subclass names its own.
DEFAULT_WORLDS: Mapping[str, WorldFactory] = _default_worlds()

_BUILT: dict[WorldFactory, World] = {}


def build(factory: WorldFactory) -> World:
    """The world ``factory`` makes, built on the first call and reused after."""
    world = _BUILT.get(factory)
    if world is None:
        world = factory()
        if not isinstance(world, World):
            raise TypeError(f"a world factory must return a World, got {type(world).__name__}")
        _BUILT[factory] = world
    return world


def available_worlds() -> list[str]:
    """Names of the default worlds: always the analytic ones, Wan whenever it is registered."""
    return list(DEFAULT_WORLDS)


def build_world(name: str) -> World:
    """The default world called ``name`` (built once per process)."""
    try:
        factory = DEFAULT_WORLDS[name]
    except KeyError:
        raise ValueError(f"unknown world {name!r}; known: {', '.join(DEFAULT_WORLDS)}") from None
    return build(factory)
