"""RGRP: Reward-Guided Resampling and Pruning (LatSearch, ECCV 2026).

The algorithm, as the paper's public code runs it (defaults ``N = 6``, ``beta = 0.1``,
``tau = 1.0``, ``S = (10, 15, 20)`` of 50 steps)::

    z ~ N(0, I); x_1 = z; x_k = sqrt(1 - beta^2) z + beta eps_k      (k = 2..N)
    C = zeros(N)                                      # cumulative weights
    for each step j:
        advance every alive particle one step (its own solver history)
        if j in S:                                    # scored after step j
            r = sum_d reward_d(x, sigma_j, prompt)
            w = softmax(r / tau); C += w
            idx = unique(multinomial(w, n_alive))     # sorted, duplicates dropped
            keep x[idx], C[idx], solver[idx]          # the particle count shrinks
            if j == S[-1]: keep only argmax C         # ties to the lowest index
    decode the survivor

The first candidate is the baseline's own noise, so ``RGRP`` and ``Baseline`` with the same
seed start from the same ``z``. Compute with three scheduled steps: ``P = (S1 + 1) N +
(S2 - S1) K1 + (S3 - S2) K2 + (T - 1 - S3)``, i.e. ``11 N + 5 K1 + 5 K2 + 29`` for the
defaults, with ``K1, K2`` the survivors of the first two resamples.

Where this implementation deviates or extends:

* the reward receives the real noise level ``sigma`` of the step (the reference code
  passes a step label ``20 j`` and its model knows only five labels), so any step can be
  scored;
* ``resampler`` may be any of the four schemes of :mod:`searchkit.resampling`;
* ``keep_duplicates=True`` keeps every draw (the particle count stays ``N`` until the last
  scheduled step); duplicates get independent solver state but stay identical under a
  deterministic solver, so use a stochastic one (``sde-dpmsolver++``) for diversity;
* ``score_input`` shows a latent-space reward ``x_t`` (``"latent"``) or the predicted clean
  latent (``"x0"``) instead of its own declaration.

RGRP is an SMC-like heuristic: cumulative normalised weights are not importance weights,
so it does not sample a reward-tilted distribution consistently (FK steering does).
"""

from __future__ import annotations

import math
from functools import lru_cache
from itertools import pairwise

import attrs
import torch
from attrs import validators as v

from searchkit.backend import Backend
from searchkit.context import SearchContext
from searchkit.particles import Particles
from searchkit.registry import register_strategy
from searchkit.resampling import RESAMPLERS, get_resampler
from searchkit.result import ScoreRecord, SearchResult
from searchkit.reward import Reward
from searchkit.smc import (
    Selection,
    SelectionPolicy,
    as_tuple,
    check_schedule,
    run_smc,
    validate_schedule,
)
from searchkit.strategy import Strategy


@register_strategy("rgrp")
@attrs.frozen
class RGRP(Strategy, SelectionPolicy):
    """Reward-Guided Resampling and Pruning: correlated candidates pruned by reward along the way."""

    name = "rgrp"
    size_knob = "num_particles"

    num_particles: int = attrs.field(default=6, validator=[v.instance_of(int), v.ge(2)])
    beta: float = attrs.field(default=0.1, converter=float, validator=[v.ge(0.0), v.le(1.0)])
    temperature: float = attrs.field(default=1.0, converter=float, validator=v.gt(0.0))
    schedule: tuple[int, ...] = attrs.field(
        default=(10, 15, 20), converter=as_tuple, validator=validate_schedule
    )
    resampler: str = attrs.field(default="multinomial", validator=v.in_(tuple(RESAMPLERS)))
    keep_duplicates: bool = attrs.field(default=False, validator=v.instance_of(bool))
    score_input: str | None = attrs.field(default=None, validator=v.optional(v.in_(("latent", "x0"))))

    def check_compatible(self, backend: Backend, reward: Reward) -> None:
        check_schedule(self.schedule, backend.num_steps)
        if self.score_input is not None and reward.input == "video":
            raise ValueError(
                f"score_input={self.score_input!r} needs a latent-space reward; "
                f"{reward.name!r} reads video"
            )

    def search(self, ctx: SearchContext) -> SearchResult:
        z = ctx.given_noise[:1] if ctx.given_noise is not None else ctx.noise(1)
        eps = ctx.noise(self.num_particles - 1)
        candidates = torch.cat([z, math.sqrt(1.0 - self.beta**2) * z + self.beta * eps])
        particles = ctx.start(self.num_particles, noise=candidates)
        return run_smc(ctx, particles, self.schedule, self, label="rgrp")

    # -- SelectionPolicy ---------------------------------------------------------------
    def begin(self, ctx: SearchContext, particles: Particles) -> Particles:
        return particles.with_extras(cumulative_weight=torch.zeros(len(particles), dtype=torch.float64))

    def select(
        self, ctx: SearchContext, particles: Particles, record: ScoreRecord, last: bool
    ) -> Selection:
        weights = torch.softmax(record.total.double() / self.temperature, dim=0)
        particles = particles.with_extras(
            cumulative_weight=particles.extras["cumulative_weight"] + weights
        )
        draw = get_resampler(self.resampler)(weights, len(particles), ctx.generator)
        keep = draw if self.keep_duplicates else torch.unique(draw)  # unique() sorts
        particles = particles.select(keep)
        if last:
            best = int(torch.argmax(particles.extras["cumulative_weight"]))  # first max wins ties
            particles = particles.select([best])
        return Selection(particles, weights=weights, chosen=draw)

    # -- compute -------------------------------------------------------------------------
    def expected_particle_steps(self, num_steps: int) -> float:
        """Mean ``P`` under uniform weights (an upper bound: peaked weights keep fewer)."""
        n = self.num_particles
        segments = [self.schedule[0] + 1] + [b - a for a, b in pairwise(self.schedule)]
        total = float(segments[0] * n)
        alive = {n: 1.0}  # distribution of the alive count
        for length in segments[1:]:
            alive = _after_resample(alive, self.keep_duplicates)
            total += length * sum(k * p for k, p in alive.items())
        return total + (num_steps - 1 - self.schedule[-1])


def _after_resample(alive: dict[int, float], keep_duplicates: bool) -> dict[int, float]:
    if keep_duplicates:
        return alive
    out: dict[int, float] = {}
    for n, p in alive.items():
        for k, q in enumerate(_distinct_counts(n), start=1):
            out[k] = out.get(k, 0.0) + p * q
    return out


@lru_cache(maxsize=64)
def _distinct_counts(n: int) -> tuple[float, ...]:
    """P(k distinct values) for ``n`` uniform draws from ``n``, ``k = 1..n`` (occupancy law)."""
    # stirling[j][k]: ways to partition j labelled draws into k non-empty groups
    stirling = [[0] * (n + 1) for _ in range(n + 1)]
    stirling[0][0] = 1
    for j in range(1, n + 1):
        for k in range(1, j + 1):
            stirling[j][k] = k * stirling[j - 1][k] + stirling[j - 1][k - 1]
    return tuple(math.perm(n, k) * stirling[n][k] / n**n for k in range(1, n + 1))
