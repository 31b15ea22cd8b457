"""The conformance suites of :mod:`searchkit.testing`, run as a plugin would run them.

Every registered strategy passes the strategy suite at :func:`searchkit.testing.small`
settings (no table of names: a newly registered strategy joins by registering); the
built-in backends and rewards and the example plugin's backend and reward pass the backend
and reward suites; the plugin's strategy passes on a world of the plugin's own backend and
reward; and the suites catch the faults they promise to catch.
"""

from __future__ import annotations

import pytest
import torch

from searchkit.backend import Backend
from searchkit.registry import BACKENDS, STRATEGIES, get_backend, get_reward, get_strategy
from searchkit.strategy import Strategy
from searchkit.testing import (
    NUM_STEPS,
    BackendConformance,
    RewardConformance,
    StrategyConformance,
    World,
    available_worlds,
    build_world,
    small,
)
from tests.plugins import plugin_example

plugin = plugin_example()


# -- strategies ---------------------------------------------------------------------------
class TestEveryRegisteredStrategy(StrategyConformance):
    @pytest.fixture(params=STRATEGIES.names())
    def strategy(self, request: pytest.FixtureRequest) -> Strategy:
        return small(get_strategy(request.param)())


class TestPluginStrategyOnThePluginWorld(StrategyConformance):
    worlds = {
        "gaussian": lambda: World.of(
            "gaussian", plugin.GaussianBackend(num_steps=NUM_STEPS), plugin.Brightness()
        ),
    }

    @pytest.fixture
    def strategy(self) -> Strategy:
        return plugin.SuccessiveHalving(n=3)


def test_small_settings_fit_the_worlds_and_keep_the_rest() -> None:
    for name in STRATEGIES.names():
        default = get_strategy(name)()
        config, shrunk = default.config_dict(), small(default, max_size=3).config_dict()
        for key, value in shrunk.items():
            before = config[key]
            if value == before:
                continue
            if key == type(default).size_knob:
                assert value == 3 < before, f"{name}.{key}: {before} -> {value}"
            else:  # a step schedule that did not fit, spread over the world's steps
                assert before[-1] >= NUM_STEPS, f"{name}.{key} fitted already: {before}"
                assert 1 <= len(value) <= min(len(before), 3), f"{name}.{key}={value}"
                assert value[0] >= 0 and value == sorted(set(value)) and value[-1] < NUM_STEPS, (
                    f"{name}.{key}={value} is not a schedule within {NUM_STEPS} steps"
                )


# -- backends -----------------------------------------------------------------------------
class TestAnalyticBackend(BackendConformance):
    backend_class = get_backend("analytic")
    backend_options = {"channels": 2, "frames": 3, "height": 4, "width": 4, "num_steps": 6}


class TestAnalyticBackendStochastic(BackendConformance):
    backend_class = get_backend("analytic")
    backend_options = {
        "channels": 2,
        "frames": 3,
        "height": 4,
        "width": 4,
        "num_steps": 6,
        "solver": "sde-dpmsolver++",
        "guidance_scale": 1.0,
    }


class TestTinyWanBackend(BackendConformance):
    backend_class = get_backend("wan")
    backend_options = {"tiny": True, "num_steps": 4, "height": 16, "width": 16, "num_frames": 5}


class TestPluginBackend(BackendConformance):
    backend_class = plugin.GaussianBackend
    backend_options = {"num_steps": 6}


# -- rewards ------------------------------------------------------------------------------
class TestAnalyticReward(RewardConformance):
    reward_class = get_reward("analytic")


class TestAnalyticRewardOnNoisyLatents(RewardConformance):
    reward_class = get_reward("analytic")
    reward_options = {"input": "latent"}


class TestPixelReward(RewardConformance):
    reward_class = get_reward("pixel")


class TestPluginReward(RewardConformance):
    reward_class = plugin.Brightness
    backend_class = plugin.GaussianBackend
    backend_options = {"num_steps": 6}


# -- the suites catch what they promise to catch ------------------------------------------
class _Unmetered(Strategy):
    """Decodes through the model it was handed, behind the meter's back."""

    name = "unmetered"

    def __init__(self) -> None:
        self.backend: Backend | None = None

    def search(self, ctx):
        particles = ctx.advance(ctx.start(1), to=ctx.num_steps)
        self.backend.decode(particles.latents)
        return ctx.finish(particles)


class _GloballySeeded(Strategy):
    """Draws its noise from torch's global generator instead of the search's."""

    name = "globally-seeded"

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def search(self, ctx):
        noise = torch.randn(1, *self.shape)
        return ctx.finish(ctx.advance(ctx.start(1, noise=noise), to=ctx.num_steps))


def test_the_strategy_suite_catches_unmetered_model_calls() -> None:
    strategy = _Unmetered()

    class HandsTheModelOver(StrategyConformance):
        def spy_on(self, world: World) -> World:
            spied = super().spy_on(world)
            strategy.backend = spied.backend  # the strategy holds the model the search runs
            return spied

    with pytest.raises(AssertionError, match="outside the search context"):
        HandsTheModelOver().test_compute_goes_through_the_context(strategy, build_world("analytic"))


def test_the_strategy_suite_catches_hidden_randomness() -> None:
    world = build_world("analytic")
    with pytest.raises(AssertionError, match="same seed gave different"):
        StrategyConformance().test_deterministic_per_seed(
            _GloballySeeded(world.backend.latent_shape), world
        )


def test_the_strategy_suite_uses_wan_whenever_it_is_registered() -> None:
    assert ("wan-tiny" in available_worlds()) == ("wan" in BACKENDS)
    assert "wan" in BACKENDS  # this project ships the Wan backend: the suite must run on it


class _MixingBackend(plugin.GaussianBackend):
    """Lets particles of one batch see each other (a batch-statistics bug)."""

    def velocity(self, latents, timestep, sigma, cond):
        v = super().velocity(latents, timestep, sigma, cond)
        return v + 0.1 * latents.mean(dim=0, keepdim=True)


class _OneScheduler(plugin.GaussianBackend):
    """Hands out the same scheduler every time, so searches share solver state."""

    def make_scheduler(self):
        if not hasattr(self, "_scheduler"):
            self._scheduler = super().make_scheduler()
        return self._scheduler


class _CentredBrightness(plugin.Brightness):
    """Scores brightness relative to the batch, so a particle's score depends on the others."""

    def score(self, batch):
        scores = super().score(batch)
        return scores - scores.mean()


def test_the_backend_suite_catches_particles_mixed_in_a_batch() -> None:
    with torch.no_grad(), pytest.raises(AssertionError, match="velocity of a batch"):
        BackendConformance().test_a_batch_equals_single_calls(_MixingBackend(num_steps=4))


def test_the_backend_suite_catches_a_shared_scheduler() -> None:
    with torch.no_grad(), pytest.raises(AssertionError, match="same object"):
        BackendConformance().test_scheduler_is_fresh_with_timesteps_set(_OneScheduler(num_steps=4))


def test_the_reward_suite_catches_scores_that_depend_on_the_batch() -> None:
    backend = plugin.GaussianBackend(num_steps=4)
    with torch.no_grad(), pytest.raises(AssertionError, match="one by one"):
        RewardConformance().test_a_batch_equals_one_by_one(_CentredBrightness(backend), backend)
