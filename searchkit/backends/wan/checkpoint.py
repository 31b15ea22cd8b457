"""Diffusers-format Wan2.1 checkpoints: checking a folder's layout, loading it, and checking
a loaded pipeline.

A Wan2.1 text-to-video checkpoint in diffusers format is a folder holding
``model_index.json`` (``"_class_name": "WanPipeline"``) and one sub-folder per component:
``transformer/``, ``vae/`` and ``text_encoder/`` (a ``config.json`` and ``*.safetensors`` or
``*.bin`` weights), ``tokenizer/`` (a tokenizer file) and ``scheduler/``
(``scheduler_config.json``). :func:`check_checkpoint` checks all of this without reading a
weight, so a wrong path fails in milliseconds with a message naming the folder and what is
missing. Two-stage Wan2.2 checkpoints (``transformer_2``, ``boundary_ratio``) and the TI2V
``expand_timesteps`` pipelines are refused: searchkit drives one transformer per step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from searchkit.backends.wan.options import parse_dtype

if TYPE_CHECKING:  # diffusers' pipeline module pulls in transformers; import it lazily
    from diffusers import WanPipeline

#: Components a Wan2.1 text-to-video checkpoint folder must hold, with the file naming each.
REQUIRED_COMPONENTS: dict[str, tuple[str, ...]] = {
    "transformer": ("config.json",),
    "vae": ("config.json",),
    "text_encoder": ("config.json",),
    "tokenizer": ("tokenizer_config.json", "tokenizer.json", "spiece.model"),
    "scheduler": ("scheduler_config.json",),
}
_WEIGHTED = ("transformer", "vae", "text_encoder")


def check_path_type(path: object) -> None:
    """``path`` must be a ``str`` or a ``Path``; raises naming ``model_path`` otherwise."""
    if not isinstance(path, str | Path):
        raise TypeError(f"model_path must be a path, got {type(path).__name__}: {path!r}")


def check_checkpoint(path: str | Path) -> Path:
    """The folder of a diffusers-format Wan2.1 text-to-video checkpoint, checked; else a clear error."""
    check_path_type(path)
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"model_path {str(path)!r} does not exist")
    if not root.is_dir():
        raise ValueError(
            f"model_path {str(path)!r} is a file; pass the checkpoint folder holding model_index.json"
        )
    index_file = root / "model_index.json"
    if not index_file.is_file():
        raise ValueError(
            f"model_path {str(path)!r} is not a diffusers Wan checkpoint: it has no model_index.json"
        )
    try:
        index = json.loads(index_file.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(
            f"model_path {str(path)!r}: model_index.json is not valid JSON ({error})"
        ) from None
    class_name = index.get("_class_name") if isinstance(index, dict) else None
    if class_name != "WanPipeline":
        raise ValueError(
            f"model_path {str(path)!r} is not a Wan2.1 text-to-video checkpoint: model_index.json "
            f"names pipeline {class_name!r}, expected 'WanPipeline'"
        )
    if (
        index.get("transformer_2") not in (None, [None, None])
        or index.get("boundary_ratio") is not None
    ):
        raise ValueError(
            f"model_path {str(path)!r} is a two-stage (Wan2.2) checkpoint; only Wan2.1 is supported"
        )
    for component, files in REQUIRED_COMPONENTS.items():
        folder = root / component
        entry = index.get(component)
        if entry in (None, [None, None]) or not folder.is_dir():
            raise ValueError(
                f"Wan checkpoint {str(path)!r} is missing component {component!r} "
                f"(expected folder {component}/ listed in model_index.json)"
            )
        if not any((folder / name).is_file() for name in files):
            raise ValueError(
                f"Wan checkpoint {str(path)!r}: component {component!r} has none of {list(files)}"
            )
        if component in _WEIGHTED and not _has_weights(folder):
            raise ValueError(
                f"Wan checkpoint {str(path)!r}: component {component!r} has no weight files "
                "(*.safetensors or *.bin)"
            )
    return root


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))


def check_pipeline(pipe: object) -> None:
    """``pipe`` must be a one-stage Wan2.1 ``WanPipeline`` with every component present."""
    missing = [
        name
        for name in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
        if getattr(pipe, name, None) is None
    ]
    if missing:
        raise ValueError(
            f"pipe must be a diffusers WanPipeline with all components; "
            f"{type(pipe).__name__} lacks {', '.join(missing)}"
        )
    config = getattr(pipe, "config", {})
    if getattr(pipe, "transformer_2", None) is not None or config.get("boundary_ratio") is not None:
        raise ValueError("two-stage (Wan2.2) pipelines are not supported; pass a Wan2.1 pipeline")
    if config.get("expand_timesteps", False):
        raise ValueError("pipelines with expand_timesteps (Wan2.2 TI2V) are not supported")


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_pipeline(
    path: str | Path,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
    *,
    vae_dtype: torch.dtype | str = torch.float32,
    text_encoder_on_device: bool = True,
) -> tuple[WanPipeline, dict[str, Any]]:
    """Check the folder at ``path``, then load its ``WanPipeline`` onto ``device``.

    ``dtype`` is the transformer's and text encoder's (default bfloat16 on CUDA, float32 on
    the CPU); the VAE loads in ``vae_dtype`` (float32, as diffusers recommends for Wan). The
    text encoder stays on the CPU unless ``text_encoder_on_device``. Returns the pipeline and
    a JSON-able description of where it came from.
    """
    root = check_checkpoint(path)
    device = torch.device(device) if device is not None else default_device()
    dtype = parse_dtype(dtype) or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    vae_dtype = parse_dtype(vae_dtype, "vae_dtype")
    from diffusers import AutoencoderKLWan, WanPipeline

    key = _dtype_keyword()
    vae = AutoencoderKLWan.from_pretrained(root, subfolder="vae", **{key: vae_dtype})
    pipe = WanPipeline.from_pretrained(root, vae=vae, **{key: dtype})
    pipe.transformer.to(device)
    pipe.vae.to(device)
    if text_encoder_on_device:
        pipe.text_encoder.to(device)
    source = {"kind": "checkpoint", "path": str(root), "dtype": str(dtype).removeprefix("torch.")}
    return pipe, source


def _dtype_keyword() -> str:
    """``from_pretrained``'s dtype keyword: ``dtype`` in newer diffusers, ``torch_dtype`` before."""
    try:
        from diffusers.utils import deprecation_utils
    except ImportError:
        return "torch_dtype"
    return "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"
