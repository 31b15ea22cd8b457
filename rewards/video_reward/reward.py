"""``VideoReward`` (registered ``video-reward``): VideoAlign's reward model as a searchkit reward.

VideoReward (Liu et al., "Improving Video Generation with Human Feedback", 2025) scores a
generated video and its prompt in three dimensions: visual quality (VQ), motion quality
(MQ) and text alignment (TA). It is the pixel-space verifier of the LatSearch paper's
best-of-N and EvoSearch baselines and the teacher whose raw scores label the latent
reward model's training data. The network is in :mod:`.network`, the frame pipeline in
:mod:`.frames`, the prompt in :mod:`.prompt`, the checkpoint layout in :mod:`.config`::

    reward = VideoReward.from_pretrained("checkpoints/VideoReward",
                                         base_model="checkpoints/Qwen2-VL-2B-Instruct")
    result = BestOfN(n=4).run(wan, reward, "a red panda plays a tiny guitar")

It reads decoded frames ``[n, F, H, W, 3]`` in ``[0, 1]`` (input ``"video"``) in memory,
scores them in batches of ``max_batch`` and returns ``[n, 3]``. With ``normalize=True``
(the default, as the paper's best-of-N and EvoSearch use it) each dimension is mapped to
``(raw - mean_d) / std_d`` with the ``inference_config`` statistics of
``model_config.json``; ``normalize=False`` gives the raw head outputs (the latent reward
model's training labels). It is not differentiable (the frames are quantised to 8 bits).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import torch

from searchkit.backend import Backend
from searchkit.reward import Reward, RewardBatch
from searchkit.rewards.video_reward.config import (
    ADAPTER_NAME,
    BASE_HUB_ID,
    DIMENSIONS,
    FULL_NAME,
    HUB_ID,
    NON_LORA_NAME,
    VideoRewardCheckpointError,
    VideoRewardConfig,
    checkpoint_folder,
    read_config,
    resolve_folder,
)
from searchkit.rewards.video_reward.frames import PatchSpec, check_video, video_patches
from searchkit.rewards.video_reward.network import (
    RewardNetwork,
    add_lora,
    load_backbone,
    patch_spec,
)
from searchkit.rewards.video_reward.prompt import PromptEncoder
from searchkit.rewards.video_reward.weights import load_strict, map_tensors

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_dtype(value: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    """A torch dtype from a dtype or its name; ``None``: bfloat16 on a GPU, float32 on the CPU."""
    if value is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(value, torch.dtype):
        return value
    if isinstance(value, str) and value.removeprefix("torch.") in _DTYPES:
        return _DTYPES[value.removeprefix("torch.")]
    raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {value!r}")


def parse_device(value: torch.device | str | None) -> torch.device:
    if value is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(value)


@attrs.frozen(eq=False)
class LoadedBackbone:
    """A VideoReward network with everything needed to feed it."""

    network: Any
    encoder: Any
    spec: PatchSpec
    config: VideoRewardConfig
    folder: Path
    checkpoint: Path


def load_backbone_checkpoint(
    path: str | Path,
    base_model: str | Path | None,
    device: torch.device,
    dtype: torch.dtype,
    checkpoint_step: int | None = None,
) -> LoadedBackbone:
    """Build the network from the base model and load the VideoReward checkpoint strictly."""
    folder = resolve_folder(path, "VideoReward checkpoint", "path=")
    config = read_config(folder)
    step_folder = checkpoint_folder(folder, checkpoint_step)
    base = resolve_folder(
        base_model if base_model is not None else config.base_model, "base model", "base_model="
    )
    visual, language_model, model_config = load_backbone(base, dtype, device)
    encoder = PromptEncoder(base, model_config.video_token_id)
    language_model = add_lora(language_model, config)
    network = RewardNetwork(
        visual,
        language_model,
        config.output_dim,
        model_config.video_token_id,
        encoder.reward_token_ids,
    )
    full = step_folder / FULL_NAME
    files = [full] if full.is_file() else [step_folder / NON_LORA_NAME]
    if not full.is_file() and config.lora_rank > 0:
        files.append(step_folder / ADAPTER_NAME)
    mapped = map_tensors(files)
    required = [n for n in network.state_dict() if ".lora_" in n or n == "rm_head.weight"]
    load_strict(network, mapped, required, step_folder)
    rows = network.language_model.embed_tokens.weight.shape[0]
    if max(encoder.reward_token_ids) >= rows:
        raise VideoRewardCheckpointError(
            f"{step_folder}: the token embedding has {rows} rows but the reward tokens have ids "
            f"{list(encoder.reward_token_ids)}; the checkpoint lacks its trained token embedding"
        )
    network.eval().requires_grad_(False)
    return LoadedBackbone(
        network, encoder, patch_spec(base, model_config.vision_config), config, folder, step_folder
    )


class VideoReward(Reward):
    """VideoAlign's VideoReward on decoded frames (see the module docstring)."""

    name = "video-reward"
    measure_flops = True  # counted on the first call of each shape (meta cannot run it)
    dimensions = DIMENSIONS
    input = "video"

    def __init__(
        self, loaded: LoadedBackbone, *, normalize: bool = True, max_batch: int = 4
    ) -> None:
        if not isinstance(normalize, bool):
            raise TypeError(f"normalize must be true or false, got {normalize!r}")
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
        if normalize and loaded.config.means is None:
            raise VideoRewardCheckpointError(
                f"{loaded.folder / 'model_config.json'} has no inference_config, so normalize=True cannot "
                "apply; pass normalize=False for raw scores"
            )
        self.loaded = loaded
        self.normalize = normalize
        self.max_batch = max_batch

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path = HUB_ID,
        base_model: str | Path | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
        normalize: bool = True,
        max_batch: int = 4,
        checkpoint_step: int | None = None,
    ) -> VideoReward:
        """Load a released VideoReward folder (or hub id) on top of its base model.

        ``base_model`` overrides ``model_config.model_name_or_path`` (the released config
        names the hub id ``Qwen/Qwen2-VL-2B-Instruct``); ``checkpoint_step`` picks a
        ``checkpoint-<step>`` folder (default: the highest). ``dtype`` defaults to
        bfloat16 on a GPU (the released model's precision) and float32 on the CPU.

        Args:
            path: the released VideoReward folder (``model_config.json`` and its
                ``checkpoint-<step>`` folders) or its hub id.
            base_model: the Qwen2-VL base model's folder or hub id (default: the one its
                ``model_config.json`` names).
            device: where it runs (default: the backend's device).
            dtype: ``bf16``/``fp16``/``fp32`` (default: bfloat16 on a GPU, float32 on the CPU).
            normalize: map each dimension to ``(raw - mean) / std`` with the released
                statistics (the paper's use); false for the raw head outputs.
            max_batch: videos per forward (bounds memory, not the result).
            checkpoint_step: which ``checkpoint-<step>`` folder (default: the highest).
        """
        device = parse_device(device)
        loaded = load_backbone_checkpoint(
            path, base_model, device, parse_dtype(dtype, device), checkpoint_step
        )
        return cls(loaded, normalize=normalize, max_batch=max_batch)

    @classmethod
    def build(
        cls, backend: Backend | None = None, path: str | Path = HUB_ID, **options: Any
    ) -> VideoReward:
        """Registry builder: ``build_reward("video-reward", backend, path=..., base_model=...)``.

        The model goes on the backend's device unless ``device`` is given.
        """
        if backend is not None and "device" not in options:
            options["device"] = backend.device
        return cls.from_pretrained(path, **options)

    def score(self, batch: RewardBatch) -> torch.Tensor:
        return self.score_frames(batch.data, [batch.prompt] * int(batch.data.shape[0]))

    @torch.no_grad()
    def score_frames(
        self, frames: torch.Tensor, prompts: list[str], *, normalize: bool | None = None
    ) -> torch.Tensor:
        """Scores ``[n, 3]`` of frames ``[n, F, H, W, 3]`` in ``[0, 1]`` with one prompt each."""
        frames = check_video(frames, "frames")
        if len(prompts) != frames.shape[0]:
            raise ValueError(
                f"prompts must hold one prompt per video ({frames.shape[0]}), got {len(prompts)}"
            )
        normalize = self.normalize if normalize is None else normalize
        device = self.loaded.network.rm_head.weight.device
        config = self.loaded.config
        out = []
        for start in range(0, frames.shape[0], self.max_batch):
            chunk = frames[start : start + self.max_batch].to(device)
            patches = [
                video_patches(
                    v,
                    self.loaded.spec,
                    max_pixels=config.max_frame_pixels,
                    fps=config.fps,
                    nframes=config.num_frames,
                )
                for v in chunk
            ]
            out.append(self._forward(patches, prompts[start : start + self.max_batch]))
        raw = torch.cat(out).cpu()
        return self.normalise(raw) if normalize else raw

    def _forward(
        self, patches: list[tuple[torch.Tensor, tuple[int, int, int]]], prompts: list[str]
    ) -> torch.Tensor:
        merge = self.loaded.spec.merge_size**2
        grid = torch.tensor([g for _, g in patches], dtype=torch.long)
        ids, mask = self.loaded.encoder.encode(
            prompts, [t * h * w // merge for t, h, w in grid.tolist()]
        )
        rows = torch.cat([r for r, _ in patches])
        return self.loaded.network(ids, mask, rows, grid)

    def normalise(self, raw: torch.Tensor) -> torch.Tensor:
        """``(raw - mean) / std`` per dimension with the checkpoint's inference statistics."""
        config = self.loaded.config
        if config.means is None:
            raise VideoRewardCheckpointError(
                "the checkpoint has no inference_config to normalise with"
            )
        return (raw - torch.tensor(config.means)) / torch.tensor(config.stds)

    def config_dict(self) -> dict:
        return {
            **super().config_dict(),
            "path": str(self.loaded.folder),
            "checkpoint": self.loaded.checkpoint.name,
            "normalize": self.normalize,
            "max_batch": self.max_batch,
            "dtype": str(self.loaded.network.dtype).removeprefix("torch."),
        }


__all__ = ["BASE_HUB_ID", "HUB_ID", "VideoReward", "VideoRewardCheckpointError"]
