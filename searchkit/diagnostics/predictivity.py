"""Predictivity by step: does the search reward at step ``j`` already rank outputs as the end will?

A schedule that prunes after step ``j`` (RGRP's ``S``, a beam's every step) bets that the
reward there ranks candidates as the evaluator will rank their finished outputs; the
LatSearch paper's premise is that latents become predictive early. This measures it::

    for each prompt p and seed s (one trajectory each, all seeds of p batched):
        denoise from the seed's noise; after each step j in `steps` score with the search
        reward, through the context (on its declared input, or `score_input`), metered
        finish the trajectory; grade the output with the evaluator (oracle by default)
    rho_p(j) = Spearman(reward at j, final evaluator) over the seeds of p
    rho(j)   = mean over prompts of rho_p(j)

Correlations are within a prompt, since a search ranks candidates of one prompt. The 95%
interval is a percentile bootstrap over seeds, resampled within each prompt (stratified),
``num_bootstrap`` times from a fixed numpy generator. When the search reward is the
evaluator, the score after the last step is the evaluator's own score of the output and
``rho`` there is 1 by construction.

Where this deviates from a search: every trajectory runs to the end (nothing is pruned), so
the rows are the baseline's outputs; with a deterministic solver row ``s`` is exactly the
output of ``Baseline().run(..., seed=s)``; with a stochastic one the step noise differs.
"""

from __future__ import annotations

import warnings
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
    rank_correlation,
    resolve_evaluator,
    seed_noise,
)
from searchkit.errors import InputError
from searchkit.reward import Reward
from searchkit.validation import check_steps_within

INTERVAL_METHOD = "95% percentile bootstrap over seeds, stratified by prompt"
#: The fewest seeds per prompt that a rank correlation across seeds is computed from.
MIN_SEEDS = 4


@attrs.frozen(eq=False)
class PredictivityReport:
    """Spearman's rho between the search reward after each step and the final evaluator.

    ``steps`` are 0-based (scored after step ``j``), ``sigmas`` the noise level the reward
    was told there; ``rho``, ``ci_low``, ``ci_high`` are per step (mean over prompts);
    ``per_prompt[p][k]`` is prompt ``p``'s rho at ``steps[k]``; ``rewards[p][i][k]`` and
    ``evaluations[p][i]`` are the raw scores of seed ``seeds[i]``.
    """

    steps: tuple[int, ...]
    sigmas: tuple[float, ...]
    rho: tuple[float, ...]
    ci_low: tuple[float, ...]
    ci_high: tuple[float, ...]
    per_prompt: tuple[tuple[float, ...], ...]
    prompts: tuple[str, ...]
    seeds: tuple[int, ...]
    rewards: np.ndarray
    evaluations: np.ndarray
    reward: str
    evaluator: str
    score_input: str
    num_steps: int
    cost: dict[str, Any]
    interval: str = INTERVAL_METHOD

    def at(self, step: int) -> float:
        """rho after the 0-based step ``step``."""
        if step not in self.steps:
            raise InputError(
                f"step must be one of the scored steps {list(self.steps)}, got {step!r}"
            )
        return self.rho[self.steps.index(step)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": list(self.steps),
            "sigmas": list(self.sigmas),
            "rho": list(self.rho),
            "ci_low": list(self.ci_low),
            "ci_high": list(self.ci_high),
            "interval": self.interval,
            "per_prompt": {p: list(r) for p, r in zip(self.prompts, self.per_prompt, strict=True)},
            "prompts": list(self.prompts),
            "seeds": list(self.seeds),
            "reward": self.reward,
            "evaluator": self.evaluator,
            "score_input": self.score_input,
            "num_steps": self.num_steps,
            "rewards": self.rewards.tolist(),
            "evaluations": self.evaluations.tolist(),
            "cost": self.cost,
        }


def predictivity(
    backend: Backend,
    reward: Reward,
    prompts: str | Sequence[str],
    *,
    seeds: int | Iterable[int] = 32,
    steps: Iterable[int] | None = None,
    evaluator: Reward | None = None,
    score_input: str | None = None,
    batch_size: int = 16,
    num_bootstrap: int = 2000,
    bootstrap_seed: int = 0,
) -> PredictivityReport:
    """Measure how well the search reward after each step predicts the final evaluator.

    Args:
        backend, reward: the model and the search reward under test.
        prompts: one prompt or several (rho is computed within each, then averaged).
        seeds: seed list, or ``n`` for seeds ``0..n-1`` (at least :data:`MIN_SEEDS`).
        steps: 0-based steps after which to score (default: every step).
        evaluator: grades the outputs; ``None`` is the backend's oracle.
        score_input: show a latent-space reward ``"latent"`` (x_t) or ``"x0"`` instead of
            its own declaration.
        batch_size: trajectories denoised together.
        num_bootstrap: bootstrap resamples for the intervals.
    """
    prompts = check_prompts(prompts)
    seeds = check_seeds(seeds, minimum=MIN_SEEDS)
    check_positive("batch_size", batch_size)
    check_positive("num_bootstrap", num_bootstrap)
    num_steps = backend.num_steps
    steps = tuple(range(num_steps)) if steps is None else tuple(steps)
    if not steps or list(steps) != sorted(set(steps)):
        raise InputError(f"steps must be distinct step indices in increasing order, got {steps}")
    check_steps_within(steps, num_steps, field="steps")
    reward.check_steps(steps, num_steps)
    if score_input is not None and (score_input not in ("latent", "x0") or reward.input == "video"):
        raise InputError(
            f"score_input must be 'latent' or 'x0' for a latent-space reward "
            f"({reward.name!r} reads {reward.input!r}), got {score_input!r}"
        )
    grade = resolve_evaluator(backend, evaluator)

    rewards = np.zeros((len(prompts), len(seeds), len(steps)))
    evaluations = np.zeros((len(prompts), len(seeds)))
    sigmas: list[float] = []
    costs = []
    for p, prompt in enumerate(prompts):
        for start in range(0, len(seeds), batch_size):
            chunk = seeds[start : start + batch_size]
            rows = slice(start, start + len(chunk))
            ctx = SearchContext(
                backend,
                reward,
                prompt,
                generator=torch.Generator().manual_seed(chunk[0]),
                noise=seed_noise(backend, chunk),
            )
            particles = ctx.start(len(chunk))
            for k, step in enumerate(steps):
                particles = ctx.advance(particles, to=step + 1)
                record = ctx.score(particles, label=f"after step {step}", input=score_input)
                rewards[p, rows, k] = record.total.double().numpy()
                if len(sigmas) < len(steps):
                    sigmas.append(record.sigma)
            particles = ctx.advance(particles, to=num_steps)
            evaluations[p, rows] = grade(backend, particles.latents, ctx.conditioning).numpy()
            costs.append(ctx.meter.snapshot())

    per_prompt = rank_correlation(rewards, evaluations)  # [P, S]
    with warnings.catch_warnings():  # a prompt whose scores are all equal gives NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        rho = np.nanmean(per_prompt, axis=0)
    low, high = _bootstrap(rewards, evaluations, num_bootstrap, bootstrap_seed)
    return PredictivityReport(
        steps=steps,
        sigmas=tuple(sigmas),
        rho=tuple(float(r) for r in rho),
        ci_low=tuple(float(v) for v in low),
        ci_high=tuple(float(v) for v in high),
        per_prompt=tuple(tuple(float(r) for r in row) for row in per_prompt),
        prompts=prompts,
        seeds=seeds,
        rewards=rewards,
        evaluations=evaluations,
        reward=reward.name,
        evaluator=grade.name,
        score_input=score_input or reward.input,
        num_steps=num_steps,
        cost=add_costs(costs),
    )


def _bootstrap(
    rewards: np.ndarray, evaluations: np.ndarray, num: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of the prompt-mean rho: seeds resampled within each prompt."""
    rng = np.random.default_rng(seed)
    prompts, n, _ = rewards.shape
    draws = np.empty((num, prompts, rewards.shape[2]))
    for p in range(prompts):
        index = rng.integers(0, n, size=(num, n))
        draws[:, p] = rank_correlation(rewards[p][index], evaluations[p][index])
    with warnings.catch_warnings():  # resamples with every seed alike give NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(draws, axis=1)
        return np.nanpercentile(means, 2.5, axis=0), np.nanpercentile(means, 97.5, axis=0)
