"""A plain per-particle denoising loop, written independently of the search context.

One forward per particle, one scheduler per particle; used as the reference that batched
and resampled runs must reproduce.
"""

from __future__ import annotations

import copy

import torch


def reference_loop(backend, cond, latents: torch.Tensor, scheduler, start: int, stop: int):
    """Advance one particle ``[1, ...]`` with its own ``scheduler`` from ``start`` to ``stop``."""
    x = latents
    for k in range(start, stop):
        t = scheduler.timesteps[k]
        sigma = float(scheduler.sigmas[k])
        v = backend.velocity(x, t, sigma, cond)
        x = scheduler.step(v, t, x, return_dict=False)[0]
    return x


def fork(scheduler):
    return copy.deepcopy(scheduler)
