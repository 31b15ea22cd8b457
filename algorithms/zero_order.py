"""Zero-order search over the initial noise (Ma et al. 2025, "Inference-Time Scaling for
Diffusion Models beyond Scaling Denoising Steps").

The algorithm, with ``M`` neighbours per round, ``R`` rounds and cosine similarity ``s``::

    n = pivot noise (the baseline's own); sample it to the end and score it
    for round in 1..R:
        u = n / |n|
        for m in 1..M: w_m = a random unit vector orthogonal to u
                       n_m = |n| (s u + sqrt(1 - s^2) w_m)      # same norm, cos(n_m, n) = s
        sample every n_m to the end (one batch) and score it
        if the best n_m scores above the pivot: n = that n_m
    return the pivot's output (the best seen)

Compute: ``P = T (1 + R M)``; ``1 + R M`` reward calls. The pivot's own sample is batched
with the first round's neighbours. Random search (independent draws) is
:class:`~searchkit.algorithms.best_of_n.BestOfN` and is not repeated here.

Defaults ``M = 4``, ``R = 2``, ``s = 0.95``. The paper reports neighbourhood sizes and
rounds per experiment rather than one default; these are a toolkit choice of the same
order of compute as beam search's paper configuration.
"""

from __future__ import annotations

import math

import attrs
import torch

from searchkit.context import SearchContext
from searchkit.registry import register_strategy
from searchkit.result import SearchResult
from searchkit.strategy import Strategy
from searchkit.validation import number, positive_int, to_float


def sphere_neighbours(pivot: torch.Tensor, fresh: torch.Tensor, similarity: float) -> torch.Tensor:
    """Points of the pivot's norm at cosine ``similarity`` to it, one per row of ``fresh``.

    ``pivot`` is ``[1, ...]``; each row of ``fresh`` (``[M, ...]``, Gaussian) gives the
    direction orthogonal to the pivot after projecting the pivot out.
    """
    flat = pivot.reshape(1, -1)
    norm = flat.norm()
    u = flat / norm
    g = fresh.reshape(fresh.shape[0], -1)
    w = g - (g @ u.T) * u
    w = w / w.norm(dim=1, keepdim=True)
    out = norm * (similarity * u + math.sqrt(1.0 - similarity**2) * w)
    return out.reshape(fresh.shape)


@register_strategy("zero-order")
@attrs.frozen
class ZeroOrderSearch(Strategy):
    """Hill-climb the initial noise on the same-norm sphere, moving to the best improving neighbour.

    Args:
        num_neighbors: ``M``, neighbours sampled per round.
        num_rounds: ``R``, rounds of neighbour sampling.
        similarity: cosine similarity ``s`` of each neighbour to the pivot, in ``(0, 1)``.
    """

    name = "zero-order"
    size_knob = "num_rounds"

    num_neighbors: int = attrs.field(default=4, validator=positive_int)
    num_rounds: int = attrs.field(default=2, validator=positive_int)
    similarity: float = attrs.field(
        default=0.95, converter=to_float, validator=number(above=0.0, below=1.0)
    )

    def peak_particles(self) -> tuple[int, str | None]:
        return self.num_neighbors + 1, "num_neighbors"

    def search(self, ctx: SearchContext) -> SearchResult:
        pivot = ctx.start(1).latents
        best = best_scores = None
        best_total = -math.inf
        for round_ in range(self.num_rounds):
            neighbours = sphere_neighbours(pivot, ctx.noise(self.num_neighbors), self.similarity)
            first = round_ == 0
            noise = torch.cat([pivot, neighbours]) if first else neighbours
            finished = ctx.advance(ctx.start(len(noise), noise=noise), to=ctx.num_steps)
            record = ctx.score(finished, label=f"round {round_ + 1}")
            if first:  # the pivot itself
                best, best_scores, best_total = (
                    finished.select([0]),
                    record.scores[0],
                    float(record.total[0]),
                )
            offset = 1 if first else 0
            candidate = offset + int(record.total[offset:].argmax())
            moved = float(record.total[candidate]) > best_total
            if moved:
                best, best_scores = finished.select([candidate]), record.scores[candidate]
                best_total = float(record.total[candidate])
                pivot = noise[candidate : candidate + 1]
            ctx.record_selection(record, best, chosen=[candidate] if moved else None)
        return ctx.finish(best, 0, scores=best_scores)

    def expected_particle_steps(self, num_steps: int) -> float:
        return float(num_steps * (1 + self.num_rounds * self.num_neighbors))
