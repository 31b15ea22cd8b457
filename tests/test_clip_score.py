"""CLIPScore on a tiny random CLIP built offline: loading, parity with a reference computed
here from transformers' CLIPModel, batching, frame sampling, bad input, and searches.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tokenizers.pre_tokenizers import ByteLevel
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from searchkit import BestOfN
from searchkit.backend import Conditioning
from searchkit.builders import build_reward
from searchkit.errors import CheckpointError
from searchkit.reward import RewardBatch
from searchkit.rewards.clip_checkpoint import CLIP_MEAN, CLIP_STD, CLIPPreprocessing
from searchkit.rewards.clip_score import CLIPScore, CLIPScoreOptions

PROMPT = "a red fox running through fresh snow"
IMAGE_SIZE = 32
# Written to the checkpoint's preprocessor_config.json, away from CLIP's defaults, so that a
# loader ignoring the file would fail the parity test.
MEAN = (0.45, 0.5, 0.55)
STD = (0.2, 0.25, 0.3)


def write_tiny_clip(folder: Path, *, preprocessor: bool = True) -> Path:
    """A random CLIP (2-layer towers of width 32, 8x8 patches on 32x32 images) and a byte-level
    BPE tokenizer with no merges (every byte is a token), saved with ``save_pretrained``."""
    vocab_dir = folder.parent / f"{folder.name}-vocab"
    vocab_dir.mkdir(parents=True)
    alphabet = sorted(ByteLevel.alphabet())
    tokens = [*alphabet, *(c + "</w>" for c in alphabet), "<|startoftext|>", "<|endoftext|>"]
    (vocab_dir / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (vocab_dir / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer.from_pretrained(vocab_dir)
    tower = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(tokens),
            max_position_embeddings=77,
            bos_token_id=len(tokens) - 2,
            eos_token_id=len(tokens) - 1,
            pad_token_id=len(tokens) - 1,
            **tower,
        ),
        vision_config=dict(image_size=IMAGE_SIZE, patch_size=8, **tower),
        projection_dim=16,
    )
    model = CLIPModel(config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            offset = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            param.copy_(offset + 0.1 * torch.randn(param.shape, generator=generator))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if preprocessor:
        (folder / "preprocessor_config.json").write_text(
            json.dumps(
                {
                    "size": {"shortest_edge": IMAGE_SIZE},
                    "crop_size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                    "do_center_crop": True,
                    "image_mean": list(MEAN),
                    "image_std": list(STD),
                    "resample": 3,
                }
            )
        )
    return folder


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory) -> Path:
    return write_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


@pytest.fixture(scope="module")
def reward(clip_folder) -> CLIPScore:
    return CLIPScore.from_pretrained(clip_folder)


def random_video(n: int, frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, frames, height, width, 3, generator=torch.Generator().manual_seed(seed))


def batch_of(video: torch.Tensor, prompt: str = PROMPT) -> RewardBatch:
    return RewardBatch(
        data=video,
        sigma=torch.zeros(video.shape[0]),
        conditioning=Conditioning(prompt, None),
        step=0,
    )


def reference_scores(folder: Path, video: torch.Tensor, prompt: str) -> torch.Tensor:
    """The documented CLIP score, step by step from CLIPModel's feature methods."""
    model = CLIPModel.from_pretrained(folder).eval()
    tokenizer = CLIPTokenizer.from_pretrained(folder)
    n, frames, height, width, _ = video.shape
    x = video.reshape(n * frames, height, width, 3).permute(0, 3, 1, 2)
    short, long = min(height, width), max(height, width)
    longer = int(IMAGE_SIZE * long / short)
    size = (IMAGE_SIZE, longer) if height <= width else (longer, IMAGE_SIZE)
    x = F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    top, left = (size[0] - IMAGE_SIZE) // 2, (size[1] - IMAGE_SIZE) // 2
    x = x[:, :, top : top + IMAGE_SIZE, left : left + IMAGE_SIZE]
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        image = model.get_image_features(pixel_values=x)
        text = model.get_text_features(**tokenizer([prompt], return_tensors="pt"))
    image = image if isinstance(image, torch.Tensor) else image.pooler_output
    text = text if isinstance(text, torch.Tensor) else text.pooler_output
    cosine = F.cosine_similarity(image, text, dim=-1).view(n, frames)
    return 100.0 * cosine.mean(dim=1, keepdim=True)


# -- loading ---------------------------------------------------------------------------------
def test_import_searchkit_does_not_import_transformers_clip() -> None:
    code = (
        "import sys, searchkit; searchkit.get_reward('clip-score'); "
        "print([m for m in sys.modules if m.startswith('transformers.models.clip')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_builds_by_name_with_options(clip_folder, analytic) -> None:
    reward = build_reward(
        "clip-score", analytic, path=str(clip_folder), num_frames=3, max_batch=5, dtype="bfloat16"
    )
    assert isinstance(reward, CLIPScore)
    assert reward.options == CLIPScoreOptions(num_frames=3, max_batch=5, clamp_at_zero=False)
    assert reward.dimensions == ("CLIP",) and reward.input == "video"
    assert reward.dtype == torch.bfloat16 and reward.device == analytic.device
    assert reward.preprocessing == CLIPPreprocessing(
        IMAGE_SIZE, (IMAGE_SIZE, IMAGE_SIZE), MEAN, STD
    )
    assert reward.config_dict()["num_frames"] == 3


def test_defaults_without_a_preprocessor_config(tmp_path) -> None:
    folder = write_tiny_clip(tmp_path / "clip", preprocessor=False)
    assert CLIPPreprocessing.from_folder(folder, IMAGE_SIZE) == CLIPPreprocessing(
        IMAGE_SIZE, (IMAGE_SIZE, IMAGE_SIZE), CLIP_MEAN, CLIP_STD
    )


# -- what it computes ------------------------------------------------------------------------
@pytest.mark.parametrize("height, width", [(20, 27), (27, 20), (40, 40)])
def test_parity_with_clip_model_features(clip_folder, reward, height, width) -> None:
    video = random_video(3, 4, height, width)
    expected = reference_scores(clip_folder, video, PROMPT)
    scores = reward(batch_of(video))
    assert scores.shape == (3, 1) and scores.dtype == torch.float32
    # float32 throughout, same operations in another order: agreement to float rounding.
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-4)
    assert scores.std() > 0.01  # the videos are told apart


@pytest.mark.parametrize("height, width", [(45, 70), (70, 45)])
def test_preprocessing_matches_transformers_image_processor(reward, height, width) -> None:
    try:  # transformers >= 5 names the PIL processor apart; before, it is CLIPImageProcessor
        from transformers.models.clip.image_processing_pil_clip import (
            CLIPImageProcessorPil as Processor,
        )
    except ImportError:
        from transformers import CLIPImageProcessor as Processor
    processor = Processor(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=list(MEAN),
        image_std=list(STD),
    )
    # Image-like frames (random colours on a 4-pixel grid, interpolated), in 8 bits as PIL
    # sees them; a crop one pixel off moves these by tens of levels.
    grid = torch.rand(
        3, 3, height // 4 + 1, width // 4 + 1, generator=torch.Generator().manual_seed(4)
    )
    frames = (
        F.interpolate(grid, size=(height, width), mode="bilinear").permute(0, 2, 3, 1) * 255
    ).round()
    expected = processor(images=list(frames.to(torch.uint8).numpy()), return_tensors="pt")[
        "pixel_values"
    ]
    ours = reward.preprocessing(frames / 255)
    # PIL resizes in two passes, rounding to 8 bits after each (half a level each; the first
    # one passes through the second filter, whose absolute weights sum to less than 2): at
    # most 1.5 levels apart, i.e. 1.5 / 255 / std in normalised units.
    tolerance = (1.5 / 255) / torch.tensor(STD).view(1, 3, 1, 1)
    assert ours.shape == expected.shape == (3, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert ((ours - expected).abs() <= tolerance).all()


def test_batching_equals_one_by_one(reward) -> None:
    video = random_video(3, 5, 24, 30, seed=1)
    batched = CLIPScore(
        reward.model, reward.tokenizer, reward.preprocessing, CLIPScoreOptions(max_batch=4)
    )
    single = CLIPScore(
        reward.model, reward.tokenizer, reward.preprocessing, CLIPScoreOptions(max_batch=1)
    )
    together = batched(batch_of(video))  # chunks of 4 frames straddle videos
    alone = torch.cat([single(batch_of(video[i : i + 1])) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-4)


def test_frame_sampling(reward) -> None:
    def indices(k: int | None, frames: int) -> list[int]:
        sampler = CLIPScore(
            reward.model, reward.tokenizer, reward.preprocessing, CLIPScoreOptions(num_frames=k)
        )
        return sampler.frame_indices(frames).tolist()

    assert indices(5, 33) == [0, 8, 16, 24, 32]
    assert indices(4, 10) == [0, 3, 6, 9]
    assert indices(3, 8) == [0, 3, 7]  # floor(7 / 2) = 3
    assert indices(1, 9) == [0]
    assert indices(None, 4) == [0, 1, 2, 3] == indices(6, 4)

    video = random_video(2, 7, 20, 20, seed=2)
    sampled = CLIPScore(
        reward.model, reward.tokenizer, reward.preprocessing, CLIPScoreOptions(num_frames=3)
    )
    expected = reward(batch_of(video[:, [0, 3, 6]]))  # every frame of the sampled ones
    torch.testing.assert_close(sampled(batch_of(video)), expected)
    assert not torch.allclose(reward(batch_of(video)), expected, atol=1e-3)


def test_text_cache_follows_the_prompt(reward) -> None:
    video = random_video(2, 2, 20, 20, seed=3)
    first = reward(batch_of(video, "a cat"))
    other = reward(batch_of(video, "an old lighthouse"))
    assert not torch.allclose(first, other, atol=1e-3)
    torch.testing.assert_close(reward(batch_of(video, "a cat")), first)


def test_clamp_at_zero(reward) -> None:
    video = random_video(4, 2, 20, 20, seed=5)
    plain = reward(batch_of(video))
    assert (plain < 0).any()  # the random model gives negative similarities here
    clamped = CLIPScore(
        reward.model, reward.tokenizer, reward.preprocessing, CLIPScoreOptions(clamp_at_zero=True)
    )
    torch.testing.assert_close(clamped(batch_of(video)), plain.clamp(min=0))


# -- bad input: one-line errors naming the file or the field ---------------------------------
def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def _edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **changes}))


def _drop_tensor(folder: Path, name: str) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(folder / "model.safetensors")
    del tensors[name]
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / "config.json").unlink(), r"config\.json: not found"),
        (lambda f: (f / "config.json").write_text("{not json"), r"config\.json: not readable JSON"),
        (
            lambda f: (f / "config.json").write_text('{"model_type": "wan"}'),
            r"config\.json: model_type is 'wan'",
        ),
        (lambda f: (f / "model.safetensors").unlink(), r"no weights \(model\.safetensors"),
        (lambda f: (f / "tokenizer.json").unlink(), r"no tokenizer \(tokenizer\.json"),
        (
            lambda f: _edit_config(f, vision_config={"image_size": "big"}),
            r"config\.json: vision_config\.image_size must be a positive integer, got 'big'",
        ),
        (
            lambda f: _edit_config(f, projection_dim=8),
            r"the weights do not load into the CLIP of config\.json",
        ),
        (
            lambda f: _drop_tensor(f, "visual_projection.weight"),
            r"the weights do not fit config\.json: 1 tensors missing, 0 of another shape \(visual_projection\.weight\)",
        ),
        (
            lambda f: (f / "preprocessor_config.json").write_text('{"size": 24, "crop_size": 24}'),
            r"preprocessor_config\.json: frames must come out 32x32 \(vision_config\.image_size",
        ),
        (
            lambda f: (f / "preprocessor_config.json").write_text('{"crop_size": 48}'),
            r"preprocessor_config\.json: crop_size \(48, 48\) exceeds the resized shorter side 32",
        ),
        (
            lambda f: (f / "preprocessor_config.json").write_text('{"image_std": [0.5, 0.5]}'),
            r"preprocessor_config\.json: image_std must be three numbers",
        ),
    ],
)
def test_bad_checkpoint_folder(tmp_path, damage, message) -> None:
    folder = write_tiny_clip(tmp_path / "clip")
    damage(folder)
    with pytest.raises(CheckpointError, match=message) as error:
        CLIPScore.from_pretrained(folder)
    assert str(folder) in _one_line(error)


def test_missing_path_and_unreachable_hub(tmp_path, monkeypatch) -> None:
    with pytest.raises(
        CheckpointError, match="no such folder, and not a Hugging Face Hub id"
    ) as error:
        CLIPScore.from_pretrained(tmp_path / "missing" / "clip")
    _one_line(error)
    with pytest.raises(CheckpointError, match="is a file"):
        CLIPScore.from_pretrained(write_tiny_clip(tmp_path / "clip") / "config.json")

    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # as without a network
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(
        CheckpointError,
        match=r"hf download openai/clip-vit-large-patch14 --local-dir "
        r"checkpoints/clip-vit-large-patch14",
    ) as error:
        CLIPScore.from_pretrained("openai/clip-vit-large-patch14")
    _one_line(error)


@pytest.mark.parametrize(
    "options, kind, message",
    [
        ({"num_frames": 0}, ValueError, "num_frames must be >= 1"),
        ({"max_batch": True}, TypeError, "max_batch must be an integer"),
        ({"clamp_at_zero": 1}, TypeError, "clamp_at_zero must be true or false"),
        ({"dtype": "float64"}, ValueError, "dtype must be one of float32, float16, bfloat16"),
    ],
)
def test_bad_options_fail_before_loading(tmp_path, options, kind, message) -> None:
    with pytest.raises(kind, match=message):  # the folder does not exist: options are checked first
        CLIPScore.from_pretrained(tmp_path / "never-read", **options)


def test_build_by_name_needs_a_path(analytic) -> None:
    with pytest.raises(ValueError, match="clip-score needs path="):
        build_reward("clip-score", analytic)


@pytest.mark.parametrize(
    "video, message",
    [
        (
            torch.rand(2, 3, 8, 8),
            r"video must be frames \[n, F, H, W, 3\], got shape \[2, 3, 8, 8\]",
        ),
        (torch.rand(2, 3, 8, 8, 4), r"got shape \[2, 3, 8, 8, 4\]"),
        (torch.rand(2, 0, 8, 8, 3), r"got shape \[2, 0, 8, 8, 3\]"),
        (torch.rand(1, 2, 8, 8, 3) * 2 - 1, r"video values must lie in \[0, 1\], got min -"),
        (torch.full((1, 2, 8, 8, 3), math.nan), r"video values must lie in \[0, 1\], got min nan"),
    ],
)
def test_bad_frames(reward, video, message) -> None:
    with pytest.raises(ValueError, match=message) as error:
        reward(batch_of(video))
    _one_line(error)


# -- inside a search -------------------------------------------------------------------------
def _check_search(backend, reward, result, n: int) -> None:
    final = result.trace.scored[-1]
    assert final.scores.shape == (n, 1)
    assert int(final.chosen) == int(final.total.argmax())
    batch = RewardBatch(
        data=result.video[None],
        sigma=torch.zeros(1),
        conditioning=backend.encode(PROMPT),
        step=backend.num_steps,
    )
    torch.testing.assert_close(result.scores, reward(batch)[0], rtol=1e-5, atol=1e-4)
    assert result.dimensions == ("CLIP",) and np.isfinite(result.reward)


def test_best_of_n_on_the_analytic_world(analytic, clip_folder) -> None:
    reward = build_reward("clip-score", analytic, path=str(clip_folder), num_frames=4)
    result = BestOfN(n=3).run(analytic, reward, PROMPT, seed=0)
    _check_search(analytic, reward, result, n=3)
    assert result.cost.particle_steps == 3 * analytic.num_steps


def test_best_of_n_on_tiny_wan(clip_folder) -> None:
    from searchkit.backends import WanBackend

    backend = WanBackend.tiny(num_steps=4, height=16, width=16, num_frames=5)
    reward = build_reward("clip-score", backend, path=str(clip_folder), max_batch=3)
    result = BestOfN(n=2).run(backend, reward, PROMPT, seed=0)
    assert result.video.shape == (5, 16, 16, 3)
    _check_search(backend, reward, result, n=2)


def test_flops_are_counted_on_the_first_call_of_each_shape(clip_folder) -> None:
    # CLIP score declares measure_flops: the first call of a shape and prompt runs under
    # torch's FLOP counter, later ones reuse the count, and the meter charges it per call
    from torch.utils.flop_counter import FlopCounterMode

    from searchkit.backends import WanBackend

    backend = WanBackend.tiny(num_steps=4, height=16, width=16, num_frames=5)
    reward = build_reward("clip-score", backend, path=str(clip_folder), max_batch=3)
    video = random_video(2, 5, 16, 16)
    assert reward.flops(batch_of(video)) is None  # nothing measured yet
    reward(batch_of(video))
    measured = reward.flops(batch_of(video))
    fresh = CLIPScore.from_pretrained(clip_folder, max_batch=3)
    with FlopCounterMode(display=False) as counter:
        fresh.score(batch_of(video))
    assert measured == counter.get_total_flops() > 0
    assert reward.flops(batch_of(random_video(3, 5, 16, 16))) is None  # another shape
    result = BestOfN(n=2).run(backend, reward, PROMPT, seed=0)
    split = result.cost.flops_split
    # best-of-2 scores its two finished outputs in one call: the [2, 5, 16, 16, 3] shape
    assert result.cost.reward_calls == 2
    assert split["reward:clip-score"] == measured
    assert result.cost.flops == pytest.approx(sum(split.values()))
