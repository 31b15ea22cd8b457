"""The toy pixel reward states its FLOPs: the count equals torch's FLOP counter on a real
call, so tiny-Wan runs (the pixel reward is Wan's default) report a total, and a Wan sweep
can be sized in FLOPs."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from searchkit import RGRP, Baseline
from searchkit.backend import Conditioning
from searchkit.backends import WanBackend
from searchkit.backends.wan import tiny_pipeline
from searchkit.bench.flop_budget import flop_rates
from searchkit.builders import build_reward
from searchkit.reward import RewardBatch
from searchkit.rewards.pixel import PixelReward

PROMPT = "a small boat on a lake at sunset"


@pytest.mark.parametrize("shape", [(1, 1, 4, 4, 3), (2, 5, 8, 6, 3), (3, 9, 16, 16, 3)])
def test_the_count_equals_torchs_flop_counter_on_a_real_call(shape) -> None:
    video = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    batch = RewardBatch(
        data=video,
        sigma=torch.zeros(shape[0]),
        conditioning=Conditioning(PROMPT, None),
        step=0,
    )
    reward = PixelReward()
    with FlopCounterMode(display=False) as counter:
        reward(batch)
    counted = counter.get_total_flops()
    assert counted > 0  # the luminance product is a matrix product the counter sees
    assert reward.flops(batch) == counted == 2 * video.numel()


@pytest.fixture(scope="module")
def backend() -> WanBackend:
    return WanBackend.from_pipeline(
        tiny_pipeline(seed=1),
        height=16,
        width=16,
        num_frames=9,
        num_steps=50,
        max_sequence_length=16,
    )


@pytest.mark.parametrize("strategy", [Baseline(), RGRP(num_particles=2)])
def test_tiny_wan_runs_with_the_default_reward_report_their_flops(backend, strategy) -> None:
    reward = build_reward(None, backend)  # Wan's own default: the pixel reward
    assert isinstance(reward, PixelReward)
    cost = strategy.run(backend, reward, PROMPT, seed=3).cost
    assert cost.flops is not None and cost.flops > 0
    split = cost.flops_split
    assert None not in split.values() and cost.flops == pytest.approx(sum(split.values()))
    frames = backend.decode(backend.initial_noise(1, torch.Generator().manual_seed(0)))
    assert split["reward:pixel"] == pytest.approx(cost.reward_calls * 2 * frames.numel())
    # and a sweep can be sized in FLOPs on it
    assert flop_rates(backend, reward, PROMPT).reward == 2 * frames.numel()
