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
from typing import ClassVar

import attrs
import numpy as np
import torch

from searchkit.backend import Backend
from searchkit.context import SearchContext
from searchkit.particles import Particles
from searchkit.registry import register_strategy
from searchkit.resampling import RESAMPLERS
from searchkit.result import ScoreRecord, SearchResult
from searchkit.reward import Reward
from searchkit.smc import SMCPolicy, run_smc
from searchkit.strategy import Strategy
from searchkit.validation import (
    as_tuple,
    boolean,
    check_steps_within,
    int_at_least,
    number,
    one_of,
    optional,
    step_schedule,
    to_float,
)


@register_strategy("rgrp")
@attrs.frozen
class RGRP(Strategy, SMCPolicy):
    """Reward-Guided Resampling and Pruning: correlated candidates pruned by reward along the way.

    Args:
        num_particles: ``N``, candidates at step 0.
        beta: correlation of the candidates' noise with the first one's (0: all equal,
            1: independent).
        temperature: ``tau`` of ``softmax(r / tau)``.
        schedule: steps (0-based) after which the candidates are scored and resampled.
        resampler: any of :data:`searchkit.resampling.RESAMPLERS`.
        keep_duplicates: keep every draw instead of pruning duplicates.
        score_input: show a latent-space reward ``x_t`` (``"latent"``) or the predicted clean
            latent (``"x0"``) instead of its own declaration.
    """

    name = "rgrp"
    size_knob = "num_particles"
    presets: ClassVar[dict[str, dict]] = {
        # the paper's setting (LatSearch, Sec. 4): N = 6, beta = 0.1, tau = 1, S = (10, 15, 20)
        "latsearch": {},
        # independent candidates: the setting that scales with N on the analytic world
        "independent": {"beta": 1.0},
    }

    num_particles: int = attrs.field(default=6, validator=int_at_least(2))
    beta: float = attrs.field(
        default=0.1, converter=to_float, validator=number(at_least=0.0, at_most=1.0)
    )
    temperature: float = attrs.field(default=1.0, converter=to_float, validator=number(above=0.0))
    schedule: tuple[int, ...] = attrs.field(
        default=(10, 15, 20), converter=as_tuple, validator=step_schedule
    )
    resampler: str = attrs.field(default="multinomial", validator=one_of(tuple(RESAMPLERS)))
    keep_duplicates: bool = attrs.field(default=False, validator=boolean)
    score_input: str | None = attrs.field(
        default=None, validator=optional(one_of(("latent", "x0")))
    )

    def check_compatible(self, backend: Backend, reward: Reward) -> None:
        check_steps_within(self.schedule, backend.num_steps)
        reward.check_steps(self.schedule, backend.num_steps)
        if self.score_input is not None and reward.input == "video":
            raise ValueError(
                f"score_input={self.score_input!r} needs a latent-space reward; "
                f"{reward.name!r} reads video"
            )

    def peak_particles(self) -> tuple[int, str | None]:
        return self.num_particles, "num_particles"

    def search(self, ctx: SearchContext) -> SearchResult:
        z = ctx.initial_noise(1)
        eps = ctx.noise(self.num_particles - 1)
        particles = ctx.start(self.num_particles, noise=correlated_candidates(z, eps, self.beta))
        return run_smc(ctx, particles, self.schedule, self, label="rgrp")

    # -- SMC hooks -----------------------------------------------------------------------
    def begin(self, ctx: SearchContext, particles: Particles) -> Particles:
        return particles.with_extras(
            cumulative_weight=torch.zeros(len(particles), dtype=torch.float64)
        )

    def log_potential(
        self, particles: Particles, record: ScoreRecord
    ) -> tuple[torch.Tensor, Particles]:
        """``log G = r / tau``: RGRP resamples at every event, so its weights are ``softmax(r / tau)``."""
        return record.total.double() / self.temperature, particles

    def survivors(
        self, particles: Particles, drawn: torch.Tensor, weights: torch.Tensor, last: bool
    ) -> Particles:
        """Accumulate ``C += w``; keep the distinct draws (sorted); at the last event, ``argmax C``."""
        particles = particles.with_extras(
            cumulative_weight=particles.extras["cumulative_weight"] + weights
        )
        keep = drawn if self.keep_duplicates else torch.unique(drawn)  # unique() sorts
        particles = particles.select(keep)
        if last:
            best = int(torch.argmax(particles.extras["cumulative_weight"]))  # first max wins ties
            particles = particles.select([best])
        return particles

    # -- compute -------------------------------------------------------------------------
    def expected_particle_steps(self, num_steps: int) -> float:
        """Mean ``P`` under uniform weights (an upper bound: peaked weights keep fewer).

        The alive count after each resample follows the occupancy law (distinct values among
        ``m`` uniform draws from ``m``), applied along the schedule from ``N`` alive.
        """
        n = self.num_particles
        segments = [self.schedule[0] + 1] + [b - a for a, b in pairwise(self.schedule)]
        total = float(segments[0] * n)
        alive = np.zeros(n)  # alive[m - 1] = P(m particles alive)
        alive[n - 1] = 1.0
        counts = np.arange(1, n + 1)
        for length in segments[1:]:
            if not self.keep_duplicates:
                alive = alive @ _occupancy(n)
            total += length * float(alive @ counts)
        return total + (num_steps - 1 - self.schedule[-1])


def correlated_candidates(z: torch.Tensor, eps: torch.Tensor, beta: float) -> torch.Tensor:
    """RGRP's starting noise: ``z`` (``[1, ...]``) itself, then ``sqrt(1 - beta^2) z + beta eps_k``.

    Each candidate after the first has unit variance and correlation ``sqrt(1 - beta^2)``
    with ``z``; ``eps`` holds the ``N - 1`` independent draws ``[N - 1, ...]``.
    """
    return torch.cat([z, math.sqrt(1.0 - beta**2) * z + beta * eps])


@lru_cache(maxsize=16)
def _occupancy(n: int) -> np.ndarray:
    """``T[m - 1, k - 1] = P(k distinct values among m uniform draws from m)``, ``m, k <= n``.

    ``P = m! S(m, k) / ((m - k)! m^m)`` with ``S`` the Stirling numbers of the second kind,
    computed by their recurrence ``S(j, k) = k S(j - 1, k) + S(j - 1, k - 1)`` in log space
    (float64), so one ``O(n^2)`` table serves every ``m``.
    """
    from scipy.special import gammaln  # scipy loads on first use, not on import

    log_s = np.full((n + 1, n + 1), -np.inf)
    log_s[0, 0] = 0.0
    log_k = np.log(np.arange(1, n + 1))
    for j in range(1, n + 1):
        log_s[j, 1:] = np.logaddexp(log_k + log_s[j - 1, 1:], log_s[j - 1, :-1])
    m = np.arange(1, n + 1)[:, None]
    k = np.arange(1, n + 1)[None, :]
    with np.errstate(invalid="ignore"):
        log_p = gammaln(m + 1) - gammaln(np.maximum(m - k, 0) + 1) + log_s[1:, 1:] - m * np.log(m)
    return np.where(k <= m, np.exp(log_p), 0.0)
