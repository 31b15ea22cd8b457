"""The training folder's resume state: ``train_state.json`` and each epoch's ``trainer.pt``.

Layout of a training folder::

    out/train_state.json                       header (configs, sample count, split),
                                               epochs_done, history, best
    out/checkpoints/epoch_003/config.json      the model after epoch 3 (and model.safetensors)
    out/checkpoints/epoch_003/trainer.pt       optimizer state and the batch sampler's generator
    out/best/                                  the best epoch's model

A rerun resumes after ``epochs_done`` when its header matches (the number of epochs may
grow). Everything is loaded and checked before the first step: a file that cannot be read
is a :class:`~searchkit.errors.LatentDataError` naming it, a folder of another run an
:class:`~searchkit.errors.OutputFolderError`. ``trainer.pt`` is read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from searchkit.errors import LatentDataError, OutputFolderError
from searchkit.files import atomic_write
from searchkit.rewards.latent.checkpoint import load_checkpoint
from searchkit.rewards.latent.network import LatentRewardNet

STATE_NAME = "train_state.json"
TRAINER_NAME = "trainer.pt"
CHECKPOINTS = "checkpoints"
BEST = "best"


def save_trainer(
    folder: Path, optimizer: torch.optim.Optimizer, generator: torch.Generator
) -> None:
    """Write the optimizer and sampler state of one epoch into its checkpoint ``folder``."""
    state = {"optimizer": optimizer.state_dict(), "generator": generator.get_state()}
    atomic_write(folder / TRAINER_NAME, lambda tmp: torch.save(state, tmp))


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError) as error:
        raise LatentDataError(f"{path}: cannot read the training state ({error})") from None
    if not isinstance(state, dict):
        raise LatentDataError(
            f"{path}: the training state must be a JSON object, got {type(state).__name__}"
        )
    done = state.get("epochs_done", 0)
    if isinstance(done, bool) or not isinstance(done, int) or done < 0:
        raise LatentDataError(f"{path}: epochs_done must be a non-negative integer, got {done!r}")
    if not isinstance(state.get("train"), dict):
        raise LatentDataError(
            f"{path}: field 'train' must be a JSON object, got {state.get('train')!r}"
        )
    history, best = state.get("history", []), state.get("best", {})
    if not isinstance(history, list) or len(history) != done:
        raise LatentDataError(f"{path}: history must list {done} epochs, got {history!r:.80}")
    if not isinstance(best, dict) or not {"epoch", "accuracy"} <= set(best):
        raise LatentDataError(
            f"{path}: field 'best' must hold 'epoch' and 'accuracy', got {best!r}"
        )
    return state


def load_resume_state(
    out: Path,
    header: dict[str, Any],
    net: LatentRewardNet,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> tuple[int, list[dict], dict[str, Any]] | None:
    """Restore a matching run in ``out`` into ``net``, ``optimizer`` and ``generator``.

    Returns ``(first epoch to run, history, best)``, or ``None`` when ``out`` holds no run.
    """
    path = out / STATE_NAME
    if not path.exists():
        return None
    previous = _read_state(path)
    for key in ("model", "samples", "split"):
        if previous.get(key) != header[key]:
            raise OutputFolderError(
                f"{path}: a run with a different {key} is here; use a fresh folder"
            )
    old_train = {k: val for k, val in previous["train"].items() if k != "epochs"}
    new_train = {k: val for k, val in header["train"].items() if k != "epochs"}
    if old_train != new_train:
        raise OutputFolderError(
            f"{path}: a run with a different training config is here; use a fresh folder"
        )
    done = previous.get("epochs_done", 0)
    best = {"epoch": 0, "accuracy": -1.0, **previous.get("best", {})}
    if not done:
        return 1, [], best
    ckpt = out / CHECKPOINTS / f"epoch_{done:03d}"
    try:
        saved, _ = load_checkpoint(ckpt)
    except (ValueError, OSError) as error:
        raise LatentDataError(f"{ckpt}: cannot resume from epoch {done}: {error}") from None
    trainer_path = ckpt / TRAINER_NAME
    try:
        trainer = torch.load(trainer_path, map_location="cpu", weights_only=True)
        net.load_state_dict(saved.state_dict())
        optimizer.load_state_dict(trainer["optimizer"])
        generator.set_state(trainer["generator"])
    except Exception as error:  # noqa: BLE001 - any failure to restore is a bad state file
        raise LatentDataError(
            f"{trainer_path}: cannot restore the trainer state ({type(error).__name__}: {error})"
        ) from None
    return done + 1, list(previous.get("history", [])), best
