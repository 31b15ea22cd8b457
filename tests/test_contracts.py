"""Plugins checked against their contract at first use, naming the plugin (searchkit.contracts).

Every case builds a backend or reward that breaks one promise of its interface and checks
that the search stops with an error naming the plugin, what it gave and what was
expected, and (where the promise can be checked up front) before any model forward.
"""

from __future__ import annotations

import math

import pytest
import torch

from searchkit import RGRP, Baseline, BestOfN, NonFiniteRewardError, Reward
from searchkit.backend import Backend
from searchkit.backends import AnalyticBackend
from searchkit.context import SearchContext
from searchkit.errors import ContractError
from searchkit.rewards import AnalyticReward, LatentRewardConfig, LatentRewardModel, PixelReward

PROMPT = "a red fox running through fresh snow"


class Wrapped(Backend):
    """An analytic world whose methods can be replaced one at a time; counts velocity calls."""

    name = "wrapped"

    def __init__(self, inner: AnalyticBackend | None = None, **replace) -> None:
        self.inner = inner or AnalyticBackend(num_steps=4)
        self.replace = replace
        self.velocity_calls = 0

    def _call(self, name, *args):
        method = self.replace.get(name)
        return method(self.inner, *args) if method else getattr(self.inner, name)(*args)

    @property
    def latent_shape(self):
        return self.replace.get("latent_shape", self.inner.latent_shape)

    @property
    def num_steps(self) -> int:
        return self.inner.num_steps

    def encode(self, prompt):
        return self.inner.encode(prompt)

    def make_scheduler(self):
        return self.inner.make_scheduler()

    def initial_noise(self, n, generator):
        return self._call("initial_noise", n, generator)

    def velocity(self, latents, timestep, sigma, cond):
        self.velocity_calls += 1
        return self._call("velocity", latents, timestep, sigma, cond)

    def decode(self, latents):
        return self._call("decode", latents)


class Declared(Reward):
    """A reward with chosen declarations and a chosen score function."""

    def __init__(self, score=None, *, input="x0", dimensions=("VQ", "MQ"), shape=None, name="odd"):
        self.name, self.input, self.dimensions = name, input, dimensions
        self._score, self._shape = score, shape

    @property
    def latent_shape(self):
        return self._shape

    def score(self, batch):
        if self._score is not None:
            return self._score(batch)
        return torch.zeros(batch.data.shape[0], len(self.dimensions))


@pytest.fixture(scope="module")
def world() -> AnalyticBackend:
    return AnalyticBackend(num_steps=4)


# -- a reward's declarations --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("declared", "message"),
    [
        (
            {"input": "pixels"},
            r"reward 'odd' must declare input as one of latent, x0, video, got 'pixels'",
        ),
        ({"input": None}, r"reward 'odd' must declare input as one of .* got None"),
        (
            {"dimensions": ()},
            r"reward 'odd' must declare dimensions as a non-empty tuple .* got \(\)",
        ),
        ({"dimensions": ("VQ", "VQ")}, r"distinct names, got \('VQ', 'VQ'\)"),
        ({"dimensions": "VQ"}, r"non-empty tuple of distinct names, got 'VQ'"),
        ({"dimensions": ("VQ", "")}, r"distinct names, got \('VQ', ''\)"),
        ({"dimensions": ("VQ", 3)}, r"distinct names, got \('VQ', 3\)"),
    ],
)
def test_a_bad_reward_declaration_is_refused_before_any_forward(declared, message):
    backend = Wrapped()
    with pytest.raises(ContractError, match=message):
        Baseline().run(backend, Declared(**declared), PROMPT, seed=0)
    assert backend.velocity_calls == 0


def test_aggregate_weights_must_match_the_dimensions():
    class Weighted(Declared):
        @property
        def weights(self):
            return torch.ones(3)

    with pytest.raises(
        ContractError,
        match=r"reward 'odd' must give one aggregate weight per dimension \(2\), got a tensor of shape \[3\]",
    ):
        Baseline().run(Wrapped(), Weighted(), PROMPT, seed=0)


# -- a reward's scores ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("score", "message"),
    [
        (
            lambda b: [[0.0, 0.0]] * b.data.shape[0],
            r"reward 'odd' must return a tensor of shape \[1, 2\], got a list",
        ),
        (lambda b: None, r"reward 'odd' must return a tensor of shape \[1, 2\], got None"),
        (lambda b: b.data.shape[0], r"must return a tensor of shape \[1, 2\], got a int"),
        (lambda b: torch.zeros(b.data.shape[0]).numpy(), r"got a ndarray"),
        (
            lambda b: torch.zeros(b.data.shape[0]),
            r"reward 'odd' must return \[1, 2\] scores, got \[1\]",
        ),
        (lambda b: torch.zeros(b.data.shape[0], 3), r"must return \[1, 2\] scores, got \[1, 3\]"),
        (
            lambda b: torch.zeros(2, b.data.shape[0]).T[:, :1],
            r"must return \[1, 2\] scores, got \[1, 1\]",
        ),
    ],
)
def test_scores_of_the_wrong_type_or_shape_name_the_reward(score, message):
    with pytest.raises(ContractError, match=message):
        Baseline().run(Wrapped(), Declared(score), PROMPT, seed=0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_score_names_the_reward_step_particle_and_dimension(bad):
    def score(batch):
        out = torch.zeros(batch.data.shape[0], 2)
        out[-1, 1] = bad
        return out

    with pytest.raises(
        NonFiniteRewardError,
        match=rf"reward 'odd' returned {bad} at step 4 for particle 2 \(batch index 2\), dimension 'MQ'",
    ):
        BestOfN(n=3).run(Wrapped(), Declared(score), PROMPT, seed=0)


def test_a_non_finite_score_of_non_finite_input_blames_the_input():
    """The backend's latents turn NaN after the first step (which the first-use check sees
    finite); the reward's NaN is then not the reward's fault."""

    def velocity(inner, latents, t, sigma, cond):
        v = inner.velocity(latents, t, sigma, cond)
        return v if sigma > 0.9 else v * math.nan

    reward = Declared(lambda b: b.data.reshape(b.data.shape[0], -1)[:, :2])
    with pytest.raises(
        NonFiniteRewardError,
        match=r"the input of reward 'odd' at step 4 is non-finite for particle 0 .*not the reward",
    ):
        Baseline().run(Wrapped(velocity=velocity), reward, PROMPT, seed=0)


# -- a backend's outputs ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (
            (4, 8, 8),
            r"backend 'wrapped' must declare latent_shape as four positive integers \(C, F, H, W\), got \(4, 8, 8\)",
        ),
        ((4, 5, 0, 8), r"got \(4, 5, 0, 8\)"),
        ((4, 5, 8.0, 8), r"got \(4, 5, 8.0, 8\)"),
        ((True, 5, 8, 8), r"got \(True, 5, 8, 8\)"),
        (None, r"got None"),
    ],
)
def test_a_bad_latent_shape_declaration_is_refused(shape, message):
    backend = Wrapped(latent_shape=shape)
    with pytest.raises(ContractError, match=message):
        Baseline().run(backend, Declared(), PROMPT, seed=0)
    assert backend.velocity_calls == 0


@pytest.mark.parametrize(
    ("velocity", "message"),
    [
        (
            lambda i, x, t, s, c: i.velocity(x, t, s, c)[:, :2],
            r"backend 'wrapped': velocity must return a tensor of the latents' shape \[1, 4, 5, 8, 8\], got a tensor of shape \[1, 2, 5, 8, 8\]",
        ),
        (lambda i, x, t, s, c: i.velocity(x, t, s, c)[0], r"got a tensor of shape \[4, 5, 8, 8\]"),
        (
            lambda i, x, t, s, c: i.velocity(x, t, s, c).tolist(),
            r"shape \[1, 4, 5, 8, 8\], got a list",
        ),
        (lambda i, x, t, s, c: None, r"got None"),
        (
            lambda i, x, t, s, c: i.velocity(x, t, s, c) * math.inf,
            r"backend 'wrapped': velocity returned non-finite values at step 0 for finite latents",
        ),
    ],
)
def test_a_bad_velocity_stops_the_search_at_the_first_step(velocity, message):
    backend = Wrapped(velocity=velocity)
    with pytest.raises(ContractError, match=message):
        Baseline().run(backend, Declared(), PROMPT, seed=0)
    assert backend.velocity_calls == 1


@pytest.mark.parametrize(
    ("decode", "message"),
    [
        (
            lambda i, z: i.decode(z).permute(0, 4, 1, 2, 3),
            r"backend 'wrapped': decode of 1 latents must return frames \[1, F, H, W, 3\], got a tensor of shape \[1, 3, 5, 8, 8\]",
        ),
        (lambda i, z: i.decode(z)[0], r"got a tensor of shape \[5, 8, 8, 3\]"),
        (
            lambda i, z: i.decode(z).repeat(2, 1, 1, 1, 1),
            r"got a tensor of shape \[2, 5, 8, 8, 3\]",
        ),
        (lambda i, z: None, r"decode of 1 latents must return frames \[1, F, H, W, 3\], got None"),
        (lambda i, z: i.decode(z) / 0.0, r"backend 'wrapped': decode returned non-finite frames"),
    ],
)
def test_a_bad_decode_names_the_backend(decode, message):
    with pytest.raises(ContractError, match=message):
        Baseline().run(Wrapped(decode=decode), PixelReward(), PROMPT, seed=0)


def test_a_bad_initial_noise_names_the_backend_before_any_forward():
    backend = Wrapped(initial_noise=lambda i, n, g: i.initial_noise(n, g)[:, :, :1])
    with pytest.raises(
        ContractError,
        match=r"backend 'wrapped': initial_noise\(1\) must return a tensor of shape \[1, 4, 5, 8, 8\], got a tensor of shape \[1, 4, 1, 8, 8\]",
    ):
        Baseline().run(backend, Declared(), PROMPT, seed=0)
    assert backend.velocity_calls == 0


# -- a reward built for another backend's latents -------------------------------------------
def test_an_analytic_reward_of_another_world_is_refused_with_both_shapes(world):
    other = AnalyticBackend(num_steps=4, height=16)
    with pytest.raises(
        ContractError,
        match=r"reward 'analytic' was built for latents of shape \(4, 5, 16, 8\), but backend 'analytic' makes latents of shape \(4, 5, 8, 8\)",
    ):
        Baseline().run(world, AnalyticReward(other), PROMPT, seed=0)


def test_a_latent_reward_model_of_other_channels_is_refused_before_compute(world):
    model = LatentRewardModel(LatentRewardConfig(in_channels=16, text_dim=8, width=8, depth=0))
    backend = Wrapped(world)
    with pytest.raises(
        ContractError,
        match=r"reward 'latent-reward-model' was built for latents of shape \(16, any, any, any\), but backend 'wrapped' makes latents of shape \(4, 5, 8, 8\)",
    ):
        RGRP(schedule=(1,)).run(backend, model, PROMPT, seed=0)
    assert backend.velocity_calls == 0


def test_any_size_axes_and_video_rewards_are_not_compared(world):
    loose = Declared(shape=(4, None, None, None))
    assert Baseline().run(world, loose, PROMPT, seed=0).scores.shape == (2,)
    video = Declared(input="video", dimensions=("VQ", "MQ", "TA"), shape=(99, 1, 1, 1))
    assert Baseline().run(world, video, PROMPT, seed=0).scores.shape == (3,)
    with pytest.raises(ContractError, match=r"must declare latent_shape as None or a tuple"):
        Baseline().run(world, Declared(shape=(4, -1, None, None)), PROMPT, seed=0)


# -- noise given by the caller ----------------------------------------------------------------
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_given_noise_is_an_input_error_before_any_forward(bad):
    backend = Wrapped()
    noise = torch.zeros(backend.latent_shape)
    noise[1, 2, 3, 4] = bad
    with pytest.raises(
        ValueError, match=rf"noise holds non-finite values \({bad} at index \[0, 1, 2, 3, 4\]\)"
    ):
        Baseline().run(backend, Declared(), PROMPT, seed=0, noise=noise)
    assert backend.velocity_calls == 0


def test_non_finite_noise_given_to_start_is_an_input_error(world):
    ctx = SearchContext(world, Declared(), PROMPT, generator=torch.Generator().manual_seed(0))
    noise = torch.zeros(2, *world.latent_shape)
    noise[1, 0, 0, 0, 0] = math.nan
    with pytest.raises(
        ValueError, match=r"noise holds non-finite values \(nan at index \[1, 0, 0, 0, 0\]\)"
    ):
        ctx.start(2, noise=noise)


def test_integer_noise_is_refused(world):
    with pytest.raises(
        TypeError, match=r"noise must hold floating-point values, got dtype torch.int64"
    ):
        Baseline().run(
            world,
            Declared(),
            PROMPT,
            seed=0,
            noise=torch.zeros(world.latent_shape, dtype=torch.long),
        )


def test_a_well_behaved_pair_is_checked_once_per_search(world):
    """Each first-use check is spent after the first call; the search still runs to the end."""
    ctx = SearchContext(world, PixelReward(), PROMPT, generator=torch.Generator().manual_seed(0))
    assert ctx._checks.pending == {"initial_noise", "velocity", "decode"}
    particles = ctx.advance(ctx.start(2), to=world.num_steps)
    assert ctx._checks.pending == {"decode"}
    ctx.finish(particles)
    assert ctx._checks.pending == set()
