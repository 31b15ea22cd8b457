"""The parts of a sweep file: components (a backend or reward by name) and strategy entries.

A strategy entry of ``strategies`` is a name or an object::

    {"name": "rgrp",                       # a registered strategy
     "options": {"beta": 0.1},             # fixed fields (not the size knob, unless fixed)
     "preset": "latsearch",                # a named preset of the strategy, under options
     "label": "rgrp-sde",                  # tells two entries apart (default: see below)
     "budgets_nfe": [400, 800],            # its own budgets, replacing the sweep's
     "fixed": true,                        # no budget: runs as configured, at its own compute
     "solver": "sde-dpmsolver++",          # the backend's solver for this entry only
     "reward": {"name": "latsearch-latent-reward", "options": {}}}   # its search reward

A *fixed* entry is one configuration, not a curve: it runs once per prompt and seed at the
compute its options give, and its options may set the size knob (``{"n": 4}`` for
best-of-4). ``solver`` must be one of the backend's solvers (a backend class lists them in
its ``solvers`` attribute; one that does not is checked when the sweep is planned).
``reward`` replaces the sweep's search reward for this entry; the held-out evaluators stay
the sweep's.

The default label is the strategy's name; when several entries of one strategy have no label,
each gets the name followed by what tells them apart (``rgrp-unipc``, ``rgrp-sde-dpmsolver++``;
the solver, then the reward's name, then the preset). Labels must be distinct.
"""

from __future__ import annotations

from typing import Any

import attrs

from searchkit.errors import ConfigError
from searchkit.validation import is_int, lists_as_tuples, of_type, optional

#: The fields a strategy entry may have.
ENTRY_FIELDS: tuple[str, ...] = (
    "name",
    "options",
    "preset",
    "label",
    "budgets_nfe",
    "budgets_flops",
    "fixed",
    "solver",
    "reward",
)


def options_dict(value: Any, field: str = "options") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{field} must be an object of named options, got {value!r}")
    return dict(value)


def non_empty_string(field: str):
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{field} must be a non-empty string, got {value!r}")

    return check


def check_budgets(value: Any, field: str = "budgets_nfe") -> tuple[int, ...]:
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


def check_flop_budgets(value: Any, field: str = "budgets_flops") -> tuple[float, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(
            f"{field} must be a non-empty list of positive numbers (FLOPs), got {value!r}"
        )
    for b in value:
        if isinstance(b, bool) or not isinstance(b, int | float) or not 0 < b < float("inf"):
            raise ConfigError(f"{field} must hold positive numbers (FLOPs), got {b!r} in {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{field} has a repeated budget: {value!r}")
    return tuple(sorted(float(b) for b in value))


@attrs.frozen
class ComponentSpec:
    """A backend or reward by registry name, with its constructor options."""

    name: str = attrs.field(validator=non_empty_string("name"))
    options: dict[str, Any] = attrs.field(factory=dict, converter=options_dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "options": dict(self.options)}


def component(value: Any, field: str, registry) -> ComponentSpec:
    """A component from JSON (a name, or ``{"name", "options"}``), its name registered."""
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
    return ComponentSpec(name, options_dict(value.get("options"), f"{field}.options"))


def _registered_strategy(_instance: Any, _attribute: Any, name: Any) -> None:
    import searchkit  # noqa: F401  (built-ins register on import)
    from searchkit.registry import STRATEGIES

    if name not in STRATEGIES:
        raise ConfigError(
            f"name: unknown strategy {name!r}; known: {', '.join(STRATEGIES.names())}"
        )


def _preset(instance: StrategySpec, _attribute: Any, preset: Any) -> None:
    from searchkit.registry import get_strategy

    if preset is None:
        return
    presets = get_strategy(instance.name).presets
    if preset not in presets:
        raise ConfigError(
            f"preset: {instance.name!r} has no preset {preset!r}; "
            f"known: {', '.join(sorted(presets)) or '(none)'}"
        )


def _strategy_options(instance: StrategySpec, _attribute: Any, options: dict[str, Any]) -> None:
    """Build the strategy once with its options so that bad values fail now, named."""
    from searchkit.registry import get_strategy

    cls = get_strategy(instance.name)
    effective = instance.effective_options
    knob = cls.size_knob
    if knob is not None and knob in effective and not instance.fixed:
        where = "options" if knob in options else f"preset {instance.preset!r}"
        raise ConfigError(
            f"{where} sets {knob!r}, the size knob of {cls.name!r}: the budgets set it; "
            'remove it, or make the entry one fixed configuration with "fixed": true'
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
        cls(**lists_as_tuples(effective))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"options: {error}") from None


def _fixed(instance: StrategySpec, _attribute: Any, fixed: Any) -> None:
    if not isinstance(fixed, bool):
        raise ConfigError(f"fixed must be true or false, got {fixed!r}")
    if fixed and instance.budgets_nfe is not None:
        raise ConfigError(
            f"fixed and budgets_nfe contradict each other (budgets_nfe={list(instance.budgets_nfe)}): "
            "a fixed entry runs at its own compute; give one of them"
        )
    if fixed and instance.budgets_flops is not None:
        raise ConfigError(
            f"fixed and budgets_flops contradict each other "
            f"(budgets_flops={list(instance.budgets_flops)}): a fixed entry runs at its own "
            "compute; give one of them"
        )


def _solver(_instance: Any, _attribute: Any, solver: Any) -> None:
    if solver is not None and (not isinstance(solver, str) or not solver):
        raise ConfigError(f"solver must be a solver's name, got {solver!r}")


@attrs.frozen
class StrategySpec:
    """A strategy entry of a sweep (see the module docstring for each field).

    ``options`` (over ``preset``'s) fix every field but the size knob, unless ``fixed``;
    they are checked by building the strategy once.
    """

    name: str = attrs.field(validator=_registered_strategy)
    preset: str | None = attrs.field(default=None, kw_only=True, validator=_preset)
    fixed: bool = attrs.field(default=False, kw_only=True)
    options: dict[str, Any] = attrs.field(
        factory=dict, converter=options_dict, validator=_strategy_options, hash=False
    )
    label: str = attrs.field(
        default=attrs.Factory(lambda self: self.name, takes_self=True),
        validator=non_empty_string("label"),
    )
    budgets_nfe: tuple[int, ...] | None = attrs.field(
        default=None,
        converter=lambda v: None if v is None else check_budgets(v, "budgets_nfe"),
    )
    budgets_flops: tuple[float, ...] | None = attrs.field(
        default=None,
        kw_only=True,
        converter=lambda v: None if v is None else check_flop_budgets(v, "budgets_flops"),
    )
    solver: str | None = attrs.field(default=None, kw_only=True, validator=_solver)
    reward: ComponentSpec | None = attrs.field(
        default=None,
        kw_only=True,
        validator=optional(of_type(ComponentSpec)),
    )

    def __attrs_post_init__(self) -> None:
        _fixed(self, None, self.fixed)

    @property
    def effective_options(self) -> dict[str, Any]:
        """The preset's options (if any) under the entry's own."""
        if self.preset is None:
            return dict(self.options)
        from searchkit.registry import get_strategy

        return {**get_strategy(self.name).presets[self.preset], **self.options}

    @property
    def overrides(self) -> dict[str, Any]:
        """What this entry changes in the sweep's world (``solver``, ``reward``), if anything."""
        changes: dict[str, Any] = {}
        if self.solver is not None:
            changes["solver"] = self.solver
        if self.reward is not None:
            changes["reward"] = self.reward.to_dict()
        return changes

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "options": dict(self.options),
            "label": self.label,
            "budgets_nfe": None if self.budgets_nfe is None else list(self.budgets_nfe),
        }
        # the newer fields only where set, so that earlier sweeps keep their fingerprints
        if self.preset is not None:
            data["preset"] = self.preset
        if self.fixed:
            data["fixed"] = True
        if self.budgets_flops is not None:
            data["budgets_flops"] = list(self.budgets_flops)
        data.update(self.overrides)
        return data


def _default_labels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give unlabelled entries of one strategy labels that tell them apart (module docstring)."""
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        if "label" not in item:
            groups.setdefault(item.get("name"), []).append(i)
    items = [dict(item) for item in items]
    for name, members in groups.items():
        if len(members) < 2 or not isinstance(name, str):
            continue
        parts = {
            "solver": lambda item: item.get("solver"),
            "reward": lambda item: (
                item["reward"]
                if isinstance(item.get("reward"), str)
                else (item.get("reward") or {}).get("name")
            ),
            "preset": lambda item: item.get("preset"),
        }
        differ = [
            read for read in parts.values() if len({repr(read(items[i])) for i in members}) > 1
        ]
        for i in members:
            suffix = [str(read(items[i])) for read in differ if read(items[i]) is not None]
            items[i]["label"] = "-".join([name, *suffix])
    return items


def parse_strategies(value: Any) -> tuple[StrategySpec, ...]:
    """The ``strategies`` of a sweep file: a list of entries, or ``"all"``."""
    from searchkit.registry import REWARDS, STRATEGIES

    if value == "all":
        value = STRATEGIES.names()
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(f'strategies must be "all" or a non-empty list, got {value!r}')
    items = []
    for i, item in enumerate(value):
        field = f"strategies[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            raise ConfigError(f"{field} must be a name or an object with 'name', got {item!r}")
        extra = sorted(set(item) - set(ENTRY_FIELDS))
        if extra:
            raise ConfigError(
                f"{field} has unknown field {extra[0]!r}; known: {', '.join(ENTRY_FIELDS)}"
            )
        items.append(item)
    specs = []
    for i, item in enumerate(_default_labels(items)):
        field = f"strategies[{i}]"
        item = dict(item)
        if item.get("reward") is not None:
            item["reward"] = component(item["reward"], f"{field}.reward", REWARDS)
        try:
            specs.append(StrategySpec(**item))
        except ConfigError as error:
            raise ConfigError(f"{field}.{error}") from None
        except TypeError as error:
            raise ConfigError(f"{field}: {error}") from None
    return tuple(specs)
