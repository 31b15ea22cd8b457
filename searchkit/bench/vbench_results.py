"""VBench-2.0's scores, read back from its result files, as one table.

VBench-2.0's ``evaluate.py`` writes ``{output_path}/results_{time}_eval_results.json`` (see
``VBench2.evaluate`` in its ``vbench2/__init__.py``): a JSON object mapping each evaluated
dimension to ``[score, per_video]``, where ``score`` is the dimension's mean in ``[0, 1]`` and
``per_video`` a list of ``{"video_path": ..., "video_results": ...}``. Beside it lies
``results_{time}_full_info.json``, the list of videos it read, which we skip. Its
``scripts/cal_final_score.py`` takes the first element of each entry and averages dimensions
into five categories, whose mean is the Total Score (README, "How to Calculate Total
Score"); :func:`category_scores` does the same, and leaves a category out unless every one of
its dimensions was scored (the reference counts a missing dimension as 0).

    python -m searchkit.bench.vbench_results baseline=evaluation_results/baseline rgrp=...

prints one markdown table, a column per run, in percent as on the VBench leaderboard.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from searchkit.bench.vbench import DIMENSIONS
from searchkit.errors import FileFormatError, MissingFileError

RESULTS_GLOB = "*_eval_results.json"

#: VBench-2.0's categories and their dimensions (README, "How to Calculate Total Score").
CATEGORIES: dict[str, tuple[str, ...]] = {
    "Creativity": ("Diversity", "Composition"),
    "Commonsense": ("Motion_Rationality", "Instance_Preservation"),
    "Controllability": (
        "Dynamic_Spatial_Relationship",
        "Dynamic_Attribute",
        "Motion_Order_Understanding",
        "Human_Interaction",
        "Complex_Landscape",
        "Complex_Plot",
        "Camera_Motion",
    ),
    "Human Fidelity": ("Human_Anatomy", "Human_Identity", "Human_Clothes"),
    "Physics": ("Mechanics", "Thermotics", "Material", "Multi-View_Consistency"),
}


def result_files(path: str | os.PathLike) -> list[Path]:
    """``path`` if it is a file, else every ``*_eval_results.json`` under it, sorted."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise MissingFileError(f"VBench-2.0 results {str(path)!r} do not exist")
    files = sorted(path.rglob(RESULTS_GLOB))
    if not files:
        raise MissingFileError(f"no {RESULTS_GLOB} under {str(path)!r}")
    return files


def read_vbench_scores(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> dict[str, float]:
    """Each dimension's score from VBench-2.0 result files (or folders holding them).

    A dimension scored in two files is an error naming both: pass the one you mean.
    """
    paths = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    scores: dict[str, float] = {}
    source: dict[str, Path] = {}
    for file in (f for p in paths for f in result_files(p)):
        try:
            payload = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise FileFormatError(
                f"VBench-2.0 results {str(file)!r} are not valid JSON: {error}"
            ) from None
        if not isinstance(payload, dict):
            raise FileFormatError(
                f"VBench-2.0 results {str(file)!r} must be an object of dimensions"
            )
        for dimension, entry in payload.items():
            where = f"VBench-2.0 results {str(file)!r}, dimension {dimension!r}"
            if dimension not in DIMENSIONS:
                raise FileFormatError(f"{where}: not a VBench-2.0 dimension")
            if (
                not isinstance(entry, list)
                or not entry
                or isinstance(entry[0], bool)
                or not isinstance(entry[0], int | float)
            ):
                raise FileFormatError(
                    f"{where}: expected [score, per_video], got {str(entry)[:80]}"
                )
            if dimension in scores:
                raise FileFormatError(f"{where}: also scored in {str(source[dimension])!r}")
            scores[dimension], source[dimension] = float(entry[0]), file
    return scores


def category_scores(scores: Mapping[str, float]) -> dict[str, float]:
    """Each category whose dimensions are all scored, and ``Total`` once all five are."""
    categories = {
        name: sum(scores[d] for d in dims) / len(dims)
        for name, dims in CATEGORIES.items()
        if all(d in scores for d in dims)
    }
    if len(categories) == len(CATEGORIES):
        categories["Total"] = sum(categories.values()) / len(categories)
    return categories


def vbench_table(runs: Mapping[str, Mapping[str, float]]) -> str:
    """A markdown table: a row per dimension scored in any run, then the categories and Total."""
    labels = list(runs)
    rows = [
        (d.replace("_", " "), [runs[k].get(d) for k in labels])
        for dims in CATEGORIES.values()
        for d in dims
        if any(d in runs[k] for k in labels)
    ]
    derived = {k: category_scores(runs[k]) for k in labels}
    rows += [
        (f"**{name}**", [derived[k].get(name) for k in labels])
        for name in (*CATEGORIES, "Total")
        if any(name in derived[k] for k in labels)
    ]
    lines = ["| dimension | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    lines += [
        f"| {name} | " + " | ".join("–" if v is None else f"{100 * v:.2f}%" for v in values) + " |"
        for name, values in rows
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or any("=" not in a for a in argv):
        print(
            "usage: python -m searchkit.bench.vbench_results LABEL=PATH [LABEL=PATH ...]",
            file=sys.stderr,
        )
        return 2
    runs = {}
    for arg in argv:
        label, path = arg.split("=", 1)
        runs[label] = read_vbench_scores(path)
    print(vbench_table(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
