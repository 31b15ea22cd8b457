"""Executors: run the planned searches here (``local``) or as Ray tasks (``ray``).

Both build the world (the sweep's backend and reward) where the searches run, never in a
driver that only dispatches, and check every planned strategy against it before the first
search: the local executor in this process, the Ray executor in one preflight task. Both
hand every finished row to one callback in the driver, which is the only writer of
the results file. A run that raises is recorded as a :class:`Failure` and the sweep goes
on; the Ray executor first retries it (a worker or a node can die), reporting each retry.
Failures are returned, never dropped: the sweep ends with an error listing them, and
``--resume`` runs them again.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from searchkit.bench.config import SweepConfig, digest
from searchkit.bench.plan import Run
from searchkit.bench.runner import World, build_world, check_runs, execute, torch_threads
from searchkit.errors import ConfigError

log = logging.getLogger("searchkit.bench")

EXECUTORS: tuple[str, ...] = ("local", "ray")

RowSink = Callable[[dict[str, Any]], None]


@attrs.frozen
class Failure:
    """A run that did not finish: what it was, how often it was tried, the last error."""

    run: Run
    attempts: int
    error: str

    def describe(self) -> str:
        tries = "attempt" if self.attempts == 1 else "attempts"
        return f"{self.run.describe()}: {self.error} ({self.attempts} {tries})"


def _last_line(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    text = lines[-1].strip() if lines else ""
    return (
        f"{type(error).__name__}: {text}"
        if text and type(error).__name__ not in text
        else (text or type(error).__name__)
    )


def run_local(
    config: SweepConfig, runs: Sequence[Run], sink: RowSink, progress: Any
) -> list[Failure]:
    """Build the world, check the strategies, then run every search here, one after another.

    Raises :class:`ConfigError` before the first search when a strategy cannot run on
    the world.
    """
    if not runs:
        return []
    world = build_world(config)
    check_runs(runs, world.backend, world.reward)
    failures = []
    for run in runs:
        try:
            with torch_threads(config.torch_threads):
                row = execute(run, world)
        except Exception as error:  # noqa: BLE001  (recorded and reported, never dropped)
            log.error("run %s failed:\n%s", run.describe(), traceback.format_exc())
            failures.append(Failure(run, 1, _last_line(error)))
            continue
        sink(row)
        progress.update(1)
    return failures


# -- Ray --------------------------------------------------------------------------------------
_WORLDS: dict[str, World] = {}


def _world(config: SweepConfig) -> World:
    """The sweep's world, built once per worker process."""
    key = digest(config.world_dict())
    if key not in _WORLDS:
        _WORLDS.clear()
        _WORLDS[key] = build_world(config)
    return _WORLDS[key]


def _remote_check(config: SweepConfig, runs: Sequence[Run]) -> str | None:
    """The Ray preflight task: build the world, check the strategies; the error, if any."""
    try:
        world = _world(config)
        check_runs(runs, world.backend, world.reward)
    except ConfigError as error:
        return str(error)
    except (TypeError, ValueError, FileNotFoundError) as error:
        return f"building backend {config.backend.name!r} on a Ray worker failed: {error}"
    return None


def _remote_execute(config: SweepConfig, run: Run) -> dict[str, Any]:
    """The Ray task: build (once per worker process) the world, run one search."""
    with torch_threads(config.torch_threads):
        return execute(run, _world(config))


def run_ray(
    config: SweepConfig,
    runs: Sequence[Run],
    sink: RowSink,
    progress: Any,
    *,
    address: str | None = None,
    retries: int = 2,
) -> list[Failure]:
    """Run every search as a Ray task (one GPU each where the cluster has GPUs).

    Joins the running Ray instance if this process has one, else ``ray.init(address)``
    (``None``: a new local instance, or the cluster in ``RAY_ADDRESS``). One task first
    builds the world and checks every strategy (:class:`ConfigError` before any search); a
    failed search is submitted again up to ``retries`` times; the driver writes every row.
    """
    try:
        import ray
    except ImportError:
        raise ImportError("executor 'ray' needs Ray: pip install 'searchkit[ray]'") from None
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a non-negative integer, got {retries!r}")
    if not runs:
        return []
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        resources = {"num_cpus": 1, "num_gpus": 1 if gpus >= 1 else 0}
        config_ref = ray.put(config)
        distinct = list({(run.label, run.budget_nfe): run for run in runs}.values())
        check = ray.remote(_remote_check).options(**resources, max_retries=retries)
        problem = ray.get(check.remote(config_ref, distinct))
        if problem is not None:
            raise ConfigError(problem)
        task = ray.remote(_remote_execute).options(**resources, max_retries=0)
        pending: dict[Any, tuple[Run, int]] = {}
        for run in runs:
            pending[task.remote(config_ref, run)] = (run, 1)
        failures = []
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                run, attempt = pending.pop(ref)
                try:
                    row = ray.get(ref)
                except Exception as error:  # noqa: BLE001  (retried, then reported)
                    message = _last_line(error)
                    if attempt <= retries:
                        log.warning(
                            "run %s failed on attempt %d of %d (%s); retrying",
                            run.describe(),
                            attempt,
                            retries + 1,
                            message,
                        )
                        pending[task.remote(config_ref, run)] = (run, attempt + 1)
                    else:
                        log.error(
                            "run %s failed after %d attempts: %s", run.describe(), attempt, message
                        )
                        failures.append(Failure(run, attempt, message))
                    continue
                sink(row)
                progress.update(1)
        return failures
    finally:
        if started_here:
            ray.shutdown()
