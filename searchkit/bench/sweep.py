"""Running a sweep end to end: check, plan, execute what is missing, summarise, plot."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from pathlib import Path
from typing import Any

import attrs
from tqdm.auto import tqdm

from searchkit.bench.config import SweepConfig
from searchkit.bench.executors import (
    EXECUTORS,
    Failure,
    check_workers,
    resolve_workers,
    run_local,
    run_ray,
)
from searchkit.bench.plan import plan_sweep
from searchkit.bench.plot import plot_reward_vs_nfe
from searchkit.bench.store import RESULTS_FILE, ResultsStore, read_results
from searchkit.bench.summary import SELF_GRADED, Cell, summarize
from searchkit.bench.tables import write_summary
from searchkit.bench.vbench import LayoutReport
from searchkit.bench.videos import SweepVideos, check_sweep_fps

log = logging.getLogger("searchkit.bench")


@attrs.frozen
class SweepOutcome:
    """What a sweep left behind: its rows (plan order), summary cells, failures and files."""

    folder: Path
    planned: int
    reused: int
    rows: list[dict[str, Any]]
    cells: list[Cell]
    failures: list[Failure]
    files: dict[str, Path]
    ignored: int
    discarded: str | None
    seconds: float
    #: With ``save_videos``: per configuration folder, what VBench-2.0 will miss or trip on.
    videos: dict[str, LayoutReport] | None = None
    #: Finished runs run again only because their video was missing.
    rerun_for_videos: int = 0
    #: The processes the searches ran in (the local executor's workers; 1 for Ray's driver).
    workers: int = 1

    @property
    def complete(self) -> bool:
        return not self.failures and len(self.rows) == self.planned


def grading(config: SweepConfig, metric: str) -> str:
    """What the metric is to the runs it grades, in words: the exact reward, held out, or
    self-graded (for every entry or for the entries named)."""
    if metric == "oracle":
        return " (the exact reward of the output)"
    graded = config.self_graded(metric)
    if metric == "reward" or (graded and len(graded) == len(config.strategies)):
        return f" ({SELF_GRADED})"
    if graded:
        return (
            f" (held out, except for {', '.join(graded)}: self-graded, their search reward is "
            f"{metric})"
        )
    return " (a held-out evaluator, not seen by the search)"


def run_sweep(
    config: SweepConfig,
    out: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    executor: str = "local",
    address: str | None = None,
    retries: int = 2,
    workers: int | str = 1,
    progress: bool = True,
    save_videos: str | Path | None = None,
    fps: int = 16,
) -> SweepOutcome:
    """Run the runs of ``config`` that ``out`` does not hold yet, then summarise all of them.

    Checks the output folder and plans every run (matching budgets against the backend's
    compute profile, without building it) before any compute; the executor builds the world
    and checks every strategy against it before the first search. Bad input raises
    ``ValueError`` naming the field. Rows are written by this process
    only, one line per finished run. Failed runs are returned in the outcome (and left for
    a later ``resume``), never dropped.

    ``workers`` (the local executor only) is the number of processes the searches run in,
    or ``"auto"`` (:func:`~searchkit.bench.executors.resolve_workers`: one per
    ``torch_threads`` cores for a large sweep that fixes ``torch_threads``, else one). More
    than one gives the same rows but for their wall times, written as runs finish.

    ``save_videos`` is a folder for every output video in VBench-2.0's layout, one folder per
    configuration (:mod:`searchkit.bench.videos`), checked and claimed before any compute; a
    finished run whose video is missing there runs again (its row is kept).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    check_workers(workers)
    if executor != "local" and workers not in (1, "auto"):
        raise ValueError(f"workers is for the local executor, got {workers!r} with {executor!r}")
    check_sweep_fps(fps)
    started = time.perf_counter()
    folder = Path(out)
    config_dict, fingerprint = config.to_dict(), config.fingerprint()
    ResultsStore.check(folder, config_dict, fingerprint, resume=resume, force=force)
    runs = plan_sweep(config)
    videos = None
    if save_videos is not None:
        videos = SweepVideos.prepare(config, runs, save_videos, fps=fps, force=force)
    done = set() if force else {row["key"] for row in read_results(folder / RESULTS_FILE)[0]}
    todo = [run for run in runs if run.key not in done]
    reused = len(runs) - len(todo)
    again = [] if videos is None else [r for r in runs if r.key in done and videos.missing(r)]
    todo += again
    processes = resolve_workers(workers, config, len(todo)) if executor == "local" else 1
    with contextlib.ExitStack() as stack:
        opened: list[ResultsStore] = []

        def open_store() -> None:  # once the strategies passed their check: a failed check
            # leaves the output folder as it was (no new folder, no sweep.json)
            store = ResultsStore.open(folder, config_dict, fingerprint, resume=resume, force=force)
            opened.append(stack.enter_context(store))
            if store.discarded is not None:
                log.warning(
                    "discarded a cut-short last line of %s (a run in flight when the last "
                    "sweep stopped): %.80s",
                    store.results_path,
                    store.discarded,
                )

        def append(row: dict[str, Any]) -> None:  # a run redone for its video keeps its row
            if row["key"] not in opened[0]:
                opened[0].append(row)

        bar = tqdm(
            total=len(runs) + len(again),
            initial=reused,
            unit="run",
            desc=config.name,
            disable=not progress,
            file=sys.stderr,
            dynamic_ncols=True,
            smoothing=0.05,
        )
        try:
            keep = None if videos is None else videos.save
            if executor == "local":
                failures = run_local(
                    config,
                    todo,
                    append,
                    bar,
                    videos=keep,
                    checked=open_store,
                    workers=processes,
                )
            else:
                failures = run_ray(
                    config,
                    todo,
                    append,
                    bar,
                    address=address,
                    retries=retries,
                    videos=keep,
                    checked=open_store,
                )
        finally:
            bar.close()
        if not opened:
            open_store()
        store = opened[0]
        by_key = {row["key"]: row for row in store.rows}
        rows = [by_key[run.key] for run in runs if run.key in by_key]
        ignored = len(store.rows) - len(rows)

    cells = summarize(rows, order=[spec.label for spec in config.strategies], metric=config.metric)
    metric = cells[0].metric if cells else "-"
    notes = [f"{len(rows)} of {len(runs)} planned runs; metric: {metric}" + grading(config, metric)]
    if metric != "reward" and all(c.reward_mean is None for c in cells):
        notes.append(
            f"the search reward equals the {metric} on every output: one column shows both"
        )
    if failures:
        notes.append(f"{len(failures)} runs failed: " + "; ".join(f.describe() for f in failures))
    if ignored:
        notes.append(
            f"{ignored} rows in the results file belong to another configuration and are left out"
        )
    files = {"results": store.results_path}
    if cells:
        files.update(
            write_summary(cells, folder, title=f"searchkit bench: {config.name}", notes=notes)
        )
        files["figure"] = plot_reward_vs_nfe(
            cells, folder / "reward_vs_nfe.png", title=f"{config.name}: quality against compute"
        )
    return SweepOutcome(
        folder=folder,
        planned=len(runs),
        reused=reused,
        rows=rows,
        cells=cells,
        failures=failures,
        files=files,
        ignored=ignored,
        discarded=store.discarded,
        seconds=time.perf_counter() - started,
        videos=None if videos is None else videos.reports(),
        rerun_for_videos=len(again),
        workers=processes,
    )
