"""The analytic world's reward as a plugin: the closed-form VQ, MQ and TA dimensions.

With ``input="x0"`` (default) the reward sees the predicted clean latent, so on a finished
output it equals :meth:`AnalyticBackend.oracle`; during the search it scores the model's
one-step prediction. With ``input="latent"`` it applies the same formulas to the noisy
latent ``x_t`` (a deliberately weak baseline for latent-space scoring).
"""

from __future__ import annotations

import torch

from searchkit.backends.analytic import DIMENSIONS, AnalyticBackend
from searchkit.reward import REWARD_INPUTS, Reward, RewardBatch


class AnalyticReward(Reward):
    """Closed-form rewards of the analytic world, on ``x0`` or on ``x_t``."""

    name = "analytic"
    dimensions = DIMENSIONS

    def __init__(self, backend: AnalyticBackend, input: str = "x0") -> None:
        if not isinstance(backend, AnalyticBackend):
            raise TypeError(f"backend must be an AnalyticBackend, got {type(backend).__name__}")
        if input not in ("x0", "latent"):
            raise ValueError(
                f"input must be 'x0' or 'latent' for the analytic reward (of {REWARD_INPUTS}), got {input!r}"
            )
        self.backend = backend
        self.input = input

    @property
    def is_differentiable(self) -> bool:
        return True

    def score(self, batch: RewardBatch) -> torch.Tensor:
        return self.backend.reward_dimensions(batch.data, batch.prompt)

    def __call__(self, batch: RewardBatch) -> torch.Tensor:
        return self.score(batch)
