"""How the SD3 backend samples: :class:`SD3Options`, validated on construction.

Every option is checked before any weight is loaded; an error names the field and the value.
The validators are the shared ones of :mod:`searchkit.validation` and
:mod:`searchkit.backends.common.options`; sizes are checked against the loaded model (VAE
factor 8 times transformer patch 2: multiples of 16 pixels) when the backend is built.
"""

from __future__ import annotations

from typing import Any

import attrs

from searchkit.backends.common.options import (
    DIFFUSERS_SOLVERS,
    as_float,
    check_combinations,
    finite_float,
    one_of,
    options_from,
)
from searchkit.validation import boolean, optional_positive_int, positive_int, text

__all__ = ["SD3Options"]


@attrs.frozen
class SD3Options:
    """How :class:`~searchkit.backends.sd3.SD3Backend` samples; defaults are
    ``StableDiffusion3Pipeline.__call__``'s and the SD3 checkpoints' scheduler.

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
        max_batch: most particles per transformer forward; ``None`` for no limit (a guided
            forward holds ``2 * max_batch`` rows with ``cfg_batched``).
        cfg_batched: unconditional and conditional rows in one forward (``True``, as the
            pipeline does) or two.
        vae_slicing: decode one image at a time. vae_tiling: the VAE's tiled decoding.
        offload_text_encoder: keep the three text encoders on the CPU between prompts.
        cpu_offload: diffusers' model CPU offload (every model on the GPU only while it runs).
    """

    solver: str = attrs.field(default="euler", validator=one_of(DIFFUSERS_SOLVERS))
    flow_shift: float = attrs.field(
        default=3.0, converter=as_float, validator=finite_float(0.0, strict=True)
    )
    guidance_scale: float = attrs.field(
        default=7.0, converter=as_float, validator=finite_float(1.0)
    )
    height: int = attrs.field(default=1024, validator=positive_int)
    width: int = attrs.field(default=1024, validator=positive_int)
    num_steps: int = attrs.field(default=28, validator=positive_int)
    negative_prompt: str = attrs.field(default="", validator=text)
    max_sequence_length: int = attrs.field(default=256, validator=positive_int)
    max_batch: int | None = attrs.field(default=None, validator=optional_positive_int)
    cfg_batched: bool = attrs.field(default=True, validator=boolean)
    vae_slicing: bool = attrs.field(default=False, validator=boolean)
    vae_tiling: bool = attrs.field(default=False, validator=boolean)
    offload_text_encoder: bool = attrs.field(default=False, validator=boolean)
    cpu_offload: bool = attrs.field(default=False, validator=boolean)

    def __attrs_post_init__(self) -> None:
        check_combinations(self)

    @property
    def guided(self) -> bool:
        """Whether classifier-free guidance runs (``guidance_scale > 1``, as in the pipeline)."""
        return self.guidance_scale > 1.0

    @property
    def forwards_per_step(self) -> int:
        """Model forwards per particle-step: 2 under guidance, else 1."""
        return 2 if self.guided else 1

    @classmethod
    def from_options(cls, **options: Any) -> SD3Options:
        """Build from keyword options, naming any unknown one."""
        return options_from(cls, "SD3", options)
