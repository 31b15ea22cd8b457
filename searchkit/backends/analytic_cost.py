"""The analytic world's cost model: what its calls would cost on Wan2.1-T2V-1.3B, in FLOPs.

The analytic world's own arithmetic is nearly free, which would hide what decodes and
verifiers cost on a real model (a search that scores every step with a pixel verifier
would look as cheap as one that scores three latents). So the analytic backend and its
rewards charge the meter by a cost model instead of by their own arithmetic:

* one model forward on one latent costs ``forward_flops`` (default: one Wan2.1-1.3B
  transformer forward at 832x480, 33 frames, 512 text tokens);
* one decode costs ``decode_forwards`` forwards;
* one reward call on one sample costs the forward-equivalents of the kind of verifier the
  reward stands for (:data:`REWARD_KINDS`): ``"latent"`` a LatSearch latent-reward call on
  the noisy latent, ``"pixel"`` a VideoReward call on the decoded video *plus the decode
  it needs* (a pixel verifier of a predicted ``x0`` must decode it first), ``"none"``
  nothing (a closed-form reward of no real counterpart).

The defaults are the ratios measured with torch's FLOP counter on meta-device models built
from the real configurations (``python benchmarks/flops.py``; text of 900 prompt tokens
for the Qwen2-VL verifiers):

==============================  ============  ===================
call (832x480, 33 frames)       TFLOP         Wan forwards
==============================  ============  ===================
Wan2.1-1.3B transformer forward  72.93         1
Wan2.1 VAE decode                112.75        1.546
VideoReward (decoded video)      7.14          0.098 (+ a decode)
LatSearch latent reward          7.32          0.100
CLIPScore (ViT-L/14, 33 frames)  5.36          0.073
==============================  ============  ===================

A guided step is two forwards, so a pixel verifier scoring one particle's predicted video
costs about 0.82 of a guided particle-step (1.546 + 0.098 = 1.644 forwards), a latent
reward call 0.05 of one.
"""

from __future__ import annotations

#: FLOPs of one Wan2.1-T2V-1.3B transformer forward at 832x480x33 (512 text tokens).
WAN21_FORWARD_FLOPS = 72_929_788_821_504.0
#: FLOPs of one Wan2.1 VAE decode of one 832x480x33 latent.
WAN21_DECODE_FLOPS = 112_752_200_171_520.0
#: FLOPs of one VideoReward call on one decoded 832x480x33 video (900 prompt tokens).
VIDEO_REWARD_FLOPS = 7_135_617_623_040.0
#: FLOPs of one LatSearch latent-reward call on one 832x480x33 latent (900 prompt tokens).
LATENT_REWARD_FLOPS = 7_323_301_979_136.0
#: FLOPs of one CLIPScore call on the 33 frames of one 832x480 video.
CLIP_SCORE_FLOPS = 5_360_142_422_016.0

#: A decode, in Wan2.1-1.3B forwards.
DECODE_FORWARDS = WAN21_DECODE_FLOPS / WAN21_FORWARD_FLOPS
#: A latent-reward call, in forwards.
LATENT_REWARD_FORWARDS = LATENT_REWARD_FLOPS / WAN21_FORWARD_FLOPS
#: A pixel-verifier (VideoReward) call, in forwards, not counting the decode it needs.
PIXEL_REWARD_FORWARDS = VIDEO_REWARD_FLOPS / WAN21_FORWARD_FLOPS

#: What an analytic reward can stand for, for its cost.
REWARD_KINDS: tuple[str, ...] = ("latent", "pixel", "none")


def default_kind(input: str) -> str:
    """The kind a reward on ``input`` stands for by default: a reward of the noisy latent
    ``x_t`` stands for a latent reward model, one of the predicted clean output (``x0``)
    for a pixel verifier of its decoded video."""
    return "latent" if input == "latent" else "pixel"


def check_kind(kind: object) -> str:
    if kind not in REWARD_KINDS:
        raise ValueError(f"stands_for must be one of {', '.join(REWARD_KINDS)}, got {kind!r}")
    return kind
