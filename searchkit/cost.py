"""Compute accounting: what a search spent, counted by the framework, not the algorithm.

* particle-steps ``P``: one denoising step of one trajectory;
* NFE: model forwards, ``P * forwards_per_step`` (2 under classifier-free guidance), plus
  backward passes counted as forward-equivalents (see :attr:`Meter.BACKWARD_FACTOR`);
* reward calls and decodes, per sample;
* wall time split into ``model`` (model forwards and solver updates: the denoising
  itself), ``reward``, ``decode`` and ``other`` (the toolkit's own overhead: everything
  between the metered calls).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import attrs

from searchkit.errors import BudgetExceededError

PHASES: tuple[str, ...] = ("model", "reward", "decode")


@attrs.frozen
class Cost:
    """A snapshot of the meter."""

    particle_steps: int
    nfe: int
    reward_calls: int
    decodes: int
    backward_nfe: int
    seconds: dict[str, float]

    def to_dict(self) -> dict:
        return attrs.asdict(self)


@attrs.define
class Meter:
    """Counts compute and enforces an optional NFE budget before each model call."""

    #: A backward pass through the model costs about this many forwards (Tang et al. 2024
    #: quote 2-3 for DNO; the activations are recomputed or kept, the weights' gradient is
    #: not needed). Used to convert backward passes to NFE.
    BACKWARD_FACTOR: ClassVar[int] = 2

    budget_nfe: int | None = None
    particle_steps: int = 0
    nfe: int = 0
    reward_calls: int = 0
    decodes: int = 0
    backward_nfe: int = 0
    seconds: dict[str, float] = attrs.Factory(lambda: dict.fromkeys(PHASES, 0.0))
    started: float = attrs.Factory(time.perf_counter)

    def charge_model(self, particles: int, forwards_per_step: int) -> None:
        """Account one denoising step of ``particles`` trajectories; raise if over budget."""
        cost = particles * forwards_per_step
        self._check(cost, f"a step of {particles} particles ({cost} forwards)")
        self.particle_steps += particles
        self.nfe += cost

    def charge_backward(self, forwards: int) -> None:
        """Account a backward pass through ``forwards`` model forwards."""
        cost = forwards * self.BACKWARD_FACTOR
        self._check(cost, f"a backward pass through {forwards} forwards ({cost} NFE)")
        self.backward_nfe += cost
        self.nfe += cost

    def _check(self, cost: int, what: str) -> None:
        if self.budget_nfe is not None and self.nfe + cost > self.budget_nfe:
            raise BudgetExceededError(
                f"NFE budget of {self.budget_nfe} exceeded: {self.nfe} spent, {what} requested"
            )

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start

    def snapshot(self) -> Cost:
        total = time.perf_counter() - self.started
        seconds = dict(self.seconds)
        seconds["other"] = max(total - sum(self.seconds.values()), 0.0)
        seconds["total"] = total
        return Cost(
            particle_steps=self.particle_steps,
            nfe=self.nfe,
            reward_calls=self.reward_calls,
            decodes=self.decodes,
            backward_nfe=self.backward_nfe,
            seconds=seconds,
        )
