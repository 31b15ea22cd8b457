"""Budget matching: the size knob that makes a strategy's mean NFE meet a budget.

Every strategy names its size knob (``Strategy.size_knob``: ``n`` for best-of-N,
``num_particles`` for RGRP, ...) and states its expected NFE (``Strategy.expected_nfe``),
which reads only the step count and the forwards per step: a backend's
:class:`~searchkit.backend.ComputeProfile`, known without loading any weights. For a
budget ``B`` the benchmark picks

    k* = max { k : expected_nfe(strategy with knob k) <= B }

the largest knob whose *mean* cost stays within the budget (the closest value not
above it), assuming cost grows with the knob. The actual NFE of each run is recorded:
strategies with random cost (RGRP prunes a random number of particles) scatter around
their mean, and the curves use the measured mean on their compute axis.

The knob's valid range is ``[k_min, inf)``. ``k_min`` is read from the knob field's own
attrs validator, run with the other fields as the options set them (so a validator that
compares fields sees them): the least value from 1 up that it accepts (a size knob counts
something). Every bound on the knob therefore belongs in its validator (EvoSearch's
``population`` validator checks that later populations hold its elites). Above ``k_min``
every value must build: any error there is a :class:`~searchkit.errors.BudgetError` naming
the strategy, the knob and its value, never a silent "does not fit". Options that do not
build even at the knob's default are a :class:`~searchkit.errors.ConfigError`.

A budget below the cost of ``k_min`` is an error naming the strategy and the budget. A
strategy without a size knob (the baseline) is not matched: it runs once per prompt and
seed at its own cost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from searchkit.backend import Backend, ComputeProfile
from searchkit.errors import BudgetError, ConfigError
from searchkit.strategy import Strategy

#: No knob is searched beyond this value.
MAX_KNOB = 1 << 20
#: The field validator is asked about the values ``1 .. MAX_MINIMUM`` for the least valid one.
MAX_MINIMUM = 64


def _knob_field(cls: type[Strategy], knob: str, label: str) -> attrs.Attribute:
    if not attrs.has(cls):
        raise BudgetError(
            f"strategy {label!r} is not an attrs class: its size knob {knob!r} has no field "
            "validator to read the valid range from"
        )
    field = attrs.fields_dict(cls).get(knob)
    if field is None or not field.init:
        raise BudgetError(f"strategy {label!r}: size knob {knob!r} is not one of its fields")
    return field


def _field_accepts(field: attrs.Attribute, instance: Strategy, value: int) -> bool:
    """Whether the knob field's own validator accepts ``value`` next to ``instance``'s fields."""
    if field.validator is None:
        return True
    converted = field.converter(value) if field.converter is not None else value
    try:
        field.validator(instance, field, converted)
    except (TypeError, ValueError):
        return False
    return True


def _build(cls: type[Strategy], options: dict[str, Any], knob: str, k: int) -> Strategy:
    return cls(**options, **{knob: k})


def knob_minimum(cls: type[Strategy], options: dict[str, Any], label: str = "") -> int:
    """The least valid value of ``cls``'s size knob with ``options`` fixed (see the module).

    Raises :class:`ConfigError` when ``options`` do not build at the knob's default, and
    :class:`BudgetError` when no knob value from 1 to :data:`MAX_MINIMUM` is valid.
    """
    knob, label = cls.size_knob, label or cls.name
    if knob is None:
        raise BudgetError(f"strategy {label!r} has no size knob")
    field = _knob_field(cls, knob, label)
    try:
        instance = cls(**options)  # the knob at its default: what configuration validation builds
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"strategy {label!r}: options {options!r} are not valid: {error}"
        ) from None
    field_minimum = next(
        (k for k in range(1, MAX_MINIMUM + 1) if _field_accepts(field, instance, k)), None
    )
    if field_minimum is None:
        raise BudgetError(
            f"strategy {label!r}: its validator accepts no value of {knob!r} from 1 to {MAX_MINIMUM}"
        )
    return field_minimum


def _sized(
    cls: type[Strategy],
    options: dict[str, Any],
    knob: str,
    k: int,
    cost: Callable[[Strategy], float],
    label: str,
) -> tuple[Strategy, float]:
    """The strategy with knob ``k`` (at or above its minimum) and its expected cost."""
    try:
        strategy = _build(cls, options, knob, k)
    except (TypeError, ValueError) as error:
        raise BudgetError(
            f"strategy {label!r} with options {options!r} does not build at {knob}={k}, a value "
            f"its validator accepts: {error}"
        ) from None
    return strategy, float(cost(strategy))


def match_budget(
    cls: type[Strategy],
    options: dict[str, Any],
    budget_nfe: int,
    profile: ComputeProfile | Backend,
    label: str = "",
) -> tuple[Strategy, float]:
    """The strategy with the largest size knob whose expected NFE is at most ``budget_nfe``.

    ``profile`` gives the steps and forwards per step (a built backend has both too).
    Returns the strategy and its expected NFE. Raises :class:`BudgetError` when even the
    smallest valid knob costs more than the budget, or when a valid knob value does not
    build; :class:`ConfigError` when ``options`` are not valid.
    """
    return match_cost(
        cls, options, budget_nfe, lambda s: s.expected_nfe(profile), label, unit="NFE"
    )


def match_cost(
    cls: type[Strategy],
    options: dict[str, Any],
    budget: float,
    cost: Callable[[Strategy], float],
    label: str = "",
    *,
    unit: str = "NFE",
) -> tuple[Strategy, float]:
    """The strategy with the largest size knob whose expected ``cost`` is at most ``budget``.

    :func:`match_budget` with any cost (FLOPs: :mod:`searchkit.bench.flop_budget`); ``unit``
    names it in errors.
    """
    knob = cls.size_knob
    label = label or cls.name
    if knob is None:
        raise BudgetError(f"strategy {label!r} has no size knob to match budget {budget:g}")
    low = knob_minimum(cls, options, label)
    best = _sized(cls, options, knob, low, cost, label)
    if best[1] > budget:
        field = "budgets_nfe" if unit == "NFE" else "budgets_flops"
        raise BudgetError(
            f"budget {budget:g} {unit} is below one run of strategy {label!r}: its smallest "
            f"{knob}={low} costs {best[1]:g} {unit} on this backend; raise the budget or "
            f"give {label!r} its own {field}"
        )

    def fits(k: int) -> bool:
        nonlocal best
        candidate = _sized(cls, options, knob, k, cost, label)
        if candidate[1] > budget:
            return False
        best = candidate
        return True

    # grow geometrically to the first knob over budget, then bisect (cost grows with the knob)
    high = max(2 * low, low + 1)
    while high < MAX_KNOB and fits(high):
        low, high = high, min(2 * high, MAX_KNOB)
    if high == MAX_KNOB and fits(high):
        low = high
    while high - low > 1:
        mid = (low + high) // 2
        if fits(mid):
            low = mid
        else:
            high = mid
    return best  # always the strategy at ``low``, the largest knob that fits


def knob_value(strategy: Strategy) -> int | None:
    """The value of the strategy's size knob (``None`` without one)."""
    knob = type(strategy).size_knob
    return None if knob is None else getattr(strategy, knob)
