"""The runs of a sweep: every (strategy, budget, prompt, seed), each with a stable key.

The key hashes what makes a run: the world (backend, reward, steps), the strategy's name,
label and fixed options, the budget, the prompt and the seed. Results are matched to
planned runs by key, so resuming never repeats a finished run and a changed world never
reuses a stale one.
"""

from __future__ import annotations

from typing import Any

import attrs

from searchkit.backend import Backend
from searchkit.bench.budget import knob_value, match_budget
from searchkit.bench.config import SweepConfig, _as_tuples, digest
from searchkit.registry import get_strategy
from searchkit.reward import Reward
from searchkit.strategy import Strategy


@attrs.frozen
class Run:
    """One search to run: a sized strategy on one prompt with one seed."""

    key: str
    label: str
    strategy: Strategy = attrs.field(eq=False)
    budget_nfe: int | None
    expected_nfe: float
    prompt: str
    prompt_index: int
    prompt_dimensions: tuple[str, ...]
    seed: int

    @property
    def size(self) -> int | None:
        return knob_value(self.strategy)

    def describe(self) -> str:
        budget = "fixed" if self.budget_nfe is None else f"{self.budget_nfe} NFE"
        return f"{self.label} @ {budget}, prompt {self.prompt_index}, seed {self.seed}"


def run_key(world: dict[str, Any], name: str, label: str, options: dict[str, Any],
            budget_nfe: int | None, prompt: str, seed: int) -> str:
    return digest({
        "world": world, "strategy": name, "label": label, "options": options,
        "budget_nfe": budget_nfe, "prompt": prompt, "seed": seed,
    })


def sized_strategies(
    config: SweepConfig, backend: Backend, reward: Reward
) -> list[tuple[str, Strategy, int | None, float]]:
    """``(label, strategy, budget, expected NFE)`` for every strategy and budget of the sweep.

    Strategies without a size knob appear once with budget ``None``. Raises
    :class:`~searchkit.bench.budget.BudgetError` for a budget a strategy cannot meet, and
    ``ValueError`` naming the strategy when it cannot run on this backend and reward.
    """
    sized = []
    for spec in config.strategies:
        cls = get_strategy(spec.name)
        options = _as_tuples(spec.options)
        if cls.size_knob is None:
            strategy = cls(**options)
            sized.append((spec.label, strategy, None, float(strategy.expected_nfe(backend))))
        else:
            for budget in spec.budgets_nfe or config.budgets_nfe:
                strategy, expected = match_budget(cls, options, budget, backend, spec.label)
                sized.append((spec.label, strategy, budget, expected))
        try:
            strategy.check_compatible(backend, reward)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"strategy {spec.label!r} cannot run on backend {backend.name!r} with reward "
                f"{reward.name!r}: {error}"
            ) from None
    return sized


def plan_sweep(config: SweepConfig, backend: Backend, reward: Reward) -> list[Run]:
    """Every run of the sweep, seeds outermost (a partial sweep covers every cell evenly)."""
    world = config.world_dict()
    sized = sized_strategies(config, backend, reward)
    options = {spec.label: spec.options for spec in config.strategies}
    runs = []
    for seed in config.seeds:
        for index, prompt in enumerate(config.prompts):
            for label, strategy, budget, expected in sized:
                key = run_key(world, strategy.name, label, options[label], budget, prompt.text, seed)
                runs.append(Run(key, label, strategy, budget, expected, prompt.text, index,
                                prompt.dimensions, seed))
    return runs
