"""Every registered strategy passes the conformance suite of :mod:`searchkit.testing`."""

from __future__ import annotations

import pytest
import torch

from searchkit.registry import BACKENDS, STRATEGIES, get_strategy
from searchkit.strategy import Strategy
from searchkit.testing import NUM_STEPS, StrategyConformance, available_worlds, build_world

#: Small settings per registered name, fitting ``NUM_STEPS`` denoising steps.
SMALL: dict[str, dict] = {
    "baseline": {},
    "best-of-n": {"n": 3},
    "rgrp": {"num_particles": 4, "schedule": (2, 4, 6)},
    "beam-search": {"beam_width": 2, "candidates": 2, "lookahead": 1},
    "zero-order": {"num_neighbors": 2, "num_rounds": 2},
    "noise-optimization": {"num_iterations": 2},
    "free-init": {"num_passes": 2},
    "freqprior": {"num_passes": 3},
    "fk-steering": {"num_particles": 3, "schedule": (2, 4, 6), "ess_threshold": None},
    "evo-search": {"evolution_steps": (2, 5), "initial_population": 4, "population": 3, "num_elites": 1},
    "smc": {"num_particles": 3, "schedule": (2, 5)},
}


def test_every_registered_strategy_has_small_settings() -> None:
    missing = sorted(set(STRATEGIES.names()) - set(SMALL))
    assert not missing, f"add small conformance settings for {missing} (steps < {NUM_STEPS})"


class TestEveryStrategy(StrategyConformance):
    @pytest.fixture(params=sorted(SMALL))
    def strategy(self, request: pytest.FixtureRequest) -> Strategy:
        return get_strategy(request.param)(**SMALL[request.param])


# -- the suite catches what it promises to catch -----------------------------------------
class _Unmetered(Strategy):
    """Decodes through the backend directly, behind the meter's back."""

    name = "unmetered"

    def search(self, ctx):
        particles = ctx.advance(ctx.start(1), to=ctx.num_steps)
        ctx._backend.decode(particles.latents)  # deliberately behind the context's back
        return ctx.finish(particles)


class _GloballySeeded(Strategy):
    """Draws its noise from torch's global generator instead of the search's."""

    name = "globally-seeded"

    def search(self, ctx):
        noise = torch.randn(1, *ctx.noise(1).shape[1:])
        return ctx.finish(ctx.advance(ctx.start(1, noise=noise), to=ctx.num_steps))


def test_the_suite_catches_unmetered_model_calls() -> None:
    with pytest.raises(AssertionError, match="outside the search context"):
        StrategyConformance().test_compute_goes_through_the_context(_Unmetered(), build_world("analytic"))


def test_the_suite_catches_hidden_randomness() -> None:
    with pytest.raises(AssertionError, match="same seed gave different"):
        StrategyConformance().test_deterministic_per_seed(_GloballySeeded(), build_world("analytic"))


def test_the_suite_uses_wan_whenever_it_is_registered() -> None:
    assert ("wan-tiny" in available_worlds()) == ("wan" in BACKENDS)
    assert "wan" in BACKENDS  # this project ships the Wan backend: the suite must run on it
