"""Random-weight Wan components built offline: the tiny test pipeline and its tokenizer, and
the shape of the real 1.3B transformer.

:func:`tiny_pipeline` is a complete ``diffusers.WanPipeline`` of small random components,
for tests and demos (its videos are noise-like patterns, not generations); users' own tests
import it from :mod:`searchkit.backends.wan`. The transformer (2 layers, 2 heads of 12) and
VAE (base width 3) follow the configs of diffusers' own Wan tests; the text encoder is a
2-layer UMT5 built from a config, and the tokenizer a word-level one built in memory over
:data:`TINY_VOCABULARY` (unknown words map to ``<unk>``), so nothing is downloaded. Weights
are redrawn from a generator seeded with ``seed``, so the same seed gives the same model.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # diffusers' pipeline module pulls in transformers; import it lazily
    from diffusers import WanPipeline
    from transformers import PreTrainedTokenizerFast

#: The Wan2.1-T2V-1.3B transformer configuration (diffusers format), for building
#: random-weight models of the real size (benchmarks, FLOP counts) without a checkpoint.
WAN21_1_3B_TRANSFORMER: dict[str, Any] = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 12,
    "attention_head_dim": 128,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 8960,
    "num_layers": 30,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 1024,
}
#: Default sampling size of the tiny backend: 32x32 pixels, 9 frames.
TINY_SIZE: dict[str, int] = {"height": 32, "width": 32, "num_frames": 9}

#: The tiny tokenizer's vocabulary: special tokens, then common words of video prompts.
TINY_VOCABULARY: tuple[str, ...] = (
    "<pad>",
    "</s>",
    "<unk>",
    "a",
    "an",
    "the",
    "of",
    "in",
    "on",
    "at",
    "with",
    "and",
    "through",
    "over",
    "under",
    "into",
    "by",
    "from",
    "to",
    "its",
    "is",
    "are",
    ",",
    ".",
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "white",
    "black",
    "gray",
    "brown",
    "golden",
    "silver",
    "dark",
    "bright",
    "colorful",
    "fox",
    "cat",
    "dog",
    "horse",
    "bird",
    "fish",
    "bear",
    "wolf",
    "rabbit",
    "panda",
    "tiger",
    "lion",
    "deer",
    "owl",
    "eagle",
    "dragon",
    "robot",
    "man",
    "woman",
    "child",
    "people",
    "astronaut",
    "car",
    "train",
    "boat",
    "ship",
    "plane",
    "bicycle",
    "city",
    "street",
    "forest",
    "mountain",
    "mountains",
    "river",
    "lake",
    "ocean",
    "sea",
    "beach",
    "desert",
    "field",
    "garden",
    "sky",
    "clouds",
    "sun",
    "moon",
    "stars",
    "rain",
    "snow",
    "fire",
    "water",
    "waves",
    "night",
    "sunset",
    "sunrise",
    "morning",
    "winter",
    "summer",
    "space",
    "room",
    "kitchen",
    "window",
    "tree",
    "trees",
    "flowers",
    "grass",
    "road",
    "bridge",
    "building",
    "running",
    "walking",
    "flying",
    "swimming",
    "jumping",
    "dancing",
    "playing",
    "eating",
    "sitting",
    "standing",
    "driving",
    "riding",
    "surfing",
    "falling",
    "floating",
    "moving",
    "slowly",
    "quickly",
    "fresh",
    "old",
    "young",
    "big",
    "small",
    "tall",
    "beautiful",
    "cinematic",
    "realistic",
    "close",
    "up",
    "shot",
    "view",
    "camera",
    "aerial",
    "wide",
    "light",
    "shadow",
    "reflection",
    "glowing",
    "misty",
    "foggy",
    "snowy",
    "rainy",
    "sunny",
)


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over :data:`TINY_VOCABULARY`, built in memory (lower-cased,
    split on whitespace and punctuation, ``</s>`` appended as UMT5's tokenizer does)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(TINY_VOCABULARY)}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=4096,
    )


def tiny_pipeline(seed: int = 0) -> WanPipeline:
    """A ``WanPipeline`` of small random components (see the module docstring), on the CPU."""
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    text_dim = 32
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=text_dim,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    text_config = UMT5Config(
        vocab_size=len(TINY_VOCABULARY),
        d_model=text_dim,
        d_kv=8,
        d_ff=32,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=32,
        dropout_rate=0.0,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    text_encoder = UMT5EncoderModel(text_config)
    generator = torch.Generator().manual_seed(seed)
    for module in (transformer, vae, text_encoder):
        _reinitialise(module, generator)
        module.eval()
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0, solver_order=2
    )
    return WanPipeline(
        tokenizer=tiny_tokenizer(),
        text_encoder=text_encoder,
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
    )


@torch.no_grad()
def _reinitialise(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Redraw every parameter from ``generator`` (so weights depend on the seed alone).

    Parameters that start as all ones (norm scales) stay ones; matrices and kernels get
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (PyTorch's default scale), vectors ``N(0, 0.02)``.
    """
    for _, param in sorted(module.named_parameters()):
        if not param.is_floating_point() or bool((param == 1).all()):
            continue
        if param.dim() >= 2:
            bound = 1.0 / math.sqrt(max(param[0].numel(), 1))
            fresh = (torch.rand(param.shape, generator=generator) * 2 - 1) * bound
        else:
            fresh = 0.02 * torch.randn(param.shape, generator=generator)
        param.copy_(fresh.to(param.dtype))
