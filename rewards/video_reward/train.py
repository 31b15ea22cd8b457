"""Training the LatSearch latent reward model, with the paper's recipe, on the paper's data schema.

Data: the metadata schema of the paper's ``prepare_latent_data.py`` (also what ``searchkit
reward collect`` writes): ``metadata/all_latent_metadata_seed_*.json``, each a list of
records with ``prompt``, ``output_reward`` ``[{VQ, MQ, TA}]`` (raw VideoReward scores of
the final video), ``latent_tensor_path`` ``[{"t<j>": path}]`` (``x_t`` after step ``j``,
``[16, F, H, W]``, relative to the metadata folder) and ``latent_z0_similarity``
``[{"t<j>": s}]`` with ``s = (1 + cos(x_t, x_0)) / 2``.

Recipe (LatSearch, ``tools/train_latent_reward.py``):

* split by prompt (80/20, prompts compared after NFKC case folding), so no prompt is in
  both splits;
* each epoch visits every training record once, at one of its steps drawn at random, in
  batches (4 in the paper);
* loss ``sum_d MSE(r_d, s * y_d) + sum_d BCE(sigmoid(r_d[a] - r_d[b]), [y_d[a] > y_d[b]])``
  over the three dimensions ``d`` and every pair ``(a, b)`` of the batch: the teacher score
  ``y_d`` scaled by the latent's similarity to its clean end, and a Bradley-Terry term;
* the vision tower (with its new 16-channel patch embedding) and the step embedding are
  trained with Adam (lr ``1e-4``, times 0.1 at each milestone epoch); the language model,
  its LoRA adapters and the reward head stay frozen. Dropout in the LoRA layers acts
  while training, as in the reference.

The trained tensors are written after every epoch to ``OUT/latent_reward.pt`` in the
official format (``model.base_model.model.visual.*`` and ``step_embedding.weight``), so
:meth:`LatSearchLatentReward.from_pretrained` loads them, as it loads the paper's file.
Deviation: the new patch embedding starts from a Xavier-uniform draw and the step table
from ``N(0, 1)`` drawn from a seeded generator (the reference uses the global one).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import unicodedata
from collections.abc import Callable
from pathlib import Path

import attrs
import torch
from torch import nn

from searchkit.errors import LatentDataError
from searchkit.files import atomic_write
from searchkit.rewards.video_reward.config import DIMENSIONS
from searchkit.rewards.video_reward.latent import (
    LABEL_PER_STEP,
    LATENT_CHANNELS,
    NUM_LABELS,
    LatSearchLatentReward,
    make_latent_network,
)
from searchkit.rewards.video_reward.reward import (
    load_backbone_checkpoint,
    parse_device,
    parse_dtype,
)
from searchkit.validation import number, positive_int, to_float
from searchkit.validation import seed as seed_validator

CHECKPOINT_NAME = "latent_reward.pt"
_FILE_PREFIX = "model.base_model.model."


@attrs.frozen
class LatSearchTrainConfig:
    """The paper's defaults: 15 epochs, batch 4, lr 1e-4 (x 0.1 after epoch 10), equal loss weights."""

    epochs: int = attrs.field(default=15, validator=positive_int)
    batch_size: int = attrs.field(default=4, validator=positive_int)
    lr: float = attrs.field(default=1e-4, converter=to_float, validator=number(above=0.0))
    milestones: tuple[int, ...] = attrs.field(default=(10,), converter=tuple)
    mse_weight: float = attrs.field(default=1.0, converter=to_float, validator=number(at_least=0.0))
    pairwise_weight: float = attrs.field(
        default=1.0, converter=to_float, validator=number(at_least=0.0)
    )
    train_fraction: float = attrs.field(
        default=0.8, converter=to_float, validator=number(above=0.0, below=1.0)
    )
    split_seed: int = attrs.field(default=1203, validator=seed_validator)
    seed: int = attrs.field(default=1203, validator=seed_validator)


@attrs.frozen
class Sample:
    """One record: a prompt, the teacher's raw scores, and its latents by step index."""

    prompt: str
    rewards: tuple[float, float, float]
    latents: dict[int, Path]
    similarity: dict[int, float]


def _record_fields(record: object, where: str, base: Path, inside: Path) -> Sample:
    """One record as a :class:`Sample`, every field checked (paths: present, inside ``inside``)."""
    from searchkit.rewards.latent.records import tensor_path

    try:
        if not isinstance(record, dict):
            raise TypeError(f"must be a JSON object, got {type(record).__name__}")
        rewards = tuple(float(record["output_reward"][0][d]) for d in DIMENSIONS)
        raw_paths = record["latent_tensor_path"][0]
        raw_sims = record["latent_z0_similarity"][0]
        steps = {k: int(k.removeprefix("t")) for k in raw_paths}
        sims = {int(k.removeprefix("t")): float(v) for k, v in raw_sims.items()}
        prompt = record["prompt"]
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise LatentDataError(
            f"{where}: lacks a valid field ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(prompt, str) or not prompt.strip():
        raise LatentDataError(f"{where}: prompt must be a non-empty string, got {prompt!r}")
    if not all(math.isfinite(r) for r in rewards):
        raise LatentDataError(f"{where}: output_reward holds a non-finite score {list(rewards)}")
    if not steps or set(steps.values()) != set(sims):
        raise LatentDataError(
            f"{where}: latents for steps {sorted(steps.values())} but similarities for {sorted(sims)}"
        )
    for j, sim in sims.items():
        if not -1e-6 <= sim <= 1.0 + 1e-6:
            raise LatentDataError(
                f"{where}: latent_z0_similarity['t{j}'] must lie in [0, 1], got {sim!r}"
            )
        if not 0 <= LABEL_PER_STEP * j < NUM_LABELS:
            raise LatentDataError(
                f"{where}: step t{j} has no step label (steps 0..{NUM_LABELS // LABEL_PER_STEP - 1})"
            )
    paths = {
        j: tensor_path(raw_paths[k], base, inside, where, f"latent_tensor_path[{k!r}]")
        for k, j in steps.items()
    }
    return Sample(prompt, rewards, paths, sims)


def read_samples(data: str | Path) -> list[Sample]:
    """Records of every ``all_latent_metadata_seed_*.json`` under ``data`` (or ``data/metadata``).

    Every record is checked: its fields, and each latent path, which must name an existing
    file inside the dataset folder (the metadata folder's parent); a file that is not JSON,
    not a list, or holds no records is an error. Errors are
    :class:`~searchkit.errors.LatentDataError` naming the file and the record.
    """
    folder = Path(data)
    if not folder.is_dir():
        raise LatentDataError(f"dataset folder not found: {folder}")
    if (folder / "metadata").is_dir():
        folder = folder / "metadata"
    files = sorted(folder.glob("all_latent_metadata_seed_*.json"))
    if not files:
        raise LatentDataError(f"no all_latent_metadata_seed_*.json file in {folder}")
    inside = Path(os.path.abspath(folder.parent))
    samples = []
    for path in files:
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise LatentDataError(f"{path}: not valid JSON: {error}") from None
        if not isinstance(records, list):
            raise LatentDataError(f"{path} must hold a JSON list of records")
        if not records:
            raise LatentDataError(f"{path}: holds no records")
        for i, record in enumerate(records):
            samples.append(_record_fields(record, f"{path.name} record {i}", folder, inside))
    return samples


def check_latents(samples: list[Sample], channels: int = LATENT_CHANNELS) -> tuple[int, ...]:
    """Load every latent once: a finite ``[channels, F, H, W]`` tensor, all of one shape.

    Returns the shape. Run before any model is built, so a bad file costs no weight loading;
    the error names the file.
    """
    shape: tuple[int, ...] | None = None
    for sample in samples:
        for j, path in sorted(sample.latents.items()):
            what = f"latent t{j} of prompt {sample.prompt!r} at {path}"
            try:
                tensor = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as error:  # noqa: BLE001 - any unpickling failure is a bad file
                raise LatentDataError(
                    f"{what}: cannot load ({type(error).__name__}: {error})"
                ) from None
            if not isinstance(tensor, torch.Tensor):
                raise LatentDataError(f"{what}: holds a {type(tensor).__name__}, not a tensor")
            got = tuple(tensor.shape)
            if len(got) != 4 or got[0] != channels:
                raise LatentDataError(
                    f"{what}: has shape {list(got)}, expected [{channels}, F, H, W]"
                )
            if shape is not None and got != shape:
                raise LatentDataError(
                    f"{what}: has shape {list(got)}, but earlier latents have {list(shape)}"
                )
            if not bool(torch.isfinite(tensor).all()):
                raise LatentDataError(f"{what}: holds non-finite values")
            shape = got
    if shape is None:
        raise LatentDataError("the dataset holds no latents")
    return shape


def split_by_prompt(
    samples: list[Sample], fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Train / validation records, every prompt on one side only."""

    def key(prompt: str) -> str:
        return " ".join(unicodedata.normalize("NFKC", prompt).casefold().split())

    prompts = sorted({key(s.prompt) for s in samples})
    if len(prompts) < 2:
        raise LatentDataError(
            f"a prompt-level split needs at least 2 prompts, the data has {len(prompts)}"
        )
    random.Random(seed).shuffle(prompts)
    cut = min(len(prompts) - 1, max(1, int(fraction * len(prompts))))
    train = set(prompts[:cut])
    return [s for s in samples if key(s.prompt) in train], [
        s for s in samples if key(s.prompt) not in train
    ]


def initial_model(
    backbone_path: str | Path,
    base_model: str | Path | None = None,
    *,
    labels: tuple[int, ...],
    device: torch.device | str | None = None,
    dtype: torch.dtype | str | None = None,
    generator: torch.Generator | None = None,
) -> LatSearchLatentReward:
    """An untrained latent reward model on a VideoReward backbone, knowing step ``labels``."""
    device = parse_device(device)
    loaded = load_backbone_checkpoint(backbone_path, base_model, device, parse_dtype(dtype, device))
    network = make_latent_network(loaded.network)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    proj, table = network.visual.patch_embed.proj.weight, network.step_embedding.weight
    fan_in, fan_out = proj[0].numel(), proj.shape[0] * proj[0, 0].numel()
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    with torch.no_grad():
        proj.copy_((torch.rand(proj.shape, generator=generator) * 2 - 1) * bound)
        table.copy_(torch.randn(table.shape, generator=generator))
    return LatSearchLatentReward(loaded, Path("(untrained)"), step_labels=labels)


def trainable(reward: LatSearchLatentReward) -> dict[str, nn.Parameter]:
    """The trained tensors: the vision tower and the step embedding."""
    return {
        n: p
        for n, p in reward.loaded.network.named_parameters()
        if n.startswith("visual.") or n.startswith("step_embedding.")
    }


def save_checkpoint(reward: LatSearchLatentReward, path: str | Path) -> Path:
    """The trainable tensors in the official file format (atomic ``torch.save``)."""
    state = {
        (_FILE_PREFIX + n if n.startswith("visual.") else n): p.detach().cpu().clone()
        for n, p in trainable(reward).items()
    }
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def batch_loss(
    reward: LatSearchLatentReward, batch: list[tuple[Sample, int]], config: LatSearchTrainConfig
) -> torch.Tensor:
    """The paper's loss on ``(sample, step index)`` pairs (see the module docstring)."""
    latents = torch.stack(
        [torch.load(s.latents[j], map_location="cpu", weights_only=True) for s, j in batch]
    )
    out = reward.forward(latents.float(), [s.prompt for s, _ in batch], [j + 1 for _, j in batch])
    target = torch.tensor([s.rewards for s, _ in batch])
    sims = torch.tensor([s.similarity[j] for s, j in batch])
    loss = config.mse_weight * ((out - target * sims[:, None]) ** 2).mean(dim=0).sum()
    pairs = list(itertools.combinations(range(len(batch)), 2))
    if pairs and config.pairwise_weight:
        a, b = (torch.tensor(x) for x in zip(*pairs, strict=True))
        labels = (target[a] > target[b]).float()
        bce = nn.functional.binary_cross_entropy_with_logits(
            out[a] - out[b], labels, reduction="none"
        )
        loss = loss + config.pairwise_weight * bce.mean(dim=0).sum()
    return loss


def mean_loss(
    reward: LatSearchLatentReward, samples: list[Sample], config: LatSearchTrainConfig
) -> float:
    """Loss over every (record, step) of ``samples`` in evaluation mode, in batches."""
    pairs = [(s, j) for s in samples for j in sorted(s.latents)]
    reward.loaded.network.eval()
    with torch.no_grad():
        losses = [
            float(batch_loss(reward, pairs[i : i + config.batch_size], config))
            * len(pairs[i : i + config.batch_size])
            for i in range(0, len(pairs), config.batch_size)
        ]
    return sum(losses) / len(pairs)


def train_latsearch(
    reward: LatSearchLatentReward,
    samples: list[Sample],
    out: str | Path,
    config: LatSearchTrainConfig = LatSearchTrainConfig(),
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Train ``reward`` in place on ``samples``; write ``out/latent_reward.pt`` every epoch; the history."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LatentDataError(f"output folder {out} is a file")
    train, val = split_by_prompt(samples, config.train_fraction, config.split_seed)
    out.mkdir(parents=True, exist_ok=True)
    network = reward.loaded.network
    params = trainable(reward)
    network.requires_grad_(False)
    for p in params.values():
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(params.values(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(config.milestones), gamma=0.1
    )
    rng = random.Random(config.seed)
    history = []
    for epoch in range(config.epochs):
        network.train()
        order = rng.sample(train, len(train))
        total = 0.0
        for i in range(0, len(order), config.batch_size):
            batch = [(s, rng.choice(sorted(s.latents))) for s in order[i : i + config.batch_size]]
            loss = batch_loss(reward, batch, config)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        schedule.step()
        save_checkpoint(reward, out / CHECKPOINT_NAME)
        row = {
            "epoch": epoch + 1,
            "train_loss": total / len(order),
            "val_loss": mean_loss(reward, val, config),
        }
        history.append(row)
        if log is not None:
            log(json.dumps(row))
    network.eval().requires_grad_(False)
    (out / "history.json").write_text(json.dumps(history, indent=2) + "\n", encoding="utf-8")
    return history


def main_train_latsearch(args) -> int:
    """``searchkit reward train --arch latsearch``: the paper's model on a collected dataset.

    Everything is checked before the backbone loads and before ``--out`` is created: the
    configuration, every record and latent file, and the prompt split.
    """
    config = LatSearchTrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=float(args.lr),
        mse_weight=float(args.mse_weight),
        pairwise_weight=float(args.pairwise_weight),
        train_fraction=1.0 - args.val_fraction,
        split_seed=args.split_seed,
        seed=args.seed,
    )
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise LatentDataError(f"output folder {out} is a file")
    samples = read_samples(args.data)
    check_latents(samples)
    split_by_prompt(samples, config.train_fraction, config.split_seed)
    steps = sorted({j for s in samples for j in s.latents})
    reward = initial_model(
        args.backbone_path,
        args.base_model,
        labels=tuple(LABEL_PER_STEP * j for j in steps),
        generator=torch.Generator().manual_seed(args.seed),
    )
    history = train_latsearch(reward, samples, out, config, log=print)
    print(json.dumps({"checkpoint": str(out / CHECKPOINT_NAME), "final": history[-1]}, indent=2))
    return 0
