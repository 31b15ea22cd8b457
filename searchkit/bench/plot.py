"""The figure of a sweep: quality against compute, one panel per compute axis, Pareto fronts.

Panels share the y axis (the mean metric with its 95% interval) and differ in x: mean NFE
per run, seconds per video (the search's wall clock), and FLOPs per video when every cell
has them (rows that carry ``flops``). A strategy with a size knob is a line through its
budgets; one without (the baseline) is a point with a dotted horizontal line at its mean,
the level every curve should clear.

Each panel marks its *Pareto front*: the cells no other cell dominates (another cell
dominates when it spends at most as much and scores at least as well, and is strictly
better in one of the two), joined as the staircase of the best quality reachable at each
compute. Points of several strategies at one budget sit on one x and their error bars
would cover each other, so each strategy is drawn shifted by a small, fixed factor on the
log x axis (a few percent; the shift is for drawing only: the front is computed, and its
staircase drawn, at the true values, and a ring marks each front cell's drawn marker).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from searchkit.bench.summary import Cell

#: Horizontal shift between neighbouring strategies, in octaves of the log2 x axis.
DODGE_OCTAVES = 0.03
#: Seven markers against ten colours: the (colour, marker) pair repeats only every 70 strategies.
MARKERS = ("o", "s", "^", "D", "v", "P", "X")

#: (Cell attribute, axis label) of each compute axis; FLOPs only when every cell has them.
AXES = (
    ("nfe_mean", "mean NFE per run (model forwards)"),
    ("seconds_mean", "seconds per video (search wall clock)"),
    ("flops_mean", "FLOPs per video"),
)


def pareto_front(x: Sequence[float], y: Sequence[float]) -> list[int]:
    """Indices of the points no other point dominates (lower ``x`` and higher ``y`` are
    better), by ascending ``x``; points with a NaN coordinate take no part."""
    points = [
        (i, a, b)
        for i, (a, b) in enumerate(zip(x, y, strict=True))
        if not (math.isnan(a) or math.isnan(b))
    ]
    front = [
        (a, -b, i)
        for i, a, b in points
        if not any(c <= a and d >= b and (c < a or d > b) for _, c, d in points)
    ]
    return [i for _, _, i in sorted(front)]


def compute_axes(cells: Sequence[Cell]) -> list[tuple[str, str]]:
    """The panels to draw: NFE and seconds always, FLOPs when every cell has them."""
    return [
        (attr, label)
        for attr, label in AXES
        if attr != "flops_mean" or (cells and all(c.flops_mean is not None for c in cells))
    ]


def _colour(k: int) -> tuple[float, ...]:
    """The k-th strategy's colour: tab20's ten dark shades, then its ten light ones."""
    from matplotlib import colormaps

    return colormaps["tab20"]((2 * k + (k // 10) % 2) % 20)


def _panel(ax, cells: Sequence[Cell], attr: str, xlabel: str) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    labels = list(dict.fromkeys(c.label for c in cells))
    shifts = {
        label: 2.0 ** ((k - (len(labels) - 1) / 2) * DODGE_OCTAVES)
        for k, label in enumerate(labels)
    }
    for k, label in enumerate(labels):
        shift = shifts[label]
        group = sorted((c for c in cells if c.label == label), key=lambda c: getattr(c, attr))
        x = [getattr(c, attr) * shift for c in group]
        y = [c.mean for c in group]
        below = [0.0 if math.isnan(c.ci_low) else c.mean - c.ci_low for c in group]
        above = [0.0 if math.isnan(c.ci_high) else c.ci_high - c.mean for c in group]
        style = {"ms": 6, "linestyle": "none"} if len(group) == 1 else {"ms": 4}
        bars = ax.errorbar(
            x,
            y,
            yerr=[below, above],
            capsize=3,
            elinewidth=0.8,
            label=label,
            marker=MARKERS[k % len(MARKERS)],
            color=_colour(k),
            **style,
        )
        if len(group) == 1:
            ax.axhline(y[0], color=bars.lines[0].get_color(), linestyle=":", linewidth=1)
    xs = [getattr(c, attr) for c in cells]
    front = pareto_front(xs, [c.mean for c in cells])
    fx, fy = [xs[i] for i in front], [cells[i].mean for i in front]
    ax.step(fx, fy, where="post", color="0.3", linewidth=2.5, alpha=0.35, label="Pareto front")
    rings = [xs[i] * shifts[cells[i].label] for i in front]  # around the drawn markers
    ax.scatter(rings, fy, s=140, facecolors="none", edgecolors="0.3", linewidths=1.2, zorder=3)
    if attr == "nfe_mean":
        ax.set_xscale("log", base=2)
    else:  # ticks at 1, 2 and 5 per decade, written plainly: readable over a narrow range
        ax.set_xscale("log", base=10)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.grid(True, which="both", alpha=0.3)


def figure(cells: Sequence[Cell], title: str = ""):
    """A matplotlib ``Figure`` (Agg canvas) with one panel per compute axis, fronts marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    axes_spec = compute_axes(cells)
    fig = Figure(figsize=(4.8 * len(axes_spec) + 2.4, 4.6), dpi=120)
    FigureCanvasAgg(fig)  # the Agg canvas: no display, no global pyplot state
    axes = fig.subplots(1, len(axes_spec), sharey=True, squeeze=False)[0]
    for ax, (attr, xlabel) in zip(axes, axes_spec, strict=True):
        _panel(ax, cells, attr, xlabel)
    metric = cells[0].metric if cells else "reward"
    axes[0].set_ylabel(f"mean {metric} (95% interval)")
    if title:
        fig.suptitle(title)
    axes[-1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    return fig


def plot_pareto(cells: Sequence[Cell], path: str | Path, title: str = "") -> Path:
    """Write :func:`figure` as a PNG at ``path``."""
    path = Path(path)
    figure(cells, title).savefig(path)
    return path


#: The earlier name: the figure's file is still ``reward_vs_nfe.png``.
plot_reward_vs_nfe = plot_pareto
