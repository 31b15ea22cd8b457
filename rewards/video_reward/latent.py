"""``LatSearchLatentReward`` (registered ``latsearch-latent-reward``): the LatSearch paper's latent reward model.

LatSearch (Zhao et al., ECCV 2026) scores the *noisy* latent ``x_t`` of a partially
denoised Wan2.1 trajectory with the VideoReward network whose vision patch embedding
reads latents instead of pixels::

    rows  = patches of x_t [16, F, H, W]   (frames.latent_patches: F -> round-half-even to
            an even count, bicubic antialiased resize of all 16 channels to the 28-grid,
            cast to bfloat16 and back; no range map, quantisation or normalisation)
    rows += step_embedding[label]           a learned table of 1,000 rows x 16 values; each
                                            value repeated over its channel's 2 x 14 x 14
                                            positions, added to every patch row
    proj  = Conv3d(16 -> vision width, kernel = stride = (2, 14, 14), no bias)
    then the VideoReward network unchanged: vision blocks, merger, LoRA language model,
    reward head at the three reward tokens -> raw VQ, MQ, TA (no normalisation)

The step label is the one the paper's sampler passes: ``20 * j`` after step index ``j``
(0-based; the latent has then taken ``j + 1`` of 50 steps), and the released training
data covers ``j`` in 10, 15, 20, 25, 30 (labels 200 to 600). Scoring a step whose label
the checkpoint does not know is an error: :meth:`LatSearchLatentReward.check_steps`
raises it before a search runs, :meth:`score` again at run time.

Deviation: the paper never scores a finished (clean, ``sigma = 0``) latent with this model,
but searchkit reports the scores of every returned output (and best-of-N ranks finished
outputs). With ``score_final=True`` (the default) a clean latent is scored with the
highest known label (600, the least noisy state the model was trained on); with
``score_final=False`` that is an error too.

Checkpoint: the paper's ``latent_reward.pt`` is a ``torch.save`` state dict of the
trainable tensors only (the whole vision tower with its new patch embedding, and
``step_embedding.weight``), named after the training module
(``model.base_model.model.visual.*``); it is loaded on top of a VideoReward folder (the
frozen language model, LoRA and reward head), strictly: every vision tensor and the step
table must be present, none may be left over or of the wrong shape.

Why it lives in the ``video_reward`` package: it is the same network, loaded from the
same checkpoint folder with the same prompt, tokens, frame sampling and resizing rules;
only the patch embedding, the step table and the preprocessing of one tensor differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from searchkit.backend import Backend
from searchkit.reward import Reward, RewardBatch
from searchkit.rewards.video_reward.config import DIMENSIONS, HUB_ID, VideoRewardCheckpointError
from searchkit.rewards.video_reward.frames import latent_patches
from searchkit.rewards.video_reward.reward import (
    LoadedBackbone,
    load_backbone_checkpoint,
    parse_device,
    parse_dtype,
)
from searchkit.rewards.video_reward.weights import load_strict, map_tensors

LATENT_CHANNELS = 16
NUM_LABELS = 1000
LABEL_PER_STEP = 20
PAPER_LABELS: tuple[int, ...] = (200, 300, 400, 500, 600)


def make_latent_network(
    network: nn.Module, channels: int = LATENT_CHANNELS, labels: int = NUM_LABELS
) -> nn.Module:
    """Give a VideoReward network a ``channels``-wide patch embedding and a step table (in place)."""
    embed = network.visual.patch_embed
    old = embed.proj
    embed.proj = nn.Conv3d(
        channels,
        old.out_channels,
        kernel_size=old.kernel_size,
        stride=old.stride,
        bias=False,
        device=old.weight.device,
        dtype=old.weight.dtype,
    )
    embed.in_channels = channels
    network.step_embedding = nn.Embedding(
        labels, channels, device=old.weight.device, dtype=old.weight.dtype
    )
    return network


def step_rows(
    network: nn.Module, labels: torch.Tensor, grid: torch.Tensor, volume: int
) -> torch.Tensor:
    """The step embedding as patch rows: each value repeated ``volume`` times, one row per patch."""
    table = network.step_embedding(labels.to(network.step_embedding.weight.device)).float()
    per_video = table.repeat_interleave(volume, dim=1)
    return per_video.repeat_interleave(grid.prod(dim=1).to(per_video.device), dim=0)


class LatSearchLatentReward(Reward):
    """The LatSearch paper's latent reward model (see the module docstring)."""

    name = "latsearch-latent-reward"
    measure_flops = True  # counted on the first call of each shape (meta cannot run it)
    dimensions = DIMENSIONS
    input = "latent"

    def __init__(
        self,
        loaded: LoadedBackbone,
        checkpoint: Path,
        *,
        step_labels: Sequence[int] = PAPER_LABELS,
        label_per_step: int = LABEL_PER_STEP,
        score_final: bool = True,
        max_batch: int = 4,
    ) -> None:
        if not isinstance(score_final, bool):
            raise TypeError(f"score_final must be true or false, got {score_final!r}")
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
        if (
            isinstance(label_per_step, bool)
            or not isinstance(label_per_step, int)
            or label_per_step < 1
        ):
            raise ValueError(f"label_per_step must be a positive integer, got {label_per_step!r}")
        labels = tuple(step_labels)
        rows = loaded.network.step_embedding.num_embeddings
        if not labels or any(
            isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < rows for x in labels
        ):
            raise ValueError(f"step_labels must be integers in [0, {rows}), got {list(labels)}")
        self.loaded = loaded
        self.checkpoint = checkpoint
        self.step_labels = labels
        self.label_per_step = label_per_step
        self.score_final = score_final
        self.max_batch = max_batch

    @property
    def channels(self) -> int:
        return int(self.loaded.network.visual.patch_embed.in_channels)

    @property
    def latent_shape(self) -> tuple[int | None, ...]:
        """``(channels, any, any, any)``: latents are resized to the vision tower's grid."""
        return (self.channels, None, None, None)

    @classmethod
    def from_pretrained(
        cls,
        backbone_path: str | Path = HUB_ID,
        checkpoint_path: str | Path | None = None,
        base_model: str | Path | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
        step_labels: Sequence[int] = PAPER_LABELS,
        label_per_step: int = LABEL_PER_STEP,
        score_final: bool = True,
        max_batch: int = 4,
        checkpoint_step: int | None = None,
    ) -> LatSearchLatentReward:
        """Load ``checkpoint_path`` (the paper's ``latent_reward.pt``) over a VideoReward folder.

        Args:
            backbone_path: the released VideoReward folder or hub id the model is built on.
            checkpoint_path: the latent reward checkpoint (the paper's ``latent_reward.pt``).
            base_model: the Qwen2-VL base model's folder or hub id (default: the one the
                VideoReward config names).
            device: where it runs (default: the backend's device).
            dtype: ``bf16``/``fp16``/``fp32`` (default: bfloat16 on a GPU, float32 on the CPU).
            step_labels: the step labels the checkpoint was trained on (the paper's 200 to
                600); scoring another step is an error before the search.
            label_per_step: label of step index ``j`` is ``label_per_step * j`` (the paper's 20).
            score_final: score a finished output with the highest label (true) or refuse to.
            max_batch: latents per forward (bounds memory, not the result).
            checkpoint_step: which ``checkpoint-<step>`` folder of the backbone (default: the
                highest).
        """
        if checkpoint_path is None:
            raise ValueError(
                "checkpoint_path must name the latent reward checkpoint (latent_reward.pt)"
            )
        checkpoint = Path(checkpoint_path).expanduser()
        if not checkpoint.is_file():
            raise VideoRewardCheckpointError(
                f"latent reward checkpoint {checkpoint} does not exist"
            )
        device = parse_device(device)
        loaded = load_backbone_checkpoint(
            backbone_path, base_model, device, parse_dtype(dtype, device), checkpoint_step
        )
        mapped = map_tensors([checkpoint])
        proj = mapped.get("visual.patch_embed.proj.weight")
        if proj is None:
            raise VideoRewardCheckpointError(
                f"{checkpoint} has no vision patch embedding; it is not a latent reward checkpoint"
            )
        network = make_latent_network(loaded.network, channels=int(proj[0].shape[1]))
        required = [n for n in network.state_dict() if n.startswith("visual.")] + [
            "step_embedding.weight"
        ]
        load_strict(network, mapped, required, checkpoint)
        network.eval().requires_grad_(False)
        return cls(
            loaded,
            checkpoint,
            step_labels=step_labels,
            label_per_step=label_per_step,
            score_final=score_final,
            max_batch=max_batch,
        )

    @classmethod
    def build(
        cls,
        backend: Backend | None = None,
        backbone_path: str | Path = HUB_ID,
        checkpoint_path: str | Path | None = None,
        **options: Any,
    ) -> LatSearchLatentReward:
        """Registry builder; also checks the backend's latent channels against the checkpoint."""
        if backend is not None and "device" not in options:
            options["device"] = backend.device
        reward = cls.from_pretrained(backbone_path, checkpoint_path, **options)
        if backend is not None and backend.latent_shape[0] != reward.channels:
            raise ValueError(
                f"{reward.checkpoint} reads {reward.channels}-channel latents, backend {backend.name!r} makes "
                f"{backend.latent_shape[0]} channels"
            )
        return reward

    # -- step labels ------------------------------------------------------------------
    def step_label(self, step: int) -> int:
        """The label of a latent that has taken ``step`` steps: ``20 * (step - 1)``."""
        label = self.label_per_step * (step - 1)
        if step < 1 or label not in self.step_labels:
            known = [x // self.label_per_step for x in self.step_labels]
            raise ValueError(
                f"{self.name} knows step labels {list(self.step_labels)} (scoring after steps {known}); "
                f"scoring after step {step - 1} needs label {label}"
            )
        return label

    def check_steps(self, steps: Sequence[int], num_steps: int) -> None:
        """Raise before a search when it would score after a step whose label is unknown."""
        for j in steps:
            if not (self.score_final and j == num_steps - 1):
                self.step_label(j + 1)

    # -- scoring ----------------------------------------------------------------------
    def score(self, batch: RewardBatch) -> torch.Tensor:
        n = int(batch.data.shape[0])
        if self.score_final and bool((batch.sigma == 0).all()):
            step = (
                max(self.step_labels) // self.label_per_step + 1
            )  # a clean output: the highest label
        else:
            step = batch.step
        return self.score_latents(batch.data, [batch.prompt] * n, step)

    def score_latents(
        self, latents: torch.Tensor, prompts: list[str], step: int | Sequence[int]
    ) -> torch.Tensor:
        """Raw scores ``[n, 3]`` of noisy latents ``[n, C, F, H, W]`` after ``step`` steps (one or per latent)."""
        with torch.no_grad():
            return self.forward(latents, prompts, step)

    def forward(
        self, latents: torch.Tensor, prompts: list[str], step: int | Sequence[int]
    ) -> torch.Tensor:
        """As :meth:`score_latents`, keeping the autograd graph (for training)."""
        if (
            not isinstance(latents, torch.Tensor)
            or latents.dim() != 5
            or latents.shape[1] != self.channels
        ):
            shape = (
                list(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
            )
            raise ValueError(f"latents must be [n, {self.channels}, F, H, W], got {shape}")
        if not torch.isfinite(latents).all():
            raise ValueError("latents hold NaN or infinite values")
        n = latents.shape[0]
        if len(prompts) != n:
            raise ValueError(f"prompts must hold one prompt per latent ({n}), got {len(prompts)}")
        steps = [step] * n if isinstance(step, int) else list(step)
        labels = torch.tensor([self.step_label(s) for s in steps], dtype=torch.long)
        device = self.loaded.network.rm_head.weight.device
        out = []
        for start in range(0, n, self.max_batch):
            stop = start + self.max_batch
            out.append(
                self._forward(
                    latents[start:stop].to(device), prompts[start:stop], labels[start:stop]
                )
            )
        return torch.cat(out).cpu()

    def _forward(
        self, latents: torch.Tensor, prompts: list[str], labels: torch.Tensor
    ) -> torch.Tensor:
        spec, network = self.loaded.spec, self.loaded.network
        patches = [
            latent_patches(x, spec, max_pixels=self.loaded.config.max_frame_pixels) for x in latents
        ]
        grid = torch.tensor([g for _, g in patches], dtype=torch.long)
        volume = spec.temporal_patch_size * spec.patch_size**2
        rows = torch.cat([r for r, _ in patches]) + step_rows(network, labels, grid, volume)
        merge = spec.merge_size**2
        ids, mask = self.loaded.encoder.encode(
            prompts, [t * h * w // merge for t, h, w in grid.tolist()]
        )
        return network(ids, mask, rows, grid)

    def config_dict(self) -> dict:
        return {
            **super().config_dict(),
            "backbone_path": str(self.loaded.folder),
            "checkpoint_path": str(self.checkpoint),
            "step_labels": list(self.step_labels),
            "label_per_step": self.label_per_step,
            "score_final": self.score_final,
            "max_batch": self.max_batch,
        }
