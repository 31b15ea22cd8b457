"""The Ray executor on a local Ray instance: the same rows as the local executor; failures
retried, reported and never dropped."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import attrs
import pytest
import ray  # the [test] extra installs it

from searchkit import Baseline
from searchkit.bench import ConfigError, SweepConfig, read_results, run_sweep, runner
from searchkit.bench.executors import run_ray
from searchkit.bench.plan import Run
from searchkit.bench.store import RESULTS_FILE
from searchkit.context import SearchContext
from tests.bench_helpers import (
    assert_same_videos,
    one_vbench_prompt_sweep,
    tiny_sweep,
    without_timing,
)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # the strategies below live in this test module: ship them to the workers by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()


def _no_world_in_the_driver(*args, **kwargs):
    raise AssertionError("the Ray driver built the world")


def test_ray_gives_the_rows_of_the_local_executor(local_ray, tmp_path, monkeypatch):
    config = SweepConfig.from_dict(tiny_sweep(seeds=2))
    local = run_sweep(config, tmp_path / "local", progress=False)
    # the driver plans and dispatches only; the workers (other processes) build the world
    monkeypatch.setattr(runner, "build_backend", _no_world_in_the_driver)
    monkeypatch.setattr(runner, "build_reward", _no_world_in_the_driver)
    distributed = run_sweep(config, tmp_path / "ray", executor="ray", progress=False)
    assert distributed.complete and len(distributed.rows) == local.planned == 12
    assert {r["key"]: without_timing(r) for r in distributed.rows} == {
        r["key"]: without_timing(r) for r in local.rows
    }


@attrs.frozen
class Flaky(Baseline):
    """Fails on its first attempt (a marker file remembers it), then runs the baseline."""

    name = "flaky"
    marker: str = ""

    def search(self, ctx: SearchContext):
        marker = Path(self.marker)
        if not marker.exists():
            marker.write_text("failed once")
            raise RuntimeError("worker lost its GPU")
        return Baseline.search(self, ctx)


@attrs.frozen
class Broken(Baseline):
    name = "broken"

    def search(self, ctx: SearchContext):
        raise RuntimeError("this search always fails")


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def update(self, k: int) -> None:
        self.n += k


def test_failed_tasks_are_retried_and_reported(local_ray, tmp_path, caplog):
    config = SweepConfig.from_dict(tiny_sweep())
    runs = [
        Run(label, label, strategy, None, 16.0, "a red fox", 0, (), 0)
        for label, strategy in [
            ("flaky", Flaky(marker=str(tmp_path / "marker"))),
            ("broken", Broken()),
            ("baseline", Baseline()),
        ]
    ]
    rows, progress = [], Counter()
    with caplog.at_level(logging.WARNING, logger="searchkit.bench"):
        failures = run_ray(config, runs, rows.append, progress, retries=2)
    assert sorted(r["label"] for r in rows) == ["baseline", "flaky"] and progress.n == 2
    assert [(f.run.label, f.attempts) for f in failures] == [("broken", 3)]
    assert "this search always fails" in failures[0].error
    assert "flaky" in caplog.text and "retrying" in caplog.text
    assert "broken" in caplog.text and "after 3 attempts" in caplog.text


def test_an_incompatible_strategy_fails_in_the_preflight_before_any_search(local_ray, tmp_path):
    sweep = tiny_sweep(
        strategies=["baseline", {"name": "rgrp", "options": {"schedule": [2, 9]}}], budgets_nfe=[64]
    )
    with pytest.raises(
        ConfigError, match=r"strategy 'rgrp' cannot run on backend 'analytic'.*\[0, 8\)"
    ):
        run_sweep(SweepConfig.from_dict(sweep), tmp_path / "out", executor="ray", progress=False)
    assert read_results(tmp_path / "out" / RESULTS_FILE)[0] == []  # not even the baseline ran


def test_ray_saves_the_videos_the_local_executor_saves(local_ray, tmp_path):
    config = SweepConfig.from_dict(one_vbench_prompt_sweep(tmp_path, seeds=2))
    run_sweep(config, tmp_path / "local", progress=False, save_videos=tmp_path / "local-videos")
    distributed = run_sweep(
        config,
        tmp_path / "ray",
        executor="ray",
        progress=False,
        save_videos=tmp_path / "ray-videos",
    )
    # the workers send frames as uint8, the driver writes them: the same files, byte for byte
    assert distributed.complete
    # 3 configurations x seeds 0, 1
    assert assert_same_videos(tmp_path / "local-videos", tmp_path / "ray-videos") == 3 * 2
