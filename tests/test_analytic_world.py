"""The analytic world: exact velocities, CFG, rewards, decode."""

from __future__ import annotations

import math

import pytest
import torch

from searchkit.backends import AnalyticBackend


@pytest.mark.parametrize("sigma", [0.35, 0.6, 0.9])
def test_velocity_matches_monte_carlo_posterior_mean(sigma: float) -> None:
    """E[eps - x0 | x_t] by self-normalised importance sampling over the prior.

    x0 ~ mixture (M draws), weights p(x_t | x0) = N(x_t; (1 - sigma) x0, sigma^2 I). The
    tolerance is 5 delta-method standard errors of the self-normalised estimate per
    coordinate (two-sided p ~ 6e-7 each; 8 coordinates x 3 levels).
    """
    world = AnalyticBackend(
        channels=1, frames=2, height=2, width=2, num_components=4, guidance_scale=1.0
    )
    log_pi = world.prompt_log_weights("a test prompt")
    g = torch.Generator().manual_seed(1)
    # one query point x_t drawn from the forward process itself, so it is typical
    k = torch.multinomial(log_pi.exp().double(), 1, generator=g).item()
    x0_true = world.means[k] + world.component_std * torch.randn(world.latent_shape, generator=g)
    x_t = (1 - sigma) * x0_true + sigma * torch.randn(world.latent_shape, generator=g)

    m = 400_000
    comp = torch.multinomial(log_pi.exp().double(), m, replacement=True, generator=g)
    x0 = world.means[comp] + world.component_std * torch.randn(m, *world.latent_shape, generator=g)
    x0, xt = x0.double().reshape(m, -1), x_t.double().reshape(1, -1)
    log_w = -((xt - (1 - sigma) * x0) ** 2).sum(1) / (2 * sigma**2)
    w = torch.softmax(log_w, dim=0)
    f = (xt - (1 - sigma) * x0) / sigma - x0  # eps - x0 given x0 and x_t
    estimate = (w[:, None] * f).sum(0)
    stderr = torch.sqrt((w[:, None] ** 2 * (f - estimate) ** 2).sum(0))
    assert 1.0 / (w**2).sum() > 1000, "too few effective samples for the check to mean anything"

    exact = world.exact_velocity(x_t[None], sigma, log_pi).reshape(-1).double()
    assert torch.all((exact - estimate).abs() < 5 * stderr + 1e-9), (exact, estimate, stderr)


def test_guidance_is_real_and_one_forward_without_it(prompt: str) -> None:
    guided = AnalyticBackend(guidance_scale=5.0)
    plain = AnalyticBackend(guidance_scale=1.0)
    x = torch.randn(2, *guided.latent_shape, generator=torch.Generator().manual_seed(0))
    cond = guided.encode(prompt)
    v_guided = guided.velocity(x, torch.tensor(500.0), 0.5, cond)
    v_plain = plain.velocity(x, torch.tensor(500.0), 0.5, cond)
    assert (v_guided - v_plain).abs().max() > 1e-2
    assert guided.forwards_per_step == 2 and plain.forwards_per_step == 1


def test_prompts_choose_mixture_weights_stably() -> None:
    world = AnalyticBackend()
    a1, a2 = world.prompt_log_weights("a cat"), world.prompt_log_weights("a cat")
    b = world.prompt_log_weights("a dog")
    assert torch.equal(a1, a2)
    assert not torch.allclose(a1, b)
    assert math.isclose(float(a1.exp().sum()), 1.0, rel_tol=1e-6)


def test_rewards_have_three_named_dimensions_and_decode_is_rgb(analytic, prompt) -> None:
    x = torch.randn(3, *analytic.latent_shape, generator=torch.Generator().manual_seed(0))
    dims = analytic.reward_dimensions(x, prompt)
    assert dims.shape == (3, 3)
    assert torch.allclose(analytic.oracle(x, prompt), dims.sum(1))
    video = analytic.decode(x)
    assert video.shape == (3, analytic.frames, analytic.height, analytic.width, 3)
    assert video.min() >= 0 and video.max() <= 1


def test_high_reward_is_rare_under_the_base_model(analytic, analytic_reward, prompt) -> None:
    """The top of the oracle reward is a thin tail: search has something to find.

    Among 512 base samples, fewer than 10% come within one unit of the best, while the
    spread (std) is above one unit: a few percent of samples are "high".
    """
    from searchkit import SearchContext

    ctx = SearchContext(
        analytic, analytic_reward, prompt, generator=torch.Generator().manual_seed(0)
    )
    particles = ctx.advance(ctx.start(512), to=analytic.num_steps)
    reward = analytic.oracle(particles.latents, prompt)
    assert reward.std() > 1.0
    near_best = (reward > reward.max() - 1.0).float().mean()
    assert 0.001 < near_best < 0.10


@pytest.mark.parametrize(
    "field, value",
    [
        ("num_steps", 0),
        ("guidance_scale", 0.5),
        ("solver", "ddim"),
        ("channels", 0),
        ("component_std", -1.0),
        ("num_components", 1),
    ],
)
def test_bad_world_configuration_names_the_field(field: str, value: object) -> None:
    with pytest.raises((ValueError, TypeError), match=field):
        AnalyticBackend(**{field: value})
