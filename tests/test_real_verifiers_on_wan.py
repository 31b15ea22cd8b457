"""Best-of-N and RGRP on the tiny Wan backend with the real verifiers, built by registry name.

The verifiers are tiny random VideoReward / LatSearch checkpoints in the released layouts
(tests/video_reward_fixture.py); Wan runs its 50 steps on 16x16 pixels and 9 frames
(3 latent frames), so the scores mean nothing, but every piece of the paper's pipeline
runs: decoding for the video reward, step labels for the latent one, resampling, pruning.
"""

from __future__ import annotations

import math

import pytest
import torch
from video_reward_fixture import build_base, build_latent_checkpoint, build_video_reward

from searchkit import RGRP, BestOfN
from searchkit.backends import WanBackend
from searchkit.backends.wan import tiny_pipeline
from searchkit.builders import build_reward

PROMPT = "a small boat on a lake at sunset"


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


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("verifiers")
    base = build_base(root / "base")
    backbone = build_video_reward(root / "VideoReward", base)
    return backbone, build_latent_checkpoint(root / "latent_reward.pt", backbone)


@pytest.fixture(scope="module")
def video_reward(backend, checkpoints):
    return build_reward("video-reward", backend, path=str(checkpoints[0]), dtype="float32")


@pytest.fixture(scope="module")
def latent_reward(backend, checkpoints):
    return build_reward(
        "latsearch-latent-reward",
        backend,
        backbone_path=str(checkpoints[0]),
        checkpoint_path=str(checkpoints[1]),
        dtype="float32",
    )


def _check(result, backend, reward) -> None:
    assert result.latents.shape == backend.latent_shape
    assert result.video.shape == (9, 16, 16, 3)
    assert result.scores.shape == (3,) and torch.isfinite(result.scores).all()
    assert math.isfinite(result.reward)
    assert result.dimensions == ("VQ", "MQ", "TA")
    assert result.cost.particle_steps >= backend.num_steps


def test_best_of_n_with_video_reward(backend, video_reward) -> None:
    result = BestOfN(n=2).run(backend, video_reward, PROMPT, seed=0)
    _check(result, backend, video_reward)
    final = result.trace.scored[-1]
    assert final.input == "video" and final.scores.shape == (2, 3)
    # the returned output is the best of the two, and its scores are the reward of its video
    assert result.reward == pytest.approx(float(final.total.max()), rel=1e-5)
    torch.testing.assert_close(
        result.scores,
        video_reward.score_frames(result.video[None], [PROMPT])[0],
        rtol=1e-4,
        atol=1e-4,
    )


def test_rgrp_with_video_reward(backend, video_reward) -> None:
    result = RGRP(num_particles=3).run(backend, video_reward, PROMPT, seed=1)
    _check(result, backend, video_reward)
    assert [r.step for r in result.trace.scored[:3]] == [11, 16, 21]
    assert all(r.input == "video" for r in result.trace.scored[:3])


def test_rgrp_with_the_latent_reward(backend, latent_reward) -> None:
    latent_reward.check_steps(RGRP().schedule, backend.num_steps)
    result = RGRP(num_particles=3).run(backend, latent_reward, PROMPT, seed=2)
    _check(result, backend, latent_reward)
    scheduled = result.trace.scored[:3]
    assert [r.step for r in scheduled] == [11, 16, 21] and all(
        r.input == "latent" for r in scheduled
    )
    assert result.cost.decodes == 1  # a latent verifier: only the output is decoded


def test_best_of_n_with_the_latent_reward_scores_outputs_at_the_highest_label(
    backend, checkpoints, latent_reward
) -> None:
    result = BestOfN(n=2).run(backend, latent_reward, PROMPT, seed=0)
    _check(result, backend, latent_reward)
    final = result.latents[None]
    torch.testing.assert_close(
        result.scores, latent_reward.score_latents(final, [PROMPT], 31)[0]
    )  # label 600
    # the paper's model knows steps 10 to 30 only; without score_final a clean output is refused
    strict = build_reward(
        "latsearch-latent-reward",
        backend,
        backbone_path=str(checkpoints[0]),
        checkpoint_path=str(checkpoints[1]),
        dtype="float32",
        score_final=False,
    )
    with pytest.raises(ValueError, match="after step 49 needs label 980"):
        strict.check_steps((backend.num_steps - 1,), backend.num_steps)
    with pytest.raises(ValueError, match="after step 49 needs label 980"):
        BestOfN(n=2).run(backend, strict, PROMPT, seed=0)


def test_a_latent_checkpoint_for_other_channels_is_refused(backend, checkpoints, tmp_path) -> None:
    four = build_latent_checkpoint(tmp_path / "four.pt", checkpoints[0], channels=4)
    with pytest.raises(
        ValueError, match="reads 4-channel latents, backend 'wan' makes 16 channels"
    ):
        build_reward(
            "latsearch-latent-reward",
            backend,
            backbone_path=str(checkpoints[0]),
            checkpoint_path=str(four),
            dtype="float32",
        )


def test_scheduled_strategies_ask_the_reward_about_their_steps() -> None:
    """A reward that knows only some steps stops RGRP, FK steering, the particle filter and
    beam search before any compute, naming the step."""
    from searchkit import RGRP, BeamSearch, FKSteering, ParticleFilter
    from searchkit.backends import AnalyticBackend
    from searchkit.rewards import AnalyticReward

    class KnowsStepTen(AnalyticReward):
        def check_steps(self, steps, num_steps):
            unknown = [s for s in steps if s != 10]
            if unknown:
                raise ValueError(f"this reward knows only step 10, got step {unknown[0]}")

    backend = AnalyticBackend(num_steps=20)
    reward = KnowsStepTen(backend)
    RGRP(schedule=(10,)).check_compatible(backend, reward)
    for strategy in (
        RGRP(schedule=(10, 15)),
        FKSteering(schedule=(5,)),
        ParticleFilter(schedule=(12,)),
        BeamSearch(),
    ):
        with pytest.raises(ValueError, match="knows only step 10"):
            strategy.run(backend, reward, "a cat", seed=0)
