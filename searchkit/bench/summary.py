"""The summary of a sweep: one cell per strategy and budget, compared pair by pair.

For each cell (a strategy at one budget): the number of runs, the size knob chosen, the
mean NFE actually spent, and the mean of the *metric* with a 95% Student-t interval
(``scipy.stats.t``). Cells are compared within their group: strategies at the same NFE
budget, and the fixed-configuration entries (no budget: the baseline, a paper preset's
rows at their own compute) among themselves. In each group of two or more cells the one
with the highest mean metric is marked *best*, and every other cell gets the paired
comparison with it (:mod:`searchkit.bench.paired`: over the (prompt, seed) pairs both ran,
the mean difference to the best with the paired Student-t 95% interval, the win rate
against the best, ties one half, and the number of pairs). Every cell but the baseline
also gets its paired difference to the baseline (with interval) and its win rate against
it, on the same prompts and seeds.

A strategy alone at its budget (a budget no other strategy runs) has no group to be
compared within; it is compared instead with the best cell at the nearest lower budget of
the sweep (``vs_cheaper``, against the cell named in ``cheaper``): "with no more compute
than it spends, does anything do better?". A positive difference whose interval excludes
0 says the extra compute bought quality over the best cheaper search; an interval holding 0
says the sweep cannot tell. A lone cell at the lowest budget has no cheaper cell (only the
baseline comparison).

Quality beyond the metric: the mean of every other held-out evaluator's aggregate, and the
mean of the search's own reward, left out where it *is* the metric (the metric is the
reward, or the reward equals the metric on every output, as the analytic world's exact
reward equals its oracle) so no column repeats another.

Cost: mean NFE, mean FLOPs where rows carry ``flops``, the seconds per video (the search's
own wall clock, ``seconds["total"]``: model, decode, reward and the toolkit's ``other``
time; held-out grading is timed apart and not included) and its ratio to the baseline's.

The metric is what grades the outputs: the oracle reward when every row has one (the
analytic world knows the exact reward of any output), else the first held-out evaluator's
aggregate, else the search reward itself, which the summary then calls *self-graded* (each
output scored by the reward that steered its search). A sweep may name it (``metric``).
Rows are ordered by prompt and seed before any sum, so the summary of a resumed sweep equals
that of an uninterrupted one. Higher metric values are better.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from searchkit.bench.paired import Paired, compare, mean_interval
from searchkit.evaluation import SELF_GRADED

BASELINE = "baseline"

#: The phases of a search's wall clock, in the order the cost table shows them.
TIME_SPLIT = ("model", "decode", "reward", "other")

__all__ = ["BASELINE", "SELF_GRADED", "Cell", "mean_interval", "metric_name", "summarize"]


@attrs.frozen
class Cell:
    """The summary of one strategy at one budget (both budgets ``None``: fixed)."""

    label: str
    strategy: str
    budget_nfe: int | None
    size_knob: str | None
    size: str
    runs: int
    nfe_mean: float
    metric: str
    mean: float
    ci_low: float
    ci_high: float
    #: The highest mean metric of a group of two or more cells.
    best: bool = False
    #: This cell against its group's best (``None`` for the best and for a lone cell).
    vs_best: Paired | None = None
    #: Win rate against the baseline on the same prompts and seeds.
    win_rate: float | None = None
    #: This cell against the baseline (``None`` for the baseline and without one); its win
    #: rate is ``win_rate``.
    vs_baseline: Paired | None = None
    #: A cell alone at its budget against the best cell at the nearest lower budget,
    #: named in ``cheaper`` (``"label @ budget"``); ``None`` otherwise.
    vs_cheaper: Paired | None = None
    cheaper: str | None = None
    #: Mean search reward; ``None`` where it is the metric.
    reward_mean: float | None = None
    #: Mean aggregate of each held-out evaluator other than the metric.
    evaluator_means: dict[str, float] = attrs.field(factory=dict)
    flops_mean: float | None = None
    #: Seconds per video: the search's wall clock, and its split by phase.
    seconds_mean: float = math.nan
    seconds_split: dict[str, float] = attrs.field(factory=dict)
    #: ``seconds_mean`` over the baseline's.
    time_ratio: float | None = None
    #: The FLOP budget (a sweep with ``budget_unit`` ``"flops"``); ``None`` otherwise.
    budget_flops: float | None = None

    @property
    def budget(self) -> tuple[int | None, float | None]:
        """The group the cell compares within: its NFE or FLOP budget, or none (fixed)."""
        return (self.budget_nfe, self.budget_flops)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def metric_name(rows: Iterable[dict[str, Any]], preferred: str | None = None) -> str:
    """The metric to report: ``preferred`` when given, else the oracle, an evaluator, the reward."""
    rows = list(rows)
    if preferred is not None:
        return preferred
    if rows and all(r.get("oracle") is not None for r in rows):
        return "oracle"
    evaluators = rows[0].get("evaluators") if rows else None
    return next(iter(evaluators)) if evaluators else "reward"


def metric_value(row: dict[str, Any], metric: str) -> float:
    """The row's value of ``metric``: ``oracle``, ``reward`` or an evaluator's aggregate."""
    if metric in ("oracle", "reward"):
        value = row.get(metric)
    else:
        value = row.get("evaluators", {}).get(metric, {}).get("total")
    if value is None:
        raise ValueError(f"row {row.get('key')!r} has no {metric!r} value to summarise")
    return float(value)


def _pair_key(row: dict[str, Any]) -> tuple[str, int]:
    return (row["prompt"], row["seed"])


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    """The mean when every value is there, else ``None``."""
    if not values or any(v is None for v in values):
        return None
    return float(np.mean(values))


def _flops(row: dict[str, Any]) -> float | None:
    """The row's total FLOPs: ``row["flops"]``, a number or a split with a ``total``."""
    value = row.get("flops")
    return value.get("total") if isinstance(value, Mapping) else value


def _evaluator_names(rows: Sequence[dict[str, Any]], metric: str) -> list[str]:
    names = dict.fromkeys(n for r in rows for n in r.get("evaluators", {}))
    return [n for n in names if n != metric]


def _evaluator_means(group: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, float]:
    """The mean aggregate of each named evaluator that graded every row of ``group``."""
    means = {}
    for name in names:
        mean = _mean_or_none([r.get("evaluators", {}).get(name, {}).get("total") for r in group])
        if mean is not None:
            means[name] = mean
    return means


def summarize(
    rows: Iterable[dict[str, Any]],
    order: Sequence[str] = (),
    baseline: str = BASELINE,
    metric: str | None = None,
) -> list[Cell]:
    """Cells by group (fixed first, then budgets ascending), labels in ``order`` then by name."""
    rows = sorted(rows, key=lambda r: (r["prompt_index"], r["prompt"], r["seed"]))
    metric = metric_name(rows, metric)
    values = {id(r): metric_value(r, metric) for r in rows}
    # the same function evaluated in float32 in two batches agrees to about 1e-7 relative
    reward_is_metric = metric == "reward" or all(
        math.isclose(r["reward"], values[id(r)], rel_tol=1e-5, abs_tol=1e-6) for r in rows
    )
    evaluators = _evaluator_names(rows, metric)
    base_rows = [r for r in rows if r["label"] == baseline]
    base = {_pair_key(r): values[id(r)] for r in base_rows}
    base_seconds = float(np.mean([r["seconds"]["total"] for r in base_rows])) if base_rows else None

    groups: dict[tuple[str, int | None, float | None], list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["label"], row["budget_nfe"], row.get("budget_flops"))
        groups.setdefault(key, []).append(row)
    rank = {label: i for i, label in enumerate(order)}

    def sort_key(item):
        (label, budget, budget_flops), _ = item
        size = budget if budget is not None else budget_flops
        return (-1 if size is None else size, rank.get(label, len(rank)), label)

    cells = []
    paired: list[dict[tuple[str, int], float]] = []
    for (label, budget, budget_flops), group in sorted(groups.items(), key=sort_key):
        by_pair = {_pair_key(r): values[id(r)] for r in group}
        mean, low, high = mean_interval([values[id(r)] for r in group])
        against_base = compare(by_pair, base) if label != baseline else None
        seconds = float(np.mean([r["seconds"]["total"] for r in group]))
        split = {
            phase: float(np.mean([r["seconds"][phase] for r in group]))
            for phase in TIME_SPLIT
            if all(phase in r["seconds"] for r in group)
        }
        sizes = sorted({r["size"] for r in group}, key=lambda s: (s is None, s))
        cells.append(
            Cell(
                label=label,
                strategy=group[0]["strategy"],
                budget_nfe=budget,
                size_knob=group[0].get("size_knob"),
                size="/".join("-" if s is None else str(s) for s in sizes),
                runs=len(group),
                nfe_mean=float(np.mean([r["nfe"] for r in group])),
                metric=metric,
                mean=mean,
                ci_low=low,
                ci_high=high,
                win_rate=None if against_base is None else against_base.win_rate,
                vs_baseline=against_base,
                reward_mean=None
                if reward_is_metric
                else _mean_or_none([r["reward"] for r in group]),
                evaluator_means=_evaluator_means(group, evaluators),
                flops_mean=_mean_or_none([_flops(r) for r in group]),
                seconds_mean=seconds,
                seconds_split=split,
                time_ratio=None if not base_seconds else seconds / base_seconds,
                budget_flops=budget_flops,
            )
        )
        paired.append(by_pair)
    return _mark_best(cells, paired)


def _size(cell: Cell) -> tuple[str, float] | None:
    """The cell's budget as (unit, amount); ``None`` for a fixed cell."""
    if cell.budget_flops is not None:
        return ("flops", cell.budget_flops)
    return None if cell.budget_nfe is None else ("nfe", float(cell.budget_nfe))


def _budget_text(cell: Cell) -> str:
    if cell.budget_flops is not None:
        return f"{cell.budget_flops:.3g} FLOPs"
    return f"{cell.budget_nfe} NFE"


def _mark_best(cells: list[Cell], paired: list[dict[tuple[str, int], float]]) -> list[Cell]:
    """Mark each group's best cell and compare the others with it, pair by pair; compare
    a cell alone at its budget with the best at the nearest lower budget."""
    marked = list(cells)
    groups = {
        budget: [i for i, c in enumerate(cells) if c.budget == budget]
        for budget in dict.fromkeys(c.budget for c in cells)
    }
    tops = {budget: max(members, key=lambda i: cells[i].mean) for budget, members in groups.items()}
    for budget, members in groups.items():  # max: the first of equal means
        if len(members) < 2:
            continue
        top = tops[budget]
        marked[top] = attrs.evolve(cells[top], best=True)
        for i in members:
            if i != top:
                marked[i] = attrs.evolve(cells[i], vs_best=compare(paired[i], paired[top]))
    for members in groups.values():
        lone = members[0]
        size = _size(cells[lone])
        if len(members) > 1 or size is None:
            continue
        lower = [
            tops[b]
            for b in groups
            if (s := _size(cells[tops[b]])) is not None and s[0] == size[0] and s[1] < size[1]
        ]
        if not lower:
            continue
        other = max(lower, key=lambda i: _size(cells[i])[1])
        marked[lone] = attrs.evolve(
            marked[lone],
            vs_cheaper=compare(paired[lone], paired[other]),
            cheaper=f"{cells[other].label} @ {_budget_text(cells[other])}",
        )
    return marked
