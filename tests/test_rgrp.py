"""RGRP as the LatSearch paper defines it: compute, pruning, equivalence to a plain loop, errors."""

from __future__ import annotations

import math

import pytest
import torch

from searchkit import RGRP, Baseline, NonFiniteRewardError, Reward
from searchkit.resampling import multinomial
from searchkit.testing.reference import fork, reference_loop
from tests.test_core import BATCH_TOL


def _survivor_counts(result) -> list[int]:
    return [len(r.survivors) for r in result.trace if r.label == "rgrp"]


def test_paper_configuration_particle_steps_formula(analytic, analytic_reward, prompt) -> None:
    n = 6
    for seed in range(40):
        result = RGRP(num_particles=n).run(analytic, analytic_reward, prompt, seed=seed)
        events = [r for r in result.trace if r.label == "rgrp"]
        assert [r.step for r in events] == [11, 16, 21]  # scored after steps 10, 15, 20
        alive = [len(r.ids) for r in events]
        k1, k2 = len(events[0].survivors), len(events[1].survivors)
        assert alive == [n, k1, k2]  # the count never grows
        assert n >= k1 >= k2 >= 1 and len(events[2].survivors) == 1
        assert result.cost.particle_steps == 11 * n + 5 * k1 + 5 * k2 + 29
        assert result.cost.nfe == 2 * result.cost.particle_steps
        assert result.trace.particle_steps == result.cost.particle_steps


def test_expected_particle_steps_under_uniform_weights(analytic, prompt) -> None:
    """A constant reward gives uniform weights: mean P over seeds matches the occupancy law.

    E[P] = 11 N + 5 E[K1] + 5 E[K2] + 29 = 128.6 for N = 6 (E[K1] = 3.99). The tolerance is
    4.5 sample standard errors over 300 seeds.
    """
    rgrp = RGRP(num_particles=6)
    assert abs(rgrp.expected_particle_steps(50) - 128.6) < 0.1
    reward = _ConstantReward()
    small = [
        RGRP(num_particles=6).run(analytic, reward, prompt, seed=s).cost.particle_steps
        for s in range(300)
    ]
    mean = sum(small) / len(small)
    sd = math.sqrt(sum((p - mean) ** 2 for p in small) / (len(small) - 1))
    assert abs(mean - rgrp.expected_particle_steps(50)) < 4.5 * sd / math.sqrt(len(small))


def test_output_equals_a_per_particle_reference_loop(analytic, analytic_reward, prompt) -> None:
    """Same random draws, one forward per particle, deep-copied schedulers on resampling."""
    n, beta, tau, schedule, seed = 5, 0.3, 0.5, (10, 15, 20), 3
    result = RGRP(num_particles=n, beta=beta, temperature=tau, schedule=schedule).run(
        analytic, analytic_reward, prompt, seed=seed
    )

    g = torch.Generator().manual_seed(seed)
    cond = analytic.encode(prompt)
    z = analytic.initial_noise(1, g)
    eps = analytic.initial_noise(n - 1, g)
    alive = [
        (x[None], analytic.make_scheduler(), 0.0)
        for x in torch.cat([z, math.sqrt(1 - beta**2) * z + beta * eps])
    ]
    position = 0
    for event, j in enumerate(schedule):
        advanced = []
        for x, scheduler, c in alive:
            x0_pred = None
            for k in range(position, j + 1):
                t, sigma = scheduler.timesteps[k], float(scheduler.sigmas[k])
                v = analytic.velocity(x, t, sigma, cond)
                x0_pred = x - sigma * v
                x = scheduler.step(v, t, x, return_dict=False)[0]
            advanced.append((x, scheduler, c, x0_pred))
        position = j + 1
        rewards = torch.cat([analytic.oracle(x0, prompt) for *_, x0 in advanced])
        w = torch.softmax(rewards.double() / tau, dim=0)
        keep = torch.unique(multinomial(w, len(advanced), g)).tolist()
        alive = [(advanced[i][0], fork(advanced[i][1]), advanced[i][2] + float(w[i])) for i in keep]
        if event == len(schedule) - 1:
            best = max(range(len(alive)), key=lambda i: (alive[i][2], -i))
            alive = [alive[best]]
    x, scheduler, _ = alive[0]
    expected = reference_loop(analytic, cond, x, scheduler, position, analytic.num_steps)
    assert (result.latents - expected[0]).abs().max() < BATCH_TOL


def test_first_candidate_is_the_baseline_noise(analytic, prompt) -> None:
    """With beta = 0 every candidate is the baseline's noise, so RGRP returns its sample."""
    reward = _ConstantReward()
    rgrp = RGRP(num_particles=3, beta=0.0).run(analytic, reward, prompt, seed=9)
    base = Baseline().run(analytic, reward, prompt, seed=9)
    assert (rgrp.latents - base.latents).abs().max() < BATCH_TOL


def test_ties_go_to_the_lowest_index(analytic, prompt) -> None:
    """A constant reward makes every cumulative weight equal: of the particles the last
    resample drew, the one with the lowest index survives."""
    for seed in range(5):
        result = RGRP(num_particles=6).run(analytic, _ConstantReward(), prompt, seed=seed)
        last = [r for r in result.trace if r.label == "rgrp"][-1]
        assert last.survivors.tolist() == [int(last.ids[last.chosen.min()])]


def test_keep_duplicates_keeps_the_count(analytic, analytic_reward, prompt) -> None:
    result = RGRP(num_particles=4, keep_duplicates=True).run(
        analytic, analytic_reward, prompt, seed=0
    )
    assert result.cost.particle_steps == 21 * 4 + 29
    first = result.trace[0]
    assert len(first.survivors) == 4 and len(first.chosen) == 4


def test_trace_records_the_genealogy(analytic, analytic_reward, prompt) -> None:
    result = RGRP(num_particles=6).run(analytic, analytic_reward, prompt, seed=1)
    events = [r for r in result.trace if r.label == "rgrp"]
    for before, after in zip(events, events[1:], strict=False):
        assert after.ids.tolist() == before.survivors.tolist()
    for r in events:
        assert r.scores.shape == (len(r.ids), 3)
        assert abs(float(r.weights.sum()) - 1) < 1e-6
        assert set(r.survivors.tolist()) <= set(r.ids.tolist())
        chosen_ids = set(r.ids[r.chosen].tolist())
        assert set(r.survivors.tolist()) <= chosen_ids
    assert result.trace.to_dict()["scored"][0]["weights"] is not None


def test_resampler_and_score_input_options(analytic, analytic_reward, prompt) -> None:
    for name in ("systematic", "stratified", "residual"):
        result = RGRP(resampler=name).run(analytic, analytic_reward, prompt, seed=0)
        assert len(result.trace[2].survivors) == 1
    on_latent = RGRP(score_input="latent").run(analytic, analytic_reward, prompt, seed=0)
    on_x0 = RGRP(score_input="x0").run(analytic, analytic_reward, prompt, seed=0)
    assert on_latent.trace[0].input == "latent" and on_x0.trace[0].input == "x0"
    assert not torch.allclose(on_latent.trace[0].scores, on_x0.trace[0].scores)


def test_rgrp_beats_baseline(analytic, analytic_reward, prompt) -> None:
    """Paper configuration, 64 seeds, one-sided Wilcoxon signed-rank test at 1% on the oracle.

    The paired differences are heavy-tailed (mostly small gains from the correlated
    candidates, plus rare large jumps when a candidate lands in another mixture
    component), so a rank test is the appropriate paired test here; a t-test's normality
    assumption does not hold for them.
    """
    from scipy import stats

    diffs = []
    for seed in range(64):
        rgrp = RGRP().run(analytic, analytic_reward, prompt, seed=seed).latents
        base = Baseline().run(analytic, analytic_reward, prompt, seed=seed).latents
        oracle = analytic.oracle(torch.stack([rgrp, base]), prompt)
        diffs.append(float(oracle[0] - oracle[1]))
    assert stats.wilcoxon(diffs, alternative="greater").pvalue < 0.01


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_particles": 1}, "num_particles"),
        ({"beta": 1.5}, "beta"),
        ({"beta": -0.1}, "beta"),
        ({"temperature": 0.0}, "temperature"),
        ({"schedule": ()}, "schedule"),
        ({"schedule": (15, 10)}, "sorted"),
        ({"schedule": (10, 10, 20)}, "repeat"),
        ({"resampler": "bootstrap"}, "resampler"),
        ({"score_input": "video"}, "score_input"),
    ],
)
def test_bad_configuration_names_the_field(kwargs, message) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        RGRP(**kwargs)


def test_schedule_beyond_the_steps_fails_before_compute(analytic, analytic_reward, prompt) -> None:
    spy = _CountingReward(analytic_reward)
    with pytest.raises(ValueError, match=r"schedule steps must lie in \[0, 50\)"):
        RGRP(schedule=(10, 50)).run(analytic, spy, prompt)
    assert spy.calls == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_reward_names_step_and_particle(analytic, prompt, bad) -> None:
    with pytest.raises(NonFiniteRewardError, match=r"at step 11 for particle 2 .*dimension 'TA'"):
        RGRP(num_particles=4).run(analytic, _ConstantReward(poison=(2, bad)), prompt)


def test_generate_command_takes_every_option(tmp_path) -> None:
    import json

    from searchkit.cli import main

    argv = [
        "generate",
        "--strategy",
        "rgrp",
        "--num-particles",
        "4",
        "--beta",
        "0.2",
        "--temperature",
        "0.5",
        "--schedule",
        "5,9,12",
        "--resampler",
        "systematic",
        "--keep-duplicates",
        "false",
        "--score-input",
        "latent",
        "--seed",
        "3",
        "--format",
        "frames",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    report = json.loads((tmp_path / "result.json").read_text())
    assert report["config"] == {
        "num_particles": 4,
        "beta": 0.2,
        "temperature": 0.5,
        "schedule": [5, 9, 12],
        "resampler": "systematic",
        "keep_duplicates": False,
        "score_input": "latent",
    }
    assert [e["step"] for e in report["trace"]["scored"][:3]] == [6, 10, 13]
    assert len(list((tmp_path / "frames").glob("*.png"))) == 5
    assert main(["generate", "--strategy", "rgrp", "--beta", "2", "--out", str(tmp_path)]) == 2


class _ConstantReward(Reward):
    """Zero in every dimension, except an optional poisoned (particle slot, value)."""

    name = "constant"
    dimensions = ("VQ", "MQ", "TA")
    input = "x0"

    def __init__(self, poison: tuple[int, float] | None = None) -> None:
        self.poison = poison

    def score(self, batch):
        scores = torch.zeros(batch.data.shape[0], 3)
        if self.poison is not None and batch.data.shape[0] > self.poison[0]:
            scores[self.poison[0], 2] = self.poison[1]
        return scores


class _CountingReward(Reward):
    name = "counting"
    dimensions = ("VQ", "MQ", "TA")
    input = "x0"

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0

    def score(self, batch):
        self.calls += 1
        return self.inner.score(batch)


def test_expected_particle_steps_equal_the_exact_occupancy_law() -> None:
    """The float64 log-space table equals the exact law, ``P(k | m) = m!/(m-k)! S(m, k) / m^m``,
    computed with Python's integers, to rounding (1e-9 relative)."""
    from itertools import pairwise

    def exact_distinct(m: int) -> list[float]:
        stirling = [[0] * (m + 1) for _ in range(m + 1)]
        stirling[0][0] = 1
        for j in range(1, m + 1):
            for k in range(1, j + 1):
                stirling[j][k] = k * stirling[j - 1][k] + stirling[j - 1][k - 1]
        return [math.perm(m, k) * stirling[m][k] / m**m for k in range(1, m + 1)]

    for n, schedule in ((2, (3,)), (6, (10, 15, 20)), (9, (5, 10, 20, 30, 40)), (17, (1, 2))):
        segments = [schedule[0] + 1] + [b - a for a, b in pairwise(schedule)]
        alive, want = {n: 1.0}, float(segments[0] * n)
        for length in segments[1:]:
            after: dict[int, float] = {}
            for m, p in alive.items():
                for k, q in enumerate(exact_distinct(m), start=1):
                    after[k] = after.get(k, 0.0) + p * q
            alive = after
            want += length * sum(k * p for k, p in alive.items())
        want += 50 - 1 - schedule[-1]
        got = RGRP(num_particles=n, schedule=schedule).expected_particle_steps(50)
        assert math.isclose(got, want, rel_tol=1e-9), (n, schedule, got, want)
