"""A plain bootstrap particle filter over the denoising trajectory (Gordon, Salmond & Smith
1993, "Novel approach to nonlinear/non-Gaussian Bayesian state estimation"; the generic SMC
of Doucet & Johansen 2009, "A Tutorial on Particle Filtering and Smoothing").

The model's own sampler is the proposal ("bootstrap"), and each scheduled reward acts as an
observation with likelihood ``exp(lambda r_t)``::

    log w = 0 for N particles
    for each scheduled step j:                          # scored after step j
        advance to j; r_j = reward; log w += lambda r_j
        if ESS(w) < threshold N: resample N (systematic), log w = 0, perturb by beta
    advance to the end; r_0 = reward(output); return argmax (log w + lambda r_0)

It is the shortest use of :func:`searchkit.smc.run_smc`: one potential, one output rule.
Unlike FK steering it does not correct for the potentials applied along the way, so it
targets ``p(x0) prod_t exp(lambda r_t)`` (every observation counts), not
``p(x0) exp(lambda r(x0))``. Compute: ``P = N T``; ``N (|schedule| + 1)`` reward calls.
Defaults (``N = 8``, ``lambda = 1``, scoring after steps 10, 20, 30, 40 of 50, systematic
resampling at ``ESS < N / 2``, ``beta = 0.2``) are this toolkit's choices.
"""

from __future__ import annotations

import attrs
import torch

from searchkit.backend import Backend
from searchkit.context import SearchContext
from searchkit.particles import Particles
from searchkit.registry import register_strategy
from searchkit.resampling import RESAMPLERS, ess
from searchkit.result import ScoreRecord, SearchResult
from searchkit.reward import Reward
from searchkit.smc import SMCPolicy, run_smc
from searchkit.strategy import Strategy
from searchkit.validation import (
    as_tuple,
    check_steps_within,
    int_at_least,
    number,
    one_of,
    step_schedule,
    to_float,
)


@register_strategy("smc")
@attrs.frozen
class ParticleFilter(Strategy, SMCPolicy):
    """Bootstrap particle filter with reward observations ``exp(lambda r_t)``.

    Args:
        num_particles: ``N``.
        lmbda: ``lambda``, the weight of each reward observation.
        schedule: steps after which particles are scored and reweighted.
        ess_threshold: resample when ``ESS < ess_threshold * N``.
        resampler: any of :data:`searchkit.resampling.RESAMPLERS`.
        beta: perturbation after a resample, so that duplicates diverge.
    """

    name = "smc"
    size_knob = "num_particles"

    num_particles: int = attrs.field(default=8, validator=int_at_least(2))
    lmbda: float = attrs.field(
        default=1.0, converter=to_float, validator=number(at_least=0.0, at_most=1e6)
    )
    schedule: tuple[int, ...] = attrs.field(
        default=(10, 20, 30, 40), converter=as_tuple, validator=step_schedule
    )
    ess_threshold: float = attrs.field(
        default=0.5, converter=to_float, validator=number(above=0.0, at_most=1.0)
    )
    resampler: str = attrs.field(default="systematic", validator=one_of(tuple(RESAMPLERS)))
    beta: float = attrs.field(
        default=0.2, converter=to_float, validator=number(at_least=0.0, at_most=1.0)
    )

    def check_compatible(self, backend: Backend, reward: Reward) -> None:
        check_steps_within(self.schedule, backend.num_steps)
        reward.check_steps(self.schedule, backend.num_steps)

    def peak_particles(self) -> tuple[int, str | None]:
        return self.num_particles, "num_particles"

    def search(self, ctx: SearchContext) -> SearchResult:
        return run_smc(ctx, ctx.start(self.num_particles), self.schedule, self, label="smc")

    def log_potential(
        self, particles: Particles, record: ScoreRecord
    ) -> tuple[torch.Tensor, Particles]:
        return self.lmbda * record.total.double(), particles

    def should_resample(self, log_weights: torch.Tensor, last: bool) -> bool:
        return ess(log_weights) < self.ess_threshold * len(log_weights)

    def move(self, ctx: SearchContext, particles: Particles) -> Particles:
        return ctx.perturb(particles, self.beta)

    def output(
        self, ctx: SearchContext, particles: Particles, log_weights: torch.Tensor
    ) -> tuple[int, torch.Tensor | None]:
        record = ctx.score(particles, label="final")
        index = int(torch.argmax(log_weights + self.lmbda * record.total.double()))
        ctx.record_selection(record, particles.select([index]), chosen=[index])
        return index, record.scores[index]

    def expected_particle_steps(self, num_steps: int) -> float:
        return float(self.num_particles * num_steps)
