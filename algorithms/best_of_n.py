"""Best-of-N (random search): N independent samples, keep the best by final reward."""

from __future__ import annotations

import attrs

from searchkit.context import SearchContext
from searchkit.registry import register_strategy
from searchkit.result import SearchResult
from searchkit.strategy import Strategy
from searchkit.validation import positive_int


@register_strategy("best-of-n")
@attrs.frozen
class BestOfN(Strategy):
    """Sample ``n`` full trajectories as one batch, score each output, return the best.

    Compute: ``P = n T``; ``n`` reward calls; ``n`` decodes when the reward reads video,
    else one (the returned output). Ties go to the lowest index. The first sample uses the
    same noise as :class:`Baseline` with the same seed, so best-of-N never does worse than
    the baseline on the search reward.

    Args:
        n: candidates sampled, each a full trajectory.
    """

    name = "best-of-n"
    size_knob = "n"

    n: int = attrs.field(default=4, validator=positive_int)

    def peak_particles(self) -> tuple[int, str | None]:
        return self.n, "n"

    def search(self, ctx: SearchContext) -> SearchResult:
        particles = ctx.advance(ctx.start(self.n), to=ctx.num_steps)
        record = ctx.score(particles, label="final")
        best = int(record.total.argmax())
        ctx.record_selection(record, particles.select([best]), chosen=[best])
        return ctx.finish(particles, best, scores=record.scores[best])

    def expected_particle_steps(self, num_steps: int) -> float:
        return float(self.n * num_steps)
