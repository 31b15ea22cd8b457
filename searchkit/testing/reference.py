"""A plain per-particle denoising loop, written independently of the search context.

The search context advances every particle of a search as one batch through one scheduler
whose multistep history carries the particle dimension, and re-indexes that history when
particles are resampled. This module is the yardstick for that machinery: one particle,
one scheduler of its own, one model call per step, exactly the loop of a diffusers
pipeline::

    for k in range(start, stop):
        t, sigma = scheduler.timesteps[k], scheduler.sigmas[k]
        v = backend.velocity(x, t, sigma, cond)
        x = scheduler.step(v, t, x).prev_sample

A test checks the batched machinery by running ``n`` particles through a search, then
each particle alone through :func:`reference_loop`, and comparing; a resampled particle's
reference continues from a :func:`fork` of its parent's scheduler, so it carries its
parent's solver history and nothing else. Public so that a plugin's own tests (a backend
with its own scheduler, a strategy that resamples) can use the same yardstick.
"""

from __future__ import annotations

import copy
import inspect

import torch
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from searchkit.backend import Backend, Conditioning

__all__ = ["fork", "reference_loop"]


def reference_loop(
    backend: Backend,
    cond: Conditioning,
    latents: torch.Tensor,
    scheduler: SchedulerMixin,
    start: int,
    stop: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Advance one particle ``[1, *latent_shape]`` with its own ``scheduler`` from step
    ``start`` to step ``stop`` (exclusive) and return the latent after step ``stop - 1``.

    ``scheduler`` is stepped in place (it must have taken exactly steps ``0 .. start - 1``
    already, as a multistep solver's history depends on them); pass a :func:`fork` to keep
    the original. A stochastic scheduler draws its step noise from ``generator`` when its
    ``step`` takes one (without it, from torch's global generator).
    """
    accepts = "generator" in inspect.signature(scheduler.step).parameters
    extra = {"generator": generator} if generator is not None and accepts else {}
    x = latents
    for k in range(start, stop):
        t = scheduler.timesteps[k]
        sigma = float(scheduler.sigmas[k])
        v = backend.velocity(x, t, sigma, cond)
        x = scheduler.step(v, t, x, return_dict=False, **extra)[0]
    return x


def fork(scheduler: SchedulerMixin) -> SchedulerMixin:
    """An independent copy of ``scheduler`` with its step index and solver history."""
    return copy.deepcopy(scheduler)
