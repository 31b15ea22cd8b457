"""Executors: run the planned searches here (``local``) or as Ray tasks (``ray``).

The local executor runs the searches in this process, one after another, or with
``workers > 1`` in that many worker processes of this machine (started with ``spawn``, so
that no process inherits another's torch thread pool or CUDA state). Every executor builds
the worlds (the sweep's backends and rewards, :class:`~searchkit.bench.runner.Worlds`)
where the searches run, never in a driver that only dispatches, and checks every planned
strategy against its world before the first search: in this process, or in one preflight
task of a worker. Every executor hands each finished row to one callback in the driver,
which is the only writer of the results file; with a video callback, the output's frames
go to it first (from a worker as ``uint8``, which is what a video file holds), so a row is
never written before its video. A run that raises is recorded as a :class:`Failure` and the
sweep goes on; the Ray executor first retries it (a worker or a node can die), reporting
each retry. Failures are returned, never dropped: the sweep ends with an error listing
them, and ``--resume`` runs them again.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import attrs
import torch

from searchkit.bench.config import SweepConfig, digest
from searchkit.bench.plan import Run
from searchkit.bench.runner import Worlds, check_runs, execute, torch_threads
from searchkit.errors import ConfigError

log = logging.getLogger("searchkit.bench")

EXECUTORS: tuple[str, ...] = ("local", "ray")

#: ``workers="auto"`` starts one worker process for at most this many runs to do: a worker
#: takes seconds to start (it imports torch and builds its worlds), which a handful of
#: small runs would not repay.
RUNS_PER_WORKER = 100

RowSink = Callable[[dict[str, Any]], None]
#: Receives a run and its output's frames ``[F, H, W, 3]`` in ``[0, 1]``.
VideoSink = Callable[[Run, torch.Tensor], None]


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


def _call(checked: Callable[[], None] | None) -> None:
    if checked is not None:
        checked()


def _row_after_video(run: Run, result: Any, videos: VideoSink | None) -> dict[str, Any]:
    """A finished run's row, once its video (if videos are kept) is handed over."""
    if videos is None:
        return result
    row, video = result
    if video.dtype == torch.uint8:
        video = video.float() / 255.0  # encodes back to the same bytes
    videos(run, video)
    return row


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def check_workers(workers: Any) -> int | str:
    """``workers`` if it is a positive integer or ``"auto"``; else a ``ValueError``."""
    if workers == "auto" or (
        isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1
    ):
        return workers
    raise ValueError(f"workers must be a positive integer or 'auto', got {workers!r}")


def resolve_workers(workers: int | str, config: SweepConfig, runs: int) -> int:
    """How many processes the local executor runs ``runs`` searches in.

    An integer is taken as it is (no more than the runs). ``"auto"``: where the sweep fixes
    ``torch_threads`` (a sweep of small CPU models, which run fastest on few threads), one
    worker for every ``torch_threads`` usable cores, and no more than one per
    :data:`RUNS_PER_WORKER` runs; else one (a sweep that leaves torch its threads, or puts
    a model on a GPU, runs in this process).
    """
    check_workers(workers)
    if workers != "auto":
        return max(1, min(workers, runs))
    if config.torch_threads is None:
        return 1
    return max(1, min(usable_cores() // config.torch_threads, runs // RUNS_PER_WORKER))


def run_local(
    config: SweepConfig,
    runs: Sequence[Run],
    sink: RowSink,
    progress: Any,
    videos: VideoSink | None = None,
    checked: Callable[[], None] | None = None,
    workers: int | str = 1,
) -> list[Failure]:
    """Build the worlds, check the strategies, then run every search.

    With one worker (``workers`` as :func:`resolve_workers` reads it) the searches run
    here, one after another, in plan order; with more, in that many worker processes
    (:func:`run_processes`). Raises
    :class:`ConfigError` before the first search when a strategy cannot run on its world.
    ``videos`` receives each output's frames before ``sink`` gets its row; ``checked`` is
    called once the strategies passed their check, before the first search.
    """
    processes = resolve_workers(workers, config, len(runs))
    if not runs:
        _call(checked)
        return []
    if processes > 1:
        return run_processes(config, runs, sink, progress, processes, videos, checked)
    worlds = Worlds(config)
    check_runs(runs, worlds)
    _call(checked)
    failures = []
    for run in runs:
        try:
            with torch_threads(config.torch_threads):
                result = execute(run, worlds.for_run(run), with_video=videos is not None)
            row = _row_after_video(run, result, videos)
        except Exception as error:  # noqa: BLE001  (recorded and reported, never dropped)
            log.error("run %s failed:\n%s", run.describe(), traceback.format_exc())
            failures.append(Failure(run, 1, _last_line(error)))
            continue
        sink(row)
        progress.update(1)
    return failures


# -- worker processes -------------------------------------------------------------------------
_WORKER_CONFIG: list[SweepConfig] = []  # the sweep of this worker process, set at its start


def _start_worker(config: SweepConfig, parent: int) -> None:
    """A worker process's start: keep the sweep; exit when the driver is gone."""
    _WORKER_CONFIG[:] = [config]
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """Exit this process once ``parent`` is no longer its parent (killed, even by SIGKILL)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _submit(pool: ProcessPoolExecutor, task: Callable[..., Any], *args: Any) -> Any:
    """``pool.submit(task, *args)``, where a worker it starts ignores Ctrl-C.

    A submission may start a worker process; started while this process ignores SIGINT, the
    worker ignores it from its first instruction (its Python keeps an ignored SIGINT), so
    Ctrl-C in a terminal, which reaches every process of the group, interrupts the sweep's
    process only, which then stops the workers itself.
    """
    if threading.current_thread() is not threading.main_thread():
        return pool.submit(task, *args)  # only the main thread sets signal handlers
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return pool.submit(task, *args)
    finally:
        signal.signal(signal.SIGINT, previous)


def _worker_check(runs: Sequence[Run]) -> str | None:
    return _check_in_worker(_WORKER_CONFIG[0], runs, "in a worker process")


def _worker_execute(run: Run, with_video: bool) -> Any:
    return _execute_in_worker(_WORKER_CONFIG[0], run, with_video)


def run_processes(
    config: SweepConfig,
    runs: Sequence[Run],
    sink: RowSink,
    progress: Any,
    workers: int,
    videos: VideoSink | None = None,
    checked: Callable[[], None] | None = None,
) -> list[Failure]:
    """Run every search in ``workers`` processes of this machine; this process writes.

    Each worker builds its worlds once and runs searches with the sweep's ``torch_threads``.
    One worker first checks every strategy (:class:`ConfigError` before any search), then
    ``checked`` is called. Rows reach ``sink`` as runs finish (not in plan order); each
    search's result is that of the same search in one process. A run that raises is a
    :class:`Failure`; a worker that dies fails the runs not yet finished (a ``resume``
    runs them again). Workers ignore Ctrl-C: this process stops them when it is
    interrupted, and they exit by themselves when it dies.
    """
    with_video = videos is not None
    before = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(config, os.getpid()),
    )
    try:
        distinct = list({(run.label, run.budget_nfe): run for run in runs}.values())
        problem = _submit(pool, _worker_check, distinct).result()
        if problem is not None:
            raise ConfigError(problem)
        _call(checked)
        pending = {_submit(pool, _worker_execute, run, with_video): run for run in runs}
        failures = []
        for future in as_completed(pending):
            run = pending[future]
            try:
                row = _row_after_video(run, future.result(), videos)
            except BrokenProcessPool as error:
                log.error("run %s: a worker process died (%s)", run.describe(), error)
                failures.append(Failure(run, 1, f"a worker process died: {_last_line(error)}"))
                continue
            except Exception as error:  # noqa: BLE001  (recorded and reported, never dropped)
                log.error(
                    "run %s failed:\n%s", run.describe(), "".join(traceback.format_exception(error))
                )
                failures.append(Failure(run, 1, _last_line(error)))
                continue
            sink(row)
            progress.update(1)
        return failures
    except BaseException:
        # Ctrl-C (which the workers ignore), or a row that could not be written: stop the
        # workers now, not after their searches
        for process in set(multiprocessing.active_children()) - before:
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -- the worlds of a worker (a worker process or a Ray worker) ---------------------------------
_WORLDS: dict[str, Worlds] = {}


def _worlds(config: SweepConfig) -> Worlds:
    """The sweep's worlds, kept once per worker process."""
    key = digest(
        {"world": config.world_dict(), "entries": [s.overrides for s in config.strategies]}
    )
    if key not in _WORLDS:
        _WORLDS.clear()
        _WORLDS[key] = Worlds(config)
    return _WORLDS[key]


def _check_in_worker(config: SweepConfig, runs: Sequence[Run], where: str) -> str | None:
    """A worker's preflight: build the worlds, check the strategies; the error, if any."""
    try:
        check_runs(runs, _worlds(config))
    except ConfigError as error:
        return str(error)
    except (TypeError, ValueError, FileNotFoundError) as error:
        return f"building backend {config.backend.name!r} {where} failed: {error}"
    return None


def _execute_in_worker(config: SweepConfig, run: Run, with_video: bool = False) -> Any:
    """A worker's task: build (once per worker process) the run's world, run one search.

    With ``with_video`` the frames come back as ``uint8`` (a quarter of the bytes).
    """
    from searchkit.video_io import to_uint8

    with torch_threads(config.torch_threads):
        result = execute(run, _worlds(config).for_run(run), with_video=with_video)
    if with_video:
        row, video = result
        return row, torch.from_numpy(to_uint8(video))
    return result


def _remote_check(config: SweepConfig, runs: Sequence[Run]) -> str | None:
    """The Ray preflight task."""
    return _check_in_worker(config, runs, "on a Ray worker")


def run_ray(
    config: SweepConfig,
    runs: Sequence[Run],
    sink: RowSink,
    progress: Any,
    *,
    address: str | None = None,
    retries: int = 2,
    videos: VideoSink | None = None,
    checked: Callable[[], None] | None = None,
) -> list[Failure]:
    """Run every search as a Ray task (one GPU each where the cluster has GPUs).

    Joins the running Ray instance if this process has one, else ``ray.init(address)``
    (``None``: a new local instance, or the cluster in ``RAY_ADDRESS``). One task first
    builds the world and checks every strategy (:class:`ConfigError` before any search), then
    ``checked`` is called; a failed search is submitted again up to ``retries`` times; the
    driver writes every row.
    """
    try:
        import ray
    except ImportError:
        raise ImportError("executor 'ray' needs Ray: pip install 'searchkit[ray]'") from None
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a non-negative integer, got {retries!r}")
    if not runs:
        _call(checked)
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
        _call(checked)
        task = ray.remote(_execute_in_worker).options(**resources, max_retries=0)
        with_video = videos is not None
        pending: dict[Any, tuple[Run, int]] = {}
        for run in runs:
            pending[task.remote(config_ref, run, with_video)] = (run, 1)
        failures = []
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                run, attempt = pending.pop(ref)
                try:
                    result = ray.get(ref)
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
                        pending[task.remote(config_ref, run, with_video)] = (run, attempt + 1)
                    else:
                        log.error(
                            "run %s failed after %d attempts: %s", run.describe(), attempt, message
                        )
                        failures.append(Failure(run, attempt, message))
                    continue
                try:
                    row = _row_after_video(run, result, videos)
                except Exception as error:  # noqa: BLE001  (a video not written: reported)
                    log.error("run %s: %s", run.describe(), _last_line(error))
                    failures.append(Failure(run, attempt, _last_line(error)))
                    continue
                sink(row)
                progress.update(1)
        return failures
    finally:
        if started_here:
            ray.shutdown()
