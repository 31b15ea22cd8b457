"""Training the LatSearch latent reward model on a tiny backbone and a dataset in the paper's schema."""

from __future__ import annotations

import json

import pytest
import torch
from video_reward_fixture import build_base, build_video_reward

from searchkit.rewards.video_reward.latent import LatSearchLatentReward
from searchkit.rewards.video_reward.train import (
    CHECKPOINT_NAME,
    LatSearchTrainConfig,
    initial_model,
    mean_loss,
    read_samples,
    split_by_prompt,
    train_latsearch,
)

PROMPTS = ["a cat", "a dog on a boat", "a red fox in snow", "two birds", "a lighthouse at night"]


def _dataset(root, seed: int = 0):
    """Five prompts, latents after steps 10 and 15, teacher scores and similarities (paper schema)."""
    g = torch.Generator().manual_seed(seed)
    (root / "metadata").mkdir(parents=True)
    records = []
    for i, prompt in enumerate(PROMPTS):
        paths, sims = {}, {}
        for j in (10, 15):
            path = root / "seed_200" / f"{i:04d}" / f"latent_step_t{j}_tensor.pt"
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(torch.randn(16, 3, 4, 6, generator=g), path)
            paths[f"t{j}"] = f"../seed_200/{i:04d}/{path.name}"
            sims[f"t{j}"] = 0.5 + j / 40
        scores = (torch.randn(3, generator=g) * 2).tolist()
        records.append(
            {
                "prompt": prompt,
                "video_path": None,
                "output_reward": [dict(zip(("VQ", "MQ", "TA"), scores, strict=True))],
                "latent_tensor_path": [paths],
                "latent_z0_similarity": [sims],
            }
        )
    (root / "metadata" / "all_latent_metadata_seed_200.json").write_text(json.dumps(records))
    return root


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("latsearch-train")
    base = build_base(root / "base")
    return build_video_reward(root / "VideoReward", base), _dataset(root / "data")


def test_training_lowers_the_loss_and_the_checkpoint_round_trips(setup, tmp_path) -> None:
    backbone, data = setup
    samples = read_samples(data)
    assert len(samples) == 5 and sorted(samples[0].latents) == [10, 15]
    train, val = split_by_prompt(samples, 0.8, seed=1203)
    assert (
        len(train) == 4
        and len(val) == 1
        and {s.prompt for s in train}.isdisjoint({s.prompt for s in val})
    )
    reward = initial_model(
        backbone,
        labels=(200, 300),
        device="cpu",
        dtype="float32",
        generator=torch.Generator().manual_seed(0),
    )
    config = LatSearchTrainConfig(epochs=4, batch_size=4, lr=3e-3, milestones=(100,))
    before = mean_loss(reward, train, config)
    history = train_latsearch(reward, samples, tmp_path / "out", config)
    after = mean_loss(reward, train, config)
    assert len(history) == 4 and after < 0.8 * before, (before, after, history)
    # the file is in the official format and loads as the paper's checkpoint does
    state = torch.load(tmp_path / "out" / CHECKPOINT_NAME, weights_only=True)
    assert (
        "step_embedding.weight" in state
        and "model.base_model.model.visual.patch_embed.proj.weight" in state
    )
    loaded = LatSearchLatentReward.from_pretrained(
        backbone,
        tmp_path / "out" / CHECKPOINT_NAME,
        device="cpu",
        dtype="float32",
        step_labels=(200, 300),
    )
    latents = torch.load(samples[0].latents[10], weights_only=True)[None]
    torch.testing.assert_close(
        loaded.score_latents(latents, [samples[0].prompt], 11),
        reward.score_latents(latents, [samples[0].prompt], 11),
    )


def test_the_cli_trains_the_latsearch_architecture(setup, tmp_path) -> None:
    from searchkit.cli import main

    backbone, data = setup
    code = main(
        [
            "reward",
            "train",
            "--arch",
            "latsearch",
            "--backbone-path",
            str(backbone),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "cli"),
            "--epochs",
            "1",
            "--batch-size",
            "2",
        ]
    )
    assert code == 0 and (tmp_path / "cli" / CHECKPOINT_NAME).is_file()
    assert json.loads((tmp_path / "cli" / "history.json").read_text())[0]["epoch"] == 1
