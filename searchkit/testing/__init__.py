"""Conformance suites and test helpers for strategies, backends and rewards.

Every built-in strategy, backend and reward passes these suites, and a plugin joins them
from its own test module by subclassing (the pattern of optuna's sampler test suites and
optax's common optimiser tests): set a class attribute or override a fixture, and pytest
runs the whole contract on your object.

* :class:`StrategyConformance` (:mod:`searchkit.testing.strategies`): a ``strategy``
  fixture; runs on the default worlds or on the ``worlds`` a subclass names
  (:class:`World` factories: your backend and your reward);
* :class:`BackendConformance` (:mod:`searchkit.testing.backends`): ``backend_class`` and
  ``backend_options``;
* :class:`RewardConformance` (:mod:`searchkit.testing.rewards`): ``reward_class``,
  ``reward_options`` and the backend whose outputs it scores;
* :func:`reference_loop` and :func:`fork` (:mod:`searchkit.testing.reference`): the plain
  per-particle denoising loop that batched and resampled runs must reproduce;
* :class:`SpyBackend` and :class:`SpyReward` (:mod:`searchkit.testing.spies`): wrappers that
  note every model and reward call made outside the search context.

The suites import pytest; nothing else in searchkit does.
"""

from searchkit.testing.backends import BackendConformance, construct_backend
from searchkit.testing.reference import fork, reference_loop
from searchkit.testing.rewards import RewardConformance, construct_reward
from searchkit.testing.spies import CONTEXT_MODULE, SpyBackend, SpyReward
from searchkit.testing.strategies import StrategyConformance, small
from searchkit.testing.worlds import (
    DEFAULT_WORLDS,
    NUM_STEPS,
    PROMPT,
    World,
    WorldFactory,
    analytic_world,
    available_worlds,
    build_world,
    wan_tiny_world,
)

__all__ = [
    "CONTEXT_MODULE",
    "DEFAULT_WORLDS",
    "NUM_STEPS",
    "PROMPT",
    "BackendConformance",
    "RewardConformance",
    "SpyBackend",
    "SpyReward",
    "StrategyConformance",
    "World",
    "WorldFactory",
    "analytic_world",
    "available_worlds",
    "build_world",
    "construct_backend",
    "construct_reward",
    "fork",
    "reference_loop",
    "small",
    "wan_tiny_world",
]
