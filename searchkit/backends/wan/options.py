"""How the Wan backend samples: :class:`WanOptions`, its validators, and dtype names.

Every option is checked on construction, before any weight is loaded or any compute runs;
an error names the field and the value. The options every diffusers family shares, and
their checks, are those of :class:`~searchkit.backends.common.options.DiffusersOptions`;
:class:`WanOptions` gives Wan's defaults and adds ``num_frames`` and ``guidance_scale_2``.
The size and frame checks encode the Wan family's
constraints (VAE factors 8 in space and 4 in time, transformer patch 2; the Wan2.2 TI2V-5B
VAE's spatial factor 16 is checked against the loaded model when the backend is built).
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from searchkit.backends.common.options import (
    DIFFUSERS_SOLVERS,
    PIPELINE_SOLVER,
    DiffusersOptions,
    as_float,
    family_default,
    family_options,
    optional_finite_float,
    parse_dtype,
)
from searchkit.validation import integer

__all__ = [
    "FRAME_MULTIPLE",
    "PIPELINE_SOLVER",
    "SIZE_MULTIPLE",
    "WAN_NEGATIVE_PROMPT",
    "WAN_NEGATIVE_PROMPT_ZH",
    "WAN_SOLVERS",
    "WanOptions",
    "parse_dtype",
]

#: Wan2.1's standard negative prompt, as the LatSearch code passes it (its
#: ``sample_neg_prompt``; the same English text is diffusers' ``WanPipeline`` example). It
#: is the English rendering of :data:`WAN_NEGATIVE_PROMPT_ZH`, the one in Wan2.1's own
#: ``wan/configs/shared_config.py``. The default of :attr:`WanOptions.negative_prompt`.
WAN_NEGATIVE_PROMPT = (
    "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, "
    "images, static, overall gray, worst quality, low quality, JPEG compression residue, ugly, "
    "incomplete, extra fingers, poorly drawn hands, poorly drawn faces, deformed, disfigured, "
    "misshapen limbs, fused fingers, still picture, messy background, three legs, many people "
    "in the background, walking backwards"
)
#: The negative prompt of Wan2.1's reference code (``wan/configs/shared_config.py``), in the
#: original Chinese; pass it as ``negative_prompt`` to sample exactly as that code does.
WAN_NEGATIVE_PROMPT_ZH = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，"
    "低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，"
    "毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
WAN_SOLVERS: tuple[str, ...] = DIFFUSERS_SOLVERS
#: Pixel size multiple: VAE spatial factor 8 times transformer patch 2 (Wan2.1 and A14B;
#: the TI2V-5B VAE's factor 16 makes it 32, checked when the backend is built).
SIZE_MULTIPLE = 16
#: Frames are ``4 k + 1`` (VAE temporal factor 4).
FRAME_MULTIPLE = 4


def _size(instance: object, attribute: attrs.Attribute, value: int) -> None:
    integer(instance, attribute, value)
    if value <= 0 or value % SIZE_MULTIPLE:
        raise ValueError(
            f"{attribute.name} must be a positive multiple of {SIZE_MULTIPLE} pixels "
            f"(VAE factor 8 x patch 2), got {value}"
        )


def _frames(instance: object, attribute: attrs.Attribute, value: int) -> None:
    integer(instance, attribute, value)
    if value < 1 or (value - 1) % FRAME_MULTIPLE:
        raise ValueError(f"{attribute.name} must be 4k+1 (1, 5, 9, ..., 33, ..., 81), got {value}")


@family_options
class WanOptions(DiffusersOptions):
    """How :class:`~searchkit.backends.wan.WanBackend` samples; validated on construction.

    The memory and batching options (``max_batch``, ``cfg_batched``, ``vae_slicing``,
    ``vae_tiling``, ``offload_text_encoder``, ``cpu_offload``) are those of
    :class:`~searchkit.backends.common.options.DiffusersOptions`; a guided forward holds
    ``2 * max_batch`` rows with ``cfg_batched``, Wan's conditional rows first.

    Args:
        solver: ``"unipc"`` (UniPC, flow sigmas, order 2), ``"euler"`` (FlowMatchEuler),
            ``"sde-dpmsolver++"`` (stochastic; the paper's best), or ``"pipeline"`` (a fresh
            copy of the wrapped pipeline's own scheduler; ``flow_shift`` is then unused).
        flow_shift: timestep shift of the named solvers (paper 5.0; the 1.3B checkpoint 3.0).
        guidance_scale: classifier-free guidance ``g``; 1.0 disables guidance (one forward
            per particle-step), as the pipeline does for ``g <= 1``.
        height, width: pixels, multiples of 16.
        num_frames: ``4k + 1``.
        num_steps: denoising steps of one trajectory.
        negative_prompt: the unconditional prompt of guidance; default
            :data:`WAN_NEGATIVE_PROMPT`, Wan's standard one; ``""`` for none (the pipeline's
            own default).
        max_sequence_length: text tokens (the pipeline's 512).
        guidance_scale_2: guidance of the low-noise expert of a two-expert (Wan2.2 A14B)
            model; ``None`` uses ``guidance_scale``, as ``WanPipeline`` does. Whether guidance
            runs at all follows ``guidance_scale`` alone, as in the pipeline.
        vae_slicing: decode one video at a time (bounds decoder memory).
    """

    family: ClassVar[str] = "Wan"

    solver: str = family_default("solver", "unipc")
    flow_shift: float = family_default("flow_shift", 5.0)
    guidance_scale: float = family_default("guidance_scale", 5.0)
    height: int = attrs.field(default=480, validator=_size)
    width: int = attrs.field(default=832, validator=_size)
    num_frames: int = attrs.field(default=33, validator=_frames)
    num_steps: int = family_default("num_steps", 50)
    negative_prompt: str = family_default("negative_prompt", WAN_NEGATIVE_PROMPT)
    max_sequence_length: int = family_default("max_sequence_length", 512)
    guidance_scale_2: float | None = attrs.field(
        default=None, converter=as_float, validator=optional_finite_float(1.0)
    )
