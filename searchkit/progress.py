"""Progress of a running search, for a person watching a terminal.

:class:`~searchkit.context.SearchContext` reports every denoising step and every scoring
event to the observer installed with :func:`observe` (none by default: a library call
prints nothing). ``searchkit generate`` installs :class:`ProgressBar`: a tqdm bar over the
search's model forwards (NFE; the total is the strategy's expected NFE where it states one)
that shows the current step, the particles alive and the reward events so far. It is drawn
only on a terminal: with ``--quiet``, or when stderr is not a TTY (a log file, a pipe),
nothing is written.

The observer lives in a :class:`contextvars.ContextVar`, so concurrent searches in other
threads or tasks do not report into it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Protocol


class Observer(Protocol):
    def step(self, step: int, num_steps: int, alive: int, nfe: int) -> None:
        """``alive`` particles finished denoising step ``step`` of ``num_steps``; ``nfe`` so far."""

    def scored(self, step: int, alive: int) -> None:
        """``alive`` particles were scored after step ``step``."""


_OBSERVER: ContextVar[Observer | None] = ContextVar("searchkit_progress", default=None)


@contextmanager
def observe(observer: Observer | None) -> Iterator[Observer | None]:
    """Report the searches run inside this block to ``observer`` (``None``: to nobody)."""
    token = _OBSERVER.set(observer)
    try:
        yield observer
    finally:
        _OBSERVER.reset(token)


def notify_step(step: int, num_steps: int, alive: int, nfe: int) -> None:
    observer = _OBSERVER.get()
    if observer is not None:
        observer.step(step, num_steps, alive, nfe)


def notify_scored(step: int, alive: int) -> None:
    observer = _OBSERVER.get()
    if observer is not None:
        observer.scored(step, alive)


def wanted(quiet: bool, stream: IO[str] | None = None) -> bool:
    """Whether to draw progress: not ``quiet`` and ``stream`` (stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return not quiet and bool(isatty and isatty())


class ProgressBar:
    """A tqdm bar over NFE with the step, the particles alive and the reward events."""

    def __init__(self, total_nfe: float | None, desc: str, stream: IO[str] | None = None) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=None if total_nfe is None else round(total_nfe),
            desc=desc,
            unit="NFE",
            file=sys.stderr if stream is None else stream,
            dynamic_ncols=True,
            leave=False,
        )
        self._events = 0

    def step(self, step: int, num_steps: int, alive: int, nfe: int) -> None:
        self._bar.set_postfix_str(
            f"step {step}/{num_steps}, {alive} alive, {self._events} reward events",
            refresh=False,
        )
        self._bar.update(nfe - self._bar.n)

    def scored(self, step: int, alive: int) -> None:
        self._events += 1

    def close(self) -> None:
        self._bar.close()
