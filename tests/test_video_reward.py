"""VideoReward on a tiny random checkpoint in the released layout: parity, batching, errors.

The reference computation below is written from the published architecture and the
reference pipeline (VideoAlign's vision_process + the slow Qwen2-VL image processor +
``Qwen2VLRewardModelBT`` under peft), step by step with numpy, PIL, transformers and peft,
without calling searchkit's preprocessing, name mapping or network.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn
from video_reward_fixture import build_base, build_video_reward

from searchkit.rewards.video_reward.config import VideoRewardCheckpointError
from searchkit.rewards.video_reward.frames import sample_count, sample_indices, smart_resize
from searchkit.rewards.video_reward.reward import VideoReward

REWARD_TOKENS = ["<|VQ_reward|>", "<|MQ_reward|>", "<|TA_reward|>"]
PROMPTS = ["a cat", "a small boat on a lake at sunset, seen from a drone"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("video-reward")
    base = build_base(root / "base")
    return base, build_video_reward(root / "VideoReward", base)


@pytest.fixture(scope="module")
def reward(folders):
    return VideoReward.from_pretrained(folders[1], device="cpu", dtype="float32", max_batch=4)


def _frames(n: int, f: int = 9, h: int = 16, w: int = 24, seed: int = 0) -> torch.Tensor:
    """Decoded frames in [-1, 1], as Wan's VAE hands them to the reference.

    Multiples of 2^-15, so that ``(v + 1) / 2`` (what a searchkit backend hands over) and
    its inverse are exact: the two pipelines then see the same numbers.
    """
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2**16 + 1, (n, f, h, w, 3), generator=g).float() / 2**15 - 1


# -- the reference, from the architecture --------------------------------------------
def _ref_patches(video: torch.Tensor, max_pixels: int) -> tuple[np.ndarray, list[int]]:
    total, height, width = video.shape[:3]
    # 16 fps video sampled at 2 fps: clip to [4, even floor of total], round to even
    n = total / 16 * 2.0
    n = min(max(n, 4), math.floor(min(768, total) / 2) * 2)
    n = min(round(n / 2) * 2, total)
    idx = torch.linspace(0, total - 1, n).round().long()
    x = video[idx].permute(0, 3, 1, 2)  # T, C, H, W in [-1, 1]
    # smart resize: multiples of 28, area within [128 * 28 * 28, max_pixels]
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
    x = ((x + 1) / 2).clamp(0, 1)
    mean = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
    std = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
    frames = []
    for (
        frame
    ) in x.numpy():  # the image processor: a PIL round trip (to uint8 by truncation), then CLIP
        as_uint8 = (
            (frame.transpose(1, 2, 0).astype(np.float64) * 255).astype(np.float32).astype(np.uint8)
        )
        back = np.array(Image.fromarray(as_uint8).resize((w_bar, h_bar), Image.BICUBIC))
        back = (back.astype(np.float64) * (1 / 255)).astype(np.float32)
        frames.append(((back - mean) / std).transpose(2, 0, 1))
    patches = np.stack(frames)
    if patches.shape[0] % 2:
        patches = np.concatenate([patches, patches[-1:]])
    gt, gh, gw = patches.shape[0] // 2, h_bar // 14, w_bar // 14
    patches = patches.reshape(gt, 2, 3, gh // 2, 2, 14, gw // 2, 2, 14).transpose(
        0, 3, 6, 4, 7, 2, 1, 5, 8
    )
    return patches.reshape(gt * gh * gw, 3 * 2 * 14 * 14), [gt, gh, gw]


def _ref_model(base, folder):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, Qwen2VLForConditionalGeneration

    config = json.loads((folder / "model_config.json").read_text())
    tok = AutoTokenizer.from_pretrained(str(base))
    tok.add_special_tokens({"additional_special_tokens": REWARD_TOKENS})
    model = Qwen2VLForConditionalGeneration.from_pretrained(str(base), dtype=torch.float32)
    model.resize_token_embeddings(len(tok))
    lora = config["peft_lora_config"]
    targets = [
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear | nn.Embedding)
        and not any(x in name for x in lora["lora_namespan_exclude"])
    ]
    model = get_peft_model(
        model,
        LoraConfig(
            target_modules=targets,
            r=lora["lora_r"],
            lora_alpha=lora["lora_alpha"],
            lora_dropout=lora["lora_dropout"],
            bias="none",
        ),
    )
    ckpt = sorted(folder.glob("checkpoint-*"))[-1]
    trained = {
        **torch.load(ckpt / "non_lora_state_dict.pth", weights_only=True),
        **load_file(str(ckpt / "adapter_model.safetensors")),
    }
    rm_head = trained.pop("base_model.model.rm_head.weight")
    state = model.state_dict()
    for name, tensor in trained.items():  # the release layout, renamed for current transformers
        name = name.replace("base_model.model.visual.", "base_model.model.model.visual.")
        if name.startswith("base_model.model.model.") and ".visual." not in name:
            name = name.replace("base_model.model.model.", "base_model.model.model.language_model.")
        name = name.replace(".lora_A.weight", ".lora_A.default.weight").replace(
            ".lora_B.weight", ".lora_B.default.weight"
        )
        assert name in state, name
        state[name] = tensor
    model.load_state_dict(state)
    return model.eval(), tok, rm_head, config


@torch.no_grad()
def _reference_scores(base, folder, videos: torch.Tensor, prompts: list[str]) -> torch.Tensor:
    from searchkit.rewards.video_reward.prompt import RUBRIC

    model, tok, rm_head, config = _ref_model(base, folder)
    inner = model.base_model.model.model
    rows, grids = zip(
        *(_ref_patches(v, config["data_config"]["max_frame_pixels"]) for v in videos), strict=True
    )
    texts = []
    for prompt, (gt, gh, gw) in zip(prompts, grids, strict=True):
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "video", "video": "in memory"},
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
    vision = inner.visual(
        torch.from_numpy(np.concatenate(rows)), grid_thw=torch.tensor(grids)
    ).pooler_output
    is_video = (ids == model.config.video_token_id)[..., None].expand_as(embeds)
    embeds = embeds.masked_scatter(is_video, vision)
    hidden = inner.language_model(
        inputs_embeds=embeds, attention_mask=batch["attention_mask"]
    ).last_hidden_state
    special = torch.isin(ids, torch.tensor(tok.convert_tokens_to_ids(REWARD_TOKENS)))
    return (hidden[special] @ rm_head.T).view(len(prompts), 3)


# -- parity, batching, normalisation -----------------------------------------------------
def test_scores_match_the_reference_computation(folders, reward) -> None:
    videos = _frames(2)
    ref = _reference_scores(*folders, videos, PROMPTS)
    ours = reward.score_frames(((videos + 1) / 2).clamp(0, 1), PROMPTS, normalize=False)
    assert ref.abs().min() > 1e-2  # the scores are not trivially zero
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))


def test_a_batch_scores_as_its_members_one_by_one(folders, reward) -> None:
    videos = ((_frames(3, seed=4) + 1) / 2).clamp(0, 1)
    prompts = [PROMPTS[1], PROMPTS[0], "x"]
    together = reward.score_frames(videos, prompts)
    alone = torch.cat(
        [reward.score_frames(videos[i : i + 1], prompts[i : i + 1]) for i in range(3)]
    )
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(
        together[0], together[1]
    )  # different videos and prompts, different scores


def test_normalisation_uses_the_inference_statistics(reward) -> None:
    videos = ((_frames(2, seed=5) + 1) / 2).clamp(0, 1)
    raw = reward.score_frames(videos, PROMPTS, normalize=False)
    normalised = reward.score_frames(videos, PROMPTS)
    expected = (raw - torch.tensor([0.25, -0.5, 1.0])) / torch.tensor([2.0, 0.5, 4.0])
    torch.testing.assert_close(normalised, expected)


def test_frame_sampling_and_resizing_follow_the_reference_rules() -> None:
    assert sample_count(33, fps=2.0) == 4 and sample_indices(33, 4).tolist() == [0, 11, 21, 32]
    assert sample_count(81, fps=2.0) == 10
    assert (
        sample_count(9, nframes=9) == 8 and sample_count(21, nframes=21) == 20
    )  # round half to even
    assert smart_resize(480, 832, max_pixels=200704) == (336, 588)
    assert smart_resize(16, 16, max_pixels=200704) == (336, 336)
    with pytest.raises(ValueError, match="at least 2 frames"):
        sample_count(1, fps=2.0)


def test_quantisation_changes_the_scores(reward, monkeypatch) -> None:
    from searchkit.rewards.video_reward import frames as frames_module

    videos = ((_frames(1, seed=6) + 1) / 2).clamp(0, 1)
    with_q = reward.score_frames(videos, PROMPTS[:1], normalize=False)
    monkeypatch.setattr(frames_module, "quantize_8bit", lambda x: x)
    without = reward.score_frames(videos, PROMPTS[:1], normalize=False)
    assert not torch.allclose(with_q, without, rtol=1e-5, atol=1e-5)


# -- bad input ---------------------------------------------------------------------------
def test_a_folder_without_model_config_is_refused(tmp_path) -> None:
    with pytest.raises(VideoRewardCheckpointError, match=r"model_config\.json"):
        VideoReward.from_pretrained(tmp_path, device="cpu")


def test_a_missing_base_model_is_named(folders, tmp_path) -> None:
    folder = build_video_reward(tmp_path / "vr", folders[0])
    config = json.loads((folder / "model_config.json").read_text())
    config["model_config"]["model_name_or_path"] = str(tmp_path / "no-such-model")
    (folder / "model_config.json").write_text(json.dumps(config))
    with pytest.raises(
        VideoRewardCheckpointError, match="base model .*no-such-model.* is not a folder"
    ):
        VideoReward.from_pretrained(folder, device="cpu")
    # base_model= overrides the config's name
    assert (
        VideoReward.from_pretrained(folder, folders[0], device="cpu", dtype="float32").loaded.folder
        == folder
    )


def test_an_unreachable_hub_id_says_what_to_download(monkeypatch) -> None:
    import huggingface_hub

    def offline(**_kwargs):
        raise OSError("the hub cannot be reached")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(
        VideoRewardCheckpointError,
        match=r"`hf download KwaiVGI/VideoReward --local-dir "
        r"checkpoints/VideoReward` and pass path=checkpoints/VideoReward",
    ):
        VideoReward.from_pretrained("KwaiVGI/VideoReward", device="cpu")


def _edit_adapters(folder, edit) -> None:
    path = sorted(folder.glob("checkpoint-*"))[-1] / "adapter_model.safetensors"
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.pop("base_model.model.model.layers.1.mlp.up_proj.lora_B.weight"),
            "lacks 1 tensors",
        ),
        (
            lambda t: t.update(
                {"base_model.model.model.layers.0.mlp.up_proj.lora_A.weight": torch.zeros(3, 32)}
            ),
            r"adapter_model\.safetensors: tensor .*up_proj\.lora_A\.weight' has shape \[3, 32\]",
        ),
        (
            lambda t: t.update({"base_model.model.projector.weight": torch.zeros(2)}),
            r"adapter_model\.safetensors: tensor 'base_model\.model\.projector\.weight' does not belong",
        ),
    ],
)
def test_tensors_that_do_not_fit_are_named(folders, tmp_path, edit, message) -> None:
    folder = tmp_path / "vr"
    shutil.copytree(folders[1], folder)
    _edit_adapters(folder, edit)
    with pytest.raises(VideoRewardCheckpointError, match=message):
        VideoReward.from_pretrained(folder, device="cpu")


def test_frames_of_wrong_shape_or_range_are_refused(reward) -> None:
    good = torch.rand(1, 4, 16, 16, 3)
    with pytest.raises(
        ValueError, match=r"frames must be frames \[n, F, H, W, 3\], got shape \[1, 4, 16, 16\]"
    ):
        reward.score_frames(good[..., 0], ["p"])
    with pytest.raises(ValueError, match=r"frames must lie in \[0, 1\]"):
        reward.score_frames(good * 2 - 1, ["p"])
    with pytest.raises(ValueError, match="one prompt per video"):
        reward.score_frames(good, ["p", "q"])
