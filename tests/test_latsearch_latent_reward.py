"""The LatSearch latent reward model on a tiny random checkpoint in the official format.

The reference computation follows the paper's model step by step (the VideoReward network
under peft, its patch embedding swapped for a 16-channel Conv3d, the step embedding added
to the processed patch rows), using the reference model of ``test_video_reward``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_video_reward import PROMPTS, REWARD_TOKENS, _ref_model
from torch import nn
from video_reward_fixture import build_base, build_latent_checkpoint, build_video_reward

from searchkit.reward import RewardBatch
from searchkit.rewards.video_reward.config import VideoRewardCheckpointError
from searchkit.rewards.video_reward.latent import LatSearchLatentReward


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("latsearch")
    base = build_base(root / "base")
    backbone = build_video_reward(root / "VideoReward", base)
    return base, backbone, build_latent_checkpoint(root / "latent_reward.pt", backbone)


@pytest.fixture(scope="module")
def reward(folders):
    return LatSearchLatentReward.from_pretrained(
        folders[1], folders[2], device="cpu", dtype="float32"
    )


def _latents(n: int, f: int = 9, h: int = 6, w: int = 10, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 16, f, h, w, generator=torch.Generator().manual_seed(seed))


def _ref_rows(latent: torch.Tensor, max_pixels: int) -> tuple[np.ndarray, list[int]]:
    x = latent.permute(1, 0, 2, 3)  # [F, 16, H, W]
    total, _, height, width = x.shape
    n = min(round(total / 2) * 2, total)  # nframes = the latent frame count, rounded to even
    x = x[torch.linspace(0, total - 1, n).round().long()]
    h_bar, w_bar = max(28, round(height / 28) * 28), max(28, round(width / 28) * 28)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar, w_bar = math.floor(height / beta / 28) * 28, math.floor(width / beta / 28) * 28
    elif h_bar * w_bar < 128 * 28 * 28:
        beta = math.sqrt(128 * 28 * 28 / (height * width))
        h_bar, w_bar = math.ceil(height * beta / 28) * 28, math.ceil(width * beta / 28) * 28
    x = torch.nn.functional.interpolate(
        x, size=(h_bar, w_bar), mode="bicubic", align_corners=False, antialias=True
    )
    patches = x.to(torch.bfloat16).float().numpy()
    gt, gh, gw = n // 2, h_bar // 14, w_bar // 14
    patches = patches.reshape(gt, 2, 16, gh // 2, 2, 14, gw // 2, 2, 14).transpose(
        0, 3, 6, 4, 7, 2, 1, 5, 8
    )
    return patches.reshape(gt * gh * gw, 16 * 2 * 14 * 14), [gt, gh, gw]


@torch.no_grad()
def _reference(base, backbone, checkpoint, latents, prompts, labels) -> torch.Tensor:
    from searchkit.rewards.video_reward.prompt import RUBRIC

    model, tok, rm_head, config = _ref_model(base, backbone)
    inner = model.base_model.model.model
    old = inner.visual.patch_embed.proj
    inner.visual.patch_embed.proj = nn.Conv3d(
        16, old.out_channels, kernel_size=old.kernel_size, stride=old.stride, bias=False
    )
    inner.visual.patch_embed.in_channels = 16
    state = torch.load(checkpoint, weights_only=True)
    step_table = state.pop("step_embedding.weight")
    visual_state = {k.removeprefix("model.base_model.model.visual."): v for k, v in state.items()}
    inner.visual.load_state_dict(visual_state)
    rows, grids = zip(
        *(_ref_rows(x, config["data_config"]["max_frame_pixels"]) for x in latents), strict=True
    )
    step_patches = [
        np.repeat(step_table[label].numpy(), 2 * 14 * 14)[None].repeat(r.shape[0], 0)
        for label, r in zip(labels, rows, strict=True)
    ]
    pixel = torch.from_numpy(np.concatenate(rows) + np.concatenate(step_patches))
    texts = []
    for prompt, (gt, gh, gw) in zip(prompts, grids, strict=True):
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "video", "video": "latent"},
                    {"type": "text", "text": RUBRIC.format(text_prompt=prompt)},
                ],
            }
        ]
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        texts.append(text.replace("<|video_pad|>", "<|video_pad|>" * (gt * gh * gw // 4)))
    tok.padding_side = "right"
    batch = tok(texts, padding=True, return_tensors="pt")
    ids = batch["input_ids"]
    embeds = inner.language_model.embed_tokens(ids)
    vision = inner.visual(pixel, grid_thw=torch.tensor(grids)).pooler_output
    embeds = embeds.masked_scatter(
        (ids == model.config.video_token_id)[..., None].expand_as(embeds), vision
    )
    hidden = inner.language_model(
        inputs_embeds=embeds, attention_mask=batch["attention_mask"]
    ).last_hidden_state
    special = torch.isin(ids, torch.tensor(tok.convert_tokens_to_ids(REWARD_TOKENS)))
    return (hidden[special] @ rm_head.T).view(len(prompts), 3)


def test_scores_match_the_reference_computation(folders, reward) -> None:
    latents = _latents(2)
    ref = _reference(*folders, latents, PROMPTS, [200, 400])
    ours = reward.score_latents(
        latents, PROMPTS, [11, 21]
    )  # after steps 10 and 20: labels 200, 400
    assert ref.abs().min() > 1e-2
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))


def test_the_step_label_changes_the_score_and_batches_match(reward) -> None:
    latents = _latents(3, seed=1)
    prompts = [PROMPTS[0], PROMPTS[1], PROMPTS[0]]
    together = reward.score_latents(latents, prompts, 16)
    alone = torch.cat(
        [reward.score_latents(latents[i : i + 1], prompts[i : i + 1], 16) for i in range(3)]
    )
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(
        reward.score_latents(latents[:1], prompts[:1], 11), together[:1], atol=1e-3
    )


def test_score_reads_the_batch_step_as_20_j(reward) -> None:
    from searchkit.backend import Conditioning

    latents = _latents(1, seed=2)
    batch = RewardBatch(
        data=latents,
        sigma=torch.ones(1),
        conditioning=Conditioning(prompt=PROMPTS[0], data=None),
        step=26,
    )
    torch.testing.assert_close(reward(batch), reward.score_latents(latents, PROMPTS[:1], 26))
    assert reward.step_label(26) == 500


def test_unknown_steps_are_refused_before_the_search(reward) -> None:
    reward.check_steps((10, 15, 20, 25, 30), 50)
    with pytest.raises(
        ValueError,
        match=r"knows step labels \[200, 300, 400, 500, 600\].*after step 5 needs label 100",
    ):
        reward.check_steps((5, 10, 15), 50)
    with pytest.raises(ValueError, match="after step 12"):
        reward.score_latents(_latents(1), PROMPTS[:1], 13)


def test_bad_latents_and_checkpoints_are_named(folders, reward, tmp_path) -> None:
    with pytest.raises(
        ValueError, match=r"latents must be \[n, 16, F, H, W\], got \[1, 4, 9, 6, 10\]"
    ):
        reward.score_latents(torch.zeros(1, 4, 9, 6, 10), PROMPTS[:1], 11)
    state = torch.load(folders[2], weights_only=True)
    del state["step_embedding.weight"]
    torch.save(state, tmp_path / "no_steps.pt")
    with pytest.raises(
        VideoRewardCheckpointError,
        match=r"no_steps\.pt lacks 1 tensors the model needs: step_embedding",
    ):
        LatSearchLatentReward.from_pretrained(folders[1], tmp_path / "no_steps.pt", device="cpu")
    four = build_latent_checkpoint(tmp_path / "four.pt", folders[1], channels=4)
    four_channel = LatSearchLatentReward.from_pretrained(folders[1], four, device="cpu")
    assert four_channel.channels == 4
    with pytest.raises(VideoRewardCheckpointError, match="does not exist"):
        LatSearchLatentReward.from_pretrained(folders[1], tmp_path / "missing.pt", device="cpu")
