"""The VideoReward network: Qwen2-VL with LoRA adapters and a reward head at three tokens.

Architecture (VideoAlign's ``Qwen2VLRewardModelBT`` with ``reward_token="special"``)::

    rows  = vision patches of the video (frames.py)
    v     = visual(rows, grid)                       Qwen2-VL vision tower + 2x2 merger
    e     = embed_tokens(input_ids); e[video_pad positions] = v
    h     = language_model(e, mask, positions 0..L-1 on all three rotary sections)
    r_i   = rm_head(h at <|VQ_reward|>, <|MQ_reward|>, <|TA_reward|>)   (in order)
    score = [r_VQ, r_MQ, r_TA]            (one column each; with a 3-column head, column d
                                           of the head read at dimension d's token)

The language model carries LoRA adapters (peft, scale ``alpha / r``) on every linear
layer. The reward model calls it **without position ids**, so its rotary positions are
plain 1-D positions ``0..L-1`` repeated over Qwen2-VL's three rotary sections, not the
multimodal (temporal, height, width) positions Qwen2-VL uses for generation; they are
passed explicitly here so the behaviour does not depend on a transformers default. The
prompt is padded on the right and the reward tokens precede the padding, so padding
never changes a score and a batch scores as its members one by one. Language-model
logits are never computed (``lm_head`` is not loaded).

The LatSearch latent reward model is the same network with the vision patch embedding
replaced by a 16-channel 3-D convolution and a step embedding added to the patch rows
(:mod:`searchkit.rewards.video_reward.latent`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from searchkit.rewards.video_reward.config import VideoRewardCheckpointError, VideoRewardConfig
from searchkit.rewards.video_reward.frames import PatchSpec


class RewardNetwork(nn.Module):
    """Vision tower + LoRA language model + reward head (see the module docstring)."""

    def __init__(
        self,
        visual: nn.Module,
        language_model: nn.Module,
        output_dim: int,
        video_token_id: int,
        reward_token_ids: tuple[int, ...],
    ) -> None:
        super().__init__()
        self.visual = visual
        self.language_model = language_model
        hidden = language_model.config.hidden_size
        weight = language_model.embed_tokens.weight
        self.rm_head = nn.Linear(
            hidden, output_dim, bias=False, device=weight.device, dtype=weight.dtype
        )
        self.video_token_id = video_token_id
        self.reward_token_ids = reward_token_ids

    @property
    def dtype(self) -> torch.dtype:
        return self.rm_head.weight.dtype

    def embed_video(self, rows: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """Merged video tokens ``[tokens, hidden]`` for patch rows ``[patches, dim]``."""
        weight = self.visual.patch_embed.proj.weight
        out = self.visual(
            rows.to(device=weight.device, dtype=weight.dtype), grid_thw=grid.to(weight.device)
        )
        return out.pooler_output if hasattr(out, "pooler_output") else out

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        rows: torch.Tensor,
        grid: torch.Tensor,
    ) -> torch.Tensor:
        """Scores ``[n, 3]`` (VQ, MQ, TA) for ``n`` tokenised prompts and their videos."""
        device = self.rm_head.weight.device
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        embeds = self.language_model.embed_tokens(input_ids)
        video = self.embed_video(rows, grid)
        is_video = input_ids == self.video_token_id
        if int(is_video.sum()) != video.shape[0]:
            raise ValueError(
                f"the prompts hold {int(is_video.sum())} video tokens, the videos make {video.shape[0]}"
            )
        embeds = embeds.masked_scatter(
            is_video[..., None].expand_as(embeds), video.to(embeds.dtype)
        )
        n, length = input_ids.shape
        positions = torch.arange(length, device=device).view(1, 1, length).expand(3, n, length)
        hidden = self.language_model(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=False,
        ).last_hidden_state
        is_reward = torch.zeros_like(input_ids, dtype=torch.bool)
        for token in self.reward_token_ids:
            is_reward |= input_ids == token
        if not bool((is_reward.sum(dim=1) == len(self.reward_token_ids)).all()):
            raise ValueError(
                f"every prompt must hold each reward token once, got counts {is_reward.sum(dim=1).tolist()}"
            )
        values = self.rm_head(hidden[is_reward]).view(n, len(self.reward_token_ids), -1)
        if values.shape[-1] > 1:
            values = values.diagonal(dim1=1, dim2=2)
        return values.reshape(n, -1).float()


def patch_spec(base: Path, vision_config) -> PatchSpec:
    """Patch geometry from the vision config, normalisation from ``preprocessor_config.json``."""
    mean, std = None, None
    path = base / "preprocessor_config.json"
    if path.is_file():
        raw = json.loads(path.read_text(encoding="utf-8"))
        mean, std = raw.get("image_mean"), raw.get("image_std")
    spec = PatchSpec(
        patch_size=vision_config.patch_size,
        temporal_patch_size=vision_config.temporal_patch_size,
        merge_size=vision_config.spatial_merge_size,
    )
    if mean is not None and std is not None:
        spec = PatchSpec(
            spec.patch_size, spec.temporal_patch_size, spec.merge_size, tuple(mean), tuple(std)
        )
    return spec


def load_backbone(base: Path, dtype: torch.dtype, device: torch.device | str):
    """The base Qwen2-VL's vision tower, language model and config, from a local folder."""
    config_path = base / "config.json"
    if not config_path.is_file():
        raise VideoRewardCheckpointError(
            f"base model {base} has no config.json (not a model folder)"
        )
    model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
    if model_type != "qwen2_vl":
        raise VideoRewardCheckpointError(
            f"base model {base} is a {model_type!r} model, not qwen2_vl"
        )
    import transformers
    from packaging.version import Version
    from transformers import Qwen2VLForConditionalGeneration

    # ``dtype`` since transformers 4.56, ``torch_dtype`` before
    keyword = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
    try:
        full = Qwen2VLForConditionalGeneration.from_pretrained(
            str(base), attn_implementation="sdpa", **{keyword: dtype}
        )
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise VideoRewardCheckpointError(f"cannot load the base model {base}: {reason}") from None
    inner = full.model
    visual = (
        inner.visual if hasattr(inner, "visual") else full.visual
    )  # transformers >= 4.52 : older
    language_model = getattr(inner, "language_model", inner)
    visual.to(device).eval()
    language_model.to(device).eval()
    return visual, language_model, full.config


def lora_targets(language_model: nn.Module, config: VideoRewardConfig) -> list[str]:
    """Module names (relative to the language model) that carry LoRA adapters.

    The reference picks every ``nn.Linear`` / ``nn.Embedding`` of the whole model whose
    release-layout name contains none of ``lora_namespan_exclude`` (the token embedding,
    ``lm_head``, ``rm_head`` and the vision tower are excluded), or the names the config
    lists.
    """
    if config.lora_targets is not None:
        return [t.removeprefix("model.") for t in config.lora_targets]
    found = []
    for name, module in language_model.named_modules():
        release = f"model.{name}"
        if isinstance(module, nn.Linear | nn.Embedding) and not any(
            x in release for x in config.lora_exclude
        ):
            found.append(name)
    return found


def add_lora(language_model: nn.Module, config: VideoRewardConfig) -> nn.Module:
    """Inject the LoRA adapters with peft (weights loaded later); no-op without LoRA.

    Dropout is the config's; it acts only in training mode (scoring runs in eval mode).
    """
    if config.lora_rank == 0:
        return language_model
    from peft import LoraConfig, inject_adapter_in_model

    targets = lora_targets(language_model, config)
    if not targets:
        raise VideoRewardCheckpointError(
            "the LoRA settings of model_config.json select no module of the base model"
        )
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        use_rslora=config.use_rslora,
        target_modules=targets,
        bias="none",
    )
    return inject_adapter_in_model(lora, language_model)
