"""Option helpers shared by the diffusers model families: validators, dtype names, and the
choice between a checkpoint and the tiny random model.

Every family's options class (:class:`~searchkit.backends.wan.WanOptions`,
:class:`~searchkit.backends.sd3.SD3Options`) is a frozen attrs class built from these
validators, so the same mistake reads the same in every family: an error names the field
and the value, before any weight is loaded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import attrs
import torch

from searchkit.solver import SOLVERS

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
