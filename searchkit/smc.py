"""The shared sequential Monte Carlo driver.

Search along the denoising trajectory is a Feynman-Kac model (Del Moral 2004; the
``particles`` library's ``FeynmanKac``/``SMC`` split): ``M_0`` draws initial noise,
``M_t`` is one denoising step, and at scheduled steps a potential ``G_t`` built from the
reward reweights the particles, which are then resampled and possibly pruned. Strategies
that follow this pattern (RGRP, FK steering) differ only in a :class:`SelectionPolicy`:
the potential, when and how to resample, whether duplicates are kept, and which particle
becomes the output. The driver below is the one loop they share::

    particles = policy.begin(ctx, particles)
    for j in schedule:                                  # scored AFTER step j (0-based)
        particles = ctx.advance(particles, to=j + 1)
        record = ctx.score(particles)
        particles, weights, chosen = policy.select(ctx, particles, record, last)
    particles = ctx.advance(particles, to=T)
    return ctx.finish(particles, *policy.output(ctx, particles))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import attrs
import torch

from searchkit.context import SearchContext
from searchkit.particles import Particles
from searchkit.result import ScoreRecord, SearchResult


@attrs.frozen(eq=False)
class Selection:
    """A policy's decision: the new particles, the normalised weights used, the raw draw."""

    particles: Particles
    weights: torch.Tensor | None = None
    chosen: torch.Tensor | None = None


class SelectionPolicy(ABC):
    """Potential and resampling policy of an SMC-style search."""

    #: The reward input to score on (``None``: the reward's own declaration).
    score_input: str | None = None

    def begin(self, ctx: SearchContext, particles: Particles) -> Particles:
        """Attach per-particle state before the first step (default: none)."""
        return particles

    @abstractmethod
    def select(
        self, ctx: SearchContext, particles: Particles, record: ScoreRecord, last: bool
    ) -> Selection:
        """Reweight scored ``particles`` and resample/prune them; ``last`` marks the final event."""

    def output(self, ctx: SearchContext, particles: Particles) -> tuple[int, torch.Tensor | None]:
        """Index of the returned particle and its scores if known (default: the first, unscored)."""
        return 0, None


def run_smc(
    ctx: SearchContext,
    particles: Particles,
    schedule: Sequence[int],
    policy: SelectionPolicy,
    label: str = "smc",
) -> SearchResult:
    """Drive ``particles`` through the scheduled scoring events and on to a finished output."""
    particles = policy.begin(ctx, particles)
    for event, step in enumerate(schedule):
        particles = ctx.advance(particles, to=step + 1)
        record = ctx.score(particles, label=label, input=policy.score_input)
        selection = policy.select(ctx, particles, record, last=event == len(schedule) - 1)
        record.weights = None if selection.weights is None else selection.weights.detach().float()
        record.chosen = selection.chosen
        record.survivors = selection.particles.ids.clone()
        particles = selection.particles
    particles = ctx.advance(particles, to=ctx.num_steps)
    index, scores = policy.output(ctx, particles)
    return ctx.finish(particles, index, scores=scores)


def check_schedule(schedule: Sequence[int], num_steps: int, field: str = "schedule") -> None:
    """Scheduled steps must lie in ``[0, num_steps)``; raises naming ``field`` otherwise."""
    if schedule and (min(schedule) < 0 or max(schedule) >= num_steps):
        raise ValueError(
            f"{field} steps must lie in [0, {num_steps}) for a {num_steps}-step backend, "
            f"got {tuple(schedule)}"
        )


def as_tuple(value: object) -> object:
    """attrs converter: a list (from JSON or the command line) becomes a tuple."""
    return tuple(value) if isinstance(value, list) else value


def validate_schedule(instance: object, attribute: attrs.Attribute, value: tuple[int, ...]) -> None:
    """attrs validator: a non-empty, strictly increasing tuple of non-negative integers."""
    name = attribute.name
    if not isinstance(value, tuple) or not value:
        raise ValueError(f"{name} must be a non-empty tuple of step indices, got {value!r}")
    if any(isinstance(s, bool) or not isinstance(s, int) for s in value):
        raise ValueError(f"{name} must hold integers, got {value!r}")
    if min(value) < 0:
        raise ValueError(f"{name} steps must be >= 0, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"{name} must not repeat a step, got {value!r}")
    if list(value) != sorted(value):
        raise ValueError(f"{name} must be sorted in increasing order, got {value!r}")
