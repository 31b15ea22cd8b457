"""Random-weight Wan components built offline: the tiny test pipelines of each family member
and their tokenizer, and the shape of the real 1.3B transformer.

:func:`tiny_pipeline` is a complete ``diffusers.WanPipeline`` of small random components,
for tests and demos (its videos are noise-like patterns, not generations); users' own tests
import it from :mod:`searchkit.backends.wan`. Its ``variant`` copies the structure of one
family member:

* ``"wan2.1"`` (T2V 1.3B and 14B): the transformer (2 layers, 2 heads of 12) and VAE (base
  width 3) of diffusers' own Wan tests;
* ``"wan2.2-ti2v-5b"``: the Wan2.2 VAE (48 latent channels, residual blocks, 2x2 patchified
  pixels, spatial factor 16) and a 48-channel transformer, with per-token timesteps
  (``expand_timesteps``), as in diffusers' Wan2.2 5B tests;
* ``"wan2.2-t2v-a14b"``: the Wan2.1 components plus a second transformer (the low-noise
  expert) and ``boundary_ratio`` 0.875, as in diffusers' Wan2.2 tests.

The text encoder is a 2-layer UMT5 built from a config, and the tokenizer a word-level one
built in memory over :data:`~searchkit.backends.common.tiny.TINY_VOCABULARY` (unknown words
map to ``<unk>``), so nothing is downloaded. Weights are redrawn from a generator seeded with
``seed``, so the same seed gives the same model; the A14B variant draws its second
transformer last, so its other components are those of the Wan2.1 variant of the same seed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from searchkit.backends.common.tiny import TINY_VOCABULARY, reinitialise, word_tokenizer

if TYPE_CHECKING:  # diffusers' pipeline module pulls in transformers; import it lazily
    from diffusers import WanPipeline
    from transformers import PreTrainedTokenizerFast

__all__ = [
    "TINY_SIZE",
    "TINY_VARIANTS",
    "TINY_VOCABULARY",
    "WAN21_1_3B_TRANSFORMER",
    "tiny_pipeline",
    "tiny_tokenizer",
]

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

#: Family members :func:`tiny_pipeline` copies the structure of.
TINY_VARIANTS: tuple[str, ...] = ("wan2.1", "wan2.2-ti2v-5b", "wan2.2-t2v-a14b")
#: The boundary ratio of the tiny two-expert pipeline (diffusers' tests and the A14B model).
TINY_BOUNDARY_RATIO = 0.875


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over :data:`TINY_VOCABULARY`, built in memory (lower-cased,
    split on whitespace and punctuation, ``</s>`` appended as UMT5's tokenizer does)."""
    return word_tokenizer(TINY_VOCABULARY)


def tiny_pipeline(seed: int = 0, variant: str | None = None) -> WanPipeline:
    """A ``WanPipeline`` of small random components copying ``variant`` (one of
    :data:`TINY_VARIANTS`; default ``"wan2.1"``), on the CPU (see the module docstring)."""
    from diffusers import UniPCMultistepScheduler, WanPipeline

    variant = "wan2.1" if variant is None else variant
    if variant not in TINY_VARIANTS:
        raise ValueError(f"variant must be one of {TINY_VARIANTS}, got {variant!r}")
    ti2v = variant == "wan2.2-ti2v-5b"
    channels = 48 if ti2v else 16
    transformer = _tiny_transformer(channels)
    vae = _tiny_wan22_vae() if ti2v else _tiny_wan21_vae()
    text_encoder = _tiny_text_encoder()
    modules = [transformer, vae, text_encoder]
    extra: dict[str, Any] = {}
    if variant == "wan2.2-t2v-a14b":
        extra = {
            "transformer_2": _tiny_transformer(channels),
            "boundary_ratio": TINY_BOUNDARY_RATIO,
        }
        modules.append(extra["transformer_2"])
    elif ti2v:
        extra = {"expand_timesteps": True}
    generator = torch.Generator().manual_seed(seed)
    for module in modules:
        reinitialise(module, generator)
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
        **extra,
    )


_TEXT_DIM = 32


def _tiny_transformer(channels: int):
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=channels,
        out_channels=channels,
        text_dim=_TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )


def _tiny_wan21_vae():
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )


def _tiny_wan22_vae():
    """The Wan2.2 VAE's structure: 48 latent channels, residual blocks, RGB patchified 2x2
    (12 input channels), spatial factor 16; latent statistics away from 0 and 1, so that
    the de-normalisation is exercised."""
    from diffusers import AutoencoderKLWan

    z_dim = 48
    return AutoencoderKLWan(
        base_dim=3,
        z_dim=z_dim,
        in_channels=12,
        out_channels=12,
        is_residual=True,
        patch_size=2,
        latents_mean=[0.1 * (i % 7 - 3) for i in range(z_dim)],
        latents_std=[0.8 + 0.1 * (i % 5) for i in range(z_dim)],
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
        temperal_downsample=[False, True, True],
    )


def _tiny_text_encoder():
    from transformers import UMT5Config, UMT5EncoderModel

    return UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(TINY_VOCABULARY),
            d_model=_TEXT_DIM,
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
    )
