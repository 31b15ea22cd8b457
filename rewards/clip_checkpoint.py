"""Reading a transformers CLIP checkpoint: the folder (or Hub id), its weights and its
preprocessing, each checked with a one-line error naming the file.

A CLIP checkpoint folder, as ``save_pretrained`` writes it and as ``openai/clip-vit-*``
repositories hold it: ``config.json`` (``model_type: clip``), the weights
(``model.safetensors`` or ``pytorch_model.bin``, possibly sharded), the tokenizer
(``tokenizer.json``, or ``vocab.json`` and ``merges.txt``) and optionally
``preprocessor_config.json``. A Hub id (``owner/name``) is downloaded through
``huggingface_hub`` when the Hub is reachable (the JSON and text files and the safetensors
weights, or the ``.bin`` weights when a repository has no safetensors).

Preprocessing (:class:`CLIPPreprocessing`) is our own, in floating point (torchvision is not
used): resize with ``torch.nn.functional.interpolate(mode="bicubic", antialias=True)`` so
that the shorter side is ``size.shortest_edge`` (the longer one ``int(shortest_edge * long /
short)``, as transformers' CLIP image processor computes it) or to ``size.{height, width}``,
clamp to ``[0, 1]``, centre-crop to ``crop_size`` (offsets ``(H - h) // 2`` and
``(W - w) // 2``), normalise with ``image_mean`` and ``image_std``; CLIP's defaults when the
file is absent. The ``resample`` field is not read: the resize is always bicubic, CLIP's.
Deviation from transformers' PIL processor: we never round to 8 bits, so on natural images
our pixel values are within about one 8-bit level (1/255) of its; PIL also rounds and clips
between its horizontal and vertical passes, so on pixel noise, where bicubic filters
overshoot, the two differ more.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import attrs
import torch
import torch.nn.functional as F

from searchkit.errors import CheckpointError

# OpenAI CLIP's normalisation (transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@attrs.frozen
class CLIPPreprocessing:
    """Resize (shorter side, or an exact ``(h, w)``), centre crop and normalisation of frames."""

    resize: int | tuple[int, int]
    crop: tuple[int, int] | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_folder(cls, folder: Path, image_size: int) -> CLIPPreprocessing:
        """Read ``preprocessor_config.json`` (CLIP's defaults when absent) and check it fits."""
        file = folder / "preprocessor_config.json"
        data = read_json(file) if file.is_file() else {}
        size = data.get("size", {"shortest_edge": image_size})
        if isinstance(size, int):
            size = {"shortest_edge": size}
        if isinstance(size, dict) and isinstance(size.get("shortest_edge"), int):
            resize: int | tuple[int, int] = size["shortest_edge"]
        elif (
            isinstance(size, dict)
            and isinstance(size.get("height"), int)
            and isinstance(size.get("width"), int)
        ):
            resize = (size["height"], size["width"])
        else:
            raise CheckpointError(
                f"{file}: size must be {{'shortest_edge': N}} or {{'height', 'width'}}, got {size!r}"
            )
        crop_size = data.get("crop_size", {"height": image_size, "width": image_size})
        if isinstance(crop_size, int):
            crop_size = {"height": crop_size, "width": crop_size}
        crop = (
            (crop_size.get("height"), crop_size.get("width"))
            if isinstance(crop_size, dict)
            else None
        )
        if data.get("do_center_crop", True) is False:
            crop = None
        if crop is not None and isinstance(resize, int) and resize < max(c or 0 for c in crop):
            raise CheckpointError(
                f"{file}: crop_size {crop!r} exceeds the resized shorter side {resize}"
            )
        final = crop if crop is not None else resize
        if final != (image_size, image_size):
            raise CheckpointError(
                f"{file}: frames must come out {image_size}x{image_size} (vision_config.image_size "
                f"in config.json), got resize {resize!r} and crop {crop!r}"
            )
        mean, std = data.get("image_mean", CLIP_MEAN), data.get("image_std", CLIP_STD)
        for name, value in (("image_mean", mean), ("image_std", std)):
            if not (
                isinstance(value, list | tuple)
                and len(value) == 3
                and all(isinstance(x, int | float) for x in value)
            ):
                raise CheckpointError(f"{file}: {name} must be three numbers, got {value!r}")
        if min(std) <= 0:
            raise CheckpointError(f"{file}: image_std must be positive, got {std!r}")
        return cls(resize, crop, tuple(float(x) for x in mean), tuple(float(x) for x in std))

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``[m, H, W, 3]`` in ``[0, 1]`` to CLIP pixel values ``[m, 3, h, w]`` (float32)."""
        x = frames.permute(0, 3, 1, 2).float()
        height, width = x.shape[-2:]
        if isinstance(self.resize, int):
            short, long = min(height, width), max(height, width)
            other = int(self.resize * long / short)
            size = (self.resize, other) if height <= width else (other, self.resize)
        else:
            size = self.resize
        x = F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)
        x = x.clamp(0.0, 1.0)  # bicubic overshoots; an 8-bit processor clips there too
        if self.crop is not None:
            h, w = self.crop
            top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
            x = x[..., top : top + h, left : left + w]
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std


def resolve_checkpoint(path: str | Path) -> Path:
    """A local folder as is; a Hub id (``owner/name``) downloaded, or an error saying how to get it."""
    folder = Path(path).expanduser()
    if folder.is_dir():
        return folder
    text = str(path)
    if folder.exists():
        raise CheckpointError(
            f"clip-score path {text!r}: is a file; pass the CLIP checkpoint folder"
        )
    if not _HUB_ID.match(text):
        raise CheckpointError(
            f"clip-score path {text!r}: no such folder, and not a Hugging Face Hub id"
        )
    import huggingface_hub

    try:
        local = Path(
            huggingface_hub.snapshot_download(
                text, allow_patterns=["*.json", "*.txt", "*.safetensors"]
            )
        )
        if not any((local / name).is_file() for name in WEIGHT_FILES):
            local = Path(
                huggingface_hub.snapshot_download(
                    text, allow_patterns=["*.json", "*.txt", "pytorch_model*.bin"]
                )
            )
    except Exception as error:  # offline, unknown repository, no permission: one actionable message
        name = text.rsplit("/", 1)[-1]
        reason = (str(error).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(
            f"clip-score path {text!r}: not a local folder, and the Hub download failed "
            f"({type(error).__name__}: {reason}); download it where the Hub is reachable with "
            f"`hf download {text} --local-dir checkpoints/{name}` and pass path=checkpoints/{name}"
        ) from None
    return local


def check_clip_folder(folder: Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a transformers CLIP folder; a one-line error naming what is wrong."""
    file = folder / "config.json"
    if not file.is_file():
        raise CheckpointError(
            f"{file}: not found; {folder} is not a CLIP checkpoint folder "
            "(config.json, model.safetensors and the tokenizer files)"
        )
    config = read_json(file)
    if config.get("model_type") != "clip":
        raise CheckpointError(
            f"{file}: model_type is {config.get('model_type')!r}, a CLIP checkpoint has 'clip'"
        )
    vision = config.setdefault("vision_config", {})
    size = (
        vision.get("image_size", 224) if isinstance(vision, dict) else None
    )  # 224: CLIPVisionConfig's default
    if not (isinstance(size, int) and not isinstance(size, bool) and size > 0):
        raise CheckpointError(
            f"{file}: vision_config.image_size must be a positive integer, got {size!r}"
        )
    vision["image_size"] = size
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise CheckpointError(
            f"{folder}: no weights ({' or '.join(WEIGHT_FILES[::2])}) in the CLIP folder"
        )
    if not (
        (folder / "tokenizer.json").is_file()
        or ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file())
    ):
        raise CheckpointError(
            f"{folder}: no tokenizer (tokenizer.json, or vocab.json and merges.txt) in the CLIP folder"
        )
    return config


def load_clip_model(folder: Path, device: torch.device, dtype: torch.dtype) -> Any:
    """transformers' ``CLIPModel`` from ``folder``, loaded strictly: a tensor missing from the
    weights, or of another shape than ``config.json`` implies, is an error naming the folder
    (transformers would otherwise initialise it at random). Extra tensors are ignored."""
    from transformers import CLIPModel

    try:
        model, info = CLIPModel.from_pretrained(folder, output_loading_info=True)
    except (RuntimeError, ValueError, OSError) as error:  # shape mismatches, unreadable weights
        reason = (str(error).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(
            f"{folder}: the weights do not load into the CLIP of config.json ({reason})"
        ) from None
    missing, mismatched = (
        sorted(info.get("missing_keys", ())),
        sorted(map(str, info.get("mismatched_keys", ()))),
    )
    if missing or mismatched:
        names = ", ".join((missing + mismatched)[:4]) + (
            ", ..." if len(missing) + len(mismatched) > 4 else ""
        )
        raise CheckpointError(
            f"{folder}: the weights do not fit config.json: {len(missing)} tensors missing, "
            f"{len(mismatched)} of another shape ({names})"
        )
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)


def read_json(file: Path) -> dict[str, Any]:
    """The JSON object in ``file``, or a one-line error naming it."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{file}: not readable JSON ({error})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{file}: must hold a JSON object, got {type(data).__name__}")
    return data
