"""Diffusers-format Wan checkpoints: the folder layout, checked without reading a weight, and
the check of a loaded pipeline.

Every text-to-video member of the family is a ``WanPipeline`` folder: ``model_index.json``
(``"_class_name": "WanPipeline"``) and ``transformer/``, ``vae/``, ``text_encoder/`` (a
``config.json`` and ``*.safetensors`` or ``*.bin`` weights), ``tokenizer/`` and
``scheduler/``. The members differ in ``model_index.json``:

* Wan2.1 T2V 1.3B and 14B: one transformer;
* Wan2.2 TI2V-5B: one transformer, ``"expand_timesteps": true`` (per-token timesteps) and a
  VAE of 48 latent channels with spatial factor 16;
* Wan2.2 T2V-A14B: a second transformer ``transformer_2/`` (the low-noise expert) and
  ``"boundary_ratio"`` (the high-noise expert takes timesteps ``t >= ratio * 1000``).

:func:`check_checkpoint` checks all of this, so a wrong or half-downloaded folder fails in
milliseconds with a message naming the folder and what is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from searchkit.backends.common.checkpoint import (
    MODEL_FILES,
    SCHEDULER_FILES,
    CheckpointLayout,
    check_component,
    check_layout,
    check_path_type,
    listed,
    missing_components,
)

__all__ = ["LAYOUT", "REQUIRED_COMPONENTS", "check_checkpoint", "check_path_type", "check_pipeline"]

#: Components every Wan text-to-video checkpoint folder holds, with the file naming each.
REQUIRED_COMPONENTS: dict[str, tuple[str, ...]] = {
    "transformer": MODEL_FILES,
    "vae": MODEL_FILES,
    "text_encoder": MODEL_FILES,
    "tokenizer": ("tokenizer_config.json", "tokenizer.json", "spiece.model"),
    "scheduler": SCHEDULER_FILES,
}
LAYOUT = CheckpointLayout(
    family="Wan",
    description=(
        "Wan2.1 text-to-video checkpoint (or a Wan2.2 TI2V-5B or T2V-A14B one, diffusers format)"
    ),
    pipelines=("WanPipeline",),
    components=REQUIRED_COMPONENTS,
    weighted=("transformer", "transformer_2", "vae", "text_encoder"),
)


def check_checkpoint(path: str | Path) -> Path:
    """The folder of a diffusers-format Wan text-to-video checkpoint, checked; else a clear error."""
    root, index = check_layout(path, LAYOUT)
    ratio = index.get("boundary_ratio")
    if ratio is not None:
        _check_ratio(ratio, f"model_path {str(path)!r}: model_index.json's boundary_ratio")
        check_component(root, index, LAYOUT, "transformer_2", MODEL_FILES, path)
    elif listed(index, "transformer_2"):
        raise ValueError(
            f"model_path {str(path)!r} lists transformer_2 but no boundary_ratio: a two-expert "
            "(Wan2.2 A14B) checkpoint needs both"
        )
    return root


def _check_ratio(ratio: object, what: str) -> None:
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0.0 <= ratio <= 1.0:
        raise ValueError(f"{what} must be a number in [0, 1], got {ratio!r}")


def check_pipeline(pipe: Any) -> None:
    """``pipe`` must be a text-to-video ``WanPipeline`` with every component present; a
    two-expert one needs a boundary ratio and ``transformer_2``, and may leave out
    ``transformer`` (its low-noise expert then runs alone, below the boundary, as in
    ``WanPipeline``)."""
    config = getattr(pipe, "config", {})
    ratio = config.get("boundary_ratio")
    second = getattr(pipe, "transformer_2", None)
    low_noise_only = ratio is not None and second is not None
    needed = ("vae", "text_encoder", "tokenizer", "scheduler")
    missing = missing_components(pipe, needed if low_noise_only else ("transformer", *needed))
    if missing:
        raise ValueError(
            f"pipe must be a diffusers WanPipeline with all components; "
            f"{type(pipe).__name__} lacks {', '.join(missing)}"
            + (
                " (only a two-expert pipeline, with transformer_2 and boundary_ratio, may "
                "leave transformer out)"
                if "transformer" in missing
                else ""
            )
        )
    if ratio is not None:
        _check_ratio(ratio, "the pipeline's boundary_ratio")
        if second is None:
            raise ValueError(
                f"the pipeline has boundary_ratio={ratio} but no transformer_2; a two-expert "
                "(Wan2.2 A14B) pipeline needs both transformers"
            )
    elif second is not None:
        raise ValueError(
            "the pipeline has a transformer_2 but no boundary_ratio; a two-expert (Wan2.2 A14B) "
            "pipeline needs both"
        )
