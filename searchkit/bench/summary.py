"""The summary of a sweep: one line per strategy and budget.

For each cell: the number of runs, the size knob chosen, the mean NFE actually spent, the
mean of the *metric* with a 95% Student-t interval (``scipy.stats.t``), the win rate
against the baseline on the same prompt and seed (ties count one half), the mean of the
search's own reward, and the mean wall time of a run.

The metric is what grades the outputs: the oracle reward when every row has one (the
analytic world knows the exact reward of any output), else the first held-out evaluator's
aggregate, else the search reward itself, which the summary then calls *self-graded* (each
output scored by the reward that steered its search). A sweep may name it (``metric``).
Rows are ordered by prompt and seed before any sum, so the summary of a resumed sweep equals
that of an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from scipy import stats

BASELINE = "baseline"


@attrs.frozen
class Cell:
    """The summary of one strategy at one budget."""

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
    win_rate: float | None
    reward_mean: float
    seconds_mean: float

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


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


#: The metric's words in notes and figures.
SELF_GRADED = "self-graded: each output is scored by the reward that steered its search"


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


def summarize(
    rows: Iterable[dict[str, Any]],
    order: Sequence[str] = (),
    baseline: str = BASELINE,
    metric: str | None = None,
) -> list[Cell]:
    """Cells per (label, budget), labels in ``order`` (then by name), budgets ascending."""
    rows = sorted(rows, key=lambda r: (r["prompt_index"], r["prompt"], r["seed"]))
    metric = metric_name(rows, metric)
    base = {
        (r["prompt"], r["seed"]): metric_value(r, metric) for r in rows if r["label"] == baseline
    }
    groups: dict[tuple[str, int | None], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["label"], row["budget_nfe"]), []).append(row)
    rank = {label: i for i, label in enumerate(order)}

    def sort_key(item):
        (label, budget), _ = item
        return (rank.get(label, len(rank)), label, -1 if budget is None else budget)

    cells = []
    for (label, budget), group in sorted(groups.items(), key=sort_key):
        values = [metric_value(r, metric) for r in group]
        mean, low, high = mean_interval(values)
        win = None
        if label != baseline:
            pairs = [
                (metric_value(r, metric), base[(r["prompt"], r["seed"])])
                for r in group
                if (r["prompt"], r["seed"]) in base
            ]
            if pairs:
                win = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs)
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
                win_rate=win,
                reward_mean=float(np.mean([r["reward"] for r in group])),
                seconds_mean=float(np.mean([r["seconds"]["total"] for r in group])),
            )
        )
    return cells


# -- rendering ----------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.{digits}f}"


def _table_rows(cells: Sequence[Cell]) -> tuple[list[str], list[list[str]]]:
    metric = cells[0].metric if cells else "reward"
    header = [
        "strategy",
        "budget NFE",
        "size",
        "runs",
        "mean NFE",
        f"mean {metric}",
        "95% interval",
        "win vs baseline",
        "mean reward",
        "s/run",
    ]
    body = []
    for c in cells:
        knob = f"{c.size_knob}={c.size}" if c.size_knob else "-"
        body.append(
            [
                c.label,
                "fixed" if c.budget_nfe is None else str(c.budget_nfe),
                knob,
                str(c.runs),
                f"{c.nfe_mean:.1f}",
                _fmt(c.mean),
                f"[{_fmt(c.ci_low)}, {_fmt(c.ci_high)}]",
                "-" if c.win_rate is None else f"{100 * c.win_rate:.0f}%",
                _fmt(c.reward_mean),
                _fmt(c.seconds_mean, 4),
            ]
        )
    return header, body


def format_table(cells: Sequence[Cell]) -> str:
    """A plain-text table for the terminal."""
    header, body = _table_rows(cells)
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in body]
    return "\n".join(lines)


def to_markdown(cells: Sequence[Cell], title: str = "") -> str:
    """A markdown table (with a title line when given)."""
    header, body = _table_rows(cells)
    lines = [f"# {title}", ""] if title else []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def to_csv(cells: Sequence[Cell]) -> str:
    """Every field of every cell, one CSV row per cell."""
    buffer = io.StringIO()
    fields = [f.name for f in attrs.fields(Cell)]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for cell in cells:
        writer.writerow({k: ("" if v is None else v) for k, v in cell.to_dict().items()})
    return buffer.getvalue()


def write_summary(
    cells: Sequence[Cell], folder: str | Path, title: str = "", notes: Sequence[str] = ()
) -> dict[str, Path]:
    """Write ``summary.md`` and ``summary.csv`` into ``folder``; returns their paths."""
    folder = Path(folder)
    md = to_markdown(cells, title)
    if notes:
        md += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    paths = {"markdown": folder / "summary.md", "csv": folder / "summary.csv"}
    paths["markdown"].write_text(md, encoding="utf-8")
    paths["csv"].write_text(to_csv(cells), encoding="utf-8")
    return paths
