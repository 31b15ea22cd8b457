"""Baseline: one sample from the model, no search (``P = T`` particle-steps)."""

from __future__ import annotations

import attrs

from searchkit.context import SearchContext
from searchkit.registry import register_strategy
from searchkit.result import SearchResult
from searchkit.strategy import Strategy


@register_strategy("baseline")
@attrs.frozen
class Baseline(Strategy):
    """Denoise one trajectory from the seed's noise and return it.

    Compute: ``P = T`` (the number of steps), one decode, one reward call (the report).
    """

    name = "baseline"

    def search(self, ctx: SearchContext) -> SearchResult:
        particles = ctx.advance(ctx.start(1), to=ctx.num_steps)
        return ctx.finish(particles)

    def expected_particle_steps(self, num_steps: int) -> float:
        return float(num_steps)
