"""A random-weight ``StableDiffusion3Pipeline`` built offline, for tests and demos.

Its images are noise-like patterns, not generations. The structure is SD3's, shrunk:

* an ``SD3Transformer2DModel`` with patch 2 over 16 latent channels (1 joint layer, 4 heads
  of 8), pooled projections of the two CLIP encoders (32 + 32) and a joint attention width
  of 64 (the T5 width, which the CLIP states are padded to, as the pipeline pads them);
* an ``AutoencoderKL`` with four blocks (spatial factor 8, as SD3's) of 4 to 8 channels, 16
  latent channels and SD3's latent scaling (1.5305) and shift (0.0609);
* two 2-layer CLIP text encoders with projection (the pipeline reads their penultimate
  states and pooled projections) and a 2-layer T5 encoder, built from configs;
* word-level tokenizers built in memory over
  :data:`~searchkit.backends.common.tiny.TINY_VOCABULARY` (CLIP's with a start token and 77
  positions, T5's with an end token), so nothing is downloaded;
* the SD3 checkpoints' scheduler: FlowMatchEuler with shift 3.0.

Weights are redrawn from a generator seeded with ``seed``: the same seed, the same model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from searchkit.backends.common.tiny import TINY_VOCABULARY, reinitialise, word_tokenizer

if TYPE_CHECKING:  # diffusers' pipeline module pulls in transformers; import it lazily
    from diffusers import StableDiffusion3Pipeline

__all__ = ["CLIP_VOCABULARY", "TINY_SIZE", "tiny_pipeline"]

#: Default sampling size of the tiny backend: 64x64 pixels (an 8x8 latent, 16 tokens).
TINY_SIZE: dict[str, int] = {"height": 64, "width": 64}
#: The tiny CLIP tokenizers' vocabulary: the common one and a start token.
CLIP_VOCABULARY: tuple[str, ...] = (*TINY_VOCABULARY, "<s>")
_CLIP_POSITIONS = 77
_CLIP_DIM = 32
_T5_DIM = 64


def tiny_pipeline(seed: int = 0, variant: str | None = None) -> StableDiffusion3Pipeline:
    """A ``StableDiffusion3Pipeline`` of small random components, on the CPU (see the module
    docstring). SD3 has one tiny variant, ``"sd3"`` (the default)."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import T5Config, T5EncoderModel

    if variant not in (None, "sd3"):
        raise ValueError(f"variant must be 'sd3' for the SD3 backend, got {variant!r}")
    transformer = SD3Transformer2DModel(
        sample_size=8,
        patch_size=2,
        in_channels=16,
        out_channels=16,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        joint_attention_dim=_T5_DIM,
        caption_projection_dim=32,
        pooled_projection_dim=2 * _CLIP_DIM,
        pos_embed_max_size=16,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(4, 4, 8, 8),
        layers_per_block=1,
        latent_channels=16,
        norm_num_groups=4,
        sample_size=64,
        scaling_factor=1.5305,
        shift_factor=0.0609,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    text_encoder, text_encoder_2 = _tiny_clip(), _tiny_clip()
    text_encoder_3 = T5EncoderModel(
        T5Config(
            vocab_size=len(TINY_VOCABULARY),
            d_model=_T5_DIM,
            d_kv=16,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            relative_attention_max_distance=32,
            dropout_rate=0.0,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    )
    generator = torch.Generator().manual_seed(seed)
    for module in (transformer, vae, text_encoder, text_encoder_2, text_encoder_3):
        reinitialise(module, generator)
        module.eval()
    return StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=_clip_tokenizer(),
        text_encoder_2=text_encoder_2,
        tokenizer_2=_clip_tokenizer(),
        text_encoder_3=text_encoder_3,
        tokenizer_3=word_tokenizer(TINY_VOCABULARY),
    )


def _tiny_clip():
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    return CLIPTextModelWithProjection(
        CLIPTextConfig(
            vocab_size=len(CLIP_VOCABULARY),
            hidden_size=_CLIP_DIM,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            projection_dim=_CLIP_DIM,
            max_position_embeddings=_CLIP_POSITIONS,
            bos_token_id=CLIP_VOCABULARY.index("<s>"),
            eos_token_id=CLIP_VOCABULARY.index("</s>"),
            pad_token_id=CLIP_VOCABULARY.index("<pad>"),
            hidden_act="gelu",
        )
    )


def _clip_tokenizer():
    return word_tokenizer(CLIP_VOCABULARY, bos="<s>", model_max_length=_CLIP_POSITIONS)
