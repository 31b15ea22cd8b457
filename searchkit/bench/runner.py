"""Where the world is built: the sweep's backend and reward, their check against the planned
strategies, and one planned search turned into a results row.

Executors call :func:`build_world` once per process and :func:`check_runs` before the
first search, so a strategy that cannot run on this backend and reward (an SMC schedule
past the last step, a gradient method on a model without gradients) fails before any
compute, naming the strategy.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import attrs

from searchkit.backend import Backend
from searchkit.bench.config import SweepConfig
from searchkit.bench.plan import Run
from searchkit.builders import build_backend, build_reward
from searchkit.errors import ConfigError
from searchkit.evaluation import build_evaluators, evaluate
from searchkit.reward import Reward


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run with ``count`` intra-op torch threads (``None``: leave as is), then restore."""
    import torch

    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@attrs.frozen(eq=False)
class World:
    """What every run of a sweep shares: the backend, the search reward and the evaluators."""

    backend: Backend
    reward: Reward
    evaluators: dict[str, Reward] = attrs.field(factory=dict)


def build_world(config: SweepConfig) -> World:
    """The sweep's backend, search reward and held-out evaluators, built by registry name."""
    backend = build_backend(config.backend.name, **config.backend_options())
    reward_name = None if config.reward is None else config.reward.name
    reward_options = {} if config.reward is None else dict(config.reward.options)
    reward = build_reward(reward_name, backend, **reward_options)
    evaluators = build_evaluators([(e.name, e.options) for e in config.evaluators], backend)
    return World(backend, reward, evaluators)


def check_runs(runs: Iterable[Run], backend: Backend, reward: Reward) -> None:
    """Raise :class:`ConfigError` naming the first planned strategy that cannot run here.

    Each distinct sized strategy (a label at one budget) is checked once with
    ``Strategy.check_compatible``, which reads the built backend and reward.
    """
    checked: set[tuple[str, int | None]] = set()
    for run in runs:
        if (run.label, run.budget_nfe) in checked:
            continue
        checked.add((run.label, run.budget_nfe))
        try:
            run.strategy.check_compatible(backend, reward)
        except (TypeError, ValueError) as error:
            raise ConfigError(
                f"strategy {run.label!r} cannot run on backend {backend.name!r} with reward "
                f"{reward.name!r}: {error}"
            ) from None


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions that can change a result, recorded in every row."""
    import diffusers
    import torch

    from searchkit import __version__

    return {
        "searchkit": __version__,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "python": platform.python_version(),
    }


def execute(run: Run, world: World) -> dict[str, Any]:
    """Run one search, grade its output with the oracle and the evaluators, return its row.

    The row's ``seconds`` are the search's (``run`` includes grading); each evaluator's
    scores and time are under ``evaluators`` (present when the sweep has evaluators).
    """
    started = time.perf_counter()
    backend = world.backend
    result = run.strategy.run(backend, world.reward, run.prompt, seed=run.seed)
    oracle = None
    if backend.has_oracle:
        oracle = float(backend.oracle(result.latents[None], run.prompt)[0])
    graded = evaluate(world.evaluators, backend, result)
    cost = result.cost
    return {
        "key": run.key,
        "label": run.label,
        "strategy": run.strategy.name,
        "config": run.strategy.config_dict(),
        "size_knob": type(run.strategy).size_knob,
        "size": run.size,
        "budget_nfe": run.budget_nfe,
        "expected_nfe": run.expected_nfe,
        "prompt": run.prompt,
        "prompt_index": run.prompt_index,
        "prompt_dimensions": list(run.prompt_dimensions),
        "seed": run.seed,
        "nfe": cost.nfe,
        "particle_steps": cost.particle_steps,
        "reward_calls": cost.reward_calls,
        "decodes": cost.decodes,
        "backward_nfe": cost.backward_nfe,
        "flops": cost.flops,
        "flops_split": dict(cost.flops_split),
        "budget_flops": run.budget_flops,
        "expected_flops": run.expected_flops,
        "seconds": dict(cost.seconds, run=time.perf_counter() - started),
        "scores": dict(zip(result.dimensions, result.scores.tolist(), strict=True)),
        "reward": result.reward,
        "oracle": oracle,
        **({"evaluators": graded} if world.evaluators else {}),
        "versions": versions(),
    }
