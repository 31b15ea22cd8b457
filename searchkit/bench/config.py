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
(see :mod:`searchkit.bench.budget`); its own ``budgets_nfe`` replaces the sweep's. Instead
of ``prompts`` a sweep may name a VBench-style ``prompts_file`` (relative paths are read
from the config file's folder) with an optional ``dimension`` filter and ``max_prompts``.
``seeds`` is a count (seeds ``0 .. n-1``) or a list.

Every field is checked when the configuration is built, and an error names the field and
the value, before any compute. Reading a file (a path or a shipped name) with command-line
overrides is :mod:`searchkit.bench.load`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import attrs

from searchkit.bench.prompts import Prompt, load_prompt_file
from searchkit.errors import ConfigError  # noqa: F401  (re-exported)
from searchkit.validation import SEED_LIMIT, is_int, lists_as_tuples, optional_positive_int

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
    "prompts",
    "prompts_file",
    "dimension",
    "max_prompts",
    "seeds",
    "torch_threads",
    "evaluators",
    "metric",
}


def _options_dict(value: Any, field: str = "options") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{field} must be an object of named options, got {value!r}")
    return dict(value)


def _non_empty_string(field: str):
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{field} must be a non-empty string, got {value!r}")

    return check


def _check_budgets(value: Any, field: str = "budgets_nfe") -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(
            f"{field} must be a non-empty list of positive integers (NFE), got {value!r}"
        )
    for b in value:
        if not is_int(b) or b <= 0:
            raise ConfigError(f"{field} must hold positive integers (NFE), got {b!r} in {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{field} has a repeated budget: {value!r}")
    return tuple(sorted(value))


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise ConfigError(f"seeds must be a count or a list of integers, got {value!r}")
    if isinstance(value, int):
        if not 1 <= value <= MAX_SEED_COUNT:
            raise ConfigError(f"seeds must be a count in [1, {MAX_SEED_COUNT}], got {value!r}")
        return tuple(range(value))
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(f"seeds must be a count or a non-empty list of integers, got {value!r}")
    for s in value:
        if not is_int(s) or not 0 <= s < SEED_LIMIT:
            raise ConfigError(f"seeds must hold integers in [0, 2**64), got {s!r} in {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"seeds has a repeated seed: {value!r}")
    return tuple(value)


@attrs.frozen
class ComponentSpec:
    """A backend or reward by registry name, with its constructor options."""

    name: str = attrs.field(validator=_non_empty_string("name"))
    options: dict[str, Any] = attrs.field(factory=dict, converter=_options_dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "options": dict(self.options)}


def _registered_strategy(_instance: Any, _attribute: Any, name: Any) -> None:
    import searchkit  # noqa: F401  (built-ins register on import)
    from searchkit.registry import STRATEGIES

    if name not in STRATEGIES:
        raise ConfigError(
            f"name: unknown strategy {name!r}; known: {', '.join(STRATEGIES.names())}"
        )


def _strategy_options(instance: StrategySpec, _attribute: Any, options: dict[str, Any]) -> None:
    """Build the strategy once with ``options`` so that bad values fail now, named."""
    from searchkit.registry import get_strategy

    cls = get_strategy(instance.name)
    knob = cls.size_knob
    if knob is not None and knob in options:
        raise ConfigError(
            f"options sets {knob!r}, the size knob of {cls.name!r}: the budgets set it; "
            "remove it from options"
        )
    if attrs.has(cls):
        names = {a.name for a in attrs.fields(cls) if a.init}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ConfigError(
                f"options: {cls.name!r} has no option {unknown[0]!r}; "
                f"known: {', '.join(sorted(names)) or '(none)'}"
            )
    try:
        cls(**lists_as_tuples(options))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"options: {error}") from None


@attrs.frozen
class StrategySpec:
    """A strategy by registry name, its fixed options, display label and own budgets.

    ``options`` fix every field but the size knob (checked by building the strategy once);
    ``label`` (default: the name) tells two entries of one strategy apart; ``budgets_nfe``
    replaces the sweep's budgets for this strategy.
    """

    name: str = attrs.field(validator=_registered_strategy)
    options: dict[str, Any] = attrs.field(
        factory=dict, converter=_options_dict, validator=_strategy_options, hash=False
    )
    label: str = attrs.field(
        default=attrs.Factory(lambda self: self.name, takes_self=True),
        validator=_non_empty_string("label"),
    )
    budgets_nfe: tuple[int, ...] | None = attrs.field(
        default=None,
        converter=lambda v: None if v is None else _check_budgets(v, "budgets_nfe"),
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "options": dict(self.options),
            "label": self.label,
            "budgets_nfe": None if self.budgets_nfe is None else list(self.budgets_nfe),
        }


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
    backend: ComponentSpec = attrs.field(validator=attrs.validators.instance_of(ComponentSpec))
    reward: ComponentSpec | None = attrs.field(
        validator=attrs.validators.optional(attrs.validators.instance_of(ComponentSpec))
    )
    strategies: tuple[StrategySpec, ...] = attrs.field(converter=tuple, validator=_check_strategies)
    budgets_nfe: tuple[int, ...] = attrs.field(converter=_check_budgets)
    prompts: tuple[Prompt, ...] = attrs.field(converter=tuple, validator=_check_prompts)
    seeds: tuple[int, ...] = attrs.field(converter=_seeds)
    num_steps: int | None = attrs.field(default=None, validator=optional_positive_int)
    description: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
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

    def __attrs_post_init__(self) -> None:
        if self.num_steps is not None and "num_steps" in self.backend.options:
            raise ConfigError("num_steps is given twice: at the top level and in backend.options")
        names = [e.name for e in self.evaluators]
        if len(set(names)) != len(names):
            raise ConfigError(f"evaluators must be distinct, got {names}")
        allowed = ("oracle", "reward", *names)
        if self.metric is not None and self.metric not in allowed:
            raise ConfigError(f"metric must be one of {', '.join(allowed)} (got {self.metric!r})")

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, data: Any, *, base_dir: str | Path = ".", source: str = "config"
    ) -> SweepConfig:
        """Validate a parsed JSON configuration; ``base_dir`` anchors a relative prompts file."""
        try:
            return cls._from_dict(data, Path(base_dir))
        except (TypeError, ValueError) as error:  # ConfigError, or a shared field validator's
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
        backend = _component(data.get("backend", {"name": "analytic"}), "backend", BACKENDS)
        reward_data = data.get("reward")
        reward = None if reward_data is None else _component(reward_data, "reward", REWARDS)
        prompts, prompts_source = _prompts(data, base_dir)
        evaluators = data.get("evaluators") or []
        if not isinstance(evaluators, list):
            raise ConfigError(f"evaluators must be a list of rewards, got {evaluators!r}")
        return cls(
            name=data.get("name", "sweep"),
            backend=backend,
            reward=reward,
            strategies=_strategies(data.get("strategies")),
            budgets_nfe=data.get("budgets_nfe"),
            prompts=prompts,
            seeds=data.get("seeds", 1),
            num_steps=data.get("num_steps"),
            description=data.get("description", ""),
            torch_threads=data.get("torch_threads"),
            prompts_source=prompts_source,
            evaluators=tuple(_component(e, "evaluators[]", REWARDS) for e in evaluators),
            metric=data.get("metric"),
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
        }

    def fingerprint(self) -> str:
        """A hash of :meth:`to_dict`: two sweeps with equal fingerprints plan the same runs."""
        return digest(self.to_dict())

    def backend_options(self) -> dict[str, Any]:
        options = dict(self.backend.options)
        if self.num_steps is not None:
            options["num_steps"] = self.num_steps
        return options


def digest(value: Any) -> str:
    """A short stable hash of a JSON-able value."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _component(value: Any, field: str, registry) -> ComponentSpec:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise ConfigError(
            f"{field} must be an object {{'name': ..., 'options': {{...}}}}, got {value!r}"
        )
    extra = sorted(set(value) - {"name", "options"})
    if extra:
        raise ConfigError(f"{field} has unknown field {extra[0]!r}; known: name, options")
    name = value.get("name")
    if name not in registry:
        raise ConfigError(
            f"{field}.name: unknown {registry.kind} {name!r}; known: {', '.join(registry.names())}"
        )
    return ComponentSpec(name, _options_dict(value.get("options"), f"{field}.options"))


def _strategies(value: Any) -> tuple[StrategySpec, ...]:
    from searchkit.registry import STRATEGIES

    if value == "all":
        value = STRATEGIES.names()
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(f'strategies must be "all" or a non-empty list, got {value!r}')
    specs = []
    for i, item in enumerate(value):
        field = f"strategies[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            raise ConfigError(f"{field} must be a name or an object with 'name', got {item!r}")
        extra = sorted(set(item) - {"name", "options", "label", "budgets_nfe"})
        if extra:
            raise ConfigError(
                f"{field} has unknown field {extra[0]!r}; known: name, options, label, budgets_nfe"
            )
        try:
            specs.append(StrategySpec(**item))
        except ConfigError as error:
            raise ConfigError(f"{field}.{error}") from None
        except TypeError as error:
            raise ConfigError(f"{field}: {error}") from None
    return tuple(specs)


def _prompts(data: dict, base_dir: Path) -> tuple[tuple[Prompt, ...], dict | None]:
    inline, path = data.get("prompts"), data.get("prompts_file")
    dimension, limit = data.get("dimension"), data.get("max_prompts")
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
        try:
            prompts = load_prompt_file(full, dimension, limit)
        except (ValueError, FileNotFoundError) as error:
            raise ConfigError(f"prompts_file: {error}") from None
        return prompts, {"file": path, "dimension": dimension, "max_prompts": limit}
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
