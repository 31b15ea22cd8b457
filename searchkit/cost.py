"""Compute accounting: what a search spent, counted by the framework, not the algorithm.

* particle-steps ``P``: one denoising step of one trajectory;
* NFE: model forwards, ``P * forwards_per_step`` (2 under classifier-free guidance), plus
  backward passes counted as forward-equivalents (see :attr:`Meter.BACKWARD_FACTOR`);
* reward calls and decodes, per sample;
* FLOPs: every model forward (at its batch size), backward pass, decode and reward call
  converted to floating-point operations by the backend's and the reward's own figures
  (:meth:`Backend.forward_flops <searchkit.backend.Backend.forward_flops>`,
  :meth:`~searchkit.backend.Backend.decode_flops`, :meth:`Reward.flops
  <searchkit.reward.Reward.flops>`; counted once per shape with torch's FLOP counter, see
  :mod:`searchkit.flops`), split into ``forward``, ``backward``, ``decode`` and
  ``reward:<name>``. A part whose figure is unknown (``None``) makes its split entry and
  the total ``None``: a FLOP total is never silently short;
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
#: The FLOP split's fixed parts; reward calls add ``reward:<name>``.
FLOP_PARTS: tuple[str, ...] = ("forward", "backward", "decode")


@attrs.frozen
class Cost:
    """A snapshot of the meter."""

    particle_steps: int
    nfe: int
    reward_calls: int
    decodes: int
    backward_nfe: int
    seconds: dict[str, float]
    #: Total FLOPs, or ``None`` when a charged part's figure is unknown.
    flops: float | None = None
    #: FLOPs per part (``forward``, ``backward``, ``decode``, ``reward:<name>``).
    flops_split: dict[str, float | None] = attrs.Factory(dict)
    #: Model forwards per denoiser (``Backend.denoiser_at``; one entry for one model).
    nfe_by_model: dict[str, int] = attrs.Factory(dict)

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
    flops_split: dict[str, float | None] = attrs.Factory(dict)
    nfe_by_model: dict[str, int] = attrs.Factory(dict)

    def charge_model(
        self,
        particles: int,
        forwards_per_step: int,
        flops: float | None = None,
        model: str = "model",
    ) -> None:
        """Account one denoising step of ``particles`` trajectories; raise if over budget.

        ``flops`` are the step's FLOPs (``None``: unknown); ``model`` names the denoiser that
        runs it (:meth:`Backend.denoiser_at <searchkit.backend.Backend.denoiser_at>`)."""
        cost = particles * forwards_per_step
        self._check(cost, f"a step of {particles} particles ({cost} forwards)")
        self.particle_steps += particles
        self.nfe += cost
        self.nfe_by_model[model] = self.nfe_by_model.get(model, 0) + cost
        self.charge_flops("forward", flops)

    def charge_backward(self, forwards: int, forward_flops: float | None = None) -> None:
        """Account a backward pass through ``forwards`` model forwards of ``forward_flops``
        FLOPs in all (``BACKWARD_FACTOR`` times their FLOPs)."""
        cost = forwards * self.BACKWARD_FACTOR
        self._check(cost, f"a backward pass through {forwards} forwards ({cost} NFE)")
        self.backward_nfe += cost
        self.nfe += cost
        if forwards:
            flops = None if forward_flops is None else forward_flops * self.BACKWARD_FACTOR
            self.charge_flops("backward", flops)

    def charge_flops(self, part: str, flops: float | None) -> None:
        """Add ``flops`` to ``part`` of the split; ``None`` marks the part unknown for good."""
        before = self.flops_split.get(part, 0.0)
        self.flops_split[part] = None if before is None or flops is None else before + flops

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
            flops=self.total_flops(),
            flops_split=dict(self.flops_split),
            nfe_by_model=dict(self.nfe_by_model),
        )

    def total_flops(self) -> float | None:
        """The sum of the split, or ``None`` when a charged part is unknown."""
        parts = list(self.flops_split.values())
        return None if None in parts else float(sum(parts))
