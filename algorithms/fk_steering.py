"""Feynman-Kac steering (Singhal et al. 2025, "A General Framework for Inference-time Scaling
and Steering of Diffusion Models").

Target: ``p(x0) exp(lambda r(x0))``. Sequential Monte Carlo with ``k`` particles whose
proposal is the model's own sampler and whose potentials ``G`` read the reward ``r_s`` of
each particle's predicted x0 at the scheduled steps ``s``::

    log w = 0, applied = 0 for every particle
    for each scheduled step j:                            # scored after step j
        advance the particles to j; r_j = reward(predicted x0)
        log G = lambda * { r_j - r_prev      (diff)
                           max_{s <= j} r_s  (max)
                           sum_{s <= j} r_s  (sum)
                           r_j               (rt) }
        log w += log G; applied += log G                  # applied: along the ancestry
        if ESS(w) < threshold k (or always, threshold None):
            resample k indices from w (duplicates kept), log w = 0
            perturb the particles by beta so that duplicates diverge
    advance to the end; r_0 = reward(output)
    log w += lambda r_0 - applied                         # product of potentials = exp(lambda r_0)
    return a particle drawn from w ("sample") or the highest-reward one ("argmax")

Because every path's potentials multiply to ``exp(lambda r(x0))``, the weighted final
particles estimate the tilted distribution consistently as ``k`` grows, for any of the four
potentials; they differ only in variance. Compute: ``P = k T`` (no pruning),
``k (|schedule| + 1)`` reward calls. Defaults: ``k = 4`` and ``lambda = 10`` as in the
paper; the ``max`` potential, adaptive resampling at ``ESS < k / 2`` and scoring every 5
steps from step 10 to 40 of 50 (the middle of the trajectory, where modes separate) are
this toolkit's choices.

Resampling is adaptive with a strict test, ``ESS < ess_threshold * k``, and ``ESS =
1 / sum(w^2)`` is never below 1. So a threshold at or below ``1 / k`` never resamples: with
the default ``0.5``, ``k = 2`` particles are weighted but never resampled, and the search
returns the higher-reward of two independent samples, exactly best-of-2 (the same output,
with the extra reward calls of the scheduled steps). The benchmark's size knob reaches
``k = 2`` at the smallest budgets (FK steering at 200 NFE in the default sweep equals
best-of-2 there); ``ess_threshold=None`` (always) or a threshold above ``0.5`` makes two
particles resample.

Where this implementation deviates: duplicates need a stochastic step to diverge. With a
stochastic solver (``sde-dpmsolver++``) the solver provides it and ``beta = 0`` is exact;
with a deterministic solver ``beta > 0`` re-draws a share of each particle's noise
component after a resample (:meth:`~searchkit.context.SearchContext.perturb`), which only
approximately preserves the model's marginal, so the tilted target is then approximate.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from searchkit.backend import Backend
from searchkit.context import SearchContext
from searchkit.particles import Particles
from searchkit.registry import register_strategy
from searchkit.resampling import RESAMPLERS, ess, get_resampler, normalize_log_weights
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
    optional,
    step_schedule,
    to_float,
    to_float_or_none,
)

POTENTIALS: tuple[str, ...] = ("diff", "max", "sum", "rt")
SELECTIONS: tuple[str, ...] = ("argmax", "sample")


def log_potential(
    kind: str, lmbda: float, reward: torch.Tensor, extras: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``log G`` of one scoring event and the updated per-particle reward history."""
    best = torch.maximum(extras["reward_max"], reward)
    total = extras["reward_sum"] + reward
    value = {
        "diff": reward - extras["reward_prev"],
        "max": best,
        "sum": total,
        "rt": reward,
    }[kind]
    return lmbda * value, {"reward_prev": reward, "reward_max": best, "reward_sum": total}


@register_strategy("fk-steering")
@attrs.frozen
class FKSteering(Strategy, SMCPolicy):
    """SMC towards ``p(x0) exp(lambda r(x0))`` with reward potentials and resampling.

    Args:
        num_particles: ``k``.
        lmbda: ``lambda``, the tilt strength.
        potential: ``"diff"``, ``"max"``, ``"sum"`` or ``"rt"``.
        schedule: steps after which particles are scored, reweighted and maybe resampled.
        ess_threshold: resample only when ``ESS < ess_threshold * k`` (strict; ``ESS >= 1``, so
            a threshold at or below ``1 / k`` never resamples: the default with ``k = 2``);
            ``None`` always resamples.
        resampler: any of :data:`searchkit.resampling.RESAMPLERS`.
        selection: ``"argmax"`` returns the highest final reward, ``"sample"`` draws the output
            from the final importance weights (a sample of the tilted distribution).
        beta: perturbation after each resample (needed with a deterministic solver).
    """

    name = "fk-steering"
    size_knob = "num_particles"
    presets: ClassVar[dict[str, dict]] = {
        # Singhal et al. 2025's defaults: k = 4, lambda = 10 (schedule and potential are ours)
        "fk": {},
        # a sampler of the tilted distribution: the final particle drawn from its weights
        "tilted-sample": {"selection": "sample", "potential": "diff"},
    }

    num_particles: int = attrs.field(default=4, validator=int_at_least(2))
    lmbda: float = attrs.field(
        default=10.0, converter=to_float, validator=number(at_least=0.0, at_most=1e6)
    )
    potential: str = attrs.field(default="max", validator=one_of(POTENTIALS))
    schedule: tuple[int, ...] = attrs.field(
        default=(10, 15, 20, 25, 30, 35, 40), converter=as_tuple, validator=step_schedule
    )
    ess_threshold: float | None = attrs.field(
        default=0.5,
        converter=to_float_or_none,
        validator=optional(number(above=0.0, at_most=1.0)),
    )
    resampler: str = attrs.field(default="multinomial", validator=one_of(tuple(RESAMPLERS)))
    selection: str = attrs.field(default="argmax", validator=one_of(SELECTIONS))
    beta: float = attrs.field(
        default=0.2, converter=to_float, validator=number(at_least=0.0, at_most=1.0)
    )

    def check_compatible(self, backend: Backend, reward: Reward) -> None:
        check_steps_within(self.schedule, backend.num_steps)
        reward.check_steps(self.schedule, backend.num_steps)
        if self.beta == 0.0 and not backend.is_stochastic:
            raise ValueError(
                "beta=0.0 leaves resampled duplicates identical with a deterministic solver; "
                f"use beta > 0 or a stochastic solver (backend {backend.name!r} is deterministic)"
            )

    def peak_particles(self) -> tuple[int, str | None]:
        return self.num_particles, "num_particles"

    def search(self, ctx: SearchContext) -> SearchResult:
        return run_smc(ctx, ctx.start(self.num_particles), self.schedule, self, label="fk")

    # -- SMC hooks -----------------------------------------------------------------------
    def begin(self, ctx: SearchContext, particles: Particles) -> Particles:
        zeros = torch.zeros(len(particles), dtype=torch.float64)
        return particles.with_extras(
            applied=zeros.clone(),
            reward_prev=zeros.clone(),
            reward_max=torch.full_like(zeros, -torch.inf),
            reward_sum=zeros.clone(),
        )

    def log_potential(
        self, particles: Particles, record: ScoreRecord
    ) -> tuple[torch.Tensor, Particles]:
        """The chosen potential; ``applied`` keeps the product along each particle's ancestry."""
        log_g, history = log_potential(
            self.potential, self.lmbda, record.total.double(), particles.extras
        )
        return log_g, particles.with_extras(applied=particles.extras["applied"] + log_g, **history)

    def should_resample(self, log_weights: torch.Tensor, last: bool) -> bool:
        return self.ess_threshold is None or ess(log_weights) < self.ess_threshold * len(
            log_weights
        )

    def move(self, ctx: SearchContext, particles: Particles) -> Particles:
        return ctx.perturb(particles, self.beta) if self.beta > 0.0 else particles

    def output(
        self, ctx: SearchContext, particles: Particles, log_weights: torch.Tensor
    ) -> tuple[int, torch.Tensor | None]:
        """Score the outputs; final weight ``lambda r_0 - applied`` completes ``exp(lambda r_0)``."""
        record = ctx.score(particles, label="final")
        final = self.lmbda * record.total.double() - particles.extras["applied"]
        weights = normalize_log_weights(log_weights + final)
        if self.selection == "sample":
            index = int(get_resampler("multinomial")(weights, 1, ctx.generator)[0])
        else:
            index = int(record.total.argmax())
        ctx.record_selection(record, particles.select([index]), chosen=[index], weights=weights)
        return index, record.scores[index]

    def expected_particle_steps(self, num_steps: int) -> float:
        return float(self.num_particles * num_steps)
