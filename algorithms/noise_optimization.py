"""Gradient-based noise optimisation (direct noise optimisation, DNO: Tang et al. 2024,
"Inference-Time Alignment of Diffusion Models with Direct Noise Optimization").

The algorithm, with ``I`` iterations of Adam on the initial noise ``z``::

    z = initial noise (the baseline's own)
    for i in 0..I:
        x0 = sample z to the end, keeping the autograd graph        # T particle-steps
        r  = reward(x0); remember the best output seen
        if i == I: break
        loss = -r + lambda * prior(z)
        backpropagate loss through the sampler                      # T steps backward
        clip the gradient to norm c; one Adam step on z
    return the best output seen (the first is the baseline's)

``prior(z) = (chi^2 + m^2) / 2`` with ``chi = (|z|^2 - D) / sqrt(2D)`` and
``m = sum(z) / sqrt(D)``: two statistics of ``z`` that are standard normal under
``N(0, I)`` in ``D`` dimensions, so the penalty keeps the noise typical of the prior
(DNO's regulariser tests many such statistics; these two catch the drift of norm and mean
that gradient steps cause).

Compute: ``P = (I + 1) T`` particle-steps and ``I`` backward passes through ``T`` steps;
a backward pass through one forward costs :attr:`~searchkit.cost.Meter.BACKWARD_FACTOR`
(2) forward-equivalents, so ``NFE = F (I + 1) T + 2 F I T`` with ``F`` forwards per step
(2 under guidance). Defaults: ``I = 10``, Adam learning rate ``1e-2``, gradient clipping
1.0, ``lambda = 1``.

Needs a differentiable backend and reward (``is_differentiable``); the error names which
is not. Deviation: only the initial noise is optimised (DNO can also optimise the
per-step noises of a stochastic sampler); with a stochastic solver each iteration draws
fresh solver noise, so the objective is noisy.
"""

from __future__ import annotations

import math

import attrs
import torch

from searchkit.backend import Backend
from searchkit.context import SearchContext
from searchkit.registry import register_strategy
from searchkit.result import SearchResult
from searchkit.reward import Reward
from searchkit.strategy import Strategy
from searchkit.validation import number, optional, positive_int, to_float, to_float_or_none


def prior_penalty(noise: torch.Tensor) -> torch.Tensor:
    """``(chi^2 + m^2) / 2`` of the flattened noise; both statistics are N(0, 1) under N(0, I)."""
    z = noise.reshape(-1)
    d = z.numel()
    chi = (z.pow(2).sum() - d) / math.sqrt(2.0 * d)
    mean = z.sum() / math.sqrt(d)
    return 0.5 * (chi**2 + mean**2)


@register_strategy("noise-optimization")
@attrs.frozen
class NoiseOptimization(Strategy):
    """Optimise the initial noise by gradient ascent on the reward through the sampler.

    Args:
        num_iterations: ``I``, Adam steps (``I + 1`` full samples).
        learning_rate: Adam's learning rate.
        max_grad_norm: gradient clipping norm (``None``: no clipping).
        regularization: ``lambda``, weight of the prior penalty (0 disables it).
    """

    name = "noise-optimization"
    size_knob = "num_iterations"

    num_iterations: int = attrs.field(default=10, validator=positive_int)
    learning_rate: float = attrs.field(
        default=1e-2, converter=to_float, validator=number(above=0.0, at_most=10.0)
    )
    max_grad_norm: float | None = attrs.field(
        default=1.0, converter=to_float_or_none, validator=optional(number(above=0.0))
    )
    regularization: float = attrs.field(
        default=1.0, converter=to_float, validator=number(at_least=0.0)
    )

    def check_compatible(self, backend: Backend, reward: Reward) -> None:
        if not backend.is_differentiable:
            raise ValueError(
                f"noise-optimization needs a differentiable backend; backend {backend.name!r} "
                "has is_differentiable=False"
            )
        if not reward.is_differentiable:
            raise ValueError(
                f"noise-optimization needs a differentiable reward; reward {reward.name!r} "
                "has is_differentiable=False"
            )

    def search(self, ctx: SearchContext) -> SearchResult:
        noise = ctx.start(1).latents.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([noise], lr=self.learning_rate)
        best = best_scores = None
        best_total = -math.inf
        for iteration in range(self.num_iterations + 1):
            finished = ctx.advance(ctx.start(1, noise=noise), to=ctx.num_steps, grad=True)
            record, total = ctx.score_with_grad(finished, label=f"iteration {iteration}")
            if float(record.total[0]) > best_total:
                best_total, best_scores = float(record.total[0]), record.scores[0]
                best = finished.with_latents(finished.latents.detach(), x0=finished.x0.detach())
                ctx.record_selection(record, None, chosen=[0])
            if iteration == self.num_iterations:
                break
            loss = -total.sum() + self.regularization * prior_penalty(noise)
            optimizer.zero_grad()
            ctx.backward(loss)
            if self.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_([noise], self.max_grad_norm)
            optimizer.step()
        return ctx.finish(best, 0, scores=best_scores)

    def expected_particle_steps(self, num_steps: int) -> float:
        return float((self.num_iterations + 1) * num_steps)

    def expected_backward_particle_steps(self, num_steps: int) -> float:
        return float(self.num_iterations * num_steps)
