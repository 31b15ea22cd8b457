"""The shared sequential Monte Carlo driver.

Search along the denoising trajectory is a Feynman-Kac model (Del Moral 2004; the split
of the ``particles`` library into a ``FeynmanKac`` model and an ``SMC`` algorithm, and
blackjax's ``(state) -> (state, info)`` steps): ``M_0`` draws initial noise, ``M_t`` is
one denoising step, and at scheduled steps a potential ``G_t`` built from the reward
reweights the particles, which may then be resampled and pruned. The driver owns the
log-weights and the resampling; a :class:`SMCPolicy` supplies only hooks::

    particles = policy.begin(ctx, particles);  log w = 0
    for each scheduled step j (scored AFTER step j):
        particles = ctx.advance(particles, to=j + 1)
        record = ctx.score(particles)
        log G, particles = policy.log_potential(particles, record)    # the potential
        log w += log G;  w = normalise(log w)
        if policy.should_resample(log w, last):                       # when to resample
            drawn = resampler(w, n, generator)                        # searchkit.resampling
            particles = policy.survivors(particles, drawn, w, last)   # what to keep or prune
            particles = policy.move(ctx, particles);  log w = 0       # e.g. a perturbation
        ctx.record_selection(record, particles, chosen=drawn, weights=w)
    particles = ctx.advance(particles, to=T)
    return ctx.finish(particles, *policy.output(ctx, particles, log w))   # which is the output

RGRP, FK steering and the bootstrap particle filter differ only in these hooks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from searchkit.context import SearchContext
from searchkit.particles import Particles
from searchkit.resampling import get_resampler, normalize_log_weights
from searchkit.result import ScoreRecord, SearchResult


class SMCPolicy:
    """The hooks of an SMC-style search; the driver (:func:`run_smc`) does the rest.

    Strategies mix this in and define the attributes ``resampler`` (a name of
    :data:`searchkit.resampling.RESAMPLERS`) and ``score_input`` (``None``: the reward's own
    declaration, or ``"latent"`` / ``"x0"``), usually as attrs fields.
    """

    resampler: str = "multinomial"
    score_input: str | None = None

    def begin(self, ctx: SearchContext, particles: Particles) -> Particles:
        """Attach per-particle state (``particles.extras``) before the first step (default: none)."""
        return particles

    def log_potential(
        self, particles: Particles, record: ScoreRecord
    ) -> tuple[torch.Tensor, Particles]:
        """``log G`` ``[n]`` (float64) of one scoring event, and the particles with updated state."""
        raise NotImplementedError(f"{type(self).__name__} must define log_potential")

    def should_resample(self, log_weights: torch.Tensor, last: bool) -> bool:
        """Whether to resample after this event (default: always)."""
        return True

    def survivors(
        self, particles: Particles, drawn: torch.Tensor, weights: torch.Tensor, last: bool
    ) -> Particles:
        """The particles kept after a resampling draw (default: every draw, duplicates kept)."""
        return particles.select(drawn)

    def move(self, ctx: SearchContext, particles: Particles) -> Particles:
        """A move applied to resampled particles, e.g. a perturbation so that duplicates
        diverge (default: none)."""
        return particles

    def output(
        self, ctx: SearchContext, particles: Particles, log_weights: torch.Tensor
    ) -> tuple[int, torch.Tensor | None]:
        """Index of the returned particle among the finished ``particles`` and its scores if
        known (default: the first, scored by ``ctx.finish``)."""
        return 0, None


def run_smc(
    ctx: SearchContext,
    particles: Particles,
    schedule: Sequence[int],
    policy: SMCPolicy,
    label: str = "smc",
) -> SearchResult:
    """Drive ``particles`` through the scheduled scoring events and on to a finished output.

    Log-weights are float64 and start at zero; they are normalised with logsumexp
    (:func:`~searchkit.resampling.normalize_log_weights`), resampled with the policy's
    resampler and the search's generator, and reset to zero after each resampling. The
    trace records, per event, the normalised weights (float32), the draw and the survivors.
    """
    particles = policy.begin(ctx, particles)
    log_weights = torch.zeros(len(particles), dtype=torch.float64)
    resample = get_resampler(policy.resampler)
    for event, step in enumerate(schedule):
        last = event == len(schedule) - 1
        particles = ctx.advance(particles, to=step + 1)
        record = ctx.score(particles, label=label, input=policy.score_input)
        log_g, particles = policy.log_potential(particles, record)
        log_weights = log_weights + log_g
        weights = normalize_log_weights(log_weights)
        drawn = None
        if policy.should_resample(log_weights, last):
            drawn = resample(weights, len(particles), ctx.generator)
            particles = policy.move(ctx, policy.survivors(particles, drawn, weights, last))
            log_weights = torch.zeros(len(particles), dtype=torch.float64)
        ctx.record_selection(record, particles, chosen=drawn, weights=weights.float())
    particles = ctx.advance(particles, to=ctx.num_steps)
    index, scores = policy.output(ctx, particles, log_weights)
    return ctx.finish(particles, index, scores=scores)
