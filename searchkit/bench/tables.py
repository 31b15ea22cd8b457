"""The summary as tables: quality and cost, for the terminal, markdown and CSV.

Two tables keep the summary readable, one row per cell (a strategy at a budget), groups
(fixed first, then budgets ascending) in order:

* **quality**: runs, the metric's mean and 95% interval, the paired comparison with the
  best of the group (``diff vs best``: this cell's metric minus the best's, mean over the
  shared (prompt, seed) pairs with its 95% interval; the best reads ``best``), the win
  rates against the best, the number of pairs, the paired difference to the baseline and
  the win rate against it, for a cell alone at its budget the same comparison with the
  best cell at the nearest lower budget (``cheaper best``, ``diff vs cheaper``, ``win vs
  cheaper``), then the mean of every other held-out evaluator and of the search reward
  (where it is not the metric);
* **cost**: the size knob, mean NFE, mean FLOPs (when the rows carry them), seconds per
  video and their split (model, decode, reward, other), and the time over the baseline's.

A column is shown only when some cell has a value for it, and no two columns share a name.
The CSV holds every field of every cell under the same rule (nested fields flattened:
``vs_best_diff``, ``vs_baseline_diff``, ``vs_cheaper_diff``, ``evaluator:<name>``,
``seconds_<phase>``; the win rate against the baseline is ``win_rate`` alone).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from searchkit.bench.summary import TIME_SPLIT, Cell
from searchkit.files import atomic_write_text

#: What the columns of the quality table mean, printed under it.
LEGEND = (
    "diff vs best: mean over (prompt, seed) pairs of this strategy's metric minus that of "
    "the best (highest mean) at the same budget, with its paired Student-t 95% interval",
    "win: share of pairs won, ties one half; pairs: (prompt, seed) pairs shared with the best",
)
#: The note on the comparison of lone cells, printed when a cell has one.
CHEAPER_NOTE = (
    "diff vs cheaper: a strategy alone at its budget against the best at the nearest lower "
    "budget (cheaper best), pair by pair: does it beat the best search that spends less?"
)
#: The note on the comparison with the baseline, printed when a cell has one.
BASELINE_NOTE = (
    "diff vs baseline: mean over (prompt, seed) pairs of this strategy's metric minus the "
    "baseline's, with its paired Student-t 95% interval"
)


def _notes(cells: Sequence[Cell]) -> list[str]:
    notes = list(LEGEND) if any(c.best for c in cells) else []
    if any(c.vs_baseline is not None for c in cells):
        notes.append(BASELINE_NOTE)
    if any(c.vs_cheaper is not None for c in cells):
        notes.append(CHEAPER_NOTE)
    return notes


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.{digits}f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _budget(cell: Cell) -> str:
    if cell.budget_flops is not None:
        return f"{cell.budget_flops:.3g}"
    return "fixed" if cell.budget_nfe is None else str(cell.budget_nfe)


def _budget_header(cells: Sequence[Cell]) -> str:
    return "budget FLOPs" if any(c.budget_flops is not None for c in cells) else "budget NFE"


def _interval(p: Any) -> str:
    return "-" if p is None else f"{_fmt(p.diff)} [{_fmt(p.low)}, {_fmt(p.high)}]"


def _diff(cell: Cell) -> str:
    return "best" if cell.best else _interval(cell.vs_best)


Column = tuple[str, Callable[[Cell], str]]


def _keep(columns: Sequence[tuple[str, Callable[[Cell], str], bool]]) -> list[Column]:
    """The columns flagged to stay; names are checked to be distinct."""
    kept = [(name, get) for name, get, shown in columns if shown]
    names = [name for name, _ in kept]
    if len(set(names)) != len(names):
        raise ValueError(f"summary columns must be distinct, got {names}")
    return kept


def quality_columns(cells: Sequence[Cell]) -> list[Column]:
    metric = cells[0].metric if cells else "reward"
    evaluators = list(dict.fromkeys(n for c in cells for n in c.evaluator_means))
    compared = any(c.best for c in cells)
    cheaper = any(c.vs_cheaper is not None for c in cells)
    columns = [
        ("strategy", lambda c: c.label, True),
        (_budget_header(cells), _budget, True),
        ("runs", lambda c: str(c.runs), True),
        (f"mean {metric}", lambda c: _fmt(c.mean), True),
        ("95% interval", lambda c: f"[{_fmt(c.ci_low)}, {_fmt(c.ci_high)}]", True),
        ("diff vs best [95%]", _diff, compared),
        (
            "win vs best",
            lambda c: "-" if c.vs_best is None else _percent(c.vs_best.win_rate),
            compared,
        ),
        ("pairs", lambda c: "-" if c.vs_best is None else str(c.vs_best.pairs), compared),
        (
            "diff vs baseline [95%]",
            lambda c: _interval(c.vs_baseline),
            any(c.vs_baseline is not None for c in cells),
        ),
        (
            "win vs baseline",
            lambda c: _percent(c.win_rate),
            any(c.win_rate is not None for c in cells),
        ),
        ("cheaper best", lambda c: c.cheaper or "-", cheaper),
        ("diff vs cheaper [95%]", lambda c: _interval(c.vs_cheaper), cheaper),
        (
            "win vs cheaper",
            lambda c: "-" if c.vs_cheaper is None else _percent(c.vs_cheaper.win_rate),
            cheaper,
        ),
    ]
    columns += [
        (f"mean {name}", lambda c, n=name: _fmt(c.evaluator_means.get(n)), True)
        for name in evaluators
    ]
    columns.append(
        (
            "mean search reward",
            lambda c: _fmt(c.reward_mean),
            any(c.reward_mean is not None for c in cells),
        )
    )
    return _keep(columns)


def cost_columns(cells: Sequence[Cell]) -> list[Column]:
    phases = [p for p in TIME_SPLIT if any(p in c.seconds_split for c in cells)]
    columns = [
        ("strategy", lambda c: c.label, True),
        (_budget_header(cells), _budget, True),
        ("size", lambda c: f"{c.size_knob}={c.size}" if c.size_knob else "-", True),
        ("mean NFE", lambda c: f"{c.nfe_mean:.1f}", True),
        (
            "FLOPs",
            lambda c: "-" if c.flops_mean is None else f"{c.flops_mean:.3g}",
            any(c.flops_mean is not None for c in cells),
        ),
        ("s/video", lambda c: _fmt(c.seconds_mean, 4), True),
    ]
    columns += [
        (f"{phase} s", lambda c, p=phase: _fmt(c.seconds_split.get(p), 4), True) for phase in phases
    ]
    columns.append(
        (
            "time vs baseline",
            lambda c: "-" if c.time_ratio is None else f"{c.time_ratio:.2f}x",
            any(c.time_ratio is not None for c in cells),
        )
    )
    return _keep(columns)


def _render(cells: Sequence[Cell], columns: list[Column]) -> tuple[list[str], list[list[str]]]:
    return [name for name, _ in columns], [[get(c) for _, get in columns] for c in cells]


def _text(cells: Sequence[Cell], columns: list[Column]) -> list[str]:
    header, body = _render(cells, columns)
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    line = lambda row: "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()  # noqa: E731
    lines = [line(header), "  ".join("-" * w for w in widths)]
    for i, (cell, row) in enumerate(zip(cells, body, strict=True)):
        if i and cell.budget != cells[i - 1].budget:
            lines.append("")  # a blank line between budgets
        lines.append(line(row))
    return lines


def format_table(cells: Sequence[Cell]) -> str:
    """The quality table, its legend and the cost table, as plain text for the terminal."""
    lines = ["quality", "", *_text(cells, quality_columns(cells)), ""]
    lines += [f"  {note}" for note in _notes(cells)]
    lines += ["", "cost", "", *_text(cells, cost_columns(cells))]
    return "\n".join(lines)


def _markdown(cells: Sequence[Cell], columns: list[Column]) -> list[str]:
    header, body = _render(cells, columns)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in body]


def to_markdown(cells: Sequence[Cell], title: str = "") -> str:
    """Markdown: the quality table with its legend, then the cost table."""
    lines = [f"# {title}", ""] if title else []
    lines += ["## Quality", "", *_markdown(cells, quality_columns(cells)), ""]
    if _notes(cells):
        lines += [*(f"- {note}" for note in _notes(cells)), ""]
    lines += ["## Cost", "", *_markdown(cells, cost_columns(cells))]
    return "\n".join(lines) + "\n"


def csv_record(cell: Cell) -> dict[str, Any]:
    """One cell as a flat record: nested fields get prefixed names, ``None`` stays ``None``."""
    record: dict[str, Any] = {}
    for field in attrs.fields(Cell):
        value = getattr(cell, field.name)
        if field.name in ("vs_best", "vs_baseline", "vs_cheaper"):
            # the win rate against the baseline is the field win_rate already
            keys = ("pairs", "diff", "low", "high")
            keys += ("win_rate",) if field.name != "vs_baseline" else ()
            for key in keys:
                record[f"{field.name}_{key}"] = None if value is None else getattr(value, key)
        elif field.name == "evaluator_means":
            record.update({f"evaluator:{name}": mean for name, mean in value.items()})
        elif field.name == "seconds_split":
            record.update({f"seconds_{phase}": s for phase, s in value.items()})
        else:
            record[field.name] = value
    return record


def to_csv(cells: Sequence[Cell]) -> str:
    """Every field of every cell, one CSV row per cell; fields no cell has are left out."""
    records = [csv_record(c) for c in cells]
    names = list(dict.fromkeys(k for r in records for k in r))
    names = [n for n in names if any(r.get(n) is not None for r in records)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({n: "" if record.get(n) is None else record[n] for n in names})
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
    atomic_write_text(paths["markdown"], md)
    atomic_write_text(paths["csv"], to_csv(cells))
    return paths
