"""The figure of a sweep: metric against mean NFE, one line per strategy, 95% intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from searchkit.bench.summary import Cell


def plot_reward_vs_nfe(cells: Sequence[Cell], path: str | Path, title: str = "") -> Path:
    """Write a PNG: x the mean NFE actually spent (log scale), y the mean metric.

    Strategies with a size knob are lines through their budgets with 95% error bars;
    a strategy without one (the baseline) is a point with its interval and a dotted
    horizontal line at its mean, the level every curve should clear.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(8.0, 4.5), dpi=120)
    FigureCanvasAgg(fig)  # the Agg canvas: no display, no global pyplot state
    ax = fig.subplots()
    labels = list(dict.fromkeys(c.label for c in cells))
    for label in labels:
        group = sorted((c for c in cells if c.label == label), key=lambda c: c.nfe_mean)
        x = [c.nfe_mean for c in group]
        y = [c.mean for c in group]
        below = [0.0 if math.isnan(c.ci_low) else c.mean - c.ci_low for c in group]
        above = [0.0 if math.isnan(c.ci_high) else c.ci_high - c.mean for c in group]
        style = {"fmt": "o", "ms": 6} if len(group) == 1 else {"fmt": "o-", "ms": 4}
        bars = ax.errorbar(
            x, y, yerr=[below, above], capsize=3, elinewidth=0.8, label=label, **style
        )
        if len(group) == 1:
            ax.axhline(y[0], color=bars.lines[0].get_color(), linestyle=":", linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("mean NFE per run (model forwards)")
    metric = cells[0].metric if cells else "reward"
    ax.set_ylabel(f"mean {metric} (95% interval)")
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    return path
