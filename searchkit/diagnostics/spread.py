"""Candidate spread: how far apart do RGRP's correlated candidates land, and does it matter?

RGRP starts ``N`` candidates from one noise ``z``: ``z`` itself and ``sqrt(1 - beta^2) z +
beta eps_k`` (:func:`searchkit.algorithms.rgrp.correlated_candidates`). Pruning by reward can
only pay if the finished candidates differ in what the evaluator grades. For each ``beta``
of a grid, each prompt and seed, this runs exactly the candidates ``RGRP(beta=beta,
num_particles=N).run(..., seed=s)`` starts from (the same ``z`` and ``eps`` for every
``beta``: common random numbers), all to the end with nothing pruned, and measures per group
of ``N``:

* ``noise_distance``, ``output_distance``: mean pairwise RMS distance (per latent element)
  between the candidates' starting noises and between their finished latents;
* ``evaluator_std``: the evaluator's standard deviation among the candidates;
* ``best_gain``: the best candidate's evaluator score minus the first candidate's (the
  baseline's own output): what a perfect pick among the candidates would gain;
* ``reward_pick_gain``: the evaluator score of the candidate the search reward ranks first
  on the finished outputs, minus the first candidate's: what picking by the search reward
  gains with full-length candidates (an upper bound on RGRP's pick, which prunes earlier).

Each is averaged over the (prompt, seed) groups with a 95% Student-t interval. The search
reward is scored through the context (metered); the evaluator is not search compute.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import numpy as np
import torch

from searchkit.backend import Backend
from searchkit.context import SearchContext
from searchkit.diagnostics.common import (
    add_costs,
    check_positive,
    check_prompts,
    check_seeds,
    mean_interval,
    resolve_evaluator,
)
from searchkit.errors import InputError
from searchkit.memory import check_particle_memory
from searchkit.reward import Reward

#: The fewest seeds per prompt whose candidates are compared.
MIN_SEEDS = 2
#: The default grid: the paper's 0.1, a few wider spreads, and independent candidates.
DEFAULT_BETAS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.7, 1.0)
METRICS: tuple[str, ...] = (
    "noise_distance",
    "output_distance",
    "evaluator_std",
    "best_gain",
    "reward_pick_gain",
)
INTERVAL_METHOD = "95% Student-t interval over (prompt, seed) groups"


@attrs.frozen(eq=False)
class SpreadReport:
    """Per ``beta``: the mean and 95% interval of each of :data:`METRICS` over the groups.

    ``summary[metric]`` holds ``(mean, low, high)`` per beta; ``groups[metric]`` the raw
    values ``[len(betas), prompts * seeds]`` (prompt-major).
    """

    betas: tuple[float, ...]
    num_candidates: int
    summary: dict[str, tuple[tuple[float, float, float], ...]]
    groups: dict[str, np.ndarray]
    prompts: tuple[str, ...]
    seeds: tuple[int, ...]
    reward: str
    evaluator: str
    cost: dict[str, Any]
    interval: str = INTERVAL_METHOD
    #: Finished latents ``[len(betas), N, ...]`` of the first prompt and seed, when kept.
    outputs: torch.Tensor | None = None

    def mean(self, metric: str, beta: float) -> float:
        if metric not in METRICS:
            raise InputError(f"metric must be one of {METRICS}, got {metric!r}")
        if float(beta) not in self.betas:
            raise InputError(f"beta must be one of {list(self.betas)}, got {beta!r}")
        return self.summary[metric][self.betas.index(float(beta))][0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "betas": list(self.betas),
            "num_candidates": self.num_candidates,
            "interval": self.interval,
            "summary": {
                metric: [
                    {"beta": b, "mean": m, "ci_low": lo, "ci_high": hi}
                    for b, (m, lo, hi) in zip(self.betas, rows, strict=True)
                ]
                for metric, rows in self.summary.items()
            },
            "groups": {metric: values.tolist() for metric, values in self.groups.items()},
            "prompts": list(self.prompts),
            "seeds": list(self.seeds),
            "reward": self.reward,
            "evaluator": self.evaluator,
            "cost": self.cost,
        }


def candidate_spread(
    backend: Backend,
    reward: Reward,
    prompts: str | Sequence[str],
    *,
    seeds: int | Iterable[int] = 16,
    betas: Sequence[float] = DEFAULT_BETAS,
    num_candidates: int = 6,
    evaluator: Reward | None = None,
    keep_outputs: bool = False,
) -> SpreadReport:
    """Measure the spread of RGRP's correlated candidates for each ``beta`` of a grid.

    ``seeds`` is a list or ``n`` for ``0..n-1`` (at least :data:`MIN_SEEDS`);
    ``num_candidates`` is RGRP's ``N`` (at least 2); ``evaluator`` ``None`` is the backend's oracle. With
    ``keep_outputs=True`` the report keeps the finished latents of the first prompt and
    seed in ``outputs`` (for a contact sheet of the candidates).
    """
    from searchkit.algorithms.rgrp import correlated_candidates

    prompts = check_prompts(prompts)
    seeds = check_seeds(seeds, minimum=MIN_SEEDS)
    if check_positive("num_candidates", num_candidates) < 2:
        raise InputError(f"num_candidates must be an integer >= 2, got {num_candidates!r}")
    betas = tuple(float(b) for b in betas)
    if not betas or any(not 0.0 <= b <= 1.0 for b in betas) or len(set(betas)) != len(betas):
        raise InputError(f"betas must be distinct values in [0, 1], got {list(betas)}")
    check_particle_memory(backend, len(betas) * num_candidates, "num_candidates", num_candidates)
    grade = resolve_evaluator(backend, evaluator)
    n = num_candidates

    values = {m: np.zeros((len(betas), len(prompts) * len(seeds))) for m in METRICS}
    costs = []
    kept: torch.Tensor | None = None
    for p, prompt in enumerate(prompts):
        for i, seed in enumerate(seeds):
            column = p * len(seeds) + i
            ctx = SearchContext(
                backend, reward, prompt, generator=torch.Generator().manual_seed(seed)
            )
            z = ctx.initial_noise(1)  # the draws RGRP.search makes, in its order
            eps = ctx.noise(n - 1)
            noise = torch.cat([correlated_candidates(z, eps, b) for b in betas])
            particles = ctx.advance(ctx.start(len(noise), noise=noise), to=backend.num_steps)
            outputs = particles.latents.reshape(len(betas), n, -1)
            for b in range(len(betas)):
                group = particles.select(list(range(b * n, (b + 1) * n)))
                picked = int(torch.argmax(ctx.score(group, label=f"beta {betas[b]}").total))
                graded = grade(backend, group.latents, ctx.conditioning).double()
                values["noise_distance"][b, column] = _pairwise_rms(noise[b * n : (b + 1) * n])
                values["output_distance"][b, column] = _pairwise_rms(outputs[b])
                values["evaluator_std"][b, column] = float(graded.std())
                values["best_gain"][b, column] = float(graded.max() - graded[0])
                values["reward_pick_gain"][b, column] = float(graded[picked] - graded[0])
            if keep_outputs and kept is None:
                kept = particles.latents.reshape(len(betas), n, *particles.latents.shape[1:])
            costs.append(ctx.meter.snapshot())
    return SpreadReport(
        betas=betas,
        num_candidates=n,
        summary={m: tuple(mean_interval(row) for row in values[m]) for m in METRICS},
        groups=values,
        prompts=prompts,
        seeds=seeds,
        reward=reward.name,
        evaluator=grade.name,
        cost=add_costs(costs),
        outputs=None if kept is None else kept.detach().cpu(),
    )


def _pairwise_rms(latents: torch.Tensor) -> float:
    """Mean over pairs of ``||a - b|| / sqrt(D)`` for latents ``[n, ...]``."""
    flat = latents.reshape(latents.shape[0], -1).double()
    distances = torch.pdist(flat) / flat.shape[1] ** 0.5
    return float(distances.mean())
