"""Options shared by the diffusers model families: :class:`DiffusersOptions`, its
validators, dtype names, and the choice between a checkpoint and the tiny random model.

Every family's options class (:class:`~searchkit.backends.wan.WanOptions`,
:class:`~searchkit.backends.sd3.SD3Options`) derives from :class:`DiffusersOptions` with
:func:`family_options`, so the same option means, and the same mistake reads, the same in
every family: an error names the field and the value, before any weight is loaded. A family
declares only what differs: the defaults of the sampling options (its pipeline's), and
options of its own (Wan's ``num_frames``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar

import attrs
import torch

from searchkit.solver import SOLVERS
from searchkit.validation import boolean, optional_positive_int, positive_int, text

#: ``solver`` value that uses the wrapped pipeline's own scheduler configuration.
PIPELINE_SOLVER = "pipeline"
#: Solver names every diffusers family accepts.
DIFFUSERS_SOLVERS: tuple[str, ...] = (*SOLVERS, PIPELINE_SOLVER)

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def finite_float(low: float, strict: bool = False):
    """A finite float ``>= low`` (``> low`` when ``strict``)."""

    def check(instance: object, attribute: attrs.Attribute, value: float) -> None:
        if not isinstance(value, float):
            raise TypeError(f"{attribute.name} must be a number, got {value!r}")
        bad = not math.isfinite(value) or (value <= low if strict else value < low)
        if bad:
            bound = f"> {low}" if strict else f">= {low}"
            raise ValueError(f"{attribute.name} must be a finite number {bound}, got {value}")

    return check


def optional_finite_float(low: float):
    """``None`` or a finite float ``>= low``."""
    check = finite_float(low)

    def optional(instance: object, attribute: attrs.Attribute, value: float | None) -> None:
        if value is not None:
            check(instance, attribute, value)

    return optional


def as_float(value: object) -> object:
    """Converter: integers to floats; anything else is left for the validator to name."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def one_of(choices: Iterable[str]):
    """A validator accepting exactly the strings in ``choices``."""
    allowed = tuple(choices)

    def check(instance: object, attribute: attrs.Attribute, value: object) -> None:
        if value not in allowed:
            raise ValueError(f"{attribute.name} must be one of {allowed}, got {value!r}")

    return check


def options_from(cls: type, family: str, options: dict[str, Any]) -> Any:
    """``cls(**options)``, naming any option ``cls`` does not know (``family`` names the backend)."""
    known = {f.name for f in attrs.fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"unknown {family} backend option(s) {unknown}; known: {', '.join(sorted(known))}"
        )
    return cls(**options)


def check_combinations(options: Any) -> None:
    """The memory options of a family's options class agree with one another."""
    if options.cpu_offload and options.offload_text_encoder:
        raise ValueError(
            "cpu_offload and offload_text_encoder are both true; cpu_offload already keeps "
            "every model (the text encoders included) on the CPU until it runs: pass one"
        )


def parse_dtype(value: torch.dtype | str | None, field: str = "dtype") -> torch.dtype | None:
    """``torch.bfloat16`` or ``"bf16"``/``"bfloat16"`` (etc.) to a torch dtype; ``None`` passes."""
    if value is None or isinstance(value, torch.dtype):
        return value
    if isinstance(value, str) and value.lower() in _DTYPES:
        return _DTYPES[value.lower()]
    raise ValueError(f"{field} must be one of {sorted(_DTYPES)} or a torch.dtype, got {value!r}")


def check_build_arguments(
    backend: str,
    checkpoint: str,
    model_path: object,
    tiny: object,
    weights_seed: object,
    variant: object,
) -> None:
    """The choice between a checkpoint and the tiny model, checked without touching a file.

    ``backend`` is the registry name and ``checkpoint`` describes the folder it loads, for
    the message when neither is given.
    """
    if not isinstance(tiny, bool):
        raise TypeError(f"tiny must be true or false, got {tiny!r}")
    if tiny and model_path is not None:
        raise ValueError("pass either model_path (a checkpoint) or tiny=true, not both")
    if tiny:
        return
    if weights_seed is not None:
        raise ValueError(
            f"weights_seed applies to tiny=true only; got weights_seed={weights_seed!r} with a model path"
        )
    if variant is not None:
        raise ValueError(
            f"variant applies to tiny=true only (a checkpoint is the variant it is); got "
            f"variant={variant!r}"
        )
    if model_path is None:
        raise ValueError(
            f"backend {backend!r} needs model_path=PATH (a diffusers-format {checkpoint} "
            "folder) or tiny=True (small random weights)"
        )


@attrs.frozen
class DiffusersOptions:
    """The options every diffusers family shares; a family's class derives from this one.

    The sampling options (``solver`` to ``max_sequence_length``) have no default here: each
    family gives its pipeline's with :func:`family_default`. The memory and batching options
    (``max_batch`` on) mean the same in every family and keep the defaults below.

    Args:
        solver: ``"unipc"`` (UniPC, flow sigmas, order 2), ``"euler"`` (FlowMatchEuler),
            ``"sde-dpmsolver++"`` (stochastic), or ``"pipeline"`` (a fresh copy of the
            wrapped pipeline's own scheduler; ``flow_shift`` is then unused).
        flow_shift: timestep shift of the named solvers.
        guidance_scale: classifier-free guidance ``g``; 1.0 disables guidance (one forward
            per particle-step), as the pipelines do for ``g <= 1``.
        height: pixels.
        width: pixels.
        num_steps: denoising steps of one trajectory.
        negative_prompt: the unconditional prompt of guidance.
        max_sequence_length: text tokens of the prompt encoding.
        max_batch: most particles per transformer forward; ``None`` for no limit. A guided
            forward holds ``2 * max_batch`` rows with ``cfg_batched`` (each particle's
            conditional and unconditional rows), ``max_batch`` rows otherwise.
        cfg_batched: conditional and unconditional rows in one forward (``True``, in the
            family pipeline's row order) or two forwards.
        vae_slicing: decode one sample at a time (bounds decoder memory).
        vae_tiling: let the VAE decode in spatial tiles (switches tiling on in the wrapped
            VAE).
        offload_text_encoder: keep the text encoders on the CPU between prompts and move
            them to the device only while encoding.
        cpu_offload: diffusers' model CPU offload: every model stays on the CPU and moves to
            the GPU only while it runs (for 14B models on one GPU; slower).
    """

    #: The family's name in error messages ("unknown Wan backend option ...").
    family: ClassVar[str] = "diffusers"

    solver: str = attrs.field(validator=one_of(DIFFUSERS_SOLVERS))
    flow_shift: float = attrs.field(converter=as_float, validator=finite_float(0.0, strict=True))
    guidance_scale: float = attrs.field(converter=as_float, validator=finite_float(1.0))
    height: int = attrs.field(validator=positive_int)
    width: int = attrs.field(validator=positive_int)
    num_steps: int = attrs.field(validator=positive_int)
    negative_prompt: str = attrs.field(validator=text)
    max_sequence_length: int = attrs.field(validator=positive_int)
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
        """Whether classifier-free guidance runs (``guidance_scale > 1``, as in the pipelines)."""
        return self.guidance_scale > 1.0

    @property
    def forwards_per_step(self) -> int:
        """Model forwards per particle-step: 2 under guidance (conditional and unconditional,
        whether they share a batched forward or not), else 1."""
        return 2 if self.guided else 1

    @classmethod
    def from_options(cls, **options: Any) -> Any:
        """Build from keyword options, naming any unknown one."""
        return options_from(cls, cls.family, options)


def family_default(name: str, default: Any) -> Any:
    """The shared option ``name`` of :class:`DiffusersOptions`, same converter and validator,
    with the family's ``default``: ``num_steps: int = family_default("num_steps", 28)``."""
    shared = attrs.fields_dict(DiffusersOptions).get(name)
    if shared is None:
        raise ValueError(
            f"family_default: {name!r} is not an option of DiffusersOptions; "
            f"known: {', '.join(attrs.fields_dict(DiffusersOptions))}"
        )
    return attrs.field(default=default, converter=shared.converter, validator=shared.validator)


def _family_fields_first(cls: type, fields: list[attrs.Attribute]) -> list[attrs.Attribute]:
    """The family's own fields in its order, then the shared ones it inherits unchanged, so
    a report lists the sampling options first; a sampling option left without a default is
    named here, when the class is defined."""
    missing = [f.name for f in fields if f.inherited and f.default is attrs.NOTHING]
    if missing:
        raise TypeError(
            f"{cls.__name__} must give its own default for {', '.join(missing)} "
            "(with family_default): these options have no shared default"
        )
    return [f for f in fields if not f.inherited] + [f for f in fields if f.inherited]


def family_options(cls: type) -> type:
    """Class decorator of a family's options class: a frozen attrs class deriving from
    :class:`DiffusersOptions`, its own fields listed first; set ``family`` to the name
    that error messages use."""
    if not issubclass(cls, DiffusersOptions):
        raise TypeError(f"family_options: {cls.__name__} must derive from DiffusersOptions")
    return attrs.frozen(cls, field_transformer=_family_fields_first)
