"""The reward interface.

A reward scores a batch of particles in named dimensions (the LatSearch paper's visual
quality ``VQ``, motion quality ``MQ`` and text alignment ``TA``, or any others) and returns
a ``[n, dims]`` tensor (and, optionally, what a call costs in FLOPs: :meth:`Reward.flops`).
It declares what it looks at, so that no score is ambiguous:

* ``"latent"``: the noisy latent ``x_t`` itself, with its noise level ``sigma``;
* ``"x0"``: the predicted clean latent ``x0 = x_t - sigma * v`` (one-step estimate);
* ``"video"``: decoded frames of the predicted clean latent; the context decodes and meters
  the decode.

:meth:`Reward.aggregate` turns dimensions into one score, a weighted sum (the paper sums
with unit weights).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import attrs
import torch

from searchkit.backend import Conditioning

RewardInput = Literal["latent", "x0", "video"]
REWARD_INPUTS: tuple[str, ...] = ("latent", "x0", "video")


@attrs.frozen(eq=False)
class RewardBatch:
    """What a reward sees: exactly one of its declared input, plus the noise level and prompt.

    ``data`` is ``x_t``, ``x0`` (both ``[n, *latent_shape]``) or video ``[n, F, H, W, 3]``;
    ``sigma`` is the noise level of ``x_t`` per particle (``[n]``; 0 for a clean output).
    """

    data: torch.Tensor
    sigma: torch.Tensor
    conditioning: Conditioning
    step: int

    @property
    def prompt(self) -> str:
        return self.conditioning.prompt


class Reward(ABC):
    """Scores particles in named dimensions."""

    #: Registry name.
    name: str = "reward"
    #: Dimension names, in column order of the score tensor.
    dimensions: tuple[str, ...] = ()
    #: What the reward looks at: ``"latent"``, ``"x0"`` or ``"video"``.
    input: RewardInput = "x0"
    #: Count FLOPs on the first real call of each input shape and prompt, with torch's FLOP
    #: counter around the call itself, for models the meta device cannot run (a VLM's
    #: data-dependent steps); :meth:`flops` then returns that count. Work cached across
    #: calls (a prompt's text embedding) is counted on the call that does it.
    measure_flops: ClassVar[bool] = False

    @property
    def weights(self) -> torch.Tensor:
        """Aggregate weights per dimension (default: all ones, the paper's plain sum)."""
        return torch.ones(len(self.dimensions))

    @property
    def is_differentiable(self) -> bool:
        return False

    def flops(self, batch: RewardBatch) -> float | None:
        """FLOPs of scoring ``batch`` (``None``: unknown, the default).

        Called on every scoring event, after the call: implementations cache per input
        shape (:class:`searchkit.flops.FlopCache`). The prompt's own encoding, done once per
        prompt, is not included. With :attr:`measure_flops`, the count of the first call
        of ``batch``'s shape and prompt.
        """
        if self.measure_flops:
            return self.__dict__.get("_measured_flops", {}).get(_flop_key(batch))
        return None

    @property
    def latent_shape(self) -> tuple[int | None, ...] | None:
        """The latent shape ``(C, F, H, W)`` this reward was built for, ``None`` on an axis of
        any size, or ``None`` for any shape (the default). A search refuses a latent-space
        reward whose shape differs from its backend's, before any compute."""
        return None

    def check_steps(self, steps: Sequence[int], num_steps: int) -> None:
        """Raise before compute if this reward cannot score after the 0-based step indices ``steps``
        of a ``num_steps``-step trajectory (a model trained on a few step labels); default: any."""
        return None

    @abstractmethod
    def score(self, batch: RewardBatch) -> torch.Tensor:
        """Per-dimension scores ``[n, len(dimensions)]``."""

    def aggregate(self, scores: torch.Tensor) -> torch.Tensor:
        """One score per particle: the weighted sum of its dimensions."""
        return scores @ self.weights.to(device=scores.device, dtype=scores.dtype)

    def __call__(self, batch: RewardBatch) -> torch.Tensor:
        if not self.measure_flops:
            return self.score(batch)
        counts: dict[Any, float] = self.__dict__.setdefault("_measured_flops", {})
        key = _flop_key(batch)
        if key in counts:
            return self.score(batch)
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            scores = self.score(batch)
        counts[key] = float(counter.get_total_flops())
        return scores

    def config_dict(self) -> dict:
        return {"name": self.name, "input": self.input, "dimensions": list(self.dimensions)}


def _flop_key(batch: RewardBatch) -> tuple:
    return (tuple(batch.data.shape), batch.data.dtype, batch.prompt)
