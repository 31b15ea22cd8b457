"""Saving and loading a latent reward model: a folder with ``config.json`` and ``model.safetensors``.

``config.json`` holds ``{"format": "searchkit-latent-reward-model", "version": 1,
"config": {...LatentRewardConfig...}, "extra": {...}}`` (``extra``: JSON-able metadata such
as the training split); ``model.safetensors`` holds every tensor of the network's state
dict, including the target normalisation buffers. Both are written atomically
(:mod:`searchkit.files`), the weights first, so a reader never sees a config without its
weights.

Loading checks, before any tensor reaches the network: the format and version, the config
fields, fields the caller expects (``expect``), that every tensor the config implies exists
with its shape, that no other tensor is present, and that every value is finite. Each
failure is a ``ValueError`` (``FileNotFoundError`` for a missing file) naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from searchkit.errors import CheckpointError, MissingFileError
from searchkit.files import atomic_write, atomic_write_json
from searchkit.rewards.latent.network import LatentRewardConfig, LatentRewardNet, build_net
from searchkit.validation import as_tuple

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "searchkit-latent-reward-model"
FORMAT_VERSION = 1


def save_checkpoint(
    folder: str | Path, net: LatentRewardNet, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``net`` (its config and weights) into ``folder`` (created); returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: t.detach().cpu().contiguous() for k, t in net.state_dict().items()}
    atomic_write(
        folder / WEIGHTS_NAME, lambda tmp: save_file(state, str(tmp), metadata={"format": FORMAT})
    )
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": net.config.to_dict(),
        "extra": extra or {},
    }
    atomic_write_json(folder / CONFIG_NAME, payload)
    return folder


def read_config(folder: str | Path) -> tuple[LatentRewardConfig, dict[str, Any]]:
    """The config and ``extra`` of a saved model; clear errors for a bad or missing file."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise MissingFileError(f"no latent reward model config at {path}")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON (corrupt file?): {error}") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} must hold a JSON object")
    if payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a {FORMAT} config (format field {payload.get('format')!r})"
        )
    if payload.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has version {payload.get('version')!r}; this code reads {FORMAT_VERSION}"
        )
    try:
        config = LatentRewardConfig.from_dict(payload.get("config"))
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: invalid config: {error}") from None
    extra = payload.get("extra") or {}
    if not isinstance(extra, dict):
        raise CheckpointError(
            f"{path}: field 'extra' must be a JSON object, got {type(extra).__name__}"
        )
    return config, extra


def load_checkpoint(
    folder: str | Path, expect: dict[str, Any] | None = None
) -> tuple[LatentRewardNet, dict[str, Any]]:
    """The network saved in ``folder`` and its ``extra``, after every check of the module doc.

    ``expect`` maps config fields to the values the caller needs (e.g. ``{"input": "x0"}``):
    a trained model's input and architecture cannot be changed at load time.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    config, extra = read_config(folder)
    for key, value in (expect or {}).items():
        if not hasattr(config, key):
            raise ValueError(f"expect names unknown config field {key!r}")
        saved = getattr(config, key)
        if as_tuple(value) != saved:
            raise ValueError(
                f"config mismatch in {folder / CONFIG_NAME}: {key} is {saved!r}, expected {value!r}"
            )
    path = folder / WEIGHTS_NAME
    if not path.is_file():
        raise MissingFileError(f"no latent reward model weights at {path}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"cannot read {path} (corrupt or truncated safetensors file): {error}"
        ) from None
    net = build_net(config)
    reference = net.state_dict()
    missing = sorted(set(reference) - set(state))
    unexpected = sorted(set(state) - set(reference))
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match its config: missing tensors {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected tensors {unexpected[:5]}"
            f"{'...' if len(unexpected) > 5 else ''}"
        )
    for key, tensor in reference.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{path} does not match its config: tensor {key!r} has shape "
                f"{list(state[key].shape)}, the config implies {list(tensor.shape)}"
            )
        if not torch.isfinite(state[key]).all():
            raise CheckpointError(f"{path}: tensor {key!r} holds non-finite values")
    net.load_state_dict(state)
    return net, extra
