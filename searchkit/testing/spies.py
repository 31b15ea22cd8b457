"""Spies: a backend and a reward that forward every call and note who made it.

The strategy suite runs a strategy on a :class:`SpyBackend` and a :class:`SpyReward` to
check that the model, the decoder and the reward are called only by the search context
(the module :data:`CONTEXT_MODULE`), which meters every call, and that the meter's counts
equal the calls really made. The caller is the module of the Python frame that called the
spied method.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import torch

from searchkit.backend import Backend, Conditioning
from searchkit.reward import Reward, RewardBatch

__all__ = ["CONTEXT_MODULE", "SpyBackend", "SpyReward"]

#: The only module allowed to call the model, the decoder and the reward.
CONTEXT_MODULE = "searchkit.context"


def _caller_module(depth: int) -> str:
    return str(sys._getframe(depth).f_globals.get("__name__", "?"))


class SpyBackend(Backend):
    """Forwards to a backend, counting model calls and noting any made from outside the context.

    ``counts`` holds ``encode`` calls and ``velocity``/``decode`` rows; ``outside`` lists
    ``(what, caller module)`` for every call not made by the context.
    """

    def __init__(self, inner: Backend) -> None:
        self._inner = inner
        self.name = inner.name
        self.counts: Counter[str] = Counter()
        self.outside: list[tuple[str, str]] = []

    def _note(self, what: str, n: int) -> None:
        self.counts[what] += n
        caller = _caller_module(3)
        if caller != CONTEXT_MODULE:
            self.outside.append((what, caller))

    def __getattr__(self, name: str) -> Any:  # backend-specific attributes
        if name == "_inner":
            raise AttributeError(name)
        return getattr(self._inner, name)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return self._inner.latent_shape

    @property
    def num_steps(self) -> int:
        return self._inner.num_steps

    @property
    def forwards_per_step(self) -> int:
        return self._inner.forwards_per_step

    @property
    def is_stochastic(self) -> bool:
        return self._inner.is_stochastic

    @property
    def is_differentiable(self) -> bool:
        return self._inner.is_differentiable

    @property
    def device(self) -> torch.device:
        return self._inner.device

    @property
    def dtype(self) -> torch.dtype:
        return self._inner.dtype

    @property
    def has_oracle(self) -> bool:
        return self._inner.has_oracle

    def oracle(self, latents: torch.Tensor, prompt: str) -> torch.Tensor:
        return self._inner.oracle(latents, prompt)

    def encode(self, prompt: str) -> Conditioning:
        self._note("encode", 1)
        return self._inner.encode(prompt)

    def make_scheduler(self):
        return self._inner.make_scheduler()

    def velocity(
        self, latents: torch.Tensor, timestep: torch.Tensor, sigma: float, cond: Conditioning
    ) -> torch.Tensor:
        self._note("velocity", int(latents.shape[0]))
        return self._inner.velocity(latents, timestep, sigma, cond)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        self._note("decode", int(latents.shape[0]))
        return self._inner.decode(latents)

    def initial_noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self._inner.initial_noise(n, generator)

    def prompt_embedding(self, cond: Conditioning) -> torch.Tensor:
        return self._inner.prompt_embedding(cond)

    def config_dict(self) -> dict[str, Any]:
        return self._inner.config_dict()


class SpyReward(Reward):
    """Forwards to a reward, counting scored samples and noting calls from outside the context."""

    def __init__(self, inner: Reward) -> None:
        self._inner = inner
        self.name = inner.name
        self.dimensions = inner.dimensions
        self.input = inner.input
        self.count = 0
        self.outside: list[str] = []

    @property
    def weights(self) -> torch.Tensor:
        return self._inner.weights

    @property
    def is_differentiable(self) -> bool:
        return self._inner.is_differentiable

    def _note(self, batch: RewardBatch, depth: int) -> None:
        self.count += int(batch.data.shape[0])
        caller = _caller_module(depth)
        if caller != CONTEXT_MODULE:
            self.outside.append(caller)

    def score(self, batch: RewardBatch) -> torch.Tensor:
        self._note(batch, 3)
        return self._inner(batch)

    def __call__(self, batch: RewardBatch) -> torch.Tensor:
        self._note(batch, 3)
        return self._inner(batch)

    def aggregate(self, scores: torch.Tensor) -> torch.Tensor:
        return self._inner.aggregate(scores)

    def config_dict(self) -> dict:
        return self._inner.config_dict()
