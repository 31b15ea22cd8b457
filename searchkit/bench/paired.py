"""Paired comparisons: two strategies graded on the same prompts and seeds.

Every cell of a sweep runs the same (prompt, seed) pairs, and most of the spread of a metric
comes from the prompt and the seed (an easy prompt is easy for every strategy). Comparing
two cells pair by pair removes that shared part: with ``x_i`` and ``y_i`` the metric of the
two cells on pair ``i`` (only pairs both cells ran), the paired difference is
``d_i = x_i - y_i`` and

* its mean ``mean(d)`` with the two-sided Student-t interval
  ``mean(d) +- t_{n-1, 0.975} * sd(d) / sqrt(n)``, exactly the interval of
  ``scipy.stats.ttest_rel(x, y).confidence_interval(0.95)`` (the paired t-test; no
  resampling, so no random seed). All differences equal (two strategies that agree on every
  pair) give the degenerate interval ``[mean(d), mean(d)]``; one pair gives NaN bounds;
* the win rate ``(#{x_i > y_i} + #{x_i = y_i} / 2) / n``: the chance that ``x`` beats ``y``
  on a prompt and seed drawn from the sweep, ties counting one half.

The t interval assumes the mean difference is roughly normal, which holds for the sweep's
tens of pairs unless the differences are very skewed; the win rate needs no assumption.
Each interval covers one comparison: no correction is made for the several comparisons of
one budget.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import attrs
import numpy as np
from scipy import stats


@attrs.frozen
class Paired:
    """``x`` against ``y`` over their shared pairs: mean of ``x - y``, its interval, win rate."""

    pairs: int
    diff: float
    low: float
    high: float
    win_rate: float


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two-sided Student-t interval of the mean (NaN bounds for one value)."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    sem = float(stats.sem(x))
    if sem == 0.0:
        return mean, mean, mean
    low, high = stats.t.interval(confidence, x.size - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)


def win_rate(x: Sequence[float], y: Sequence[float]) -> float:
    """The fraction of pairs where ``x`` beats ``y``, ties counting one half."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.size == 0 or a.shape != b.shape:
        raise ValueError(f"win_rate needs two equal, non-empty lengths, got {a.size} and {b.size}")
    return float(((a > b).sum() + 0.5 * (a == b).sum()) / a.size)


def shared_pairs(
    x: Mapping[Hashable, float], y: Mapping[Hashable, float]
) -> tuple[np.ndarray, np.ndarray]:
    """The values of ``x`` and ``y`` on the keys both hold, in sorted key order."""
    keys = sorted(set(x) & set(y), key=repr)
    return (
        np.array([x[k] for k in keys], dtype=np.float64),
        np.array([y[k] for k in keys], dtype=np.float64),
    )


def compare(
    x: Mapping[Hashable, float], y: Mapping[Hashable, float], confidence: float = 0.95
) -> Paired | None:
    """``x`` against ``y`` (each keyed by (prompt, seed)); ``None`` when they share no pair."""
    a, b = shared_pairs(x, y)
    if a.size == 0:
        return None
    diff, low, high = mean_interval(a - b, confidence)
    return Paired(pairs=int(a.size), diff=diff, low=low, high=high, win_rate=win_rate(a, b))
