"""Diffusers schedulers as per-particle solver state.

A diffusers multistep scheduler (UniPC, DPM-Solver++) keeps history inside the object:
``model_outputs`` (the last few converted model outputs), ``last_sample`` (UniPC's
corrector input), ``lower_order_nums`` and ``_step_index``. searchkit advances a whole
batch of particles with *one* scheduler whose history tensors carry the particle
dimension first; :meth:`SolverState.select` re-indexes every such tensor together with the
latents, so a resampled particle continues with exactly its own history. A duplicated
index yields an independent copy (``index_select`` allocates), never an alias.

The per-sample tensors are found generically: every tensor attribute (or tensor inside a
list attribute) whose leading dimension is the batch size and whose rank is the latents'
rank. Schedule tensors (``sigmas``, ``timesteps``) are rank 1 and are shared.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Literal

import torch

from searchkit import unipc

if TYPE_CHECKING:  # diffusers loads on the first scheduler made, not on import
    from diffusers.schedulers.scheduling_utils import SchedulerMixin

SolverName = Literal["unipc", "euler", "sde-dpmsolver++"]
SOLVERS: tuple[str, ...] = ("unipc", "euler", "sde-dpmsolver++")
STOCHASTIC_SOLVERS: frozenset[str] = frozenset({"sde-dpmsolver++"})


def make_scheduler(
    solver: str, *, flow_shift: float, num_train_timesteps: int = 1000, solver_order: int = 2
) -> SchedulerMixin:
    """A diffusers flow-matching scheduler by name.

    ``unipc``: UniPC with flow sigmas and flow prediction (Wan2.1's default);
    ``euler``: FlowMatchEuler; ``sde-dpmsolver++``: the SDE variant of DPM-Solver++ with flow
    sigmas (the LatSearch paper's best configuration; stochastic).
    """
    from diffusers import (
        DPMSolverMultistepScheduler,
        FlowMatchEulerDiscreteScheduler,
        UniPCMultistepScheduler,
    )

    if solver == "unipc":
        return UniPCMultistepScheduler(
            num_train_timesteps=num_train_timesteps,
            prediction_type="flow_prediction",
            use_flow_sigmas=True,
            flow_shift=flow_shift,
            solver_order=solver_order,
        )
    if solver == "euler":
        return FlowMatchEulerDiscreteScheduler(
            num_train_timesteps=num_train_timesteps, shift=flow_shift
        )
    if solver == "sde-dpmsolver++":
        return DPMSolverMultistepScheduler(
            num_train_timesteps=num_train_timesteps,
            prediction_type="flow_prediction",
            use_flow_sigmas=True,
            flow_shift=flow_shift,
            algorithm_type="sde-dpmsolver++",
            solver_order=solver_order,
        )
    raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")


def noise_levels(scheduler: SchedulerMixin) -> torch.Tensor:
    """The schedule's noise levels ``[num_steps + 1]`` (float32, CPU) of a scheduler with its
    timesteps set.

    ``levels[k]`` is the noise level ``sigma`` of the input to step ``k`` (``levels[0]`` is
    the first, close to 1); the last entry is 0, the clean output. For flow matching,
    ``x_t = (1 - sigma) x0 + sigma eps``. This reads the diffusers scheduler's ``sigmas``,
    which every flow-matching scheduler searchkit makes (:func:`make_scheduler`) keeps in
    this layout.
    """
    sigmas = getattr(scheduler, "sigmas", None)
    if sigmas is None:
        raise ValueError(
            f"scheduler {type(scheduler).__name__} has no noise levels; call set_timesteps first"
        )
    return torch.as_tensor(sigmas).detach().float().cpu().clone()


def _per_sample(value: object, batch: int, rank: int) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() == rank and value.shape[0] == batch


class SolverState:
    """One scheduler stepping a batch of ``batch`` particles, with selectable history."""

    def __init__(self, scheduler: SchedulerMixin, batch: int, rank: int) -> None:
        self.scheduler = scheduler
        self.batch = batch
        self.rank = rank

    @property
    def step_index(self) -> int:
        index = self.scheduler.step_index
        return 0 if index is None else int(index)

    def noise_level(self, step: int) -> float:
        """Noise level ``sigma`` of the input to step ``step`` (``num_steps`` gives 0, the output).

        After advancing to step ``j + 1`` the latents sit at ``noise_level(j + 1)`` and the
        prediction ``x0`` made by step ``j`` was made at ``noise_level(j)``.
        """
        sigmas = self.scheduler.sigmas
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < len(sigmas):
            raise ValueError(f"step must be an integer in [0, {len(sigmas) - 1}], got {step!r}")
        return float(sigmas[step])

    def select(self, indices: torch.Tensor) -> SolverState:
        """A new state whose particle ``i`` carries the history of particle ``indices[i]``."""
        indices = indices.to(torch.long)
        fresh = copy.copy(self.scheduler)  # own attribute table; schedule tensors are shared
        for name, value in self.scheduler.__dict__.items():
            if _per_sample(value, self.batch, self.rank):
                setattr(fresh, name, value.index_select(0, indices.to(value.device)))
            elif isinstance(value, list) and any(
                _per_sample(v, self.batch, self.rank) for v in value
            ):
                setattr(
                    fresh,
                    name,
                    [
                        v.index_select(0, indices.to(v.device))
                        if _per_sample(v, self.batch, self.rank)
                        else copy.copy(v)
                        for v in value
                    ],
                )
            elif isinstance(value, list):
                setattr(fresh, name, list(value))
        return SolverState(fresh, int(indices.numel()), self.rank)

    def copy(self, *, drop_corrector_input: bool = False) -> SolverState:
        """An independent state for the same particles (stepping it leaves this one unchanged).

        diffusers' ``step`` reassigns history entries rather than writing into tensors, so
        copying the attribute table and its lists is enough. ``drop_corrector_input=True``
        forgets UniPC's ``last_sample``: after a perturbation the latents are no longer the
        solver's own output, and the UniC corrector, which re-derives the current sample from
        the previous one, would undo the perturbation; the next step then runs the predictor
        alone (as UniPC's own first step does).
        """
        fresh = copy.copy(self.scheduler)
        for name, value in self.scheduler.__dict__.items():
            if isinstance(value, list):
                setattr(fresh, name, list(value))
        if drop_corrector_input and getattr(fresh, "last_sample", None) is not None:
            fresh.last_sample = None
        return SolverState(fresh, self.batch, self.rank)

    def step(
        self,
        model_output: torch.Tensor,
        timestep: torch.Tensor,
        sample: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """One solver step for the whole batch; stochastic solvers draw from ``generator``.

        UniPC past its first step replays precomputed coefficients (:mod:`searchkit.unipc`,
        the same bits as diffusers' own step); every other step is the scheduler's own.
        """
        scheduler = self.scheduler
        if scheduler.step_index is not None:
            table = unipc.table_for(scheduler)
            if table is not None:
                return table.step(scheduler, model_output, timestep, sample)
        kwargs = {"generator": generator} if "generator" in _step_params(scheduler) else {}
        return scheduler.step(model_output, timestep, sample, return_dict=False, **kwargs)[0]


def _step_params(scheduler: SchedulerMixin) -> frozenset[str]:
    cls = type(scheduler)
    cached = _STEP_PARAMS.get(cls)
    if cached is None:
        import inspect

        cached = frozenset(inspect.signature(cls.step).parameters)
        _STEP_PARAMS[cls] = cached
    return cached


_STEP_PARAMS: dict[type, frozenset[str]] = {}
