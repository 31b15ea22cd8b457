"""Training the latent reward model (the LatSearch paper's recipe, with our own network).

Targets: the final per-dimension reward scaled by ``s_t = (1 + cos(x_t, x_0)) / 2``.
Loss per batch (outputs in units normalised by the training targets' mean and std)::

    L = mse_weight * mean_d (f_d(x_t, sigma, prompt) - norm(r_d * s_t))^2
      + pairwise_weight * mean over pairs (a, b) of the same prompt and step with r_{a,d} > r_{b,d}
                          of -log sigmoid(f_d(a) - f_d(b))          (Bradley-Terry, per dimension)

Pairs are ordered by the *unscaled* final reward. Batches are built from chunks of
``group_size`` trajectories of one (prompt, step), so that every batch has pairs. The split
is by prompt (``val_fraction`` of the prompts, chosen with ``split_seed``); Adam; one
checkpoint per epoch (model, optimizer and sampler state), the best by validation pairwise
accuracy kept in ``best/``; a rerun with the same configuration resumes after the last
finished epoch and gives the same weights as an uninterrupted run (:mod:`.resume`).

Before the first step the whole dataset is checked (every tensor loads, with the backend's
latent shape; the split leaves pairs to learn from and to validate on); a failed check
raises :class:`~searchkit.errors.LatentDataError` and creates no output folder.

Paper defaults: lr 1e-4, batch 4, 15 epochs, 80/20 prompt split.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import attrs
import torch

from searchkit.backend import Backend
from searchkit.errors import LatentDataError, OutputFolderError
from searchkit.files import atomic_write_json
from searchkit.rewards.latent.dataset import LatentDataset
from searchkit.rewards.latent.metrics import pairwise_accuracy
from searchkit.rewards.latent.predict import model_inputs, predict_dataset, text_embeddings
from searchkit.rewards.latent.resume import (
    BEST,
    CHECKPOINTS,
    STATE_NAME,
    load_resume_state,
    save_trainer,
)
from searchkit.rewards.latent.reward import LatentRewardModel
from searchkit.validation import int_at_least, number, to_float
from searchkit.validation import seed as seed_validator


def _fraction(_inst: Any, attribute: attrs.Attribute, value: float) -> None:
    if not 0.0 < value < 1.0 or math.isnan(value):
        raise ValueError(f"{attribute.name} must lie in (0, 1), got {value!r}")


@attrs.frozen
class TrainConfig:
    """Training hyper-parameters (validated; saved with every checkpoint).

    Args:
        epochs: passes over the training prompts.
        batch_size: samples per optimiser step.
        group_size: samples of one (prompt, step) chunk drawn together (the pairwise loss
            compares within a chunk).
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        mse_weight: weight of the regression loss on the teacher's scores.
        pairwise_weight: weight of the pairwise ranking loss.
        val_fraction: share of the prompts held out for validation, in (0, 1).
        split_seed: seed of the prompt-level train/validation split.
        seed: seed of the batch order.
        grad_clip: largest gradient norm (clipped above).
    """

    epochs: int = attrs.field(default=15, validator=int_at_least(1))
    batch_size: int = attrs.field(default=4, validator=int_at_least(2))
    group_size: int = attrs.field(default=4, validator=int_at_least(2))
    lr: float = attrs.field(default=1e-4, converter=to_float, validator=number(above=0.0))
    weight_decay: float = attrs.field(
        default=0.0, converter=to_float, validator=number(at_least=0.0)
    )
    mse_weight: float = attrs.field(default=1.0, converter=to_float, validator=number(at_least=0.0))
    pairwise_weight: float = attrs.field(
        default=1.0, converter=to_float, validator=number(at_least=0.0)
    )
    val_fraction: float = attrs.field(default=0.2, converter=to_float, validator=_fraction)
    split_seed: int = attrs.field(default=0, validator=seed_validator)
    seed: int = attrs.field(default=0, validator=seed_validator)
    grad_clip: float = attrs.field(default=1.0, converter=to_float, validator=number(above=0.0))

    def __attrs_post_init__(self) -> None:
        if self.mse_weight == 0.0 and self.pairwise_weight == 0.0:
            raise ValueError("mse_weight and pairwise_weight cannot both be 0")

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def split_prompts(
    prompts: list[str], val_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """Prompt-level split: ``(train, val)``, the same for the same prompts and seed."""
    prompts = sorted(set(prompts))
    if len(prompts) < 2:
        raise ValueError(f"a prompt-level split needs at least 2 prompts, got {len(prompts)}")
    order = torch.randperm(len(prompts), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = min(max(1, round(val_fraction * len(prompts))), len(prompts) - 1)
    val = sorted(prompts[i] for i in order[:n_val])
    train = sorted(prompts[i] for i in order[n_val:])
    return train, val


def _batches(
    dataset: LatentDataset, config: TrainConfig, generator: torch.Generator
) -> list[list[tuple[int, int]]]:
    """Batches of (sample index, chunk id); chunks hold trajectories of one (prompt, step)."""
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, s in enumerate(dataset.samples):
        groups[(s.prompt, s.step)].append(i)
    chunks: list[list[int]] = []
    for key in sorted(groups):
        members = groups[key]
        perm = torch.randperm(len(members), generator=generator).tolist()
        for start in range(0, len(members), config.group_size):
            chunk = [members[p] for p in perm[start : start + config.group_size]]
            if len(chunk) >= 2 or config.pairwise_weight == 0.0:
                chunks.append(chunk)
    order = torch.randperm(len(chunks), generator=generator).tolist()
    per_batch = max(1, config.batch_size // config.group_size)
    batches = []
    for start in range(0, len(order), per_batch):
        batch = []
        for cid in order[start : start + per_batch]:
            batch.extend((i, cid) for i in chunks[cid])
        batches.append(batch)
    return batches


def pairwise_loss(
    outputs: torch.Tensor, rewards: torch.Tensor, chunk: torch.Tensor
) -> torch.Tensor:
    """Bradley-Terry loss per dimension over same-chunk pairs ordered by ``rewards``."""
    same = chunk[:, None] == chunk[None, :]
    losses = []
    for d in range(outputs.shape[1]):
        better = (rewards[:, None, d] > rewards[None, :, d]) & same
        if better.any():
            diff = outputs[:, None, d] - outputs[None, :, d]
            losses.append(torch.nn.functional.softplus(-diff[better]).mean())
    return torch.stack(losses).mean() if losses else outputs.sum() * 0.0


@attrs.define
class TrainResult:
    """The best epoch's model, its epoch and validation accuracy, every epoch's row, the folder."""

    model: LatentRewardModel
    best_epoch: int
    best_accuracy: float
    history: list[dict]
    folder: Path


def _group_ids(dataset: LatentDataset) -> torch.Tensor:
    keys: dict[tuple[str, int], int] = {}
    return torch.tensor([keys.setdefault((s.prompt, s.step), len(keys)) for s in dataset.samples])


def validate_training_data(
    model: LatentRewardModel,
    dataset: LatentDataset,
    backend: Backend,
    config: TrainConfig,
) -> tuple[list[str], list[str]]:
    """Every check of ``train`` that needs no output folder; returns the prompt split.

    The dataset's dimensions and input kind fit the model; every tensor loads with the
    backend's latent shape; the training prompts hold two trajectories of one (prompt, step)
    to compare (when the pairwise loss is on) and the validation prompts a pair with
    different rewards (else validation accuracy is undefined).
    """
    if tuple(dataset.dimensions) != tuple(model.dimensions):
        raise ValueError(
            f"dataset dimensions {list(dataset.dimensions)} differ from the model's {list(model.dimensions)}"
        )
    if model.input == "x0" and not dataset.has_x0:
        raise ValueError("the model reads input 'x0' but the dataset has no x0_tensor_path entries")
    model.attach(backend)
    dataset.check(backend.latent_shape)
    train_prompts, val_prompts = split_prompts(
        dataset.prompts, config.val_fraction, config.split_seed
    )
    train_set, val_set = dataset.subset(train_prompts), dataset.subset(val_prompts)
    if config.pairwise_weight > 0 and int(torch.bincount(_group_ids(train_set)).max()) < 2:
        raise LatentDataError(
            "no two trajectories of one prompt and step among the training prompts: the pairwise "
            "loss has nothing to compare (collect with two or more seeds)"
        )
    truth = torch.stack([s.reward for s in val_set.samples]) @ model.weights
    if pairwise_accuracy(truth, truth, _group_ids(val_set))[1] == 0:
        raise LatentDataError(
            f"the validation prompts {val_prompts} hold no two trajectories of one step with "
            "different rewards: validation accuracy is undefined (collect with more seeds)"
        )
    return train_prompts, val_prompts


def train(
    model: LatentRewardModel,
    dataset: LatentDataset,
    backend: Backend,
    out: str | Path,
    config: TrainConfig | None = None,
    *,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` on ``dataset`` into ``out``; resumes when ``out`` holds a matching run.

    The returned model is the best epoch's (by validation pairwise accuracy of the aggregate
    score within (prompt, step) groups).
    """
    from tqdm.auto import tqdm

    config = config or TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"output folder {out} is a file")
    train_prompts, val_prompts = validate_training_data(model, dataset, backend, config)
    train_set, val_set = dataset.subset(train_prompts), dataset.subset(val_prompts)
    net = model.net
    header = {
        "train": config.to_dict(),
        "model": model.config.to_dict(),
        "samples": len(dataset),
        "split": {"train": train_prompts, "val": val_prompts},
    }
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    resumed = load_resume_state(out, header, net, optimizer, generator)
    texts = text_embeddings(backend, dataset.prompts)
    if resumed is None:
        out.mkdir(parents=True, exist_ok=True)
        start_epoch, history, best = 1, [], {"epoch": 0, "accuracy": -1.0}
        # Normalise targets with the training split's statistics (saved with the weights).
        targets = torch.stack([s.reward * s.similarity for s in train_set.samples])
        net.target_mean.copy_(targets.mean(0))
        net.target_std.copy_(targets.std(0).clamp_min(1e-6))
    else:
        start_epoch, history, best = resumed

    for epoch in range(start_epoch, config.epochs + 1):
        net.train()
        batches = _batches(train_set, config, generator)
        totals = {"loss": 0.0, "mse": 0.0, "pairwise": 0.0}
        bar = tqdm(
            batches, desc=f"epoch {epoch}/{config.epochs}", disable=not progress, leave=False
        )
        for batch in bar:
            items = [train_set[i] for i, _ in batch]
            chunk = torch.tensor([c for _, c in batch])
            data, sigma, text = model_inputs(model, items, texts)
            rewards = torch.stack([it["reward"] for it in items])
            target = (
                torch.stack([it["target"] for it in items]) - net.target_mean
            ) / net.target_std
            outputs = model.predict(data, sigma, text, normalized=True)
            mse = torch.nn.functional.mse_loss(outputs, target)
            pair = pairwise_loss(outputs, rewards, chunk)
            loss = config.mse_weight * mse + config.pairwise_weight * pair
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
            optimizer.step()
            totals["loss"] += float(loss.detach())
            totals["mse"] += float(mse.detach())
            totals["pairwise"] += float(pair.detach())
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        net.eval()
        accuracy = validation_accuracy(model, val_set, backend, texts)
        row = {
            "epoch": epoch,
            **{k: t / max(1, len(batches)) for k, t in totals.items()},
            "val_pairwise_accuracy": accuracy,
        }
        history.append(row)
        extra = {"training": {**header, "epoch": epoch, "val_pairwise_accuracy": accuracy}}
        ckpt = model.save_pretrained(out / CHECKPOINTS / f"epoch_{epoch:03d}", extra=extra)
        save_trainer(ckpt, optimizer, generator)
        if accuracy > best["accuracy"]:
            best = {"epoch": epoch, "accuracy": accuracy}
            model.save_pretrained(out / BEST, extra=extra)
        atomic_write_json(
            out / STATE_NAME, {**header, "epochs_done": epoch, "history": history, "best": best}
        )
        if progress:
            tqdm.write(
                f"epoch {epoch}: loss {row['loss']:.4f}  val pairwise accuracy {accuracy:.3f}"
            )

    best_model = LatentRewardModel.from_pretrained(out / BEST, backend)
    model.net.load_state_dict(best_model.net.state_dict())
    model.net.eval()
    model.extra = best_model.extra
    return TrainResult(model, int(best["epoch"]), float(best["accuracy"]), history, out)


def validation_accuracy(
    model: LatentRewardModel,
    dataset: LatentDataset,
    backend: Backend,
    texts: dict[str, torch.Tensor],
) -> float:
    """Pairwise accuracy of the aggregate score within (prompt, step) groups."""
    scores = predict_dataset(model, dataset, backend, texts=texts) @ model.weights
    truth = torch.stack([s.reward for s in dataset.samples]) @ model.weights
    accuracy, _ = pairwise_accuracy(scores, truth, _group_ids(dataset))
    return accuracy
