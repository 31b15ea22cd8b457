"""Reading checkpoint tensors and loading them strictly, with explicit name mapping.

The released tensors are named after the module layout of the transformers release
VideoReward was trained with (4.4x), wrapped by peft::

    base_model.model.visual.<...>                       vision tower and merger
    base_model.model.model.embed_tokens.weight          token embedding (reward tokens trained)
    base_model.model.model.layers.<i>.<...>.lora_A.weight   LoRA of the language model
    base_model.model.model.norm.weight
    base_model.model.lm_head.weight                     language-model head (never used here)
    base_model.model.rm_head.weight                     the reward head

Current transformers nests the same modules as ``model.visual.*`` and
``model.language_model.*``. :func:`network_name` maps every known form (old, new, with or
without the peft wrapper, LoRA tensors with or without peft's adapter name) onto
:class:`~searchkit.rewards.video_reward.network.RewardNetwork`'s own names with a fixed
table; a name outside the table is an error naming the file. ``lm_head`` is recognised
and skipped: the reward reads ``rm_head`` and never computes language-model logits.
Loading is strict: every mapped tensor must fit a parameter of the same shape (the token
embedding alone may change its row count, as ``resize_token_embeddings`` did in
training), and every parameter that only the checkpoint can provide (LoRA, reward head,
and whatever the caller names) must be present. ``.pth`` files are read with
``torch.load(weights_only=True)``, never by unpickling arbitrary objects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from searchkit.rewards.video_reward.config import VideoRewardCheckpointError

SKIPPED = ("lm_head.weight",)

_WRAPPERS = ("model.base_model.model.", "base_model.model.")
_TABLE: tuple[tuple[re.Pattern, str], ...] = tuple(
    (re.compile(pattern), target)
    for pattern, target in (
        (r"^model\.visual\.(.+)$", r"visual.\1"),
        (r"^visual\.(.+)$", r"visual.\1"),
        (r"^model\.language_model\.(.+)$", r"language_model.\1"),
        (r"^model\.((?:embed_tokens|layers|norm)\..+)$", r"language_model.\1"),
        (r"^rm_head\.weight$", r"rm_head.weight"),
        (r"^step_embedding\.weight$", r"step_embedding.weight"),
    )
)
_LORA = re.compile(r"^(.+)\.lora_([AB])(?:\.default)?\.weight$")


def network_name(name: str) -> str | None:
    """The network's parameter name for checkpoint tensor ``name``; ``None`` for skipped ones.

    Raises ``KeyError`` for a name outside the table.
    """
    for prefix in _WRAPPERS:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    if name in SKIPPED:
        return None
    for pattern, target in _TABLE:
        if pattern.match(name):
            mapped = pattern.sub(target, name)
            lora = _LORA.match(mapped)
            return f"{lora.group(1)}.lora_{lora.group(2)}.default.weight" if lora else mapped
    raise KeyError(name)


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a ``.safetensors`` or ``.pth`` / ``.pt`` file (``weights_only`` loading)."""
    if not path.is_file():
        raise VideoRewardCheckpointError(f"checkpoint file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise VideoRewardCheckpointError(f"cannot read {path}: {reason}") from None
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise VideoRewardCheckpointError(f"{path} is not a state dict of tensors")
    return state


def map_tensors(files: Iterable[Path]) -> dict[str, tuple[torch.Tensor, Path, str]]:
    """Read ``files`` in order (later files win) into ``{network name: (tensor, file, name)}``."""
    mapped: dict[str, tuple[torch.Tensor, Path, str]] = {}
    for path in files:
        for name, tensor in read_tensors(path).items():
            try:
                target = network_name(name)
            except KeyError:
                raise VideoRewardCheckpointError(
                    f"{path}: tensor {name!r} does not belong to a VideoReward model"
                ) from None
            if target is not None:
                mapped[target] = (tensor, path, name)
    return mapped


def load_strict(
    network: nn.Module,
    mapped: dict[str, tuple[torch.Tensor, Path, str]],
    required: Iterable[str],
    where: Path,
) -> None:
    """Copy ``mapped`` into ``network``: all must fit, and every name in ``required`` be given."""
    params = network.state_dict()
    embed = "language_model.embed_tokens.weight"
    if embed in mapped and mapped[embed][0].shape != params[embed].shape:
        tensor, path, name = mapped[embed]
        if tensor.dim() != 2 or tensor.shape[1] != params[embed].shape[1]:
            raise VideoRewardCheckpointError(
                f"{path}: tensor {name!r} has shape {list(tensor.shape)}, the backbone needs [rows, {params[embed].shape[1]}]"
            )
        old = network.language_model.embed_tokens
        network.language_model.embed_tokens = nn.Embedding(
            tensor.shape[0],
            tensor.shape[1],
            padding_idx=old.padding_idx,
            device=old.weight.device,
            dtype=old.weight.dtype,
        )
        params = network.state_dict()
    for target, (tensor, path, name) in mapped.items():
        if target not in params:
            raise VideoRewardCheckpointError(
                f"{path}: tensor {name!r} has no place in the backbone (it would load into {target!r})"
            )
        if tuple(tensor.shape) != tuple(params[target].shape):
            raise VideoRewardCheckpointError(
                f"{path}: tensor {name!r} has shape {list(tensor.shape)}, the backbone's {target} has "
                f"{list(params[target].shape)}"
            )
    missing = sorted(set(required) - set(mapped))
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        raise VideoRewardCheckpointError(
            f"{where} lacks {len(missing)} tensors the model needs: {shown}"
        )
    with torch.no_grad():
        for target, (tensor, _path, _name) in mapped.items():
            param = params[target]
            param.copy_(tensor.to(dtype=param.dtype))
