"""How the Wan backend samples: :class:`WanOptions`, its validators, and dtype names.

Every option is checked on construction, before any weight is loaded or any compute runs;
an error names the field and the value. Integer and boolean checks are the shared ones of
:mod:`searchkit.validation`; the size, frame and guidance checks encode Wan2.1's
constraints (VAE factors 8 in space and 4 in time, transformer patch 2).
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch

from searchkit.solver import SOLVERS
from searchkit.validation import boolean, integer, optional_positive_int, positive_int

#: ``solver`` value that uses the wrapped pipeline's own scheduler configuration.
PIPELINE_SOLVER = "pipeline"
WAN_SOLVERS: tuple[str, ...] = (*SOLVERS, PIPELINE_SOLVER)
#: Pixel size multiple: VAE spatial factor 8 times transformer patch 2 (all Wan2.1 models).
SIZE_MULTIPLE = 16
#: Frames are ``4 k + 1`` (VAE temporal factor 4).
FRAME_MULTIPLE = 4
_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


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


def _finite_float(low: float, strict: bool = False):
    """A finite float ``>= low`` (``> low`` when ``strict``)."""

    def check(instance: object, attribute: attrs.Attribute, value: float) -> None:
        if not isinstance(value, float):
            raise TypeError(f"{attribute.name} must be a number, got {value!r}")
        bad = not math.isfinite(value) or (value <= low if strict else value < low)
        if bad:
            bound = f"> {low}" if strict else f">= {low}"
            raise ValueError(f"{attribute.name} must be a finite number {bound}, got {value}")

    return check


def _solver(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if value not in WAN_SOLVERS:
        raise ValueError(f"solver must be one of {WAN_SOLVERS}, got {value!r}")


def _float(value: object) -> object:
    """Integers to floats; anything else is left for the validator to name."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


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
        negative_prompt: the unconditional prompt of guidance.
        max_sequence_length: text tokens (the pipeline's 512).
        max_batch: most particles per transformer forward; ``None`` for no limit. A forward
            holds ``2 * max_batch`` rows with ``cfg_batched`` (each particle's conditional and
            unconditional rows), ``max_batch`` rows otherwise.
        cfg_batched: conditional and unconditional passes in one forward (``True``) or two.
        vae_slicing: decode one video at a time (bounds decoder memory).
        vae_tiling: let the VAE decode in spatial tiles (switches tiling on in the wrapped VAE).
        offload_text_encoder: keep the text encoder on the CPU between prompts and move it to
            the device only while encoding.
    """

    solver: str = attrs.field(default="unipc", validator=_solver)
    flow_shift: float = attrs.field(
        default=5.0, converter=_float, validator=_finite_float(0.0, strict=True)
    )
    guidance_scale: float = attrs.field(default=5.0, converter=_float, validator=_finite_float(1.0))
    height: int = attrs.field(default=480, validator=_size)
    width: int = attrs.field(default=832, validator=_size)
    num_frames: int = attrs.field(default=33, validator=_frames)
    num_steps: int = attrs.field(default=50, validator=positive_int)
    negative_prompt: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    max_sequence_length: int = attrs.field(default=512, validator=positive_int)
    max_batch: int | None = attrs.field(default=None, validator=optional_positive_int)
    cfg_batched: bool = attrs.field(default=True, validator=boolean)
    vae_slicing: bool = attrs.field(default=False, validator=boolean)
    vae_tiling: bool = attrs.field(default=False, validator=boolean)
    offload_text_encoder: bool = attrs.field(default=False, validator=boolean)

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
        known = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(
                f"unknown Wan backend option(s) {unknown}; known: {', '.join(sorted(known))}"
            )
        return cls(**options)


def parse_dtype(value: torch.dtype | str | None, field: str = "dtype") -> torch.dtype | None:
    """``torch.bfloat16`` or ``"bf16"``/``"bfloat16"`` (etc.) to a torch dtype; ``None`` passes."""
    if value is None or isinstance(value, torch.dtype):
        return value
    if isinstance(value, str) and value.lower() in _DTYPES:
        return _DTYPES[value.lower()]
    raise ValueError(f"{field} must be one of {sorted(_DTYPES)} or a torch.dtype, got {value!r}")
