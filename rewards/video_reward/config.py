"""The released VideoReward checkpoint folder: where things are and what its config says.

Layout of ``KwaiVGI/VideoReward`` (VideoAlign, Liu et al. 2025, arXiv:2501.13918), as its
training code writes it::

    VideoReward/
      model_config.json            data_config / training_args / model_config /
                                   peft_lora_config / inference_config sections
      checkpoint-<step>/           one or more; the highest step is used unless one is named
        adapter_model.safetensors  LoRA tensors of the language model (peft's save_pretrained)
        non_lora_state_dict.pth    every other trained tensor (vision tower, merger, token
                                   embedding, reward head): a plain ``torch.save`` state dict
        (or model.pth              the whole state dict, when saved with save_full_model)

The base model (Qwen2-VL-2B-Instruct) is not in the folder: ``model_config.json`` names it
(``model_config.model_name_or_path``), and ``base_model=PATH`` overrides it. A name that
is not a local folder is a Hugging Face hub id, fetched with ``huggingface_hub`` when the
hub is reachable; otherwise the error says what to download and where.

Only the settings the released model uses are supported (the reward-token head over the
``detailed_special`` prompt, uniform frame sampling, LoRA on the language model only);
anything else is refused with an error naming the field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import attrs

from searchkit.validation import (
    boolean,
    non_negative_int,
    number,
    one_of,
    optional,
    positive_int,
    text,
    to_float,
)

CONFIG_NAME = "model_config.json"
ADAPTER_NAME = "adapter_model.safetensors"
NON_LORA_NAME = "non_lora_state_dict.pth"
FULL_NAME = "model.pth"
DIMENSIONS: tuple[str, ...] = ("VQ", "MQ", "TA")
REWARD_TOKENS: tuple[str, ...] = ("<|VQ_reward|>", "<|MQ_reward|>", "<|TA_reward|>")
HUB_ID = "KwaiVGI/VideoReward"
BASE_HUB_ID = "Qwen/Qwen2-VL-2B-Instruct"

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


class VideoRewardCheckpointError(ValueError):
    """A folder or file that is not a usable VideoReward / LatSearch checkpoint."""


def _positive_float(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{attribute.name} must be a positive number, got {value!r}")


@attrs.frozen
class VideoRewardConfig:
    """What ``model_config.json`` says, reduced to the fields that change the scores.

    Args:
        base_model: the base Qwen2-VL model (``model_config.model_name_or_path``).
        max_frame_pixels: upper bound on the pixels of one resized frame.
        fps: frames sampled per second of video (``data_config.fps``), or ``None`` when
            ``num_frames`` fixes the count.
        num_frames: a fixed number of sampled frames, or ``None``.
        output_dim: columns of the reward head (1: one value read at each reward token;
            3: the head's VQ, MQ, TA columns read at their own tokens).
        lora_rank, lora_alpha, use_rslora, lora_dropout: the LoRA adapters (scale
            ``alpha / r``, or ``alpha / sqrt(r)`` with rsLoRA; dropout only in training);
            ``lora_rank == 0`` means no adapters.
        lora_targets: exact module names (release layout) given in the config, or ``None``
            for the reference rule: every linear layer whose name contains none of
            ``lora_exclude``.
        lora_exclude: name fragments excluded from LoRA.
        means, stds: ``inference_config`` VQ/MQ/TA means and standard deviations used to
            normalise scores; ``None`` when the section is absent.
    """

    base_model: str = attrs.field(validator=text)
    max_frame_pixels: int = attrs.field(validator=positive_int)
    fps: float | None = attrs.field(default=2.0, validator=optional(_positive_float))
    num_frames: int | None = attrs.field(default=None, validator=optional(positive_int))
    output_dim: int = attrs.field(default=1, validator=one_of((1, 3)))
    lora_rank: int = attrs.field(default=64, validator=non_negative_int)
    lora_alpha: float = attrs.field(default=128.0, validator=_positive_float)
    use_rslora: bool = attrs.field(default=False, validator=boolean)
    lora_dropout: float = attrs.field(
        default=0.0, converter=to_float, validator=number(at_least=0.0, below=1.0)
    )
    lora_targets: tuple[str, ...] | None = attrs.field(default=None)
    lora_exclude: tuple[str, ...] = attrs.field(
        default=("lm_head", "rm_head", "embed_tokens", "visual")
    )
    means: tuple[float, float, float] | None = attrs.field(default=None)
    stds: tuple[float, float, float] | None = attrs.field(default=None)

    @property
    def lora_scale(self) -> float:
        return self.lora_alpha / (self.lora_rank**0.5 if self.use_rslora else self.lora_rank)


def read_config(folder: Path) -> VideoRewardConfig:
    """Parse ``folder/model_config.json``; every unsupported or missing field is named."""
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise VideoRewardCheckpointError(
            f"{folder} is not a VideoReward checkpoint: it has no {CONFIG_NAME} "
            f"(download one with `hf download {HUB_ID} --local-dir {folder}`)"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise VideoRewardCheckpointError(f"{path} is not valid JSON: {exc}") from None
    sections = {}
    for name in ("data_config", "model_config", "peft_lora_config"):
        section = raw.get(name) if isinstance(raw, dict) else None
        if not isinstance(section, dict):
            raise VideoRewardCheckpointError(f"{path} has no {name!r} section")
        sections[name] = section
    data, model, lora = (
        sections["data_config"],
        sections["model_config"],
        sections["peft_lora_config"],
    )

    def field(section: dict, section_name: str, key: str, allowed: tuple | None = None) -> Any:
        if key not in section:
            raise VideoRewardCheckpointError(f"{path}: {section_name}.{key} is missing")
        value = section[key]
        if allowed is not None and value not in allowed:
            raise VideoRewardCheckpointError(
                f"{path}: {section_name}.{key} = {value!r} is not supported (expected one of {list(allowed)})"
            )
        return value

    field(data, "data_config", "prompt_template_type", ("detailed_special",))
    field(data, "data_config", "sample_type", ("uniform",))
    if list(field(data, "data_config", "eval_dim")) != list(DIMENSIONS):
        raise VideoRewardCheckpointError(
            f"{path}: data_config.eval_dim = {data['eval_dim']!r} is not supported (expected {list(DIMENSIONS)})"
        )
    field(model, "model_config", "use_special_tokens", (True,))
    field(model, "model_config", "reward_token", ("special",))
    if lora.get("vision_lora", False):
        raise VideoRewardCheckpointError(
            f"{path}: peft_lora_config.vision_lora = true is not supported"
        )
    if lora.get("num_lora_modules", -1) not in (-1, 0, None):
        raise VideoRewardCheckpointError(
            f"{path}: peft_lora_config.num_lora_modules = {lora['num_lora_modules']!r} is not supported"
        )
    means = stds = None
    inference = raw.get("inference_config")
    if inference is not None:
        try:
            means = tuple(float(inference[f"{d}_mean"]) for d in DIMENSIONS)
            stds = tuple(float(inference[f"{d}_std"]) for d in DIMENSIONS)
        except (KeyError, TypeError, ValueError) as exc:
            raise VideoRewardCheckpointError(
                f"{path}: inference_config lacks a valid {exc}"
            ) from None
        if min(stds) <= 0:
            raise VideoRewardCheckpointError(
                f"{path}: inference_config standard deviations must be > 0, got {stds}"
            )
    targets = lora.get("lora_target_modules")
    if isinstance(targets, str):
        targets = [targets]
    exclude = lora.get("lora_namespan_exclude") or []
    if isinstance(exclude, str):
        exclude = [exclude]
    num_frames = data.get("num_frames")
    try:
        return VideoRewardConfig(
            base_model=str(field(model, "model_config", "model_name_or_path")),
            max_frame_pixels=field(data, "data_config", "max_frame_pixels"),
            fps=None if num_frames is not None else float(data.get("fps", 2.0)),
            num_frames=num_frames,
            output_dim=field(model, "model_config", "output_dim", (1, 3)),
            lora_rank=int(lora.get("lora_r", 0)) if lora.get("lora_enable", False) else 0,
            lora_alpha=float(lora.get("lora_alpha", 1.0)),
            use_rslora=bool(lora.get("use_rslora", False)),
            lora_dropout=float(lora.get("lora_dropout", 0.0)),
            lora_targets=tuple(targets) if targets else None,
            # the reference trainer always adds "visual" to the exclusions (no vision LoRA)
            lora_exclude=tuple(dict.fromkeys([*exclude, "visual"])),
            means=means,
            stds=stds,
        )
    except (TypeError, ValueError) as exc:
        raise VideoRewardCheckpointError(f"{path}: {exc}") from None


def checkpoint_folder(folder: Path, step: int | None = None) -> Path:
    """The ``checkpoint-<step>`` subfolder to load: ``step`` if given, else the highest."""
    found = {}
    for child in folder.glob("checkpoint-*"):
        suffix = child.name.removeprefix("checkpoint-")
        if child.is_dir() and suffix.isdigit():
            found[int(suffix)] = child
    if not found:
        raise VideoRewardCheckpointError(
            f"{folder} has {CONFIG_NAME} but no checkpoint-<step> folder"
        )
    if step is None:
        return found[max(found)]
    if step not in found:
        raise VideoRewardCheckpointError(
            f"checkpoint_step {step} not found in {folder}; it has steps {sorted(found)}"
        )
    return found[step]


def resolve_folder(name: str | Path, what: str, hint: str) -> Path:
    """A local folder for ``name``: itself if it exists, else a hub snapshot when reachable.

    ``what`` names the thing for the error (``"VideoReward checkpoint"``); ``hint`` is the
    option that overrides it (``"path=..."``, ``"base_model=..."``).
    """
    folder = Path(name).expanduser()
    if folder.is_dir():
        return folder
    text = str(name)
    if not _HUB_ID.match(text) or folder.is_absolute() or text.startswith("."):
        raise VideoRewardCheckpointError(f"{what} {text!r} is not a folder")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=text))
    except Exception as exc:  # offline, unknown id, no permission: say what to do instead
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise VideoRewardCheckpointError(
            f"{what} {text!r} is neither a local folder nor downloadable now ({reason}); "
            f"download it with `hf download {text} --local-dir checkpoints/{text.split('/')[-1]}` "
            f"and pass {hint}checkpoints/{text.split('/')[-1]}"
        ) from None
