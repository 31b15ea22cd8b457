"""How the SD3 backend samples: :class:`SD3Options`, validated on construction.

Every option is checked before any weight is loaded; an error names the field and the value.
The options and their checks are those every diffusers family shares
(:class:`~searchkit.backends.common.options.DiffusersOptions`); :class:`SD3Options` gives
the SD3 pipeline's defaults. Sizes are checked against the loaded model (VAE
factor 8 times transformer patch 2: multiples of 16 pixels) when the backend is built.
"""

from __future__ import annotations

from typing import ClassVar

from searchkit.backends.common.options import DiffusersOptions, family_default, family_options

__all__ = ["SD3Options"]


@family_options
class SD3Options(DiffusersOptions):
    """How :class:`~searchkit.backends.sd3.SD3Backend` samples; defaults are
    ``StableDiffusion3Pipeline.__call__``'s and the SD3 checkpoints' scheduler.

    The memory and batching options (``max_batch``, ``cfg_batched``, ``vae_slicing``,
    ``vae_tiling``, ``offload_text_encoder``, ``cpu_offload``) are those of
    :class:`~searchkit.backends.common.options.DiffusersOptions`; a guided forward holds
    ``2 * max_batch`` rows with ``cfg_batched``, the unconditional rows first, as the
    pipeline does.

    Args:
        solver: ``"euler"`` (FlowMatchEuler, the SD3 checkpoints' scheduler), ``"unipc"``,
            ``"sde-dpmsolver++"`` (stochastic), or ``"pipeline"`` (a fresh copy of the wrapped
            pipeline's own scheduler, with its dynamic shift if it has one; ``flow_shift`` is
            then unused).
        flow_shift: timestep shift of the named solvers (the SD3 checkpoints' 3.0).
        guidance_scale: classifier-free guidance ``g`` (the pipeline's 7.0; SD3.5 Large is
            usually run at 3.5 to 4.5); 1.0 disables guidance (one forward per particle-step).
        height, width: pixels (multiples of 16 for the SD3 models).
        num_steps: denoising steps (the pipeline's 28).
        negative_prompt: the unconditional prompt of guidance (sent to all three encoders).
        max_sequence_length: T5 tokens (the pipeline's 256).
        vae_slicing: decode one image at a time (bounds decoder memory).
        offload_text_encoder: keep the three text encoders on the CPU between prompts.
    """

    family: ClassVar[str] = "SD3"

    solver: str = family_default("solver", "euler")
    flow_shift: float = family_default("flow_shift", 3.0)
    guidance_scale: float = family_default("guidance_scale", 7.0)
    height: int = family_default("height", 1024)
    width: int = family_default("width", 1024)
    num_steps: int = family_default("num_steps", 28)
    negative_prompt: str = family_default("negative_prompt", "")
    max_sequence_length: int = family_default("max_sequence_length", 256)
