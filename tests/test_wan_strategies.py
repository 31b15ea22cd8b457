"""Every registered strategy runs on the tiny Wan backend with the pixel reward.

The registry is read at test time, so strategies added later join automatically. Each runs
at the paper's 50 steps (the step schedules of the defaults refer to them) on 16x16 pixels
and 9 frames, with its size knob turned down to keep the test fast, and a stochastic
solver so that branching strategies see diverging duplicates.
"""

from __future__ import annotations

import math

import pytest
import torch

import searchkit  # noqa: F401  (registers the built-in strategies)
from searchkit.backends import WanBackend
from searchkit.backends.wan import tiny_pipeline
from searchkit.registry import STRATEGIES, get_strategy
from searchkit.reward import RewardBatch
from searchkit.rewards.pixel import PixelReward

PROMPT = "a small boat on a lake at sunset"
SMALL = 2


@pytest.fixture(scope="module")
def backend() -> WanBackend:
    return WanBackend.from_pipeline(
        tiny_pipeline(seed=1),
        solver="sde-dpmsolver++",
        height=16,
        width=16,
        num_frames=9,
        num_steps=50,
        max_sequence_length=16,
    )


def _small(name: str):
    cls = get_strategy(name)
    knob = cls.size_knob
    if knob is not None:
        try:
            return cls(**{knob: SMALL})
        except (TypeError, ValueError):
            pass  # the knob's smallest valid value is larger: keep the default
    return cls()


def test_the_registry_holds_the_built_in_strategies() -> None:
    assert {"baseline", "best-of-n", "rgrp"} <= set(STRATEGIES.names())


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_strategy_runs_on_tiny_wan(backend, name) -> None:
    strategy = _small(name)
    reward = PixelReward(backend)
    result = strategy.run(backend, reward, PROMPT, seed=3)

    assert result.strategy == strategy.name
    assert result.latents.shape == backend.latent_shape
    assert torch.isfinite(result.latents).all()
    assert result.video.shape == (9, 16, 16, 3)
    assert float(result.video.min()) >= 0.0 and float(result.video.max()) <= 1.0
    assert result.cost.particle_steps >= backend.num_steps
    assert result.cost.nfe >= 2 * result.cost.particle_steps  # guidance: two forwards a step
    assert math.isfinite(result.reward)
    # the reported scores are the pixel reward of the returned video
    batch = RewardBatch(
        data=result.video[None],
        sigma=torch.zeros(1),
        conditioning=backend.encode(PROMPT),
        step=backend.num_steps,
    )
    assert torch.allclose(result.scores, reward(batch)[0], atol=1e-4)
