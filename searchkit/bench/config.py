"""The sweep configuration: what to compare, at which budgets, on which prompts and seeds.

A sweep is a JSON file::

    {
      "name": "analytic",
      "backend":  {"name": "analytic", "options": {}},
      "reward":   {"name": "analytic", "options": {}},     # null: the backend's own reward
      "num_steps": 50,
      "strategies": [{"name": "baseline"},
                     {"name": "rgrp", "options": {"beta": 0.1}, "label": "rgrp"},
                     {"name": "evo-search", "budgets_nfe": [2000, 4000]}],
      "budgets_nfe": [200, 400, 800],
      "prompts": ["a red fox running through fresh snow", "..."],
      "seeds": 8,
      "torch_threads": 1
    }

``strategies`` may also be the string ``"all"``: every registered strategy with its default
options. A strategy's ``options`` fix everything but its size knob, which the budgets set
(see :mod:`searchkit.bench.budget`); its own ``budgets_nfe`` replaces the sweep's; a
``"fixed": true`` entry has no budget and runs as configured. An entry may also name a
preset, its own ``solver`` and its own search ``reward`` (:mod:`searchkit.bench.entries`).
The sweep's ``budgets_nfe`` may be left out when no entry needs it. Instead of ``prompts`` a
sweep may name a VBench-style ``prompts_file`` (relative paths are read from the config
file's folder) with an optional ``dimension`` filter and ``max_prompts``. ``seeds`` is a
count (seeds ``0 .. n-1``), a list, or ``"vbench"``: VBench-2.0's samples per prompt (3, and
20 for a prompt whose first dimension is Diversity), seeds ``0 .. k-1`` for a prompt of ``k``.

A prompts file's record may carry ``prompt_aug``, a rewrite of its prompt: the model
receives it in place of ``prompt_en`` (as VBench-2.0 runs Wan2.1), while run keys, video
names and summaries stay those of ``prompt_en``. ``prompt_aug_dir`` (VBench-2.0's ``prompts``
folder; relative to the config file's folder) with ``prompt_aug_extender`` (default
``wanx_aug_prompt``) attaches VBench-2.0's own rewrites (:mod:`searchkit.bench.augmented`);
``"use_prompt_aug": false`` sends ``prompt_en`` anyway.

``budget_unit`` is ``"nfe"`` (default: strategies are sized to ``budgets_nfe``) or
``"flops"``: strategies are sized to ``budgets_flops`` (FLOPs per run, forwards, decodes and
reward calls together; a strategy's own ``budgets_flops`` replaces the sweep's), see
:mod:`searchkit.bench.flop_budget`.

Every field is checked when the configuration is built, and an error names the field and
the value, before any compute. Reading a file (a path or a shipped name) with command-line
overrides is :mod:`searchkit.bench.load`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import attrs

from searchkit.bench.entries import (
    ComponentSpec,
    StrategySpec,
    check_budgets,
    check_flop_budgets,
    component,
    parse_strategies,
)
from searchkit.bench.prompts import Prompt, load_prompt_file
from searchkit.errors import ConfigError  # noqa: F401  (re-exported)
from searchkit.validation import (
    SEED_LIMIT,
    boolean,
    is_int,
    of_type,
    optional,
    optional_positive_int,
    text,
)

__all__ = ["ComponentSpec", "ConfigError", "StrategySpec", "SweepConfig", "digest"]

#: ``seeds`` value that asks for VBench-2.0's samples per prompt.
VBENCH_SEEDS = "vbench"

#: What a sweep's budgets may count (``budget_unit``).
BUDGET_UNITS: tuple[str, ...] = ("nfe", "flops")

#: The most seeds a count may ask for (a sweep of more is a typo, not a plan).
MAX_SEED_COUNT = 100_000

_TOP_LEVEL = {
    "name",
    "description",
    "backend",
    "reward",
    "num_steps",
    "strategies",
    "budgets_nfe",
    "budget_unit",
    "budgets_flops",
    "prompts",
    "prompts_file",
    "dimension",
    "max_prompts",
    "seeds",
    "torch_threads",
    "evaluators",
    "metric",
    "use_prompt_aug",
    "prompt_aug_dir",
    "prompt_aug_extender",
}


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise ConfigError(
            f"seeds must be a count, a list of integers or {VBENCH_SEEDS!r}, got {value!r}"
        )
    if isinstance(value, int):
        if not 1 <= value <= MAX_SEED_COUNT:
            raise ConfigError(f"seeds must be a count in [1, {MAX_SEED_COUNT}], got {value!r}")
        return tuple(range(value))
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(
            f"seeds must be a count, a non-empty list of integers or {VBENCH_SEEDS!r}, got {value!r}"
        )
    for s in value:
        if not is_int(s) or not 0 <= s < SEED_LIMIT:
            raise ConfigError(f"seeds must hold integers in [0, 2**64), got {s!r} in {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"seeds has a repeated seed: {value!r}")
    return tuple(value)


def _check_name(_instance: Any, _attribute: Any, name: Any) -> None:
    if not isinstance(name, str) or not name or "/" in name:
        raise ConfigError(f"name must be a non-empty string without '/', got {name!r}")


def _check_strategies(_instance: Any, _attribute: Any, specs: tuple) -> None:
    if not specs or not all(isinstance(s, StrategySpec) for s in specs):
        raise ConfigError(f"strategies must be a non-empty list of StrategySpec, got {specs!r}")
    labels = [s.label for s in specs]
    for label in labels:
        if labels.count(label) > 1:
            raise ConfigError(
                f"strategies: label {label!r} is used twice; give each entry a distinct 'label'"
            )


def _check_prompts(_instance: Any, _attribute: Any, prompts: tuple) -> None:
    if not prompts or not all(isinstance(p, Prompt) for p in prompts):
        raise ConfigError(f"prompts must be a non-empty list of prompts, got {prompts!r}")
    texts = [p.text for p in prompts]
    if len(set(texts)) != len(texts):
        raise ConfigError("prompts has a repeated prompt")


@attrs.frozen
class SweepConfig:
    """A validated sweep: strategies x budgets x prompts x seeds on one backend and reward.

    Build it from parsed JSON with :meth:`from_dict` (or :func:`load_config` from a file);
    direct construction validates the same fields.
    """

    name: str = attrs.field(validator=_check_name)
    backend: ComponentSpec = attrs.field(validator=of_type(ComponentSpec))
    reward: ComponentSpec | None = attrs.field(validator=optional(of_type(ComponentSpec)))
    strategies: tuple[StrategySpec, ...] = attrs.field(converter=tuple, validator=_check_strategies)
    #: The budgets of every sized entry without its own; ``()`` when no entry needs them.
    budgets_nfe: tuple[int, ...] = attrs.field(
        converter=lambda v: () if v is None or v == () else check_budgets(v)
    )
    prompts: tuple[Prompt, ...] = attrs.field(converter=tuple, validator=_check_prompts)
    seeds: tuple[int, ...] = attrs.field(converter=_seeds)
    num_steps: int | None = attrs.field(default=None, validator=optional_positive_int)
    description: str = attrs.field(default="", validator=text)
    #: Intra-op threads of torch while the sweep runs (``None``: torch's default). Small
    #: CPU models run fastest with 1, the more so on a busy machine.
    torch_threads: int | None = attrs.field(default=None, validator=optional_positive_int)
    #: Where the prompts came from (for the record): a file and a dimension, or ``None``.
    prompts_source: dict[str, Any] | None = attrs.field(default=None, hash=False)
    #: Held-out evaluators (rewards by name), applied once to every output, apart from the
    #: search (:mod:`searchkit.evaluation`).
    evaluators: tuple[ComponentSpec, ...] = attrs.field(default=(), converter=tuple)
    #: What the summary reports: ``"oracle"``, ``"reward"`` (the search's own, self-graded)
    #: or an evaluator's name; ``None``: the oracle where the backend has one, else the first
    #: evaluator, else the search reward.
    metric: str | None = attrs.field(default=None)
    #: VBench-2.0's samples per prompt: prompt ``p`` runs the first
    #: ``samples_per_prompt(p.dimensions)`` of ``seeds`` (see :meth:`seeds_for`).
    vbench_samples: bool = attrs.field(default=False, validator=boolean)
    #: What the budgets count: ``"nfe"`` (``budgets_nfe``) or ``"flops"`` (``budgets_flops``).
    budget_unit: str = attrs.field(default="nfe")
    #: FLOP budgets per run of every sized entry without its own (``budget_unit`` ``"flops"``).
    budgets_flops: tuple[float, ...] = attrs.field(
        default=(), converter=lambda v: () if v is None or v == () else check_flop_budgets(v)
    )
    #: Whether the model receives a prompt's ``prompt_aug`` (where it has one) in place of
    #: its text; the prompt's text names its runs and videos either way.
    use_prompt_aug: bool = attrs.field(default=True, validator=boolean)

    def __attrs_post_init__(self) -> None:
        if self.budget_unit not in BUDGET_UNITS:
            raise ConfigError(
                f"budget_unit must be one of {', '.join(BUDGET_UNITS)} (got {self.budget_unit!r})"
            )
        self._check_entries()
        if self.vbench_samples:
            from searchkit.bench.vbench import samples_per_prompt

            for i, prompt in enumerate(self.prompts):
                if not prompt.dimensions:
                    raise ConfigError(
                        f"seeds {VBENCH_SEEDS!r} needs prompts with VBench-2.0 dimensions "
                        f"(a prompts_file); prompt {i} ({prompt.text[:60]!r}) has none"
                    )
                if len(self.seeds) < samples_per_prompt(prompt.dimensions):
                    raise ConfigError(
                        f"seeds: prompt {i} ({prompt.text[:60]!r}) needs "
                        f"{samples_per_prompt(prompt.dimensions)} seeds, got {len(self.seeds)}"
                    )
        if self.num_steps is not None and "num_steps" in self.backend.options:
            raise ConfigError("num_steps is given twice: at the top level and in backend.options")
        names = [e.name for e in self.evaluators]
        if len(set(names)) != len(names):
            raise ConfigError(f"evaluators must be distinct, got {names}")
        allowed = ("oracle", "reward", *names)
        if self.metric is not None and self.metric not in allowed:
            raise ConfigError(f"metric must be one of {', '.join(allowed)} (got {self.metric!r})")

    def _check_entries(self) -> None:
        """Each entry's solver is one of the backend's, and each sized entry has budgets."""
        from searchkit.registry import BACKENDS, get_strategy

        cls = BACKENDS.get(self.backend.name) if self.backend.name in BACKENDS else None
        solvers = getattr(cls, "solvers", None)
        for i, spec in enumerate(self.strategies):
            where = f"strategies[{i}] ({spec.label!r})"
            if spec.solver is not None and solvers is not None and spec.solver not in solvers:
                raise ConfigError(
                    f"{where}: solver {spec.solver!r} is not one of backend "
                    f"{self.backend.name!r}'s solvers: {', '.join(solvers)}"
                )
            sized = get_strategy(spec.name).size_knob is not None and not spec.fixed
            field = f"budgets_{self.budget_unit}"
            if sized and getattr(spec, field) is None and not getattr(self, field):
                raise ConfigError(
                    f"{where} has no budget: give the sweep's {field}, the entry's own "
                    f'{field}, or "fixed": true to run it as configured'
                )

    def self_graded(self, metric: str) -> tuple[str, ...]:
        """Labels of the entries whose outputs ``metric`` grades with the very reward that
        steered their search: every entry for ``"reward"``; for an evaluator, the entries
        whose search reward has its name (the same verifier, whatever its options)."""
        if metric == "reward":
            return tuple(spec.label for spec in self.strategies)
        if metric not in {e.name for e in self.evaluators}:
            return ()
        return tuple(
            spec.label
            for spec in self.strategies
            if (spec.reward or self.reward) is not None
            and (spec.reward or self.reward).name == metric
        )

    def model_prompt(self, prompt: Prompt) -> str:
        """The text the model receives for ``prompt`` (its ``prompt_aug`` unless turned off)."""
        return prompt.model_text(self.use_prompt_aug)

    def seeds_for(self, prompt: Prompt) -> tuple[int, ...]:
        """The seeds ``prompt`` runs with: all of them, or VBench-2.0's count of them."""
        if not self.vbench_samples:
            return self.seeds
        from searchkit.bench.vbench import samples_per_prompt

        return self.seeds[: samples_per_prompt(prompt.dimensions)]

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls,
        data: Any,
        *,
        base_dir: str | Path = ".",
        source: str = "config",
        given: Collection[str] = (),
    ) -> SweepConfig:
        """Validate a parsed JSON configuration; ``base_dir`` anchors a relative prompts file.

        An error names ``source`` (the file), except one about a top-level field in ``given``:
        a value the caller put in place of the file's, which the message names alone.
        """
        try:
            return cls._from_dict(data, Path(base_dir))
        except (TypeError, ValueError) as error:  # ConfigError, or a shared field validator's
            field = re.match(r"[A-Za-z_]*", str(error))[0]
            if field in given:
                raise ConfigError(str(error)) from None
            raise ConfigError(f"{source}: {error}") from None

    @classmethod
    def _from_dict(cls, data: Any, base_dir: Path) -> SweepConfig:
        import searchkit  # noqa: F401  (built-ins register on import)
        from searchkit.registry import BACKENDS, REWARDS

        if not isinstance(data, dict):
            raise ConfigError(
                f"a sweep configuration must be a JSON object, got {type(data).__name__}"
            )
        unknown = sorted(set(data) - _TOP_LEVEL)
        if unknown:
            raise ConfigError(
                f"unknown field {unknown[0]!r}; known: {', '.join(sorted(_TOP_LEVEL))}"
            )
        backend = component(data.get("backend", {"name": "analytic"}), "backend", BACKENDS)
        reward_data = data.get("reward")
        reward = None if reward_data is None else component(reward_data, "reward", REWARDS)
        prompts, prompts_source = _prompts(data, base_dir)
        seeds, vbench_samples = data.get("seeds", 1), False
        if seeds == VBENCH_SEEDS:
            from searchkit.bench.vbench import samples_per_prompt

            seeds, vbench_samples = max(samples_per_prompt(p.dimensions) for p in prompts), True
        use_aug = data.get("use_prompt_aug", True)
        if not isinstance(use_aug, bool):
            raise ConfigError(f"use_prompt_aug must be true or false, got {use_aug!r}")
        evaluators = data.get("evaluators") or []
        if not isinstance(evaluators, list):
            raise ConfigError(f"evaluators must be a list of rewards, got {evaluators!r}")
        return cls(
            name=data.get("name", "sweep"),
            backend=backend,
            reward=reward,
            strategies=parse_strategies(data.get("strategies")),
            budgets_nfe=data.get("budgets_nfe"),
            prompts=prompts,
            seeds=seeds,
            num_steps=data.get("num_steps"),
            description=data.get("description", ""),
            torch_threads=data.get("torch_threads"),
            prompts_source=prompts_source,
            evaluators=tuple(component(e, "evaluators[]", REWARDS) for e in evaluators),
            metric=data.get("metric"),
            vbench_samples=vbench_samples,
            budget_unit=data.get("budget_unit", "nfe"),
            budgets_flops=data.get("budgets_flops"),
            use_prompt_aug=use_aug,
        )

    # -- identity -------------------------------------------------------------------------
    def world_dict(self) -> dict[str, Any]:
        """What every run shares: backend, reward and steps (runs differ in the rest)."""
        world = {
            "backend": self.backend.to_dict(),
            "reward": None if self.reward is None else self.reward.to_dict(),
            "num_steps": self.num_steps,
        }
        if self.evaluators:  # absent when there are none, so earlier sweeps keep their keys
            world["evaluators"] = [e.to_dict() for e in self.evaluators]
        return world

    def to_dict(self) -> dict[str, Any]:
        """The whole effective sweep as JSON, prompts resolved (stored beside the results)."""
        return {
            "name": self.name,
            "description": self.description,
            **self.world_dict(),
            "strategies": [s.to_dict() for s in self.strategies],
            "budgets_nfe": list(self.budgets_nfe),
            "prompts": [p.to_dict() for p in self.prompts],
            "prompts_source": self.prompts_source,
            "seeds": list(self.seeds),
            "torch_threads": self.torch_threads,
            # only where set, so that earlier sweeps keep their fingerprints
            **({"vbench_samples": True} if self.vbench_samples else {}),
            **(
                {"budget_unit": self.budget_unit, "budgets_flops": list(self.budgets_flops)}
                if self.budget_unit != "nfe"
                else {}
            ),
            **({"use_prompt_aug": False} if not self.use_prompt_aug else {}),
        }

    def fingerprint(self) -> str:
        """A hash of :meth:`to_dict`: two sweeps with equal fingerprints plan the same runs."""
        return digest(self.to_dict())

    def backend_options(self, solver: str | None = None) -> dict[str, Any]:
        """The backend's constructor options; ``solver`` (an entry's) replaces the sweep's."""
        options = dict(self.backend.options)
        if self.num_steps is not None:
            options["num_steps"] = self.num_steps
        if solver is not None:
            options["solver"] = solver
        return options


def digest(value: Any) -> str:
    """A short stable hash of a JSON-able value."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _prompts(data: dict, base_dir: Path) -> tuple[tuple[Prompt, ...], dict | None]:
    inline, path = data.get("prompts"), data.get("prompts_file")
    dimension, limit = data.get("dimension"), data.get("max_prompts")
    aug_dir, extender = data.get("prompt_aug_dir"), data.get("prompt_aug_extender")
    if dimension is not None and not isinstance(dimension, str):
        raise ConfigError(f"dimension must be a string, got {dimension!r}")
    if limit is not None and (not is_int(limit) or limit < 1):
        raise ConfigError(f"max_prompts must be a positive integer, got {limit!r}")
    if (inline is None) == (path is None):
        raise ConfigError("give exactly one of 'prompts' (a list) and 'prompts_file' (a path)")
    if path is not None:
        if not isinstance(path, str) or not path:
            raise ConfigError(f"prompts_file must be a path, got {path!r}")
        full = Path(path) if Path(path).is_absolute() else base_dir / path
        source: dict[str, Any] = {"file": path, "dimension": dimension, "max_prompts": limit}
        augmented = None
        if extender is not None and aug_dir is None:
            raise ConfigError(
                f"prompt_aug_extender {extender!r} needs prompt_aug_dir (VBench-2.0's prompts folder)"
            )
        if aug_dir is not None:
            augmented = _augmented(aug_dir, extender, base_dir)
            # only where set, so that earlier sweeps keep their fingerprints
            source.update(prompt_aug_dir=aug_dir, prompt_aug_extender=augmented.extender)
        try:
            prompts = load_prompt_file(full, dimension, limit, augmented)
        except (ValueError, FileNotFoundError) as error:
            raise ConfigError(f"prompts_file: {error}") from None
        return prompts, source
    if aug_dir is not None or extender is not None:
        raise ConfigError(
            "prompt_aug_dir and prompt_aug_extender augment a prompts_file; inline prompts "
            "have none"
        )
    if dimension is not None:
        raise ConfigError("dimension filters a prompts_file; inline prompts have none")
    if not isinstance(inline, list | tuple) or not inline:
        raise ConfigError(f"prompts must be a non-empty list of strings, got {inline!r}")
    for p in inline:
        if not isinstance(p, str) or not p.strip():
            raise ConfigError(f"prompts must hold non-empty strings, got {p!r}")
    if len(set(inline)) != len(inline):
        raise ConfigError("prompts has a repeated prompt")
    prompts = tuple(Prompt(p) for p in inline)
    return (prompts[:limit] if limit is not None else prompts), None


def _augmented(folder: Any, extender: Any, base_dir: Path):
    """VBench-2.0's rewrites in ``folder`` (relative to ``base_dir``) by ``extender``."""
    from searchkit.bench.augmented import DEFAULT_EXTENDER, AugmentedPrompts

    if not isinstance(folder, str) or not folder:
        raise ConfigError(f"prompt_aug_dir must be a folder path, got {folder!r}")
    if extender is not None and (not isinstance(extender, str) or not extender):
        raise ConfigError(f"prompt_aug_extender must be a folder name, got {extender!r}")
    full = Path(folder) if Path(folder).is_absolute() else base_dir / folder
    try:
        return AugmentedPrompts(full, extender or DEFAULT_EXTENDER)
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(f"prompt_aug_dir: {error}") from None
