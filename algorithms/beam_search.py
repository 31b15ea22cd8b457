"""Diffusion latent beam search (Oshima et al. 2025, "Inference-Time Text-to-Video Alignment
with Diffusion Latent Beam Search").

The algorithm, with ``B`` beams, ``K`` candidates per beam and a lookahead of ``T'`` steps::

    beams = B fresh noises (the first is the baseline's own)
    for each step k = 0 .. T-1:
        candidates = every beam copied K times, each copy perturbed (a stochastic step)
        advance the candidates one step                       # B K particle-steps
        if k < T-1:
            score each candidate on a lookahead estimate of x0: its predicted x0 (T' = 0)
            or the x0 predicted after T' further deterministic steps of a throw-away copy
            beams = the B best candidates                     # top-B of B K
        else:
            return the best finished candidate

Compute: ``P = T B K + B K sum_{k=0}^{T-2} min(T', T-1-k)``; ``B K`` reward calls per step.
Paper defaults ``B = 4, K = 2``.

Where this implementation deviates:

* the stochastic step is the context's branching primitive
  (:meth:`~searchkit.context.SearchContext.perturb`): each copy re-draws a share ``beta``
  of its noise component before the deterministic solver step (``beta = 0.2`` by default,
  a toolkit choice). With a stochastic solver the solver's own noise adds to it, and
  ``beta = 0`` is allowed (the lookahead steps are then stochastic too);
* the lookahead takes ``T'`` further steps of the backend's own schedule (not ``T'`` steps
  of a coarser schedule reaching ``t = 0``), so its cost is exactly ``T'`` particle-steps
  per candidate; near the end it is cut at the last step.
"""

from __future__ import annotations

import attrs
import torch

from searchkit.backend import Backend
from searchkit.context import SearchContext
from searchkit.registry import register_strategy
from searchkit.result import SearchResult
from searchkit.reward import Reward
from searchkit.strategy import Strategy
from searchkit.validation import non_negative_int, number, positive_int, to_float


@register_strategy("beam-search")
@attrs.frozen
class BeamSearch(Strategy):
    """Diffusion latent beam search: keep the top ``B`` of ``B K`` stochastic candidates per step.

    Args:
        beam_width: ``B``, beams kept after each step.
        candidates: ``K``, stochastic candidates per beam and step.
        lookahead: ``T'``, extra deterministic steps before scoring (0: score the predicted x0).
        beta: share of the noise re-drawn for each candidate (the branching strength).
    """

    name = "beam-search"
    size_knob = "beam_width"

    beam_width: int = attrs.field(default=4, validator=positive_int)
    candidates: int = attrs.field(default=2, validator=positive_int)
    lookahead: int = attrs.field(default=0, validator=non_negative_int)
    beta: float = attrs.field(
        default=0.2, converter=to_float, validator=number(at_least=0.0, at_most=1.0)
    )

    def check_compatible(self, backend: Backend, reward: Reward) -> None:
        reward.check_steps(
            tuple(range(backend.num_steps - 1)), backend.num_steps
        )  # scores every step
        if self.beta == 0.0 and not backend.is_stochastic:
            raise ValueError(
                "beta=0.0 makes every candidate of a beam identical with a deterministic solver; "
                f"use beta > 0 or a stochastic solver (backend {backend.name!r} is deterministic)"
            )
        if self.beam_width * self.candidates < 2:
            raise ValueError(
                f"beam_width * candidates must be at least 2 to search, got "
                f"{self.beam_width} * {self.candidates}"
            )

    def peak_particles(self) -> tuple[int, str | None]:
        return self.beam_width * self.candidates, "beam_width"

    def search(self, ctx: SearchContext) -> SearchResult:
        width, k, total = self.beam_width, self.candidates, ctx.num_steps
        beams = ctx.start(width)
        for step in range(total):
            branches = beams.select(torch.arange(width).repeat_interleave(k))
            branches = ctx.perturb(branches, self.beta)
            branches = ctx.advance(branches, to=step + 1)
            if step == total - 1:
                record = ctx.score(branches, label="final")
                best = int(record.total.argmax())
                ctx.record_selection(record, branches.select([best]), chosen=[best])
                return ctx.finish(branches, best, scores=record.scores[best])
            horizon = min(self.lookahead, total - 1 - step)
            if horizon:
                ahead = ctx.advance(
                    branches.select(torch.arange(len(branches))), to=step + 1 + horizon
                )
                record = ctx.score(ahead, label=f"lookahead {horizon}")  # same ids as branches
            else:
                record = ctx.score(branches, label="beam")
            keep = torch.topk(record.total, width, sorted=True).indices
            beams = ctx.record_selection(record, branches.select(keep), chosen=keep)
        raise AssertionError("unreachable: the last step returns")

    def expected_particle_steps(self, num_steps: int) -> float:
        per_step = self.beam_width * self.candidates
        ahead = sum(min(self.lookahead, num_steps - 1 - k) for k in range(num_steps - 1))
        return float(per_step * num_steps + per_step * ahead)
