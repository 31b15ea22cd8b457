"""FLOPs of one VideoReward call and one LatSearch latent-reward call against one Wan2.1-1.3B forward.

Everything is built on the meta device (no weights, no memory, no time) and counted with
``torch.utils.flop_counter.FlopCounterMode``, at the paper's video size: 832x480 pixels,
33 frames (latent 16 x 9 x 60 x 104).

* **VideoReward** (Qwen2-VL-2B-Instruct + LoRA r = 64 on the language model + reward head):
  the reward samples 4 of the 33 frames (2 fps of a 16 fps video) and resizes them to
  588x336 (the 200,704-pixel cap), i.e. a ``(2, 24, 42)`` patch grid: 2,016 vision
  patches and 504 video tokens; the language model reads them with the reward prompt.
* **LatSearch latent reward model**: the same network on the latent: 8 of the 9 latent
  frames, resized to 420x252 (the 128 x 28 x 28 minimum), a ``(4, 18, 30)`` grid: 2,160
  patches, 540 video tokens, 16 channels in the patch embedding.
* **Wan2.1-T2V-1.3B**: one transformer forward with a 512-token text context (diffusers'
  ``WanTransformer3DModel`` from the 1.3B configuration). A guided step costs two.

The prompt's token count depends on Qwen2's tokenizer, which is not part of this
benchmark: ``--text-tokens`` sets it (default 900: the reward rubric is about 4,000
characters of English and Markdown, plus the chat template and a short prompt); each 100
tokens move the language model's share by about 0.3 TFLOP. Decoding the video for
VideoReward (the VAE) is not included. Run::

    python benchmarks/verifier_flops.py [--text-tokens 900] [--json]
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from searchkit.backends.wan import WAN21_1_3B_TRANSFORMER

LATENT = (16, 9, 60, 104)
WAN_TEXT_TOKENS, WAN_TEXT_DIM = 512, 4096
# Qwen2-VL-2B-Instruct's published configuration
TEXT = {
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "max_position_embeddings": 32768,
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 1000000.0,
        "mrope_section": [16, 24, 24],
    },
    "tie_word_embeddings": True,
}
VISION = {
    "depth": 32,
    "embed_dim": 1280,
    "hidden_size": 1536,
    "mlp_ratio": 4,
    "num_heads": 16,
    "in_channels": 3,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "hidden_act": "quick_gelu",
}
LORA_RANK, LORA_ALPHA = 64, 128


def wan_forward() -> tuple[int, int]:
    """(FLOPs, parameters) of one Wan2.1-1.3B transformer forward at 832x480x33."""
    from diffusers import WanTransformer3DModel

    with torch.device("meta"):
        model = WanTransformer3DModel(**WAN21_1_3B_TRANSFORMER)
        args = dict(
            hidden_states=torch.empty(1, *LATENT),
            timestep=torch.empty(1),
            encoder_hidden_states=torch.empty(1, WAN_TEXT_TOKENS, WAN_TEXT_DIM),
            return_dict=False,
        )
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(**args)
    return counter.get_total_flops(), sum(p.numel() for p in model.parameters())


def reward_call(grid: tuple[int, int, int], channels: int, text_tokens: int) -> tuple[int, int]:
    """(FLOPs, parameters) of one reward-network call on a video of patch grid ``grid``."""
    from peft import LoraConfig, inject_adapter_in_model
    from transformers import Qwen2VLConfig
    from transformers.models.qwen2_vl.modeling_qwen2_vl import (
        Qwen2VisionTransformerPretrainedModel,
        Qwen2VLTextModel,
    )

    config = Qwen2VLConfig(text_config=TEXT, vision_config={**VISION, "in_channels": channels})
    config.text_config._attn_implementation = config.vision_config._attn_implementation = "sdpa"
    with torch.device("meta"):
        visual = Qwen2VisionTransformerPretrainedModel(config.vision_config)
        language = Qwen2VLTextModel(config.text_config)
        targets = [n for n, m in language.named_modules() if isinstance(m, torch.nn.Linear)]
        language = inject_adapter_in_model(
            LoraConfig(r=LORA_RANK, lora_alpha=LORA_ALPHA, target_modules=targets), language
        )
        head = torch.nn.Linear(TEXT["hidden_size"], 1, bias=False)
        t, h, w = grid
        rows = torch.empty(
            t * h * w, channels * VISION["temporal_patch_size"] * VISION["patch_size"] ** 2
        )
        tokens = text_tokens + t * h * w // VISION["spatial_merge_size"] ** 2
        ids = torch.zeros(1, tokens, dtype=torch.long)
        positions = torch.arange(tokens).view(1, 1, -1).expand(3, 1, tokens)
    # positions and attention spans are computed from the grid on the CPU (they need its
    # values); the rotary tables then move to the meta device with the activations
    rotary = visual.rotary_pos_emb.forward
    visual.rotary_pos_emb.forward = lambda x, position_ids: rotary(x, position_ids.to(x.device))
    params = sum(p.numel() for m in (visual, language, head) for p in m.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        visual(rows, grid_thw=torch.tensor([grid]))
        embeds = language.embed_tokens(ids)
        hidden = language(
            inputs_embeds=embeds, position_ids=positions, use_cache=False
        ).last_hidden_state
        head(hidden[:, :3])
    return counter.get_total_flops(), params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--text-tokens", type=int, default=900, help="prompt tokens around the video (default 900)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    wan, wan_params = wan_forward()
    video, video_params = reward_call((2, 24, 42), 3, args.text_tokens)
    latent, latent_params = reward_call((4, 18, 30), 16, args.text_tokens)
    figures = {
        "wan_forward_tflops": wan / 1e12,
        "wan_params_m": wan_params / 1e6,
        "video_reward_tflops": video / 1e12,
        "video_reward_params_m": video_params / 1e6,
        "video_reward_per_wan_forward": video / wan,
        "latent_reward_tflops": latent / 1e12,
        "latent_reward_params_m": latent_params / 1e6,
        "latent_reward_per_wan_forward": latent / wan,
        "text_tokens": args.text_tokens,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"Wan2.1-1.3B forward (832x480x33)   {figures['wan_forward_tflops']:7.2f} TFLOP  ({wan_params / 1e9:.2f} B params)"
    )
    print(
        f"VideoReward call (4 frames 588x336) {figures['video_reward_tflops']:7.2f} TFLOP  "
        f"({video_params / 1e9:.2f} B params) = {video / wan:.3f} Wan forwards"
    )
    print(
        f"LatSearch latent reward call        {figures['latent_reward_tflops']:7.2f} TFLOP  "
        f"({latent_params / 1e9:.2f} B params) = {latent / wan:.3f} Wan forwards"
    )
    print(f"(prompt of {args.text_tokens} text tokens; a guided Wan step is two forwards)")


if __name__ == "__main__":
    main()
