"""The runs of a sweep: every (strategy, budget, prompt, seed), each with a stable key.

Planning never builds the world: strategies are sized against the backend's
:class:`~searchkit.backend.ComputeProfile` (``Backend.compute_profile``, which loads no
weights), so a driver that only plans and dispatches (the Ray executor) never loads a
model. Whether a sized strategy can run on the built backend and reward
(``Strategy.check_compatible``) is checked where the world is built, before the first
search (:func:`searchkit.bench.runner.check_runs`).

The key hashes what makes a run: the world (backend, reward, steps), the strategy's name,
label and fixed options (a preset's included), what the entry changes in the world (its
solver, its search reward; absent when it changes nothing, so earlier sweeps keep their
keys), the budget, the prompt and the seed. Results are matched to planned runs by key, so
resuming never repeats a finished run and a changed world never reuses a stale one.

An entry with its own solver is sized against the profile of the backend with that solver.
"""

from __future__ import annotations

from typing import Any

import attrs

from searchkit.backend import ComputeProfile
from searchkit.bench.budget import knob_value, match_budget
from searchkit.bench.config import SweepConfig, digest
from searchkit.bench.entries import ComponentSpec
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
    #: The entry's own solver and search reward (``None``: the sweep's).
    solver: str | None = None
    reward: ComponentSpec | None = None

    @property
    def size(self) -> int | None:
        return knob_value(self.strategy)

    def describe(self) -> str:
        budget = "fixed" if self.budget_nfe is None else f"{self.budget_nfe} NFE"
        return f"{self.label} @ {budget}, prompt {self.prompt_index}, seed {self.seed}"


def run_key(
    world: dict[str, Any],
    name: str,
    label: str,
    options: dict[str, Any],
    budget_nfe: int | None,
    prompt: str,
    seed: int,
    overrides: dict[str, Any] | None = None,
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
    if overrides:
        key["overrides"] = overrides
    return digest(key)


def compute_profile(config: SweepConfig, solver: str | None = None) -> ComputeProfile:
    """The sweep backend's steps and forwards per step, from its options alone (no weights).

    ``solver`` is an entry's own solver, in place of the sweep's.
    """
    options = config.backend_options(solver)
    try:
        return get_backend(config.backend.name).compute_profile(**options)
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"backend {config.backend.name!r} with options {options!r}: {error}"
        ) from None


def sized_strategies(
    config: SweepConfig, profile: ComputeProfile | None = None
) -> list[tuple[str, Strategy, int | None, float]]:
    """``(label, strategy, budget, expected NFE)`` for every strategy and budget of the sweep.

    Strategies without a size knob, and fixed entries, appear once with budget ``None``.
    ``profile`` serves every entry when given; otherwise each entry is sized against
    :func:`compute_profile` with its own solver. Raises
    :class:`~searchkit.errors.BudgetError` for a budget a strategy cannot meet.
    """
    sized = []
    profiles: dict[str | None, ComputeProfile] = {}
    for i, spec in enumerate(config.strategies):
        cls = get_strategy(spec.name)
        options = lists_as_tuples(spec.effective_options)
        if profile is None and spec.solver not in profiles:
            try:
                profiles[spec.solver] = compute_profile(config, spec.solver)
            except ConfigError as error:
                if spec.solver is None:
                    raise
                raise ConfigError(
                    f"strategies[{i}] ({spec.label!r}) with solver {spec.solver!r}: {error}"
                ) from None
        entry_profile = profile if profile is not None else profiles[spec.solver]
        if cls.size_knob is None or spec.fixed:
            strategy = cls(**options)
            expected = float(strategy.expected_nfe(entry_profile))
            sized.append((spec.label, strategy, None, expected))
        else:
            for budget in spec.budgets_nfe or config.budgets_nfe:
                strategy, expected = match_budget(cls, options, budget, entry_profile, spec.label)
                sized.append((spec.label, strategy, budget, expected))
    return sized


def plan_sweep(config: SweepConfig, profile: ComputeProfile | None = None) -> list[Run]:
    """Every run of the sweep, seeds outermost (a partial sweep covers every cell evenly).

    ``profile`` defaults to each entry's :func:`compute_profile`. With VBench-2.0 samples
    (``config.vbench_samples``) a prompt runs only its own count of seeds.
    """
    world = config.world_dict()
    sized = sized_strategies(config, profile)
    specs = {spec.label: spec for spec in config.strategies}
    runs = []
    for seed in config.seeds:
        for index, prompt in enumerate(config.prompts):
            if seed not in config.seeds_for(prompt):
                continue
            for label, strategy, budget, expected in sized:
                spec = specs[label]
                key = run_key(
                    world,
                    strategy.name,
                    label,
                    spec.effective_options,
                    budget,
                    prompt.text,
                    seed,
                    spec.overrides,
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
                        spec.solver,
                        spec.reward,
                    )
                )
    return runs
