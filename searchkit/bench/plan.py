"""The runs of a sweep: every (strategy, budget, prompt, seed), each with a stable key.

Planning never builds the world: strategies are sized against the backend's
:class:`~searchkit.backend.ComputeProfile` (``Backend.compute_profile``, which loads no
weights), so a driver that only plans and dispatches (the Ray executor) never loads a
model; a sweep with ``budget_unit`` ``"flops"`` is the exception: it builds the world once
to read its FLOP rates (:mod:`searchkit.bench.flop_budget`). Whether a sized strategy can run on the built backend and reward
(``Strategy.check_compatible``) is checked where the world is built, before the first
search (:func:`searchkit.bench.runner.check_runs`).

The key hashes what makes a run: the world (backend, reward, steps), the strategy's name,
label and fixed options, the budget, the prompt and the seed. Results are matched to
planned runs by key, so resuming never repeats a finished run and a changed world never
reuses a stale one.
"""

from __future__ import annotations

from typing import Any

import attrs

from searchkit.backend import ComputeProfile
from searchkit.bench.budget import knob_value, match_budget
from searchkit.bench.config import SweepConfig, digest
from searchkit.bench.flop_budget import FlopRates, expected_flops, flop_rates, match_flops_budget
from searchkit.errors import ConfigError
from searchkit.registry import get_backend, get_strategy
from searchkit.strategy import Strategy
from searchkit.validation import lists_as_tuples


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
    #: The FLOP budget the strategy was sized to (``budget_unit`` ``"flops"``), and its
    #: expected FLOPs there; ``None`` in NFE sweeps.
    budget_flops: float | None = None
    expected_flops: float | None = None

    @property
    def size(self) -> int | None:
        return knob_value(self.strategy)

    def describe(self) -> str:
        budget = "fixed" if self.budget_nfe is None else f"{self.budget_nfe} NFE"
        if self.budget_flops is not None:
            budget = f"{self.budget_flops:g} FLOPs"
        return f"{self.label} @ {budget}, prompt {self.prompt_index}, seed {self.seed}"


def run_key(
    world: dict[str, Any],
    name: str,
    label: str,
    options: dict[str, Any],
    budget_nfe: int | None,
    prompt: str,
    seed: int,
    budget_flops: float | None = None,
) -> str:
    key = {
        "world": world,
        "strategy": name,
        "label": label,
        "options": options,
        "budget_nfe": budget_nfe,
        "prompt": prompt,
        "seed": seed,
    }
    if budget_flops is not None:  # absent in NFE sweeps, so their keys stay as they were
        key["budget_flops"] = budget_flops
    return digest(key)


def compute_profile(config: SweepConfig) -> ComputeProfile:
    """The sweep backend's steps and forwards per step, from its options alone (no weights)."""
    options = config.backend_options()
    try:
        return get_backend(config.backend.name).compute_profile(**options)
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"backend {config.backend.name!r} with options {options!r}: {error}"
        ) from None


def sized_strategies(
    config: SweepConfig, profile: ComputeProfile, rates: FlopRates | None = None
) -> list[tuple[str, Strategy, int | None, float]]:
    """``(label, strategy, budget, expected NFE)`` for every strategy and budget of the sweep.

    Strategies without a size knob appear once with budget ``None``. Raises
    :class:`~searchkit.errors.BudgetError` for a budget a strategy cannot meet. In a FLOP
    sweep use :func:`sized_by_flops`.
    """
    return [s[:4] for s in _sized(config, profile, rates)]


def _sized(
    config: SweepConfig, profile: ComputeProfile, rates: FlopRates | None
) -> list[tuple[str, Strategy, int | None, float, float | None, float | None]]:
    """``(label, strategy, NFE budget, expected NFE, FLOP budget, expected FLOPs)``."""
    by_flops = config.budget_unit == "flops"
    if by_flops and rates is None:
        raise ConfigError("a sweep with budget_unit 'flops' needs the world's FLOP rates")
    sized = []
    for spec in config.strategies:
        cls = get_strategy(spec.name)
        options = lists_as_tuples(spec.options)
        if cls.size_knob is None:
            strategy = cls(**options)
            flops = expected_flops(strategy, rates) if by_flops else None
            sized.append(
                (spec.label, strategy, None, float(strategy.expected_nfe(profile)), None, flops)
            )
        elif by_flops:
            for budget in spec.budgets_flops or config.budgets_flops:
                strategy, flops = match_flops_budget(cls, options, budget, rates, spec.label)
                nfe = float(strategy.expected_nfe(profile))
                sized.append((spec.label, strategy, None, nfe, budget, flops))
        else:
            for budget in spec.budgets_nfe or config.budgets_nfe:
                strategy, expected = match_budget(cls, options, budget, profile, spec.label)
                sized.append((spec.label, strategy, budget, expected, None, None))
    return sized


def plan_sweep(
    config: SweepConfig,
    profile: ComputeProfile | None = None,
    rates: FlopRates | None = None,
) -> list[Run]:
    """Every run of the sweep, seeds outermost (a partial sweep covers every cell evenly).

    ``profile`` defaults to the sweep backend's :func:`compute_profile`; in a FLOP sweep
    ``rates`` default to :func:`world_flop_rates` (which builds the world once).
    """
    world = config.world_dict()
    profile = compute_profile(config) if profile is None else profile
    if config.budget_unit == "flops" and rates is None:
        rates = world_flop_rates(config)
    sized = _sized(config, profile, rates)
    options = {spec.label: spec.options for spec in config.strategies}
    runs = []
    for seed in config.seeds:
        for index, prompt in enumerate(config.prompts):
            for label, strategy, budget, expected, budget_flops, flops in sized:
                key = run_key(
                    world,
                    strategy.name,
                    label,
                    options[label],
                    budget,
                    prompt.text,
                    seed,
                    budget_flops,
                )
                runs.append(
                    Run(
                        key,
                        label,
                        strategy,
                        budget,
                        expected,
                        prompt.text,
                        index,
                        prompt.dimensions,
                        seed,
                        budget_flops,
                        flops,
                    )
                )
    return runs


def world_flop_rates(config: SweepConfig) -> FlopRates:
    """The FLOP rates of the sweep's backend and reward, built once here (see
    :mod:`searchkit.bench.flop_budget`)."""
    from searchkit.builders import build_backend, build_reward

    backend = build_backend(config.backend.name, **config.backend_options())
    reward_name = None if config.reward is None else config.reward.name
    reward_options = {} if config.reward is None else dict(config.reward.options)
    reward = build_reward(reward_name, backend, **reward_options)
    return flop_rates(backend, reward, config.prompts[0].text)
