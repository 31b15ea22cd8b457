"""The runs of a sweep: every (strategy, budget, prompt, seed), each with a stable key.

Planning never builds the world: strategies are sized against the backend's
:class:`~searchkit.backend.ComputeProfile` (``Backend.compute_profile``, which loads no
weights), so a driver that only plans and dispatches (the Ray executor) never loads a
model; a sweep with ``budget_unit`` ``"flops"`` is the exception: it builds each distinct
world once to read its FLOP rates (:mod:`searchkit.bench.flop_budget`). Whether a sized strategy can run on the built backend and reward
(``Strategy.check_compatible``) is checked where the world is built, before the first
search (:func:`searchkit.bench.runner.check_runs`).

The key hashes what makes a run: the world (backend, reward, steps), the strategy's name,
label and fixed options (a preset's included), what the entry changes in the world (its
solver, its search reward; absent when it changes nothing, so earlier sweeps keep their
keys), the budget (in NFE, or in FLOPs in a FLOP sweep), the prompt (its ``prompt_en``) and the seed,
and, where the model receives another text (a ``prompt_aug``), that text too (absent
otherwise, so earlier sweeps keep their keys): a run conditioned on a rewrite is another run.
Results are matched to planned runs by key, so resuming never repeats a finished run and a
changed world never reuses a stale one.

An entry with its own solver is sized against the profile of the backend with that solver.
"""

from __future__ import annotations

from typing import Any

import attrs

from searchkit.backend import ComputeProfile
from searchkit.bench.budget import knob_value, match_budget
from searchkit.bench.config import SweepConfig, digest
from searchkit.bench.entries import ComponentSpec, StrategySpec
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
    #: The entry's own solver and search reward (``None``: the sweep's).
    solver: str | None = None
    reward: ComponentSpec | None = None
    #: The FLOP budget the strategy was sized to (``budget_unit`` ``"flops"``), and its
    #: expected FLOPs there; ``None`` in NFE sweeps.
    budget_flops: float | None = None
    expected_flops: float | None = None
    #: The text the model receives where it is not ``prompt`` (a ``prompt_aug``), else ``None``.
    sent_prompt: str | None = None

    @property
    def model_prompt(self) -> str:
        """What the model and the search reward receive: ``sent_prompt``, else ``prompt``."""
        return self.prompt if self.sent_prompt is None else self.sent_prompt

    @property
    def size(self) -> int | None:
        return knob_value(self.strategy)

    def describe(self) -> str:
        if self.budget_flops is not None:
            budget = f"{self.budget_flops:.3g} FLOPs"
        else:
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
    budget_flops: float | None = None,
    sent_prompt: str | None = None,
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
    if budget_flops is not None:  # absent in NFE sweeps, so their keys stay as they were
        key["budget_flops"] = budget_flops
    if sent_prompt is not None:  # absent where the model receives the prompt itself
        key["prompt_sent"] = sent_prompt
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
    config: SweepConfig,
    profile: ComputeProfile | None = None,
    rates: dict[str, FlopRates] | None = None,
) -> list[tuple[str, Strategy, int | None, float]]:
    """``(label, strategy, budget, expected NFE)`` for every strategy and budget of the sweep.

    Strategies without a size knob, and fixed entries, appear once with budget ``None``.
    ``profile`` serves every entry when given; otherwise each entry is sized against
    :func:`compute_profile` with its own solver. Raises
    :class:`~searchkit.errors.BudgetError` for a budget a strategy cannot meet. In a FLOP
    sweep the budget is ``None`` and the FLOP budget is in :func:`plan_sweep`'s runs.
    """
    return [s[:4] for s in _sized(config, profile, rates)]


def _sized(
    config: SweepConfig,
    profile: ComputeProfile | None,
    rates: dict[str, FlopRates] | None,
) -> list[tuple[str, Strategy, int | None, float, float | None, float | None]]:
    """``(label, strategy, NFE budget, expected NFE, FLOP budget, expected FLOPs)``."""
    by_flops = config.budget_unit == "flops"
    if by_flops and rates is None:
        rates = world_flop_rates(config)
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
        entry_rates = rates[spec.label] if by_flops else None
        if cls.size_knob is None or spec.fixed:
            strategy = cls(**options)
            expected = float(strategy.expected_nfe(entry_profile))
            flops = expected_flops(strategy, entry_rates) if by_flops else None
            sized.append((spec.label, strategy, None, expected, None, flops))
        elif by_flops:
            for budget in spec.budgets_flops or config.budgets_flops:
                strategy, flops = match_flops_budget(cls, options, budget, entry_rates, spec.label)
                nfe = float(strategy.expected_nfe(entry_profile))
                sized.append((spec.label, strategy, None, nfe, budget, flops))
        else:
            for budget in spec.budgets_nfe or config.budgets_nfe:
                strategy, expected = match_budget(cls, options, budget, entry_profile, spec.label)
                sized.append((spec.label, strategy, budget, expected, None, None))
    return sized


def world_flop_rates(config: SweepConfig) -> dict[str, FlopRates]:
    """The FLOP rates of each entry's world (its solver and search reward), by label.

    Each distinct world is built once here (see :mod:`searchkit.bench.flop_budget`).
    """
    from searchkit.builders import build_backend, build_reward

    by_world: dict[str, FlopRates] = {}
    rates = {}
    for spec in config.strategies:
        reward = _entry_reward(config, spec)
        key = digest({"solver": spec.solver, "reward": reward and reward.to_dict()})
        if key not in by_world:
            backend = build_backend(config.backend.name, **config.backend_options(spec.solver))
            built = build_reward(
                None if reward is None else reward.name,
                backend,
                **({} if reward is None else dict(reward.options)),
            )
            by_world[key] = flop_rates(backend, built, config.model_prompt(config.prompts[0]))
        rates[spec.label] = by_world[key]
    return rates


def _entry_reward(config: SweepConfig, spec: StrategySpec) -> ComponentSpec | None:
    return spec.reward if spec.reward is not None else config.reward


def plan_sweep(
    config: SweepConfig,
    profile: ComputeProfile | None = None,
    rates: dict[str, FlopRates] | None = None,
) -> list[Run]:
    """Every run of the sweep, seeds outermost (a partial sweep covers every cell evenly).

    ``profile`` defaults to each entry's :func:`compute_profile`; in a FLOP sweep ``rates``
    (by entry label) default to :func:`world_flop_rates`. With VBench-2.0 samples
    (``config.vbench_samples``) a prompt runs only its own count of seeds.
    """
    world = config.world_dict()
    sized = _sized(config, profile, rates)
    specs = {spec.label: spec for spec in config.strategies}
    runs = []
    for seed in config.seeds:
        for index, prompt in enumerate(config.prompts):
            if seed not in config.seeds_for(prompt):
                continue
            sent = config.model_prompt(prompt)
            sent = None if sent == prompt.text else sent
            for label, strategy, budget, expected, budget_flops, flops in sized:
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
                    budget_flops,
                    sent,
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
                        budget_flops,
                        flops,
                        sent,
                    )
                )
    return runs
