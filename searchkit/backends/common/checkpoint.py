"""Diffusers-format checkpoint folders: checking a layout without reading a weight, and
loading a pipeline from one.

A diffusers checkpoint is a folder holding ``model_index.json`` (``"_class_name"`` names the
pipeline; one entry per component) and one sub-folder per component: models hold a
``config.json`` and ``*.safetensors`` or ``*.bin`` weights, tokenizers a tokenizer file, the
scheduler ``scheduler_config.json``. A family describes what its checkpoints hold as a
:class:`CheckpointLayout`; :func:`check_layout` checks a folder against it in milliseconds,
with a message naming the folder and what is missing, so a wrong path never fails halfway
through loading gigabytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import torch

#: Files one of which marks a tokenizer folder (fast, sentencepiece or BPE vocabulary).
TOKENIZER_FILES: tuple[str, ...] = (
    "tokenizer_config.json",
    "tokenizer.json",
    "spiece.model",
    "vocab.json",
)
#: The file marking a model folder.
MODEL_FILES: tuple[str, ...] = ("config.json",)
#: The file marking a scheduler folder.
SCHEDULER_FILES: tuple[str, ...] = ("scheduler_config.json",)


@attrs.frozen
class CheckpointLayout:
    """What a family's checkpoint folder must hold.

    ``family`` names the checkpoint in messages ("Wan"); ``description`` is what the folder
    should be ("Wan2.1 text-to-video checkpoint"); ``pipelines`` the accepted
    ``model_index.json`` class names; ``components`` each required component with the files
    one of which its folder must hold; ``weighted`` the components that must hold weights.
    """

    family: str
    description: str
    pipelines: tuple[str, ...]
    components: Mapping[str, tuple[str, ...]]
    weighted: tuple[str, ...]


def check_path_type(path: object) -> None:
    """``path`` must be a ``str`` or a ``Path``; raises naming ``model_path`` otherwise."""
    if not isinstance(path, str | Path):
        raise TypeError(f"model_path must be a path, got {type(path).__name__}: {path!r}")


def listed(index: dict[str, Any], component: str) -> bool:
    """Whether ``model_index.json`` lists ``component`` (``[null, null]`` means absent)."""
    return index.get(component) not in (None, [None, None])


def check_layout(path: str | Path, layout: CheckpointLayout) -> tuple[Path, dict[str, Any]]:
    """The checkpoint folder at ``path`` and its ``model_index.json``, checked against
    ``layout``; else a clear error naming the folder and what is wrong."""
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
            f"model_path {str(path)!r} is not a diffusers {layout.family} checkpoint: it has no "
            "model_index.json"
        )
    try:
        index = json.loads(index_file.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(
            f"model_path {str(path)!r}: model_index.json is not valid JSON ({error})"
        ) from None
    class_name = index.get("_class_name") if isinstance(index, dict) else None
    if class_name not in layout.pipelines:
        expected = " or ".join(repr(name) for name in layout.pipelines)
        raise ValueError(
            f"model_path {str(path)!r} is not a {layout.description}: model_index.json names "
            f"pipeline {class_name!r}, expected {expected}"
        )
    for component, files in layout.components.items():
        check_component(root, index, layout, component, files, path)
    return root, index


def check_component(
    root: Path,
    index: dict[str, Any],
    layout: CheckpointLayout,
    component: str,
    files: tuple[str, ...],
    path: str | Path,
) -> None:
    """One component's folder is listed, present, holds one of ``files`` and, when the layout
    says so, weights."""
    folder = root / component
    if not listed(index, component) or not folder.is_dir():
        raise ValueError(
            f"{layout.family} checkpoint {str(path)!r} is missing component {component!r} "
            f"(expected folder {component}/ listed in model_index.json)"
        )
    if not any((folder / name).is_file() for name in files):
        raise ValueError(
            f"{layout.family} checkpoint {str(path)!r}: component {component!r} has none of "
            f"{list(files)}"
        )
    if component in layout.weighted and not has_weights(folder):
        raise ValueError(
            f"{layout.family} checkpoint {str(path)!r}: component {component!r} has no weight "
            "files (*.safetensors or *.bin)"
        )


def has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))


def missing_components(pipe: object, names: tuple[str, ...]) -> list[str]:
    """The components of ``names`` that ``pipe`` lacks (is ``None`` or has not)."""
    return [name for name in names if getattr(pipe, name, None) is None]


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def dtype_keyword() -> str:
    """``from_pretrained``'s dtype keyword: ``dtype`` in newer diffusers, ``torch_dtype`` before."""
    try:
        from diffusers.utils import deprecation_utils
    except ImportError:
        return "torch_dtype"
    return "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"
