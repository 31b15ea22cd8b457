"""The paper's table: each configuration of a sweep, its compute, its evaluators and VBench-2.0.

The LatSearch paper compares fixed configurations by quality and wall-clock time: a row per
method with its VBench-2.0 scores and its seconds per video. After ``searchkit bench
--save-videos`` and VBench-2.0's evaluation of each configuration folder into
``{evaluation}/{configuration}`` (the folder names of :mod:`searchkit.bench.videos`)::

    python -m searchkit.bench.paper_table bench-results/latsearch-paper evaluation_results

prints one markdown row per configuration, in the sweep's order:

* ``NFE``: mean model forwards per video, as measured;
* ``s/video``: mean wall-clock seconds of the search (``seconds.total`` of the rows: model,
  decode, reward and the rest; the held-out evaluators are not part of it), and ``x
  baseline``, its ratio to the ``baseline`` entry's;
* the mean of each held-out evaluator's aggregate score;
* VBench-2.0's five categories and Total, in percent (:func:`~searchkit.bench.vbench_results.
  category_scores`: a category appears once all its dimensions are scored), or ``–`` where
  the configuration has no results yet.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from searchkit.bench.store import RESULTS_FILE, read_results
from searchkit.bench.summary import BASELINE
from searchkit.bench.vbench_results import CATEGORIES, category_scores, read_vbench_scores
from searchkit.bench.videos import configuration_folder

_DASH = "–"


def configurations(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by configuration folder name, in order of first appearance."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(configuration_folder(row["label"], row["budget_nfe"]), []).append(row)
    return groups


def paper_rows(
    rows: Sequence[dict[str, Any]], vbench: Mapping[str, Mapping[str, float]]
) -> list[dict[str, Any]]:
    """One record per configuration: compute, evaluator means and VBench-2.0 categories."""
    groups = configurations(rows)
    seconds = {
        name: float(np.mean([r["seconds"]["total"] for r in group]))
        for name, group in groups.items()
    }
    base = seconds.get(BASELINE)
    records = []
    for name, group in groups.items():
        evaluators: dict[str, list[float]] = {}
        for row in group:
            for evaluator, graded in (row.get("evaluators") or {}).items():
                evaluators.setdefault(evaluator, []).append(graded["total"])
        records.append(
            {
                "configuration": name,
                "videos": len(group),
                "nfe": float(np.mean([r["nfe"] for r in group])),
                "seconds": seconds[name],
                "vs_baseline": None if not base else seconds[name] / base,
                "evaluators": {k: float(np.mean(v)) for k, v in evaluators.items()},
                "vbench": category_scores(vbench.get(name, {})),
            }
        )
    return records


def format_paper_table(records: Sequence[dict[str, Any]]) -> str:
    """The records as one markdown table (VBench-2.0 in percent)."""
    evaluators = list(dict.fromkeys(k for r in records for k in r["evaluators"]))
    categories = [c for c in (*CATEGORIES, "Total") if any(c in r["vbench"] for r in records)]
    head = ["configuration", "videos", "NFE", "s/video", "x baseline", *evaluators, *categories]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in records:
        cells = [
            r["configuration"],
            str(r["videos"]),
            f"{r['nfe']:.0f}",
            f"{r['seconds']:.1f}" if r["seconds"] >= 10 else f"{r['seconds']:.3g}",
            _DASH if r["vs_baseline"] is None else f"{r['vs_baseline']:.2f}",
            *(f"{r['evaluators'][e]:.3f}" if e in r["evaluators"] else _DASH for e in evaluators),
            *(f"{100 * r['vbench'][c]:.2f}" if c in r["vbench"] else _DASH for c in categories),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paper_table(bench: str | os.PathLike, evaluation: str | os.PathLike | None = None) -> str:
    """The table of a sweep folder, with VBench-2.0's results under ``evaluation`` if given."""
    rows, _, _ = read_results(Path(bench) / RESULTS_FILE)
    if not rows:
        raise FileNotFoundError(f"no results in {str(Path(bench) / RESULTS_FILE)!r}")
    vbench = {}
    if evaluation is not None:
        for name in configurations(rows):
            try:
                vbench[name] = read_vbench_scores(Path(evaluation) / name)
            except FileNotFoundError:  # not evaluated yet
                continue
    return format_paper_table(paper_rows(rows, vbench))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) not in (1, 2):
        print(
            "usage: python -m searchkit.bench.paper_table BENCH_FOLDER [EVALUATION_FOLDER]",
            file=sys.stderr,
        )
        return 2
    print(paper_table(*argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
