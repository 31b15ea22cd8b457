"""FLOPs of one CLIPScore call on one Wan2.1 video, against one Wan2.1-T2V-1.3B forward.

Measured with ``torch.utils.flop_counter.FlopCounterMode`` on the meta device (no weights,
no memory, no time): transformers' ``CLIPModel`` built from the configuration of
``openai/clip-vit-large-patch14`` (ViT-L/14 at 224x224: 24 layers of width 1024; text: 12
layers of width 768, 77 positions; projection 768), scoring every frame of one video of 33
frames at 832x480 through ``CLIPScore.image_embeddings`` (resize, crop, image tower) in
chunks of ``max_batch`` frames, plus one text embedding of a prompt of the full 77 tokens
(an upper bound; it is computed once per prompt and cached). The counter counts matrix
products and convolutions, not the resizing or the normalisation.

The Wan figure (72.9 TFLOP for one forward at 832x480x33; a guided step is two) is the one
``benchmarks/latent_reward_cost.py`` measures the same way.

    python benchmarks/clip_score_flops.py [--frames 33 --height 480 --width 832]
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from searchkit.rewards.clip_checkpoint import CLIP_MEAN, CLIP_STD, CLIPPreprocessing
from searchkit.rewards.clip_score import CLIPScore, CLIPScoreOptions

WAN_1_3B_FORWARD_FLOPS = 72.9e12  # benchmarks/latent_reward_cost.py, 832x480x33
# openai/clip-vit-large-patch14's config.json, architecture fields only.
VIT_L_14 = {
    "projection_dim": 768,
    "text_config": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "max_position_embeddings": 77,
        "vocab_size": 49408,
        "projection_dim": 768,
    },
    "vision_config": {
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "image_size": 224,
        "patch_size": 14,
        "projection_dim": 768,
    },
}


def clip_score_flops(frames: int, height: int, width: int, max_batch: int = 32) -> dict[str, float]:
    """FLOPs of the image and text embeddings of one CLIPScore call, and the parameter count."""
    from transformers import CLIPConfig, CLIPModel

    with torch.device("meta"):
        model = CLIPModel(CLIPConfig(**VIT_L_14)).eval()
        video = torch.empty(frames, height, width, 3)
        tokens = torch.zeros(1, 77, dtype=torch.long)
    preprocessing = CLIPPreprocessing(224, (224, 224), CLIP_MEAN, CLIP_STD)
    reward = CLIPScore(model, None, preprocessing, CLIPScoreOptions(max_batch=max_batch))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        for start in range(0, frames, max_batch):
            reward.image_embeddings(video[start : start + max_batch])
    image = counter.get_total_flops()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.get_text_features(input_ids=tokens)
    text = counter.get_total_flops()
    params = sum(p.numel() for p in model.parameters())
    return {
        "image_flops": image,
        "text_flops": text,
        "total_flops": image + text,
        "parameters": params,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    args = parser.parse_args()
    result = clip_score_flops(args.frames, args.height, args.width)
    result["per_frame_image_flops"] = result["image_flops"] / args.frames
    result["share_of_one_wan_1_3b_forward"] = result["total_flops"] / WAN_1_3B_FORWARD_FLOPS
    print(json.dumps(result, indent=2))
    print(
        f"CLIPScore (ViT-L/14, {args.frames} frames at {args.width}x{args.height}): "
        f"{result['total_flops'] / 1e12:.2f} TFLOP "
        f"({result['share_of_one_wan_1_3b_forward']:.1%} of one Wan2.1-1.3B forward, 72.9 TFLOP)"
    )


if __name__ == "__main__":
    main()
