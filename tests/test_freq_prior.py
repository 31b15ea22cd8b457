"""FreqPrior: bad input, the noise prior's statistics, the re-noising jump, compute as the
formula says, and the passes as the algorithm runs them."""

from __future__ import annotations

import math

import pytest
import torch

from searchkit import Baseline, FreqPrior
from searchkit.algorithms.free_init import butterworth_3d, frequency_mix
from searchkit.algorithms.freq_prior import frequency_prior, renoise, variance_preserving_mix
from searchkit.backends import AnalyticBackend
from searchkit.rewards import AnalyticReward
from searchkit.testing import SpyBackend

PROMPT = "a red fox running through fresh snow"
STEPS = 12
DIMS = (-3, -2, -1)


@pytest.fixture(scope="module")
def small() -> AnalyticBackend:
    return AnalyticBackend(channels=2, frames=3, height=4, width=4, num_steps=STEPS)


@pytest.fixture(scope="module")
def reward(small) -> AnalyticReward:
    return AnalyticReward(small)


# -- bad input: every field, a clear error naming it --------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_passes", 0),
        ("num_passes", 2.5),
        ("num_passes", True),
        ("ratio", -0.1),
        ("ratio", 1.5),
        ("ratio", math.nan),
        ("mid_fraction", -0.1),
        ("mid_fraction", 1.01),
        ("cutoff", 0.0),
        ("cutoff", 1.5),
        ("order", 0),
    ],
    ids=repr,
)
def test_bad_config_names_the_field_and_value(field, value) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        FreqPrior(**{field: value})
    assert field in str(info.value)
    assert repr(value) in str(info.value) or str(value) in str(info.value)


# -- the noise prior -----------------------------------------------------------------------
SHAPE = (5, 8, 8)  # frames, height, width: 320 frequencies
DRAWS = 2000  # samples of 2 channels each: M = 4000 estimates per frequency


def _prior_samples(ratio: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    z, eta, xi = (torch.randn(DRAWS, 2, *SHAPE, generator=g) for _ in range(3))
    gain = butterworth_3d(SHAPE, cutoff=0.25, order=4)
    return z, frequency_prior(z, eta, xi, ratio, gain), gain


def _per_frequency_mean(values: torch.Tensor) -> torch.Tensor:
    return values.reshape(-1, *SHAPE).mean(dim=0)


# For white N(0, 1) data of N elements, |X(f)|^2 / N is Exp(1) at a complex frequency
# (variance 1) and chi^2_1 at a self-conjugate one (variance 2); so is the cross term
# Re(X conj Y) / N bounded by variance 2. A mean over M = 4000 draws has standard deviation at
# most sqrt(2 / M) = 0.022; five of them (0.11) bound 320 frequencies at once with failure
# probability below 320 * 6e-7.
M = DRAWS * 2
TOLERANCE = 5 * math.sqrt(2 / M)
N = math.prod(SHAPE)


@pytest.mark.parametrize("ratio", [0.8, 0.0, 1.0])
def test_prior_is_white_standard_noise(ratio) -> None:
    _, prior, _ = _prior_samples(ratio)
    power = _per_frequency_mean(torch.fft.fftn(prior.double(), dim=DIMS).abs() ** 2 / N)
    assert (power - 1).abs().max() < TOLERANCE  # every frequency has unit power: N(0, I)
    assert abs(float(prior.mean())) < 5 / math.sqrt(prior.numel())


def test_free_init_mix_would_fail_the_whiteness_test() -> None:
    """The test has power: FreeInit's gains H and 1 - H lose power where H is near 1/2."""
    g = torch.Generator().manual_seed(1)
    z, xi = torch.randn(DRAWS, 2, *SHAPE, generator=g), torch.randn(DRAWS, 2, *SHAPE, generator=g)
    gain = butterworth_3d(SHAPE, cutoff=0.25, order=4)
    power = _per_frequency_mean(
        torch.fft.fftn(frequency_mix(z, xi, gain).double(), dim=DIMS).abs() ** 2 / N
    )
    assert float(power.min()) < 1 - 3 * TOLERANCE  # H^2 + (1 - H)^2 = 1/2 at H = 1/2


@pytest.mark.parametrize("ratio", [0.8, 0.5])
def test_low_frequencies_follow_the_renoised_latent_and_high_ones_are_fresh(ratio) -> None:
    z, prior, gain = _prior_samples(ratio, seed=2)
    spectrum_z = torch.fft.fftn(z.double(), dim=DIMS)
    spectrum_p = torch.fft.fftn(prior.double(), dim=DIMS)
    correlation = _per_frequency_mean((spectrum_p * spectrum_z.conj()).real / N)
    keep = math.sqrt(2) * ratio / math.sqrt(1 + ratio**2)  # 0.88 for r = 0.8
    assert (correlation - keep * gain).abs().max() < TOLERANCE
    assert float(correlation[0, 0, 0]) == pytest.approx(keep, abs=TOLERANCE)  # DC: H = 1
    assert float(correlation[gain < 1e-3].abs().max()) < TOLERANCE  # high frequencies: fresh


def test_ratio_one_keeps_the_lowest_frequency_and_takes_the_highest_from_fresh_noise() -> None:
    g = torch.Generator().manual_seed(3)
    z, eta, xi = (torch.randn(4, 2, *SHAPE, generator=g) for _ in range(3))
    gain = butterworth_3d(SHAPE, cutoff=0.25, order=4)
    prior = torch.fft.fftn(frequency_prior(z, eta, xi, 1.0, gain).double(), dim=DIMS)
    dc = (..., 0, 0, 0)
    assert torch.allclose(prior[dc], torch.fft.fftn(z.double(), dim=DIMS)[dc], atol=1e-4)
    high = gain < 1e-6
    assert torch.allclose(
        prior[..., high], torch.fft.fftn(xi.double(), dim=DIMS)[..., high], atol=1e-4
    )


def test_variance_preserving_mix_extremes() -> None:
    g = torch.Generator().manual_seed(4)
    low, high = torch.randn(2, 3, 4, 6, generator=g), torch.randn(2, 3, 4, 6, generator=g)
    ones = torch.ones(3, 4, 6, dtype=torch.float64)
    assert torch.allclose(variance_preserving_mix(low, high, ones), low, atol=1e-6)
    assert torch.allclose(variance_preserving_mix(low, high, 0 * ones), high, atol=1e-6)


# -- the re-noising jump -----------------------------------------------------------------
def test_renoise_is_the_flows_forward_transition() -> None:
    """From x = (1 - s_m) x0 + s_m e1 the jump gives (1 - s_0) x0 + noise of std s_0."""
    g = torch.Generator().manual_seed(5)
    count = 200_000
    x0 = torch.randn(count, generator=g, dtype=torch.float64)
    sigma_mid, sigma_max = 0.6, 0.98
    latent = (1 - sigma_mid) * x0 + sigma_mid * torch.randn(count, generator=g, dtype=torch.float64)
    jumped = renoise(
        latent, torch.randn(count, generator=g, dtype=torch.float64), sigma_mid, sigma_max
    )
    residual = jumped - (1 - sigma_max) * x0
    # the residual is N(0, sigma_max^2): its sample std has standard error sigma / sqrt(2 n)
    assert float(residual.std()) == pytest.approx(
        sigma_max, abs=5 * sigma_max / math.sqrt(2 * count)
    )
    assert abs(float(residual.mean())) < 5 * sigma_max / math.sqrt(count)
    # from a clean latent it is FreeInit's re-noising; at the same level it is the identity
    noise = torch.randn(8, generator=g, dtype=torch.float64)
    assert torch.allclose(
        renoise(x0[:8], noise, 0.0, sigma_max), (1 - sigma_max) * x0[:8] + sigma_max * noise
    )
    assert torch.equal(renoise(latent[:8], noise, 1.0, 1.0), latent[:8])


# -- compute and the passes ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("strategy", "mid"),
    [
        (FreqPrior(), 7),  # round(0.6 * 12) = 7
        (FreqPrior(num_passes=2, mid_fraction=1.0), STEPS),
        (FreqPrior(num_passes=4, mid_fraction=0.25), 3),
        (FreqPrior(num_passes=1), None),
    ],
    ids=lambda x: str(x) if isinstance(x, int) else None,
)
def test_cost_and_passes_follow_the_formula(strategy, mid, small, reward) -> None:
    L = strategy.num_passes
    for seed in (0, 1):
        result = strategy.run(small, reward, PROMPT, seed=seed)
        assert result.cost.particle_steps == (L - 1) * (mid or 0) + STEPS
        assert result.cost.particle_steps == strategy.expected_particle_steps(STEPS)
        assert result.cost.nfe == strategy.expected_nfe(small)
        assert result.cost.reward_calls == 1 and result.cost.decodes == 1
        spans = [(a.start, a.stop, a.particles) for a in result.trace.advances]
        assert spans == [(0, mid, 1)] * (L - 1) + [(0, STEPS, 1)]


def test_latsearch_configuration_costs_110_particle_steps() -> None:
    """Two partial passes to step 30 and one full pass: 2 * 30 + 50 (LatSearch's table)."""
    assert FreqPrior().mid_step(50) == 30
    assert FreqPrior().expected_particle_steps(50) == 110
    backend = AnalyticBackend(channels=1, frames=1, height=1, width=1)
    assert FreqPrior().expected_nfe(backend) == 220


def test_single_pass_is_the_baseline_and_the_run_is_deterministic(small, reward) -> None:
    one = FreqPrior(num_passes=1).run(small, reward, PROMPT, seed=3)
    assert torch.equal(one.latents, Baseline().run(small, reward, PROMPT, seed=3).latents)
    three = FreqPrior().run(small, reward, PROMPT, seed=3)
    assert torch.equal(three.latents, FreqPrior().run(small, reward, PROMPT, seed=3).latents)
    assert three.reward == FreqPrior().run(small, reward, PROMPT, seed=3).reward
    assert not torch.equal(three.latents, one.latents)
    assert not torch.equal(three.latents, FreqPrior().run(small, reward, PROMPT, seed=4).latents)


class _PassStarts(SpyBackend):
    """Notes the latents the model sees at the first noise level: each pass's starting noise."""

    def __init__(self, inner, first_sigma: float) -> None:
        super().__init__(inner)
        self.first_sigma = first_sigma
        self.starts: list[torch.Tensor] = []

    def velocity(self, latents, timestep, sigma, cond):
        if sigma == self.first_sigma:
            self.starts.append(latents.clone())
        return super().velocity(latents, timestep, sigma, cond)


def test_each_pass_starts_from_the_filtered_initial_noise() -> None:
    """Euler's schedule starts at sigma = 1, so the jump lands on the initial noise exactly:
    with ratio 1 every later pass keeps its mean (the DC term, H = 1) and nothing more."""
    backend = AnalyticBackend(
        channels=2, frames=3, height=4, width=4, num_steps=STEPS, solver="euler"
    )
    spy = _PassStarts(backend, first_sigma=1.0)
    FreqPrior(num_passes=3, ratio=1.0).run(spy, AnalyticReward(backend), PROMPT, seed=0)
    assert len(spy.starts) == 3
    initial, later = spy.starts[0], spy.starts[1:]
    assert torch.equal(initial, backend.initial_noise(1, torch.Generator().manual_seed(0)))
    for start in later:
        assert torch.allclose(start.mean(dim=DIMS), initial.mean(dim=DIMS), atol=1e-5)
        assert not torch.allclose(start, initial, atol=1e-2)
    assert not torch.allclose(later[0], later[1], atol=1e-2)  # each refinement draws afresh
