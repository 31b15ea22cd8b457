"""The local executor in worker processes: the rows of one process, failures reported, the
check before any search, videos byte for byte, workers that die with their driver."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import attrs
import pytest

from searchkit import Baseline
from searchkit.bench import ConfigError, SweepConfig, executors, read_results, run_sweep, runner
from searchkit.bench.executors import (
    RUNS_PER_WORKER,
    resolve_workers,
    run_local,
    run_processes,
)
from searchkit.bench.plan import Run
from searchkit.bench.store import RESULTS_FILE
from searchkit.cli import main
from searchkit.context import SearchContext
from tests.bench_helpers import (
    assert_same_videos,
    one_vbench_prompt_sweep,
    sweep_in_flight,
    tiny_sweep,
    without_timing,
    write_config,
)


@attrs.frozen
class Broken(Baseline):
    name = "broken"

    def search(self, ctx: SearchContext):
        raise RuntimeError("this search always fails")


@attrs.frozen
class Dies(Baseline):
    """Ends its worker process at once, as a segfault or the out-of-memory killer would."""

    name = "dies"

    def search(self, ctx: SearchContext):
        os._exit(3)


@attrs.frozen
class Sleeps(Baseline):
    """A search that takes a minute."""

    name = "sleeps"

    def search(self, ctx: SearchContext):
        time.sleep(60)
        return Baseline.search(self, ctx)


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def update(self, k: int) -> None:
        self.n += k


def _no_world_in_the_driver(*args, **kwargs):
    raise AssertionError("the driver built a world")


def test_worker_processes_give_the_rows_of_one_process(tmp_path, monkeypatch):
    config = SweepConfig.from_dict(tiny_sweep(seeds=2))
    alone = run_sweep(config, tmp_path / "one", progress=False)
    # the driver dispatches and writes only; the workers (spawned processes) build the world
    monkeypatch.setattr(runner, "build_backend", _no_world_in_the_driver)
    monkeypatch.setattr(runner, "build_reward", _no_world_in_the_driver)
    shared = run_sweep(config, tmp_path / "two", progress=False, workers=2)
    assert alone.workers == 1 and shared.workers == 2
    assert shared.complete and len(shared.rows) == alone.planned == 12
    # the outcome lists rows in plan order whatever order the workers finished in
    assert [r["key"] for r in shared.rows] == [r["key"] for r in alone.rows]
    assert [without_timing(r) for r in shared.rows] == [without_timing(r) for r in alone.rows]
    written, _, tail = read_results(tmp_path / "two" / RESULTS_FILE)
    assert tail is None and sorted(r["key"] for r in written) == sorted(
        r["key"] for r in alone.rows
    )
    assert (tmp_path / "two" / "summary.md").read_text().count("best-of-n") == (
        tmp_path / "one" / "summary.md"
    ).read_text().count("best-of-n")


def test_a_failing_run_in_a_worker_is_reported_and_the_rest_finish(tmp_path, caplog):
    config = SweepConfig.from_dict(tiny_sweep())
    runs = [
        Run(label, label, strategy, None, 16.0, "a red fox", 0, (), seed)
        for label, strategy in [("broken", Broken()), ("baseline", Baseline())]
        for seed in (0, 1)
    ]
    rows, progress = [], Counter()
    with caplog.at_level(logging.ERROR, logger="searchkit.bench"):
        failures = run_processes(config, runs, rows.append, progress, workers=2)
    assert sorted((r["label"], r["seed"]) for r in rows) == [("baseline", 0), ("baseline", 1)]
    assert progress.n == 2
    assert sorted((f.run.label, f.run.seed, f.attempts) for f in failures) == [
        ("broken", 0, 1),
        ("broken", 1, 1),
    ]
    assert all(f.error == "RuntimeError: this search always fails" for f in failures)
    # the log carries the worker's traceback, down to the line that raised
    assert "this search always fails" in caplog.text and "in search" in caplog.text


def test_a_worker_that_dies_fails_the_unfinished_runs_and_the_sweep_ends(tmp_path):
    config = SweepConfig.from_dict(tiny_sweep())
    runs = [Run("dies", "dies", Dies(), None, 16.0, "a red fox", 0, (), 0)] + [
        Run("baseline", "baseline", Baseline(), None, 16.0, "a red fox", 0, (), seed)
        for seed in range(6)
    ]
    rows, progress = [], Counter()
    failures = run_processes(config, runs, rows.append, progress, workers=2)
    assert len(rows) + len(failures) == len(runs)  # every run is a row or a failure
    assert "dies" in {f.run.label for f in failures}
    assert all("a worker process died" in f.error for f in failures)


def test_a_row_that_cannot_be_written_stops_the_workers_at_once(tmp_path):
    config = SweepConfig.from_dict(tiny_sweep())
    runs = [
        Run("sleeps", "sleeps", Sleeps(), None, 16.0, "a red fox", 0, (), 0),
        Run("baseline", "baseline", Baseline(), None, 16.0, "a red fox", 0, (), 0),
    ]

    def sink(row):
        raise OSError("No space left on device")

    started = time.monotonic()
    with pytest.raises(OSError, match="No space left"):
        run_processes(config, runs, sink, Counter(), workers=2)
    # the sleeping search was stopped, not waited for (it would take a minute)
    assert time.monotonic() - started < 45


def test_an_incompatible_strategy_fails_in_the_preflight_before_any_search(tmp_path):
    sweep = tiny_sweep(
        strategies=["baseline", {"name": "rgrp", "options": {"schedule": [2, 9]}}], budgets_nfe=[64]
    )
    with pytest.raises(
        ConfigError, match=r"strategy 'rgrp' cannot run on backend 'analytic'.*\[0, 8\)"
    ):
        run_sweep(SweepConfig.from_dict(sweep), tmp_path / "out", progress=False, workers=2)
    assert not (tmp_path / "out").exists()  # not even the baseline ran; no folder left


def test_workers_save_the_videos_one_process_saves(tmp_path):
    config = SweepConfig.from_dict(one_vbench_prompt_sweep(tmp_path, seeds=2))
    run_sweep(config, tmp_path / "one", progress=False, save_videos=tmp_path / "one-videos")
    shared = run_sweep(
        config, tmp_path / "two", progress=False, workers=2, save_videos=tmp_path / "two-videos"
    )
    # the workers send frames as uint8, the driver writes them: the same files, byte for byte
    assert shared.complete
    # 3 configurations x seeds 0, 1
    assert assert_same_videos(tmp_path / "one-videos", tmp_path / "two-videos") == 3 * 2


@pytest.mark.parametrize(
    ("workers", "threads", "runs", "cores", "expected"),
    [
        (1, 1, 1000, 8, 1),
        (3, 1, 1000, 8, 3),  # as asked, even past the cores
        (12, 1, 5, 8, 5),  # never more than the runs
        ("auto", None, 10_000, 8, 1),  # torch keeps its threads: one process uses them all
        ("auto", 1, 10_000, 8, 8),  # one per core
        ("auto", 2, 10_000, 8, 4),  # one per torch_threads cores
        ("auto", 4, 10_000, 2, 1),  # more threads than cores: one
        ("auto", 1, 2 * RUNS_PER_WORKER, 8, 2),  # no more than one per RUNS_PER_WORKER runs
        ("auto", 1, RUNS_PER_WORKER - 1, 8, 1),
        ("auto", 1, 0, 8, 1),
    ],
)
def test_how_many_workers(monkeypatch, workers, threads, runs, cores, expected):
    monkeypatch.setattr(executors, "usable_cores", lambda: cores)
    config = SweepConfig.from_dict(tiny_sweep(torch_threads=threads))
    assert resolve_workers(workers, config, runs) == expected


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "two", None, "Auto"])
def test_a_bad_worker_count_is_refused_before_anything_runs(tmp_path, bad):
    config = SweepConfig.from_dict(tiny_sweep())
    with pytest.raises(ValueError, match=r"workers must be a positive integer or 'auto', got "):
        run_sweep(config, tmp_path / "out", progress=False, workers=bad)
    assert not (tmp_path / "out").exists()


def test_run_local_reads_auto_as_run_sweep_does():
    config = SweepConfig.from_dict(tiny_sweep())
    runs = [
        Run("baseline", "baseline", Baseline(), None, 16.0, "a red fox", 0, (), s) for s in (0, 1)
    ]
    rows, progress = [], Counter()
    assert run_local(config, runs, rows.append, progress, workers="auto") == []
    assert [r["seed"] for r in rows] == [0, 1] and progress.n == 2  # in plan order: one process
    with pytest.raises(ValueError, match="workers must be a positive integer or 'auto', got 0"):
        run_local(config, [], rows.append, progress, workers=0)


def test_workers_are_for_the_local_executor(tmp_path):
    config = SweepConfig.from_dict(tiny_sweep())
    with pytest.raises(ValueError, match="workers is for the local executor, got 2 with 'ray'"):
        run_sweep(config, tmp_path / "out", progress=False, executor="ray", workers=2)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "0"], "--workers must be >= 1, got 0"),
        (["--workers", "two"], "--workers must be an integer, got 'two'"),
        (["--workers", "2", "--executor", "ray"], "--workers is for --executor local"),
    ],
)
def test_bad_workers_flags(tmp_path, capsys, flags, message):
    config = write_config(tmp_path, tiny_sweep())
    with pytest.raises(SystemExit) as stopped:
        code = main(["bench", "--config", str(config), "--out", str(tmp_path / "o"), *flags])
        raise SystemExit(code)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _ignores_sigint(pid: int) -> bool:
    status = (Path("/proc") / str(pid) / "status").read_text()
    ignored = int(
        next(line for line in status.splitlines() if line.startswith("SigIgn:")).split()[1], 16
    )
    return bool(ignored & (1 << (signal.SIGINT - 1)))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_sigkill_with_workers_then_resume_runs_every_run_once_and_leaves_no_worker(
    tmp_path, capsys
):
    sweep = tiny_sweep(num_steps=20, budgets_nfe=[40, 80, 160], seeds=12)  # 96 runs
    config_path = write_config(tmp_path, sweep)
    killed = tmp_path / "killed"
    results = killed / RESULTS_FILE
    with sweep_in_flight(config_path, killed, "--workers", "2") as process:
        workers = _children(process.pid)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert len(workers) >= 2  # the two workers (and multiprocessing's resource tracker)
    # each worker notices within half a second that its driver is gone, and exits
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers), "a worker outlived its driver"
    rows_before, _, _ = read_results(results)
    assert 5 <= len(rows_before) < 96

    resume = ["bench", "--config", str(config_path), "--out", str(killed), "--resume"]
    assert main([*resume, "--no-progress", "--workers", "2"]) == 0
    assert f"of 96 runs ({len(rows_before)} reused) in " in (out := capsys.readouterr().out)
    assert "(2 worker processes)" in out
    resumed, _, tail = read_results(results)
    assert tail is None
    keys = [row["key"] for row in resumed]
    assert len(keys) == len(set(keys)) == 96  # every run exactly once
    assert resumed[: len(rows_before)] == rows_before  # earlier rows untouched
    straight = run_sweep(SweepConfig.from_dict(sweep), tmp_path / "straight", progress=False)
    assert {r["key"]: without_timing(r) for r in resumed} == {
        r["key"]: without_timing(r) for r in straight.rows
    }


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_stops_the_sweep_and_its_workers_cleanly(tmp_path, workers):
    sweep = tiny_sweep(num_steps=20, budgets_nfe=[40, 80, 160], seeds=12)  # 96 runs
    config_path = write_config(tmp_path, sweep)
    out = tmp_path / "out"
    # a session of its own: Ctrl-C in a terminal signals every process of the group
    with sweep_in_flight(config_path, out, "--workers", workers, start_new_session=True) as process:
        children = _children(process.pid)
        # the workers ignore SIGINT: the sweep's process stops them, no worker prints a
        # traceback (so do multiprocessing's own helpers)
        assert len(children) >= (2 if workers == "2" else 0)
        assert all(_ignores_sigint(pid) for pid in children)
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=30)
    err = err.decode()
    assert process.returncode == 130, err
    assert "Traceback" not in err, err  # neither the sweep's process nor a worker's
    assert "searchkit bench: interrupted; the finished runs are kept: rerun with --resume" in err
    # the workers are stopped and joined; multiprocessing's resource tracker follows its parent
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in children), "a worker outlived the sweep"
    rows, _, _ = read_results(out / RESULTS_FILE)
    assert 5 <= len(rows) < 96
    assert main(["bench", "--config", str(config_path), "--out", str(out), "--resume"]) == 0
    keys = [row["key"] for row in read_results(out / RESULTS_FILE)[0]]
    assert len(keys) == len(set(keys)) == 96
