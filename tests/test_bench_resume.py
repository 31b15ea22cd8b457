"""A sweep killed with SIGKILL and resumed: every run exactly once, the same summary."""

from __future__ import annotations

import os
import signal

from searchkit.bench import SweepConfig, read_results, run_sweep, summarize
from searchkit.bench.store import RESULTS_FILE
from searchkit.cli import main
from tests.bench_helpers import (
    cells_without_timing,
    csv_without_timing,
    sweep_in_flight,
    tiny_sweep,
    without_timing,
    write_config,
)


def test_sigkill_then_resume_equals_an_uninterrupted_sweep(tmp_path):
    sweep = tiny_sweep(num_steps=20, budgets_nfe=[40, 80, 160], seeds=12)  # 96 runs
    config_path = write_config(tmp_path, sweep)
    killed = tmp_path / "killed"
    results = killed / RESULTS_FILE
    with sweep_in_flight(config_path, killed) as process:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    rows_before, _, _ = read_results(results)
    assert 5 <= len(rows_before) < 96

    assert (
        main(
            [
                "bench",
                "--config",
                str(config_path),
                "--out",
                str(killed),
                "--resume",
                "--no-progress",
            ]
        )
        == 0
    )
    resumed, _, tail = read_results(results)
    assert tail is None
    keys = [row["key"] for row in resumed]
    assert len(keys) == len(set(keys)) == 96  # every run exactly once
    assert resumed[: len(rows_before)] == rows_before  # earlier rows untouched

    config = SweepConfig.from_dict(sweep)
    straight = run_sweep(config, tmp_path / "straight", progress=False)
    by_key = {row["key"]: without_timing(row) for row in straight.rows}
    assert {row["key"]: without_timing(row) for row in resumed} == by_key
    order = [s.label for s in config.strategies]
    assert cells_without_timing(summarize(resumed, order)) == cells_without_timing(straight.cells)
    # the summary files agree too, apart from the wall-time columns
    resumed_csv = csv_without_timing(killed / "summary.csv")
    assert resumed_csv == csv_without_timing(tmp_path / "straight" / "summary.csv")
    assert len(resumed_csv) == len(straight.cells) and "win_rate" in resumed_csv[0]
