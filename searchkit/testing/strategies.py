"""Conformance tests that every search strategy must pass.

A strategy joins the suite by subclassing :class:`StrategyConformance` in a test module
and providing a ``strategy`` fixture with small settings (schedules below
:data:`~searchkit.testing.worlds.NUM_STEPS`)::

    import pytest
    from searchkit.testing import StrategyConformance

    class TestMyStrategy(StrategyConformance):
        @pytest.fixture
        def strategy(self):
            return MyStrategy(num_particles=3, schedule=(2, 5))

Every test runs on every world of the class attribute ``worlds``, a mapping from a name
(the test id) to a factory returning a :class:`~searchkit.testing.worlds.World`. It
defaults to :data:`~searchkit.testing.worlds.DEFAULT_WORLDS` (the analytic world with a
deterministic and with a stochastic solver, and the tiny Wan2.1 backend whenever a backend
named ``"wan"`` is registered: then it is always used, never skipped). A plugin runs the
suite on its own backend and reward by naming its own worlds::

    class TestMyStrategyOnMyModel(StrategyConformance):
        worlds = {"mine": lambda: World.of("mine", MyBackend(num_steps=8), MyReward())}

        @pytest.fixture
        def strategy(self):
            return MyStrategy(num_particles=3, schedule=(2, 5))

The contract:

* a run returns a finished output of the backend's latent shape with finite scores, and a
  JSON-able report;
* the same seed gives the same output, scores, cost and trace; a different seed a
  different output;
* an NFE budget below the run's cost raises :class:`~searchkit.errors.BudgetExceededError`,
  and a budget equal to it reproduces the run;
* the reported cost matches the run's own trace (particle-steps of the recorded advances,
  NFE from particle-steps and backward passes, reward calls from the scoring records),
  and the trace is consistent: every id a record names exists in the lineage ``trace.parents``
  (each parent created before its child), weights are normalised, drawn indices are
  indices of the scored particles;
* the model, the decoder and the reward are only ever called by the search context, and
  every such call is metered (checked by spying on the backend and the reward);
* the configuration survives ``config_dict`` and reconstruction.

:func:`small` turns any strategy's configuration into one sized for these worlds, from
the public configuration alone, so a suite over every registered strategy needs no table
of names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
import torch

from searchkit.errors import BudgetExceededError
from searchkit.result import SearchResult
from searchkit.strategy import Strategy
from searchkit.testing.spies import SpyBackend, SpyReward
from searchkit.testing.worlds import DEFAULT_WORLDS, NUM_STEPS, World, WorldFactory, build
from searchkit.validation import is_int

__all__ = ["StrategyConformance", "small"]


def small(strategy: Strategy, num_steps: int = NUM_STEPS, max_size: int = 3) -> Strategy:
    """A copy of ``strategy`` cheap enough for a conformance world of ``num_steps`` steps.

    Works on the public configuration only (``config_dict`` and reconstruction from it):

    * the size knob (``type(strategy).size_knob``), when an integer above ``max_size``,
      becomes ``max_size``;
    * every step schedule that does not fit (a list of strictly increasing non-negative
      step indices whose last one is ``>= num_steps``) becomes ``k = min(len, max_size)``
      events spread evenly over the world, at steps ``round(i * num_steps / (k + 1))`` for
      ``i = 1 .. k`` (``2, 4, 6`` for three events in 8 steps).

    Everything else keeps its value. A configuration the strategy then rejects raises its
    own error: that strategy needs a hand-written ``strategy`` fixture.
    """
    config = strategy.config_dict()
    knob = type(strategy).size_knob
    if knob is not None and is_int(config.get(knob)) and config[knob] > max_size:
        config[knob] = max_size
    for key, value in config.items():
        if _is_schedule(value) and value[-1] >= num_steps:
            k = min(len(value), max_size, num_steps - 1)
            config[key] = [round(i * num_steps / (k + 1)) for i in range(1, k + 1)]
    return type(strategy)(**config)


def _is_schedule(value: object) -> bool:
    if not isinstance(value, list | tuple) or not value or not all(is_int(s) for s in value):
        return False
    return value[0] >= 0 and all(a < b for a, b in zip(value, value[1:], strict=False))


# -- helpers ------------------------------------------------------------------------------
def _run(strategy: Strategy, world: World, seed: int, **kwargs: Any) -> SearchResult:
    return strategy.run(world.backend, world.reward, world.prompt, seed=seed, **kwargs)


def _same(a: SearchResult, b: SearchResult) -> None:
    assert torch.equal(a.latents, b.latents), "same seed gave different latents"
    assert torch.equal(a.scores, b.scores), "same seed gave different scores"
    for field in ("particle_steps", "nfe", "reward_calls", "decodes", "backward_nfe"):
        assert getattr(a.cost, field) == getattr(b.cost, field), (
            f"same seed gave a different {field}"
        )
    assert json.dumps(a.trace.to_dict()) == json.dumps(b.trace.to_dict()), (
        "same seed gave a different trace"
    )


def _particle_steps(result: SearchResult) -> int:
    return sum((a.stop - a.start) * a.particles for a in result.trace.advances)


# -- the suite ----------------------------------------------------------------------------
class StrategyConformance:
    """The contract of a search strategy; subclass it and provide a ``strategy`` fixture.

    Override ``worlds`` (a mapping from names to world factories) to run on other worlds.
    """

    worlds: Mapping[str, WorldFactory] = DEFAULT_WORLDS

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Every test that takes ``world`` runs once per entry of ``worlds``."""
        if "world" in metafunc.fixturenames:
            names = list(self.worlds)
            if not names:
                raise ValueError(f"{type(self).__name__}.worlds names no world")
            metafunc.parametrize("world", names, indirect=True)

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

    @pytest.fixture
    def world(self, request: pytest.FixtureRequest) -> World:
        return build(self.worlds[request.param])

    def test_returns_a_finished_output(self, strategy: Strategy, world: World) -> None:
        result = _run(strategy, world, seed=0)
        assert tuple(result.latents.shape) == tuple(world.backend.latent_shape)
        assert torch.isfinite(result.latents).all()
        assert result.scores.shape == (len(world.reward.dimensions),)
        assert torch.isfinite(result.scores).all()
        assert result.reward == pytest.approx(
            float(world.reward.aggregate(result.scores[None])[0]), rel=1e-5
        )
        assert result.strategy == strategy.name
        assert result.video is not None and result.video.shape[-1] == 3
        json.dumps(result.to_dict())

    def test_deterministic_per_seed(self, strategy: Strategy, world: World) -> None:
        first, again, other = (_run(strategy, world, seed=s) for s in (1, 1, 2))
        _same(first, again)
        assert not torch.equal(first.latents, other.latents), (
            "a different seed gave the same output"
        )

    def test_respects_a_budget(self, strategy: Strategy, world: World) -> None:
        reference = _run(strategy, world, seed=3)
        with pytest.raises(BudgetExceededError):
            _run(strategy, world, seed=3, budget_nfe=reference.cost.nfe - 1)
        _same(reference, _run(strategy, world, seed=3, budget_nfe=reference.cost.nfe))

    def test_cost_matches_its_trace(self, strategy: Strategy, world: World) -> None:
        result = _run(strategy, world, seed=4)
        cost, trace = result.cost, result.trace
        assert cost.particle_steps == _particle_steps(result) > 0
        assert cost.nfe == cost.particle_steps * world.backend.forwards_per_step + cost.backward_nfe
        assert cost.reward_calls == sum(len(record.ids) for record in trace)
        for record in trace:
            assert record.scores.shape == (len(record.ids), len(world.reward.dimensions))
        assert cost.decodes >= 1
        self._check_trace(result)

    def _check_trace(self, result: SearchResult) -> None:
        """Every id is a particle of the lineage, weights are normalised, draws in range."""
        trace = result.trace
        parents = trace.parents
        assert all(-1 <= parent < child for child, parent in enumerate(parents)), (
            "a particle's parent must be created before it (-1 for a root)"
        )
        known = len(parents)
        for record in trace:
            n = len(record.ids)
            assert all(0 <= int(i) < known for i in record.ids), (
                "a record names an unknown particle"
            )
            assert record.total.shape == (n,) and torch.isfinite(record.total).all()
            if record.weights is not None:
                assert record.weights.shape == (n,), "weights are one per scored particle"
                assert torch.isfinite(record.weights).all() and (record.weights >= 0).all()
                assert float(record.weights.sum()) == pytest.approx(1.0, abs=1e-5), (
                    "weights are normalised"
                )
            if record.chosen is not None:
                assert all(0 <= int(i) < n for i in record.chosen), (
                    "drawn indices index the scored particles"
                )
            if record.survivors is not None:
                assert all(0 <= int(i) < known for i in record.survivors), (
                    "a survivor is an unknown particle"
                )

    def spy_on(self, world: World) -> World:
        """``world`` with its backend and reward wrapped in a :class:`SpyBackend` and a
        :class:`SpyReward`, which note every call and who made it."""
        return World(world.name, SpyBackend(world.backend), SpyReward(world.reward), world.prompt)

    def test_compute_goes_through_the_context(self, strategy: Strategy, world: World) -> None:
        spied = self.spy_on(world)
        backend, reward = spied.backend, spied.reward
        result = _run(strategy, spied, seed=5)
        assert backend.outside == [], f"model called outside the search context: {backend.outside}"
        assert reward.outside == [], f"reward called outside the search context: {reward.outside}"
        assert backend.counts["velocity"] == result.cost.particle_steps
        assert backend.counts["decode"] == result.cost.decodes
        assert reward.count == result.cost.reward_calls

    def test_config_round_trips(self, strategy: Strategy) -> None:
        rebuilt = type(strategy)(**strategy.config_dict())
        assert rebuilt == strategy
        assert json.loads(json.dumps(strategy.config_dict())) == strategy.config_dict()
