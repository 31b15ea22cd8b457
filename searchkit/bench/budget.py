"""Budget matching: the size knob that makes a strategy's mean NFE meet a budget.

Every strategy names its size knob (``Strategy.size_knob``: ``n`` for best-of-N,
``num_particles`` for RGRP, ...) and states its expected NFE on a backend
(``Strategy.expected_nfe``). For a budget ``B`` the benchmark picks

    k* = max { k : expected_nfe(strategy with knob k) <= B }

the largest knob whose *mean* cost stays within the budget (the closest value not
above it), assuming cost grows with the knob. The actual NFE of each run is recorded:
strategies with random cost (RGRP prunes a random number of particles) scatter around
their mean, and the curves use the measured mean on their compute axis.

A budget below the cost of the smallest valid knob is an error naming the strategy and
the budget. A strategy without a size knob (the baseline) is not matched: it runs once
per prompt and seed at its own cost.
"""

from __future__ import annotations

from typing import Any

from searchkit.backend import Backend
from searchkit.errors import BudgetError  # noqa: F401  (re-exported)
from searchkit.strategy import Strategy

#: No knob is searched beyond this value.
MAX_KNOB = 1 << 20


def _sized(
    cls: type[Strategy], options: dict[str, Any], knob: str, k: int, backend: Backend
) -> tuple[Strategy, float] | None:
    """The strategy with knob ``k`` and its expected NFE; ``None`` if ``k`` is not valid."""
    try:
        strategy = cls(**options, **{knob: k})
    except (ValueError, TypeError):
        return None  # outside the knob's valid range (e.g. RGRP needs two particles)
    return strategy, float(strategy.expected_nfe(backend))


def match_budget(
    cls: type[Strategy], options: dict[str, Any], budget_nfe: int, backend: Backend, label: str = ""
) -> tuple[Strategy, float]:
    """The strategy with the largest size knob whose expected NFE is at most ``budget_nfe``.

    Returns the strategy and its expected NFE. Raises :class:`BudgetError` when even the
    smallest valid knob costs more than the budget.
    """
    knob = cls.size_knob
    label = label or cls.name
    if knob is None:
        raise BudgetError(f"strategy {label!r} has no size knob to match budget {budget_nfe}")
    low = next((k for k in range(65) if _sized(cls, options, knob, k, backend)), None)
    if low is None:
        raise BudgetError(f"strategy {label!r}: no value of {knob!r} up to 64 is valid")
    best = _sized(cls, options, knob, low, backend)
    if best[1] > budget_nfe:
        raise BudgetError(
            f"budget {budget_nfe} NFE is below one run of strategy {label!r}: its smallest "
            f"{knob}={low} costs {best[1]:g} NFE on this backend; raise the budget or "
            f"give {label!r} its own budgets_nfe"
        )

    def fits(k: int) -> bool:
        nonlocal best
        candidate = _sized(cls, options, knob, k, backend)
        if candidate is None or candidate[1] > budget_nfe:
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
