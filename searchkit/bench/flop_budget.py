"""Budgets in FLOPs: a strategy's expected FLOPs on a world, for sizing it to a FLOP budget.

A run's FLOPs (:mod:`searchkit.cost`) are its model forwards, backward passes, decodes and
reward calls, each at its own rate. These rates are linear in the batch (every product of
these models is per sample), so the expected FLOPs of a strategy are

    E[FLOPs] = E[NFE] * F + E[reward calls] * R + E[decodes] * D

with ``F``, ``R``, ``D`` the FLOPs of one forward, one reward call and one decode of one
sample on the sweep's world (:class:`FlopRates`, read from the built backend and reward,
:func:`flop_rates`). ``E[NFE]`` is the strategy's own statement
(:meth:`Strategy.expected_nfe <searchkit.strategy.Strategy.expected_nfe>`); the counts of
reward calls and decodes, which strategies do not state, are measured by a *dry run*: the
strategy run on a counting world, a tiny analytic world with the sweep's step count,
forwards per step and solver kind (stochastic or not), scored by a constant reward that
reads what the sweep's reward reads (so every weight is uniform, the assumption under which
strategies state their expected NFE), averaged over :data:`DRY_RUN_SEEDS` seeds (two when
the first two agree). The
counting world's calls are metered exactly as the real world's, so a strategy whose counts
do not depend on the scores spends, on the real world, exactly the FLOPs it was sized for;
one whose counts are random (RGRP prunes a random number of particles) spends them on
average.

:func:`match_flops_budget` then picks the largest size knob whose expected FLOPs are within
the budget (:func:`searchkit.bench.budget.match_cost`): the run lands within one knob step
below the budget.

Reading the rates builds the sweep's backend and reward once in the planning process
(cheap for the analytic world and tiny Wan; a checkpoint is loaded). A backend or reward
that does not state its FLOPs (``None``) cannot be sized in FLOPs: that is an error naming
it, before any compute.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch

from searchkit.backend import Backend, ComputeProfile
from searchkit.bench.budget import match_cost
from searchkit.errors import ConfigError
from searchkit.reward import Reward, RewardBatch
from searchkit.strategy import Strategy

#: Seeds of the dry runs whose counts are averaged.
DRY_RUN_SEEDS: tuple[int, ...] = (0, 1, 2, 3)
_PROMPT = "a counting world"


@attrs.frozen
class FlopRates:
    """FLOPs of one forward, one decode and one reward call on one sample, on one world."""

    profile: ComputeProfile
    forward: float
    decode: float
    reward: float
    reward_input: str
    stochastic: bool

    def per_nfe(self) -> float:
        return self.forward


def flop_rates(backend: Backend, reward: Reward, prompt: str = _PROMPT) -> FlopRates:
    """The rates of ``backend`` and ``reward`` (one sample each); raise when one is unknown."""
    profile = ComputeProfile(backend.num_steps, backend.forwards_per_step)
    forward = backend.forward_flops(1)
    decode = backend.decode_flops(1)
    latents = backend.initial_noise(1, torch.Generator().manual_seed(0))
    data = backend.decode(latents) if reward.input == "video" else latents
    batch = RewardBatch(
        data=data, sigma=torch.zeros(1), conditioning=backend.encode(prompt), step=0
    )
    per_call = reward.flops(batch)
    for what, value in (
        (f"backend {backend.name!r} forward", forward),
        (f"backend {backend.name!r} decode", decode),
        (f"reward {reward.name!r}", per_call),
    ):
        if value is None:
            raise ConfigError(
                f"budget_unit 'flops' needs the FLOPs of every call, but the {what} does not "
                "state them (its flops method returns None); use budget_unit 'nfe'"
            )
    return FlopRates(
        profile, float(forward), float(decode), float(per_call), reward.input, backend.is_stochastic
    )


class _CountingReward(Reward):
    """A constant reward reading what the sweep's reward reads: uniform weights everywhere."""

    name = "counting"
    dimensions = ("count",)

    def __init__(self, input: str) -> None:
        self.input = input

    @property
    def is_differentiable(self) -> bool:
        return True

    def score(self, batch: RewardBatch) -> torch.Tensor:
        n = batch.data.shape[0]
        return batch.data.reshape(n, -1)[:, :1] * 0.0  # zero, but on the graph when it is


def _counting_world(rates: FlopRates) -> tuple[Backend, Reward]:
    from searchkit.backends.analytic import AnalyticBackend

    backend = AnalyticBackend(
        channels=1,
        frames=2,
        height=2,
        width=2,
        num_components=2,
        num_steps=rates.profile.num_steps,
        guidance_scale=1.0 if rates.profile.forwards_per_step == 1 else 5.0,
        solver="sde-dpmsolver++" if rates.stochastic else "euler",
    )
    return backend, _CountingReward(rates.reward_input)


def expected_counts(strategy: Strategy, rates: FlopRates) -> tuple[float, float]:
    """Mean reward calls and decodes of one run of ``strategy`` (dry runs, see the module).

    When the first two dry runs agree the counts are taken as not random and the rest are
    skipped.
    """
    backend, reward = _counting_world(rates)
    counts = []
    for seed in DRY_RUN_SEEDS:
        try:
            cost = strategy.run(backend, reward, _PROMPT, seed=seed).cost
        except (TypeError, ValueError) as error:
            raise ConfigError(
                f"strategy {strategy.name!r} cannot be sized in FLOPs: its dry run with "
                f"{rates.profile.num_steps} steps failed: {error}"
            ) from None
        counts.append((cost.reward_calls, cost.decodes))
        if len(counts) == 2 and counts[0] == counts[1]:
            break
    return (
        sum(c for c, _ in counts) / len(counts),
        sum(d for _, d in counts) / len(counts),
    )


def expected_flops(strategy: Strategy, rates: FlopRates) -> float:
    """``E[NFE] F + E[reward calls] R + E[decodes] D`` (see the module)."""
    calls, decodes = expected_counts(strategy, rates)
    nfe = float(strategy.expected_nfe(rates.profile))
    return nfe * rates.forward + calls * rates.reward + decodes * rates.decode


def match_flops_budget(
    cls: type[Strategy],
    options: dict[str, Any],
    budget_flops: float,
    rates: FlopRates,
    label: str = "",
) -> tuple[Strategy, float]:
    """The strategy with the largest size knob whose expected FLOPs are within the budget."""
    return match_cost(
        cls, options, budget_flops, lambda s: expected_flops(s, rates), label, unit="FLOPs"
    )
