"""How the Wan backend samples: :class:`WanOptions`, its validators, and dtype names.

Every option is checked on construction, before any weight is loaded or any compute runs;
an error names the field and the value. Integer and boolean checks are the shared ones of
:mod:`searchkit.validation`, the float, solver and memory checks those of
:mod:`searchkit.backends.common.options`; the size and frame checks encode the Wan family's
constraints (VAE factors 8 in space and 4 in time, transformer patch 2; the Wan2.2 TI2V-5B
VAE's spatial factor 16 is checked against the loaded model when the backend is built).
"""

from __future__ import annotations

from typing import Any

import attrs

from searchkit.backends.common.options import (
    DIFFUSERS_SOLVERS,
    PIPELINE_SOLVER,
    as_float,
    check_combinations,
    finite_float,
    one_of,
    optional_finite_float,
    options_from,
    parse_dtype,
)
from searchkit.validation import boolean, integer, optional_positive_int, positive_int, text

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


@attrs.frozen
class WanOptions:
    """How :class:`~searchkit.backends.wan.WanBackend` samples; validated on construction.

    Args:
        solver: ``"unipc"`` (UniPC, flow sigmas, order 2), ``"euler"`` (FlowMatchEuler),
            ``"sde-dpmsolver++"`` (stochastic; the paper's best), or ``"pipeline"`` (a fresh
            copy of the wrapped pipeline's own scheduler; ``flow_shift`` is then unused).
        flow_shift: timestep shift of the named solvers (paper 5.0; the 1.3B checkpoint 3.0).
        guidance_scale: classifier-free guidance ``g``; 1.0 disables guidance (one forward
            per particle-step), as the pipeline does for ``g <= 1``.
        height, width: pixels, multiples of 16. num_frames: ``4k + 1``.
        num_steps: denoising steps of one trajectory.
        negative_prompt: the unconditional prompt of guidance; default
            :data:`WAN_NEGATIVE_PROMPT`, Wan's standard one; ``""`` for none (the pipeline's
            own default).
        max_sequence_length: text tokens (the pipeline's 512).
        max_batch: most particles per transformer forward; ``None`` for no limit. A forward
            holds ``2 * max_batch`` rows with ``cfg_batched`` (each particle's conditional and
            unconditional rows), ``max_batch`` rows otherwise.
        cfg_batched: conditional and unconditional passes in one forward (``True``) or two.
        vae_slicing: decode one video at a time (bounds decoder memory).
        vae_tiling: let the VAE decode in spatial tiles (switches tiling on in the wrapped VAE).
        offload_text_encoder: keep the text encoder on the CPU between prompts and move it to
            the device only while encoding.
        guidance_scale_2: guidance of the low-noise expert of a two-expert (Wan2.2 A14B)
            model; ``None`` uses ``guidance_scale``, as ``WanPipeline`` does. Whether guidance
            runs at all follows ``guidance_scale`` alone, as in the pipeline.
        cpu_offload: diffusers' model CPU offload: every model stays on the CPU and moves to
            the GPU only while it runs (for 14B models on one GPU; slower).
    """

    solver: str = attrs.field(default="unipc", validator=one_of(WAN_SOLVERS))
    flow_shift: float = attrs.field(
        default=5.0, converter=as_float, validator=finite_float(0.0, strict=True)
    )
    guidance_scale: float = attrs.field(
        default=5.0, converter=as_float, validator=finite_float(1.0)
    )
    height: int = attrs.field(default=480, validator=_size)
    width: int = attrs.field(default=832, validator=_size)
    num_frames: int = attrs.field(default=33, validator=_frames)
    num_steps: int = attrs.field(default=50, validator=positive_int)
    negative_prompt: str = attrs.field(default=WAN_NEGATIVE_PROMPT, validator=text)
    max_sequence_length: int = attrs.field(default=512, validator=positive_int)
    max_batch: int | None = attrs.field(default=None, validator=optional_positive_int)
    cfg_batched: bool = attrs.field(default=True, validator=boolean)
    vae_slicing: bool = attrs.field(default=False, validator=boolean)
    vae_tiling: bool = attrs.field(default=False, validator=boolean)
    offload_text_encoder: bool = attrs.field(default=False, validator=boolean)
    guidance_scale_2: float | None = attrs.field(
        default=None, converter=as_float, validator=optional_finite_float(1.0)
    )
    cpu_offload: bool = attrs.field(default=False, validator=boolean)

    def __attrs_post_init__(self) -> None:
        check_combinations(self)

    @property
    def guided(self) -> bool:
        """Whether classifier-free guidance runs (``guidance_scale > 1``, as in the pipeline)."""
        return self.guidance_scale > 1.0

    @property
    def forwards_per_step(self) -> int:
        """Model forwards per particle-step: 2 under guidance (conditional and unconditional,
        whether they share a batched forward or not), else 1."""
        return 2 if self.guided else 1

    @classmethod
    def from_options(cls, **options: Any) -> WanOptions:
        """Build from keyword options, naming any unknown one."""
        return options_from(cls, "Wan", options)
