"""Plugins found through entry points: a strategy, a reward and a backend from another package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points

from searchkit.bench import read_results
from searchkit.bench.store import RESULTS_FILE
from searchkit.registry import Registry
from tests.bench_helpers import write_config
from tests.plugins import PLUGIN


def test_entry_points_of_the_example_package_are_discovered(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN))
    names = {ep.name for ep in entry_points(group="searchkit.strategies")}
    assert "successive-halving" in names
    registry = Registry("strategy", "searchkit.strategies")  # a fresh one: nothing loaded yet
    cls = registry.get("successive-halving")
    assert cls.size_knob == "n" and cls(n=4).expected_particle_steps(10) == 30.0


def test_bench_runs_a_plugin_strategy_reward_and_backend(tmp_path):
    config = {
        "name": "plugin",
        "backend": {"name": "gaussian", "options": {"num_steps": 10}},
        "reward": {"name": "brightness"},
        "strategies": [{"name": "baseline"}, {"name": "successive-halving"}, {"name": "best-of-n"}],
        "budgets_nfe": [60, 120],
        "prompts": ["a sunny meadow"],
        "seeds": 2,
        "torch_threads": 1,
    }
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PLUGIN), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "searchkit.cli",
            "bench",
            "--config",
            str(write_config(tmp_path, config)),
            "--out",
            str(out),
            "--no-progress",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows, _, _ = read_results(out / RESULTS_FILE)
    halving = [r for r in rows if r["strategy"] == "successive-halving"]
    # 60 NFE: n=4 costs 2 x (4 x 5 + 2 x 5) = 60; 120 NFE: n=8 costs 120
    assert sorted(r["size"] for r in halving) == [4, 4, 8, 8]
    assert all(r["nfe"] == r["budget_nfe"] and set(r["scores"]) == {"brightness"} for r in halving)
    assert all(r["oracle"] is None for r in rows)  # this backend knows no oracle
    assert "successive-halving" in (out / "summary.md").read_text()
    assert json.loads((out / "sweep.json").read_text())["config"]["backend"]["name"] == "gaussian"
