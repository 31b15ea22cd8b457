"""Beam search, zero-order search, noise optimisation, FreeInit, FK steering and EvoSearch:
bad input, compute as each algorithm's formula says, and each one's defining behaviour."""

from __future__ import annotations

import math

import pytest
import torch

from searchkit import (
    Baseline,
    BeamSearch,
    EvoSearch,
    FKSteering,
    FreeInit,
    NoiseOptimization,
    Reward,
    ZeroOrderSearch,
)
from searchkit.algorithms.evo_search import tournament
from searchkit.algorithms.fk_steering import POTENTIALS, log_potential
from searchkit.algorithms.free_init import butterworth_3d, frequency_mix
from searchkit.algorithms.noise_optimization import prior_penalty
from searchkit.algorithms.zero_order import sphere_neighbours
from searchkit.backends import AnalyticBackend
from searchkit.cost import Meter
from searchkit.resampling import RESAMPLERS
from searchkit.rewards import AnalyticReward
from searchkit.testing import SpyBackend

PROMPT = "a red fox running through fresh snow"
STEPS = 12


@pytest.fixture(scope="module")
def small() -> AnalyticBackend:
    return AnalyticBackend(channels=2, frames=3, height=4, width=4, num_steps=STEPS)


@pytest.fixture(scope="module")
def small_sde() -> AnalyticBackend:
    return AnalyticBackend(
        channels=2, frames=3, height=4, width=4, num_steps=STEPS, solver="sde-dpmsolver++"
    )


@pytest.fixture(scope="module")
def reward(small) -> AnalyticReward:
    return AnalyticReward(small)


class _Frozen(AnalyticReward):
    """The analytic reward, declared not differentiable."""

    @property
    def is_differentiable(self) -> bool:
        return False


# -- bad input: every field, a clear error naming it --------------------------------------
BAD_FIELDS = [
    (BeamSearch, "beam_width", 0),
    (BeamSearch, "beam_width", 2.5),
    (BeamSearch, "candidates", 0),
    (BeamSearch, "lookahead", -1),
    (BeamSearch, "beta", 1.5),
    (BeamSearch, "beta", -0.1),
    (ZeroOrderSearch, "num_neighbors", 0),
    (ZeroOrderSearch, "num_rounds", 0),
    (ZeroOrderSearch, "similarity", 1.0),
    (ZeroOrderSearch, "similarity", 0.0),
    (ZeroOrderSearch, "similarity", math.nan),
    (NoiseOptimization, "num_iterations", 0),
    (NoiseOptimization, "learning_rate", 0.0),
    (NoiseOptimization, "learning_rate", -1e-2),
    (NoiseOptimization, "max_grad_norm", 0.0),
    (NoiseOptimization, "regularization", -1.0),
    (FreeInit, "num_passes", 0),
    (FreeInit, "cutoff", 0.0),
    (FreeInit, "cutoff", 1.5),
    (FreeInit, "order", 0),
    (FKSteering, "num_particles", 1),
    (FKSteering, "lmbda", -1.0),
    (FKSteering, "lmbda", math.inf),
    (FKSteering, "potential", "mean"),
    (FKSteering, "schedule", ()),
    (FKSteering, "schedule", (5, 3)),
    (FKSteering, "schedule", (3, 3)),
    (FKSteering, "schedule", (-1, 3)),
    (FKSteering, "ess_threshold", 0.0),
    (FKSteering, "ess_threshold", 1.5),
    (FKSteering, "resampler", "roulette"),
    (FKSteering, "selection", "best"),
    (FKSteering, "beta", 2.0),
    (EvoSearch, "evolution_steps", ()),
    (EvoSearch, "evolution_steps", (5, 5)),
    (EvoSearch, "evolution_steps", (20, 5)),
    (EvoSearch, "initial_population", 0),
    (EvoSearch, "population", 0),
    (EvoSearch, "population", (5, 5)),
    (EvoSearch, "num_elites", -1),
    (EvoSearch, "num_elites", 6),
    (EvoSearch, "tournament_size", 0),
    (EvoSearch, "tournament_size", 11),
    (EvoSearch, "beta", -0.5),
]


@pytest.mark.parametrize(("cls", "field", "value"), BAD_FIELDS, ids=lambda x: repr(x)[:20])
def test_bad_config_names_the_field_and_value(cls, field, value) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        cls(**{field: value})
    message = str(info.value)
    assert field in message
    shown = repr(value) if not isinstance(value, tuple) or value else "()"
    assert shown in message or str(value) in message


@pytest.mark.parametrize(
    ("strategy", "field"),
    [
        (BeamSearch(beta=0.0), "beta"),
        (BeamSearch(beam_width=1, candidates=1), "beam_width"),
        (FKSteering(beta=0.0, schedule=(2, 4)), "beta"),
        (FKSteering(schedule=(2, STEPS)), "schedule"),
        (EvoSearch(evolution_steps=(2, STEPS)), "evolution_steps"),
        (EvoSearch(evolution_steps=(2, 5), beta=0.0), "beta"),
    ],
)
def test_incompatible_with_the_backend_fails_before_compute(strategy, field, small, reward) -> None:
    spy = SpyBackend(small)
    with pytest.raises(ValueError, match=field):
        strategy.run(spy, reward, PROMPT, seed=0)
    assert spy.counts["velocity"] == 0


def test_zero_beta_is_allowed_with_a_stochastic_solver(small_sde) -> None:
    reward = AnalyticReward(small_sde)
    for strategy in (BeamSearch(beta=0.0, beam_width=2), FKSteering(beta=0.0, schedule=(3, 6))):
        assert strategy.run(small_sde, reward, PROMPT, seed=0).cost.particle_steps > 0


@pytest.mark.parametrize("frozen", ["backend", "reward"])
def test_noise_optimization_needs_gradients(small, frozen) -> None:
    class Opaque(AnalyticBackend):
        @property
        def is_differentiable(self) -> bool:
            return False

    backend = (
        Opaque(channels=2, frames=3, height=4, width=4, num_steps=STEPS)
        if frozen == "backend"
        else small
    )
    reward = _Frozen(backend) if frozen == "reward" else AnalyticReward(backend)
    with pytest.raises(ValueError, match=f"differentiable {frozen}.*is_differentiable=False"):
        NoiseOptimization().run(backend, reward, PROMPT, seed=0)


# -- compute as the formulas say ---------------------------------------------------------
T = STEPS
COST_CASES = [
    # (strategy, particle-steps formula, reward calls formula)
    (BeamSearch(beam_width=3, candidates=2), 3 * 2 * T, 3 * 2 * T),
    (
        BeamSearch(beam_width=2, candidates=3, lookahead=2),
        2 * 3 * T + 2 * 3 * (2 * (T - 2) + 1),
        2 * 3 * T,
    ),
    (ZeroOrderSearch(num_neighbors=3, num_rounds=2), T * (1 + 2 * 3), 1 + 2 * 3),
    (NoiseOptimization(num_iterations=3), 4 * T, 4),
    (FreeInit(num_passes=3), 3 * T, 1),
    (FKSteering(num_particles=5, schedule=(2, 5, 8)), 5 * T, 5 * 4),
    (
        EvoSearch(
            evolution_steps=(2, 6, 9), initial_population=6, population=(4, 3, 2), num_elites=1
        ),
        6 * T + 4 * (T - 2) + 3 * (T - 6) + 2 * (T - 9),
        6 + 4 + 3 + 2,
    ),
]


@pytest.mark.parametrize(
    ("strategy", "steps", "calls"), COST_CASES, ids=lambda x: getattr(x, "name", "")
)
def test_cost_follows_the_formula(strategy, steps, calls, small, reward) -> None:
    for seed in (0, 1):
        result = strategy.run(small, reward, PROMPT, seed=seed)
        assert result.cost.particle_steps == steps == strategy.expected_particle_steps(T)
        assert result.cost.nfe == strategy.expected_nfe(small)
        assert result.cost.reward_calls == calls
        assert result.cost.decodes == 1  # the x0 reward needs no decode; the output is decoded once


def test_paper_configurations_at_fifty_steps() -> None:
    """P of the paper configurations: 400 (beam 4x2), 1000 (EvoSearch, 20 baselines), 250 (FreeInit)."""
    assert BeamSearch().expected_particle_steps(50) == 400
    assert EvoSearch().expected_particle_steps(50) == 1000
    assert FreeInit().expected_particle_steps(50) == 250
    assert FKSteering().expected_particle_steps(50) == 200
    backend = AnalyticBackend(channels=1, frames=1, height=1, width=1)
    # NFE = 2 (I + 1) T forwards + 2 * (2 I T) backward-equivalents
    assert (
        NoiseOptimization(num_iterations=10).expected_nfe(backend)
        == 2 * 11 * 50 + Meter.BACKWARD_FACTOR * 2 * 10 * 50
    )


def test_noise_optimization_meters_backward_passes(small, reward) -> None:
    result = NoiseOptimization(num_iterations=2).run(small, reward, PROMPT, seed=0)
    assert result.cost.backward_nfe == 2 * T * small.forwards_per_step * Meter.BACKWARD_FACTOR
    assert (
        result.cost.nfe
        == result.cost.particle_steps * small.forwards_per_step + result.cost.backward_nfe
    )


# -- behaviour ---------------------------------------------------------------------------
def test_beam_search_keeps_the_top_candidates(small, reward) -> None:
    result = BeamSearch(beam_width=2, candidates=3).run(small, reward, PROMPT, seed=2)
    events = [r for r in result.trace if r.label == "beam"]
    assert len(events) == T - 1
    for record in events:
        assert len(record.ids) == 6
        top = torch.topk(record.total, 2).indices
        assert sorted(record.chosen.tolist()) == sorted(top.tolist())
        assert record.survivors.tolist() == record.ids[record.chosen].tolist()
    final = result.trace[-1]
    assert final.label == "final" and result.reward == pytest.approx(float(final.total.max()))


def test_beam_search_lookahead_scores_further_steps(small, reward) -> None:
    result = BeamSearch(beam_width=2, candidates=2, lookahead=3).run(small, reward, PROMPT, seed=0)
    steps = [r.step for r in result.trace if r.label.startswith("lookahead")]
    # after step k the candidates stand at k + 1 and are scored min(3, T - 1 - k) steps on
    assert steps == [min(k + 1 + 3, T) for k in range(T - 1)]


def test_sphere_neighbours_keep_norm_and_similarity() -> None:
    g = torch.Generator().manual_seed(0)
    pivot = torch.randn(1, 2, 3, 4, 4, generator=g)
    out = sphere_neighbours(pivot, torch.randn(5, 2, 3, 4, 4, generator=g), 0.9)
    flat = out.reshape(5, -1)
    assert torch.allclose(flat.norm(dim=1), pivot.norm().expand(5), rtol=1e-5)
    cosine = torch.nn.functional.cosine_similarity(flat, pivot.reshape(1, -1))
    assert torch.allclose(cosine, torch.full((5,), 0.9), atol=1e-5)


def test_zero_order_starts_from_the_baseline_and_only_improves(small, reward) -> None:
    for seed in range(4):
        baseline = Baseline().run(small, reward, PROMPT, seed=seed)
        result = ZeroOrderSearch(num_neighbors=3, num_rounds=3).run(
            small, reward, PROMPT, seed=seed
        )
        first = result.trace[0]
        assert float(first.total[0]) == pytest.approx(baseline.reward, abs=1e-5)  # the pivot itself
        assert torch.allclose(result.latents, baseline.latents) or result.reward > baseline.reward
        assert result.reward == pytest.approx(max(float(r.total.max()) for r in result.trace))


def test_noise_optimization_climbs_the_reward(small, reward) -> None:
    result = NoiseOptimization(num_iterations=4, learning_rate=0.05).run(
        small, reward, PROMPT, seed=0
    )
    totals = [float(r.total[0]) for r in result.trace]
    baseline = Baseline().run(small, reward, PROMPT, seed=0)
    assert totals[0] == pytest.approx(baseline.reward, abs=1e-4)  # iteration 0 is the baseline
    assert totals[-1] > totals[0] + 0.1  # gradient ascent on a smooth reward goes up
    assert result.reward == pytest.approx(max(totals))


def test_prior_penalty_is_small_for_typical_noise() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4000, generator=g)
    assert float(prior_penalty(z)) < 8.0  # (chi^2 + m^2) / 2 of two N(0, 1) statistics
    assert float(prior_penalty(2.0 * z)) > 1000.0  # four times the variance is far from typical


def test_butterworth_gain_and_frequency_mix() -> None:
    gain = butterworth_3d((5, 8, 8), cutoff=0.25, order=4)
    assert float(gain[0, 0, 0]) == 1.0
    # at |2f| = cutoff on one axis the gain is one half: f_h = 1/8 is 2f = 0.25
    assert float(gain[0, 1, 0]) == pytest.approx(0.5)
    assert float(gain[0, 4, 4]) < 1e-3
    g = torch.Generator().manual_seed(0)
    low, high = torch.randn(1, 2, 5, 8, 8, generator=g), torch.randn(1, 2, 5, 8, 8, generator=g)
    mixed = frequency_mix(low, high, gain)
    spectrum = torch.fft.fftn(mixed.double(), dim=(-3, -2, -1))
    expected = torch.fft.fftn(low.double(), dim=(-3, -2, -1)) * gain + torch.fft.fftn(
        high.double(), dim=(-3, -2, -1)
    ) * (1 - gain)
    assert torch.allclose(spectrum, expected, atol=1e-4)
    assert torch.allclose(frequency_mix(low, high, torch.ones_like(gain)), low, atol=1e-5)


def test_free_init_single_pass_is_the_baseline(small, reward) -> None:
    one = FreeInit(num_passes=1).run(small, reward, PROMPT, seed=3)
    assert torch.equal(one.latents, Baseline().run(small, reward, PROMPT, seed=3).latents)
    two = FreeInit(num_passes=2).run(small, reward, PROMPT, seed=3)
    assert not torch.equal(two.latents, one.latents)


def test_evo_search_elites_tournaments_and_best_ever(small, reward) -> None:
    strategy = EvoSearch(
        evolution_steps=(0, 3, 7), initial_population=6, population=4, num_elites=2
    )
    result = strategy.run(small, reward, PROMPT, seed=1)
    generations = list(result.trace)
    assert [len(r.ids) for r in generations] == [6, 4, 4, 4]
    for record in generations[:-1]:
        order = torch.argsort(record.total, descending=True, stable=True)
        assert record.chosen[:2].tolist() == order[:2].tolist()  # the elites lead
        assert len(record.chosen) == 4
    assert result.reward == pytest.approx(max(float(r.total.max()) for r in generations))


def test_tournament_picks_the_fittest_of_its_draw() -> None:
    fitness = torch.tensor([0.3, 2.0, -1.0, 1.0])
    g = torch.Generator().manual_seed(0)
    assert tournament(fitness, 5, 4, g).tolist() == [1] * 5  # everyone draws: the best wins
    counts = torch.bincount(tournament(fitness, 4000, 1, g), minlength=4).double()
    # size 1 is uniform: each count ~ Binomial(4000, 1/4), sd 27.4; allow 5 sd
    assert (counts - 1000).abs().max() < 5 * math.sqrt(4000 * 0.25 * 0.75)


@pytest.mark.parametrize("kind", POTENTIALS)
def test_potentials_and_final_correction_multiply_to_the_tilt(kind) -> None:
    """Along any path the applied potentials times the final correction equal exp(lambda r_0)."""
    g = torch.Generator().manual_seed(0)
    rewards = torch.randn(5, 3, generator=g, dtype=torch.float64)  # 4 events then the output
    lam = 2.5
    extras = {
        "reward_prev": torch.zeros(3, dtype=torch.float64),
        "reward_max": torch.full((3,), -math.inf, dtype=torch.float64),
        "reward_sum": torch.zeros(3, dtype=torch.float64),
    }
    applied = torch.zeros(3, dtype=torch.float64)
    for event in range(4):
        log_g, extras = log_potential(kind, lam, rewards[event], extras)
        expected = {
            "diff": rewards[event] - (rewards[event - 1] if event else 0.0),
            "max": rewards[: event + 1].max(dim=0).values,
            "sum": rewards[: event + 1].sum(dim=0),
            "rt": rewards[event],
        }[kind]
        assert torch.allclose(log_g, lam * expected)
        applied += log_g
    final = lam * rewards[4] - applied
    assert torch.allclose(applied + final, lam * rewards[4])


def test_fk_resampling_policy(small, reward) -> None:
    always = FKSteering(num_particles=4, schedule=(2, 5, 8), ess_threshold=None).run(
        small, reward, PROMPT, seed=0
    )
    events = [r for r in always.trace if r.label == "fk"]
    assert all(r.chosen is not None and len(r.chosen) == 4 for r in events)  # duplicates kept
    assert all(len(r.ids) == 4 for r in always.trace)
    flat = FKSteering(num_particles=4, schedule=(2, 5, 8), lmbda=0.0).run(
        small, reward, PROMPT, seed=0
    )
    # lambda = 0: uniform weights, ESS = N, the adaptive rule never resamples
    assert all(r.chosen is None for r in flat.trace if r.label == "fk")
    final = always.trace[-1]
    assert final.label == "final" and float(final.weights.sum()) == pytest.approx(1.0)
    assert always.reward == pytest.approx(float(final.total.max()))  # selection="argmax"


@pytest.mark.parametrize("resampler", sorted(RESAMPLERS))
def test_fk_runs_with_every_resampler(resampler, small, reward) -> None:
    strategy = FKSteering(
        num_particles=5, schedule=(2, 5, 8), ess_threshold=None, resampler=resampler
    )
    result = strategy.run(small, reward, PROMPT, seed=1)
    events = [r for r in result.trace if r.label == "fk"]
    for record in events:
        assert len(record.chosen) == 5 and len(record.survivors) == 5
        assert record.weights[record.chosen].min() > 0  # zero-weight particles never survive


# -- FK steering samples the tilted distribution -----------------------------------------
class _Coordinate(Reward):
    """r(x) = x on a one-dimensional world (the predicted clean latent itself)."""

    name = "coordinate"
    dimensions = ("x",)
    input = "x0"

    @property
    def is_differentiable(self) -> bool:
        return True

    def score(self, batch):
        return batch.data.reshape(batch.data.shape[0], 1).float()


@pytest.mark.slow
def test_fk_steering_rt_samples_the_tilted_distribution() -> None:
    """FK steering with the rt potential targets p(x) exp(lambda x) on a 1-D two-component world.

    The world: D = 1, p = pi_1 N(mu_1, s^2) + pi_2 N(mu_2, s^2) (guidance off, so the model's
    field is exactly this mixture's), sampled with the stochastic SDE-DPM-Solver++ so that
    resampled duplicates diverge without any perturbation (beta = 0). Tilting a Gaussian
    component by exp(lambda x) gives N(mu_k + lambda s^2, s^2) with weight proportional to
    pi_k exp(lambda mu_k + lambda^2 s^2 / 2), so the tilted mean and the mass above the
    midpoint between the modes are exact.

    Each run uses N = 128 particles and returns one output drawn from its final importance
    weights (selection="sample"); R = 400 runs with seeds 0..399 give R independent draws
    from the sampler's output law. Their mean therefore has standard error sigma_tilt /
    sqrt(R) and the fraction above the midpoint sqrt(p (1 - p) / R) exactly; the test allows
    4.5 standard errors (a false alarm has probability below 1e-5 each). The remaining bias
    is far smaller: the SMC estimator's is O(1/N), and the solver's discretisation moves the
    untilted mean by about 0.006 (measured with 20,000 samples), against a tolerance of 0.28.
    Without the final division by the earlier potentials the target would be tilted by
    exp(lambda sum_s r_s) and the mean would move by about 0.8.
    """
    backend = AnalyticBackend(
        channels=1,
        frames=1,
        height=1,
        width=1,
        num_components=2,
        component_scale=1.5,
        component_std=0.4,
        guidance_scale=1.0,
        solver="sde-dpmsolver++",
        num_steps=50,
        world_seed=1,
    )
    lam, s2, prompt = 1.0, 0.4**2, "a cat"
    pi = backend.prompt_log_weights(prompt).exp().double()
    mu = backend.means.reshape(-1).double()
    assert float((mu[0] - mu[1]).abs()) > 6 * math.sqrt(s2)  # two well separated modes
    weights = torch.softmax(pi.log() + lam * mu + lam**2 * s2 / 2, dim=0)
    centres = mu + lam * s2
    tilted_mean = float((weights * centres).sum())
    tilted_var = float((weights * (centres**2 + s2)).sum()) - tilted_mean**2
    midpoint = float(mu.mean())
    normal = torch.distributions.Normal(centres, math.sqrt(s2))
    above = float((weights * (1 - normal.cdf(torch.tensor(midpoint, dtype=torch.float64)))).sum())
    base_above = float(
        (
            pi
            * (
                1
                - torch.distributions.Normal(mu, math.sqrt(s2)).cdf(
                    torch.tensor(midpoint, dtype=torch.float64)
                )
            )
        ).sum()
    )
    assert abs(above - base_above) > 0.4  # the tilt moves the mode weights a lot

    strategy = FKSteering(
        num_particles=128, lmbda=lam, potential="rt", beta=0.0, selection="sample"
    )
    runs = 400
    draws = torch.tensor(
        [
            float(strategy.run(backend, _Coordinate(), prompt, seed=seed).latents.reshape(-1)[0])
            for seed in range(runs)
        ],
        dtype=torch.float64,
    )
    mean_se = math.sqrt(tilted_var / runs)
    frac_se = math.sqrt(above * (1 - above) / runs)
    assert abs(float(draws.mean()) - tilted_mean) < 4.5 * mean_se
    assert abs(float((draws > midpoint).double().mean()) - above) < 4.5 * frac_se
