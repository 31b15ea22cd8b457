"""Stable Diffusion 3 (SD3 Medium, SD3.5 Medium and Large) as an adapter over the common
diffusers backend: an image flow-matching family.

Each step matches ``StableDiffusion3Pipeline.__call__``:

* encoding: the pipeline's ``encode_prompt`` (two CLIP encoders' penultimate states,
  concatenated and padded to the T5 width, then the T5 states; the pooled projections of
  the two CLIPs); the negative prompt goes to all three encoders;
* the forward: ``transformer(hidden_states, timestep, encoder_hidden_states,
  pooled_projections)``; batched guidance puts the unconditional rows first, as the pipeline
  does, so one particle's forward is the pipeline's own, bit for bit;
* decoding: ``z / scaling_factor + shift_factor`` through the VAE, ``[-1, 1]`` to ``[0, 1]``
  as diffusers' image processor does.

An image is a one-frame video: the latent is ``(C, 1, H / 8, W / 8)`` and decoding returns
``[n, 1, H, W, 3]``, so every strategy and video reward runs unchanged. Deviation: the
context keeps latents in float32 where the pipeline keeps them in the text encoders' dtype
(equal in float32; within rounding in half precision).

A checkpoint with a dynamically shifted scheduler (``use_dynamic_shifting``) gets the
pipeline's shift ``mu`` for the image's token count under ``solver="pipeline"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import torch

from searchkit.backends.common import CheckpointLayout, DiffusersBackend
from searchkit.backends.common.checkpoint import (
    MODEL_FILES,
    SCHEDULER_FILES,
    TOKENIZER_FILES,
    missing_components,
)
from searchkit.backends.sd3.options import SD3Options
from searchkit.backends.sd3.tiny import TINY_SIZE, tiny_pipeline

if TYPE_CHECKING:  # diffusers' pipeline module pulls in transformers; import it lazily
    from diffusers import StableDiffusion3Pipeline

__all__ = ["COMPONENTS", "LAYOUT", "SD3Backend", "SD3Encoding"]

#: Components of an SD3 checkpoint folder, with the file naming each.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "transformer": MODEL_FILES,
    "vae": MODEL_FILES,
    "text_encoder": MODEL_FILES,
    "text_encoder_2": MODEL_FILES,
    "text_encoder_3": MODEL_FILES,
    "tokenizer": TOKENIZER_FILES,
    "tokenizer_2": TOKENIZER_FILES,
    "tokenizer_3": TOKENIZER_FILES,
    "scheduler": SCHEDULER_FILES,
}
LAYOUT = CheckpointLayout(
    family="SD3",
    description="Stable Diffusion 3 / 3.5 text-to-image checkpoint",
    pipelines=("StableDiffusion3Pipeline",),
    components=COMPONENTS,
    weighted=("transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"),
)


@attrs.frozen(eq=False)
class SD3Encoding:
    """A prompt encoded for the SD3 transformer.

    ``prompt_embeds`` ``[1, L, D]`` and ``pooled_embeds`` ``[1, P]`` in the transformer's dtype
    (the ``negative_`` ones ``None`` without guidance); ``pooled`` is the prompt's pooled
    CLIP projections as a float32 vector ``[P]``, for rewards conditioned on text.
    """

    prompt_embeds: torch.Tensor
    pooled_embeds: torch.Tensor
    negative_embeds: torch.Tensor | None
    negative_pooled_embeds: torch.Tensor | None
    pooled: torch.Tensor

    def text_inputs(self, negative: bool = False) -> dict[str, torch.Tensor] | None:
        """The transformer's text keywords of one forward (batch dimension 1)."""
        if negative:
            if self.negative_embeds is None:
                return None
            return {
                "encoder_hidden_states": self.negative_embeds,
                "pooled_projections": self.negative_pooled_embeds,
            }
        return {
            "encoder_hidden_states": self.prompt_embeds,
            "pooled_projections": self.pooled_embeds,
        }


class SD3Backend(DiffusersBackend):
    """Stable Diffusion 3 text-to-image (diffusers components) behind the backend interface."""

    name = "sd3"
    options_class = SD3Options
    layout = LAYOUT
    pipeline_class_name = "StableDiffusion3Pipeline"
    vae_class_name = "AutoencoderKL"
    tiny_size = TINY_SIZE
    text_encoders = ("text_encoder", "text_encoder_2", "text_encoder_3")
    cast_components = ("transformer", "text_encoder", "text_encoder_2", "text_encoder_3")
    uncond_first = True

    @classmethod
    def check_pipeline(cls, pipe: Any) -> None:
        """``pipe`` must be a ``StableDiffusion3Pipeline`` with every component (the T5
        encoder included: the backend encodes as the full pipeline does)."""
        missing = missing_components(pipe, tuple(COMPONENTS))
        if missing:
            raise ValueError(
                f"pipe must be a diffusers StableDiffusion3Pipeline with all components; "
                f"{type(pipe).__name__} lacks {', '.join(missing)}"
            )

    @classmethod
    def tiny_pipeline(cls, seed: int = 0, variant: str | None = None) -> StableDiffusion3Pipeline:
        return tiny_pipeline(seed=seed, variant=variant)

    def _configure(self) -> None:
        pipe, opts = self._pipe, self.options
        self._factor = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
        self._patch = int(pipe.transformer.config.patch_size)
        multiple = self._factor * self._patch
        if opts.height % multiple or opts.width % multiple:
            raise ValueError(
                f"height and width must be multiples of {multiple} for this model (VAE factor "
                f"{self._factor} x patch {self._patch}), got height={opts.height}, "
                f"width={opts.width}"
            )

    @property
    def latent_shape(self) -> tuple[int, ...]:
        opts = self.options
        channels = int(self._pipe.transformer.config.in_channels)
        return (channels, 1, opts.height // self._factor, opts.width // self._factor)

    def _timestep_options(self, scheduler: Any) -> dict[str, Any]:
        """The pipeline's dynamic shift ``mu`` for the image's token count, when the scheduler
        shifts dynamically."""
        config = scheduler.config
        if not config.get("use_dynamic_shifting", False):
            return {}
        from diffusers.pipelines.stable_diffusion_3.pipeline_stable_diffusion_3 import (
            calculate_shift,
        )

        _, _, height, width = self.latent_shape
        tokens = (height // self._patch) * (width // self._patch)
        mu = calculate_shift(
            tokens,
            config.get("base_image_seq_len", 256),
            config.get("max_image_seq_len", 4096),
            config.get("base_shift", 0.5),
            config.get("max_shift", 1.16),
        )
        return {"mu": mu}

    def _encode(self, prompt: str) -> SD3Encoding:
        opts = self.options
        with torch.no_grad():
            positive, negative, pooled, negative_pooled = self._pipe.encode_prompt(
                prompt=prompt,
                prompt_2=None,
                prompt_3=None,
                device=self._device,
                do_classifier_free_guidance=opts.guided,
                negative_prompt=opts.negative_prompt,
                max_sequence_length=opts.max_sequence_length,
            )
        dtype = self._transformer_dtype
        return SD3Encoding(
            prompt_embeds=positive.to(dtype),
            pooled_embeds=pooled.to(dtype),
            negative_embeds=None if negative is None else negative.to(dtype),
            negative_pooled_embeds=None if negative_pooled is None else negative_pooled.to(dtype),
            pooled=pooled[0].float(),
        )

    def _call_model(
        self, model: Any, x: torch.Tensor, t: torch.Tensor, text: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        out = model(
            hidden_states=x.squeeze(2),
            timestep=t.expand(x.shape[0]),
            encoder_hidden_states=text["encoder_hidden_states"],
            pooled_projections=text["pooled_projections"],
            return_dict=False,
        )[0]
        return out.unsqueeze(2)

    def _decode_chunk(self, z: torch.Tensor) -> torch.Tensor:
        vae = self._pipe.vae
        device = self._device if self.options.cpu_offload else vae.device
        z = z.squeeze(2).to(device=device, dtype=vae.dtype)
        z = z / vae.config.scaling_factor + vae.config.shift_factor
        image = vae.decode(z, return_dict=False)[0]  # [k, 3, H, W] in [-1, 1]
        return (image * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).unsqueeze(1).float()

    def _model_summary(self) -> dict[str, Any]:
        transformer = self._pipe.transformer.config
        return {
            "num_layers": int(transformer.num_layers),
            "dim": int(transformer.num_attention_heads * transformer.attention_head_dim),
            "transformer_dtype": str(self.transformer_dtype).removeprefix("torch."),
            "latent_channels": int(transformer.in_channels),
            "vae_spatial_factor": self._factor,
        }
