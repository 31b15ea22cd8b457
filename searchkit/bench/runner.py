"""Where the worlds are built: the sweep's backend and rewards, their check against the
planned strategies, and one planned search turned into a results row.

A sweep has one world per distinct backend option set and search reward: the sweep's own,
and one more for each entry's own ``solver`` or ``reward``. :class:`Worlds` builds each on
first use and keeps it: a backend that can change its sampling options without reloading
(``backend.with_options(solver=...)``, as :class:`~searchkit.backends.WanBackend` does)
shares its weights between the worlds that differ only in the solver, and so do the
rewards and evaluators of those worlds (one instance per name and options). Executors
keep one :class:`Worlds` per process and call :func:`check_runs` before the first search,
so a strategy that cannot run on its backend and reward (an SMC schedule past the last
step, a gradient method on a model without gradients) fails before any compute, naming
the strategy.

Before the first timed search of a world, :meth:`Worlds.for_run` denoises one untimed
trajectory on it (:func:`warm_up`), so that one-time work (imports made on first use, a
solver's coefficient tables, the first call's kernel selection) lands on no row: without
it, the first run of a sweep (the baseline's) would carry it, and every "time vs baseline"
ratio with it.
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
from searchkit.bench.config import SweepConfig, digest
from searchkit.bench.entries import ComponentSpec
from searchkit.bench.plan import Run
from searchkit.builders import build_backend, build_reward
from searchkit.errors import ConfigError
from searchkit.evaluation import evaluate
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
    """What the runs of one sweep entry share: the backend, the search reward, the evaluators.

    ``reward_spec`` names the search reward as configured (``None``: the backend's own).
    """

    backend: Backend
    reward: Reward
    evaluators: dict[str, Reward] = attrs.field(factory=dict)
    reward_spec: ComponentSpec | None = None


def build_world(config: SweepConfig) -> World:
    """The sweep's own world (its backend, search reward and evaluators), built by name."""
    return Worlds(config).world()


class Worlds:
    """The worlds of one sweep, each built on first use and kept (see the module docstring)."""

    def __init__(self, config: SweepConfig) -> None:
        self.config = config
        self._backends: dict[str, tuple[Backend, int]] = {}  # options digest -> backend, group
        self._rewards: dict[tuple[int, str], Reward] = {}
        self._evaluators: dict[int, dict[str, Reward]] = {}
        self._worlds: dict[tuple[str | None, str], World] = {}
        self._warm: set[int] = set()

    def backend(self, solver: str | None = None) -> tuple[Backend, int]:
        """The backend with ``solver`` (``None``: the sweep's), and its weight-sharing group."""
        options = self.config.backend_options(solver)
        key = digest(options)
        if key not in self._backends:
            # the backends of a sweep differ in the solver only: derive from a built one
            base = next(iter(self._backends.values()), None)
            derive = getattr(base[0], "with_options", None) if base is not None else None
            if derive is not None and "solver" in options:
                self._backends[key] = (derive(solver=options["solver"]), base[1])
            else:
                backend = build_backend(self.config.backend.name, **options)
                self._backends[key] = (backend, id(backend))
        return self._backends[key]

    def _reward(self, spec: ComponentSpec | None, backend: Backend, group: int) -> Reward:
        key = (group, digest(None if spec is None else spec.to_dict()))
        if key not in self._rewards:
            name, options = (None, {}) if spec is None else (spec.name, dict(spec.options))
            self._rewards[key] = build_reward(name, backend, **options)
        return self._rewards[key]

    def world(self, solver: str | None = None, reward: ComponentSpec | None = None) -> World:
        """The world of an entry with this ``solver`` and search ``reward`` (``None``: the sweep's)."""
        spec = reward if reward is not None else self.config.reward
        key = (solver, digest(None if spec is None else spec.to_dict()))
        if key not in self._worlds:
            backend, group = self.backend(solver)
            if group not in self._evaluators:
                self._evaluators[group] = {
                    e.name: self._reward(e, backend, group) for e in self.config.evaluators
                }
            self._worlds[key] = World(
                backend, self._reward(spec, backend, group), self._evaluators[group], spec
            )
        return self._worlds[key]

    def for_run(self, run: Run) -> World:
        """The world of ``run``, warmed up (:func:`warm_up`) before its first search."""
        world = self.world(run.solver, run.reward)
        if id(world) not in self._warm:
            warm_up(world, run.model_prompt)
            self._warm.add(id(world))
        return world


def warm_up(world: World, prompt: str) -> None:
    """Denoise one trajectory of ``world`` from a fixed seed, untimed and unscored."""
    import torch

    from searchkit.context import SearchContext

    context = SearchContext(
        world.backend, world.reward, prompt, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        context.advance(context.start(1), context.num_steps)
    world.backend.decode_flops(1)  # a first count of the decoder's FLOPs, where counted


def check_runs(runs: Iterable[Run], worlds: Worlds | Backend, reward: Reward | None = None) -> None:
    """Raise :class:`ConfigError` naming the first planned strategy that cannot run on its world.

    Each distinct sized strategy (a label at one budget) is checked once with
    ``Strategy.check_compatible``, which reads the built backend and reward (building every
    world the runs need). A backend and a reward in place of ``worlds`` check every run
    against those.
    """
    checked: set[tuple[str, int | None]] = set()
    for run in runs:
        if (run.label, run.budget_nfe) in checked:
            continue
        checked.add((run.label, run.budget_nfe))
        if isinstance(worlds, Worlds):
            world = worlds.world(run.solver, run.reward)
            backend, run_reward = world.backend, world.reward
        else:
            backend, run_reward = worlds, reward
        try:
            run.strategy.check_compatible(backend, run_reward)
        except (TypeError, ValueError) as error:
            raise ConfigError(
                f"strategy {run.label!r} cannot run on backend {backend.name!r} with reward "
                f"{run_reward.name!r}: {error}"
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


def execute(run: Run, world: World, *, with_video: bool = False) -> Any:
    """Run one search, grade its output with the oracle and the evaluators, return its row.

    The search (and its search reward) receives ``run.model_prompt`` (a ``prompt_aug`` where
    the sweep sends one, then recorded as ``prompt_sent``); the oracle and the evaluators
    grade against the prompt itself (``prompt_en``), as VBench-2.0 grades a rewritten
    prompt's video. The row's ``seconds`` are the search's (``run`` includes grading); each evaluator's
    scores and time are under ``evaluators`` (present when the sweep has evaluators). The
    row records the solver its backend sampled with and its search reward
    (``search_reward``: name and options). With ``with_video`` the result is ``(row,
    video)``, the output's frames ``[F, H, W, 3]`` (the search decodes its output).
    """
    started = time.perf_counter()
    backend = world.backend
    result = run.strategy.run(backend, world.reward, run.model_prompt, seed=run.seed)
    oracle = None
    if backend.has_oracle:
        oracle = float(backend.oracle(result.latents[None], run.prompt)[0])
    graded = evaluate(world.evaluators, backend, result, prompt=run.prompt)
    cost = result.cost
    spec = world.reward_spec
    row = {
        "key": run.key,
        "label": run.label,
        "strategy": run.strategy.name,
        "config": run.strategy.config_dict(),
        "size_knob": type(run.strategy).size_knob,
        "size": run.size,
        "budget_nfe": run.budget_nfe,
        "expected_nfe": run.expected_nfe,
        "prompt": run.prompt,
        # only where the model received another text, so earlier rows keep their fields
        **({"prompt_sent": run.sent_prompt} if run.sent_prompt is not None else {}),
        "prompt_index": run.prompt_index,
        "prompt_dimensions": list(run.prompt_dimensions),
        "seed": run.seed,
        "solver": backend.config_dict().get("solver"),
        "search_reward": {
            "name": world.reward.name,
            "options": {} if spec is None else dict(spec.options),
        },
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
    return (row, result.video) if with_video else row
