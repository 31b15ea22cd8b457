"""The FLOP figures of the analytic world's cost model, measured on Wan2.1-T2V-1.3B shapes.

Every model is built on the meta device from its real-size configuration (no weights, no
memory) and counted with ``torch.utils.flop_counter.FlopCounterMode``, at the LatSearch
paper's video size, 832x480 pixels and 33 frames (latent 16 x 9 x 60 x 104):

* one Wan2.1-1.3B transformer forward (512 text tokens; a guided step is two), as
  :meth:`WanBackend.forward_flops <searchkit.backends.wan.WanBackend.forward_flops>`
  counts it;
* one Wan2.1 VAE decode of one latent to 33 frames (diffusers' ``AutoencoderKLWan`` with
  the checkpoint's configuration, which is the class's default), as
  :meth:`WanBackend.decode_flops <searchkit.backends.wan.WanBackend.decode_flops>` counts it;
* one VideoReward call on the decoded video and one LatSearch latent-reward call on the
  latent (``benchmarks/verifier_flops.py``: Qwen2-VL-2B + LoRA, ``--text-tokens`` prompt
  tokens);
* one CLIPScore call on the 33 frames (``benchmarks/clip_score_flops.py``: ViT-L/14).

It prints each in TFLOP and in Wan forwards: the forward-equivalents that
:mod:`searchkit.backends.analytic_cost` charges by default, and checks them against the
defaults there (``--json`` prints the figures as JSON)::

    python benchmarks/flops.py [--text-tokens 900] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark scripts

from clip_score_flops import clip_score_flops  # noqa: E402
from verifier_flops import reward_call  # noqa: E402

from searchkit.backends import analytic_cost  # noqa: E402
from searchkit.backends.wan import WAN21_1_3B_TRANSFORMER, WanOptions  # noqa: E402
from searchkit.backends.wan.flops import WanFlops  # noqa: E402

LATENT = (16, 9, 60, 104)


class _MetaPipe:
    """The two components :class:`WanFlops` reads, built on the meta device."""

    def __init__(self) -> None:
        from diffusers import AutoencoderKLWan, WanTransformer3DModel

        with torch.device("meta"):
            self.transformer = WanTransformer3DModel(**WAN21_1_3B_TRANSFORMER)
            self.vae = AutoencoderKLWan()


def measure(text_tokens: int) -> dict[str, float]:
    """FLOPs of one forward, one decode and one call of each verifier, at 832x480x33."""
    options = WanOptions()  # the paper's 832x480, 33 frames, 512 text tokens
    counter = WanFlops(_MetaPipe(), LATENT, options)
    return {
        "forward": counter.forward(1),
        "decode": counter.decode(1),
        "video_reward": float(reward_call((2, 24, 42), 3, text_tokens)[0]),
        "latent_reward": float(reward_call((4, 18, 30), 16, text_tokens)[0]),
        "clip_score": float(clip_score_flops(33, 480, 832)["total_flops"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-tokens", type=int, default=900, help="verifier prompt tokens")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    flops = measure(args.text_tokens)
    forward = flops["forward"]
    defaults = {
        "forward": analytic_cost.WAN21_FORWARD_FLOPS,
        "decode": analytic_cost.WAN21_DECODE_FLOPS,
        "video_reward": analytic_cost.VIDEO_REWARD_FLOPS,
        "latent_reward": analytic_cost.LATENT_REWARD_FLOPS,
        "clip_score": analytic_cost.CLIP_SCORE_FLOPS,
    }
    rows = {
        name: {
            "tflops": value / 1e12,
            "forward_equivalents": value / forward,
            "default_tflops": defaults[name] / 1e12,
        }
        for name, value in flops.items()
    }
    if args.json:
        print(json.dumps({"text_tokens": args.text_tokens, "figures": rows}, indent=2))
        return
    labels = {
        "forward": "Wan2.1-1.3B transformer forward",
        "decode": "Wan2.1 VAE decode (33 frames)",
        "video_reward": "VideoReward call (decoded video)",
        "latent_reward": "LatSearch latent reward call",
        "clip_score": "CLIPScore call (33 frames)",
    }
    print(f"832x480, 33 frames; verifier prompts of {args.text_tokens} tokens")
    print(f"{'':34s} {'TFLOP':>8s} {'forwards':>9s} {'default':>8s}")
    for name, row in rows.items():
        print(
            f"{labels[name]:34s} {row['tflops']:8.2f} {row['forward_equivalents']:9.4f} "
            f"{row['default_tflops']:8.2f}"
        )


if __name__ == "__main__":
    main()
