"""Conformance tests that every search strategy must pass.

A strategy joins the suite by subclassing :class:`StrategyConformance` in a test module
and providing a ``strategy`` fixture with small settings (schedules below
:data:`NUM_STEPS`)::

    import pytest
    from searchkit.testing import StrategyConformance

    class TestMyStrategy(StrategyConformance):
        @pytest.fixture
        def strategy(self):
            return MyStrategy(num_particles=3, schedule=(2, 5))

Every test runs on every world of :func:`available_worlds`: the analytic world with a
deterministic and with a stochastic solver, and the tiny Wan2.1 backend whenever a backend
named ``"wan"`` is registered (it is then always used, never skipped). Each world uses its
backend's default reward; the Wan world's reads decoded video, so decode metering is
exercised too. The contract:

* a run returns a finished output of the backend's latent shape with finite scores, and a
  JSON-able report;
* the same seed gives the same output, scores, cost and trace; a different seed a
  different output;
* an NFE budget below the run's cost raises :class:`~searchkit.errors.BudgetExceededError`,
  and a budget equal to it reproduces the run;
* the reported cost matches the run's own trace (particle-steps of the recorded advances,
  NFE from particle-steps and backward passes, reward calls from the scoring records);
* the model, the decoder and the reward are only ever called by the search context, and
  every such call is metered (checked by spying on the backend and the reward);
* the configuration survives ``config_dict`` and reconstruction.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from functools import cache
from typing import Any

import attrs
import pytest
import torch

from searchkit.backend import Backend, Conditioning
from searchkit.builders import build_reward
from searchkit.errors import BudgetExceededError
from searchkit.registry import BACKENDS, get_backend
from searchkit.result import SearchResult
from searchkit.reward import Reward, RewardBatch
from searchkit.strategy import Strategy

#: Denoising steps of every conformance world; small settings must schedule below it.
NUM_STEPS = 8
PROMPT = "a red fox running through fresh snow"
CONTEXT_MODULE = "searchkit.context"


@attrs.frozen(eq=False)
class World:
    """A backend, its reward and a prompt to search."""

    name: str
    backend: Backend
    reward: Reward
    prompt: str = PROMPT


def _analytic(solver: str) -> Backend:
    return get_backend("analytic")(
        channels=2, frames=3, height=4, width=4, num_steps=NUM_STEPS, solver=solver
    )


def _wan_tiny() -> Backend:
    return get_backend("wan").tiny(num_steps=NUM_STEPS, height=16, width=16, num_frames=5)


_WORLD_BUILDERS: dict[str, Callable[[], Backend]] = {
    "analytic": lambda: _analytic("unipc"),
    "analytic-sde": lambda: _analytic("sde-dpmsolver++"),
    "wan-tiny": _wan_tiny,
}


def available_worlds() -> list[str]:
    """The worlds the suite runs on: always the analytic ones, Wan whenever it is registered."""
    names = ["analytic", "analytic-sde"]
    if "wan" in BACKENDS:
        names.append("wan-tiny")
    return names


@cache
def build_world(name: str) -> World:
    """The world called ``name`` (built once per process)."""
    backend = _WORLD_BUILDERS[name]()
    return World(name=name, backend=backend, reward=build_reward(None, backend))


# -- spies --------------------------------------------------------------------------------
def _caller_module(depth: int) -> str:
    return str(sys._getframe(depth).f_globals.get("__name__", "?"))


class SpyBackend(Backend):
    """Forwards to a backend, counting model calls and noting any made from outside the context."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner
        self.name = inner.name
        self.counts: Counter[str] = Counter()
        self.outside: list[tuple[str, str]] = []

    def _note(self, what: str, n: int) -> None:
        self.counts[what] += n
        caller = _caller_module(3)
        if caller != CONTEXT_MODULE:
            self.outside.append((what, caller))

    def __getattr__(self, name: str) -> Any:  # backend-specific attributes
        if name == "_inner":
            raise AttributeError(name)
        return getattr(self._inner, name)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return self._inner.latent_shape

    @property
    def num_steps(self) -> int:
        return self._inner.num_steps

    @property
    def forwards_per_step(self) -> int:
        return self._inner.forwards_per_step

    @property
    def is_stochastic(self) -> bool:
        return self._inner.is_stochastic

    @property
    def is_differentiable(self) -> bool:
        return self._inner.is_differentiable

    @property
    def device(self) -> torch.device:
        return self._inner.device

    @property
    def dtype(self) -> torch.dtype:
        return self._inner.dtype

    def encode(self, prompt: str) -> Conditioning:
        self._note("encode", 1)
        return self._inner.encode(prompt)

    def make_scheduler(self):
        return self._inner.make_scheduler()

    def velocity(self, latents: torch.Tensor, timestep: torch.Tensor, sigma: float, cond: Conditioning) -> torch.Tensor:
        self._note("velocity", int(latents.shape[0]))
        return self._inner.velocity(latents, timestep, sigma, cond)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        self._note("decode", int(latents.shape[0]))
        return self._inner.decode(latents)

    def initial_noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self._inner.initial_noise(n, generator)

    def prompt_embedding(self, cond: Conditioning) -> torch.Tensor:
        return self._inner.prompt_embedding(cond)

    def config_dict(self) -> dict[str, Any]:
        return self._inner.config_dict()


class SpyReward(Reward):
    """Forwards to a reward, counting scored samples and noting calls from outside the context."""

    def __init__(self, inner: Reward) -> None:
        self._inner = inner
        self.name = inner.name
        self.dimensions = inner.dimensions
        self.input = inner.input
        self.count = 0
        self.outside: list[str] = []

    @property
    def weights(self) -> torch.Tensor:
        return self._inner.weights

    @property
    def is_differentiable(self) -> bool:
        return self._inner.is_differentiable

    def _note(self, batch: RewardBatch, depth: int) -> None:
        self.count += int(batch.data.shape[0])
        caller = _caller_module(depth)
        if caller != CONTEXT_MODULE:
            self.outside.append(caller)

    def score(self, batch: RewardBatch) -> torch.Tensor:
        self._note(batch, 3)
        return self._inner(batch)

    def __call__(self, batch: RewardBatch) -> torch.Tensor:
        self._note(batch, 3)
        return self._inner(batch)


# -- the suite ----------------------------------------------------------------------------
def _run(strategy: Strategy, world: World, seed: int, **kwargs: Any) -> SearchResult:
    return strategy.run(world.backend, world.reward, world.prompt, seed=seed, **kwargs)


def _same(a: SearchResult, b: SearchResult) -> None:
    assert torch.equal(a.latents, b.latents), "same seed gave different latents"
    assert torch.equal(a.scores, b.scores), "same seed gave different scores"
    for field in ("particle_steps", "nfe", "reward_calls", "decodes", "backward_nfe"):
        assert getattr(a.cost, field) == getattr(b.cost, field), f"same seed gave a different {field}"
    assert json.dumps(a.trace.to_dict()) == json.dumps(b.trace.to_dict()), "same seed gave a different trace"


class StrategyConformance:
    """The contract of a search strategy; subclass it and provide a ``strategy`` fixture."""

    @pytest.fixture(autouse=True)
    def _single_thread(self):
        """The worlds are tiny: one intra-op thread avoids thread-pool contention, then restores."""
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(before)

    @pytest.fixture
    def strategy(self) -> Strategy:  # pragma: no cover - overridden by every subclass
        raise NotImplementedError("a conformance test class must provide a 'strategy' fixture")

    @pytest.fixture(params=available_worlds())
    def world(self, request: pytest.FixtureRequest) -> World:
        return build_world(request.param)

    def test_returns_a_finished_output(self, strategy: Strategy, world: World) -> None:
        result = _run(strategy, world, seed=0)
        assert tuple(result.latents.shape) == tuple(world.backend.latent_shape)
        assert torch.isfinite(result.latents).all()
        assert result.scores.shape == (len(world.reward.dimensions),)
        assert torch.isfinite(result.scores).all()
        assert result.reward == pytest.approx(float(world.reward.aggregate(result.scores[None])[0]), rel=1e-5)
        assert result.strategy == strategy.name
        assert result.video is not None and result.video.shape[-1] == 3
        json.dumps(result.to_dict())

    def test_deterministic_per_seed(self, strategy: Strategy, world: World) -> None:
        first, again, other = (_run(strategy, world, seed=s) for s in (1, 1, 2))
        _same(first, again)
        assert not torch.equal(first.latents, other.latents), "a different seed gave the same output"

    def test_respects_a_budget(self, strategy: Strategy, world: World) -> None:
        reference = _run(strategy, world, seed=3)
        with pytest.raises(BudgetExceededError):
            _run(strategy, world, seed=3, budget_nfe=reference.cost.nfe - 1)
        _same(reference, _run(strategy, world, seed=3, budget_nfe=reference.cost.nfe))

    def test_cost_matches_its_trace(self, strategy: Strategy, world: World) -> None:
        result = _run(strategy, world, seed=4)
        cost, trace = result.cost, result.trace
        assert cost.particle_steps == trace.particle_steps > 0
        assert cost.nfe == cost.particle_steps * world.backend.forwards_per_step + cost.backward_nfe
        assert cost.reward_calls == sum(len(record.ids) for record in trace)
        for record in trace:
            assert record.scores.shape == (len(record.ids), len(world.reward.dimensions))
        assert cost.decodes >= 1

    def test_compute_goes_through_the_context(self, strategy: Strategy, world: World) -> None:
        backend, reward = SpyBackend(world.backend), SpyReward(world.reward)
        result = strategy.run(backend, reward, world.prompt, seed=5)
        assert backend.outside == [], f"model called outside the search context: {backend.outside}"
        assert reward.outside == [], f"reward called outside the search context: {reward.outside}"
        assert backend.counts["velocity"] == result.cost.particle_steps
        assert backend.counts["decode"] == result.cost.decodes
        assert reward.count == result.cost.reward_calls

    def test_config_round_trips(self, strategy: Strategy) -> None:
        rebuilt = type(strategy)(**strategy.config_dict())
        assert rebuilt == strategy
        assert json.loads(json.dumps(strategy.config_dict())) == strategy.config_dict()
