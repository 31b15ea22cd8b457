"""Training and evaluating the latent reward model; the CLI end to end on the analytic world."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from searchkit.backends import AnalyticBackend
from searchkit.cli import main as cli_main
from searchkit.rewards import AnalyticReward, LatentRewardModel
from searchkit.rewards.latent import (
    CollectConfig,
    TrainConfig,
    collect,
    evaluate,
    pairwise_accuracy,
    pairwise_loss,
    plot_report,
    read_latent_dataset,
    spearman,
    spearman_within,
    split_prompts,
    train,
)

WORLD = {"frames": 3, "height": 4, "width": 4, "num_steps": 12}


@pytest.fixture(scope="module")
def world() -> AnalyticBackend:
    return AnalyticBackend(**WORLD)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory, world):
    folder = tmp_path_factory.mktemp("lrm_data")
    prompts = [f"prompt {i}" for i in range(6)]
    collect(
        world, AnalyticReward(world), prompts, folder, CollectConfig(steps=(4, 9), seeds=(0, 1, 2))
    )
    return read_latent_dataset(folder)


def test_pairwise_accuracy_counts_same_group_pairs_only():
    truth = torch.tensor([1.0, 2.0, 3.0, 0.0, 5.0])
    groups = torch.tensor([0, 0, 0, 1, 1])
    assert pairwise_accuracy(truth, truth, groups) == (1.0, 4)
    assert pairwise_accuracy(-truth, truth, groups) == (0.0, 4)
    # Cross-group order is ignored: flipping group 1 as a whole changes nothing within it.
    scores = torch.tensor([1.0, 2.0, 3.0, 100.0, 101.0])
    assert pairwise_accuracy(scores, truth, groups)[0] == 1.0
    # Score ties count one half; truth ties are not pairs.
    acc, pairs = pairwise_accuracy(torch.zeros(5), truth, groups)
    assert (acc, pairs) == (0.5, 4)
    assert pairwise_accuracy(truth, torch.ones(5), groups)[1] == 0


def test_spearman_within_prompt_ignores_prompt_offsets():
    truth = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    shifted = torch.tensor([11.0, 12.0, 13.0, -3.0, -2.0, -1.0])  # right within, wrong across
    assert spearman_within(shifted, truth, groups) == pytest.approx(1.0)
    assert spearman(shifted, truth) < 0.5
    assert spearman_within(-truth, truth, groups) == pytest.approx(-1.0)


def test_pairwise_loss_prefers_the_right_order():
    rewards = torch.tensor([[1.0], [0.0], [3.0], [2.0]])
    chunk = torch.tensor([0, 0, 1, 1])
    right = pairwise_loss(torch.tensor([[1.0], [-1.0], [1.0], [-1.0]]), rewards, chunk)
    wrong = pairwise_loss(torch.tensor([[-1.0], [1.0], [-1.0], [1.0]]), rewards, chunk)
    assert right < 0.7 < wrong  # log 2 = 0.693 is the no-information loss
    # Pairs across chunks do not count: only in-chunk order matters.
    across = pairwise_loss(torch.tensor([[1.0], [0.0], [-5.0], [-6.0]]), rewards, chunk)
    torch.testing.assert_close(
        across, pairwise_loss(torch.tensor([[1.0], [0.0], [1.0], [0.0]]), rewards, chunk)
    )


def test_prompt_split_is_disjoint_seeded_and_80_20():
    prompts = [f"p{i}" for i in range(20)]
    train_a, val_a = split_prompts(prompts, 0.2, seed=0)
    assert len(val_a) == 4 and len(train_a) == 16 and not set(train_a) & set(val_a)
    assert split_prompts(list(reversed(prompts)), 0.2, seed=0) == (train_a, val_a)
    assert split_prompts(prompts, 0.2, seed=1)[1] != val_a
    with pytest.raises(ValueError, match="at least 2 prompts"):
        split_prompts(["only"], 0.2, seed=0)


def test_train_config_validates():
    with pytest.raises(ValueError, match="val_fraction"):
        TrainConfig(val_fraction=1.0)
    with pytest.raises(ValueError, match="both be 0"):
        TrainConfig(mse_weight=0.0, pairwise_weight=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=1)


def _fresh(world, input="latent"):
    return LatentRewardModel.for_backend(
        world, input=input, width=16, depth=1, generator=torch.Generator().manual_seed(0)
    )


def test_training_checkpoints_keeps_the_best_and_resumes_exactly(tmp_path, world, small_data):
    config = TrainConfig(epochs=3, batch_size=6, group_size=3, lr=3e-3)
    straight = train(
        _fresh(world), small_data, world, tmp_path / "straight", config, progress=False
    )
    staged_dir = tmp_path / "staged"
    train(
        _fresh(world),
        small_data,
        world,
        staged_dir,
        TrainConfig(epochs=2, batch_size=6, group_size=3, lr=3e-3),
        progress=False,
    )
    state = json.loads((staged_dir / "train_state.json").read_text())
    assert state["epochs_done"] == 2 and len(state["history"]) == 2
    resumed = train(_fresh(world), small_data, world, staged_dir, config, progress=False)
    for epoch in (1, 2, 3):
        assert (staged_dir / "checkpoints" / f"epoch_{epoch:03d}" / "model.safetensors").is_file()
    a = LatentRewardModel.from_pretrained(
        tmp_path / "straight" / "checkpoints" / "epoch_003"
    ).net.state_dict()
    b = LatentRewardModel.from_pretrained(staged_dir / "checkpoints" / "epoch_003").net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history == straight.history
    best = max(straight.history, key=lambda h: h["val_pairwise_accuracy"])
    assert straight.best_epoch == best["epoch"]
    assert straight.model.extra["training"]["epoch"] == best["epoch"]
    split = straight.model.extra["training"]["split"]
    assert sorted(split["train"] + split["val"]) == small_data.prompts and len(split["val"]) == 1
    # The target normalisation comes from the training prompts and is saved with the weights.
    assert not torch.equal(straight.model.net.target_std, torch.ones(3))
    with pytest.raises(ValueError, match="different training config"):
        train(
            _fresh(world),
            small_data,
            world,
            staged_dir,
            TrainConfig(epochs=3, lr=1e-2),
            progress=False,
        )


def test_x0_model_needs_x0_data(tmp_path, world, small_data):
    # A copy of the collection as the paper's scripts write it (tensor paths stay inside the
    # dataset folder, so the copy keeps them relative).
    shutil.copytree(small_data.samples[0].latent_path.parents[2], tmp_path / "paper")
    meta = tmp_path / "paper" / "metadata"
    for path in meta.glob("all_latent_metadata_seed_*.json"):
        records = json.loads(path.read_text())
        for r in records:  # the paper's scripts store no x0: drop our extras
            for key in ("x0_tensor_path", "latent_sigma", "x0_sigma"):
                r.pop(key)
        path.write_text(json.dumps(records))
    paper = read_latent_dataset(meta, backend=world)
    with pytest.raises(ValueError, match="input 'x0'.*no x0_tensor_path"):
        train(
            _fresh(world, "x0"), paper, world, tmp_path / "t", TrainConfig(epochs=1), progress=False
        )
    with pytest.raises(ValueError, match="teacher baseline needs predicted x0"):
        evaluate(_fresh(world), paper, world, teacher=AnalyticReward(world))


def test_end_to_end_cli_collect_train_eval(tmp_path):
    """collect -> train -> eval on a small analytic world: above chance late in denoising."""
    data, run, report = tmp_path / "data", tmp_path / "run", tmp_path / "eval"
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps([f"scene {i}" for i in range(40)]))
    opts = [f"--backend-opt={k}={v}" for k, v in {**WORLD, "num_components": 3}.items()]
    seeds = [str(s) for s in range(8)]
    assert (
        cli_main(
            [
                "reward",
                "collect",
                *opts,
                "--out",
                str(data),
                "--prompt-file",
                str(prompts),
                "--seeds",
                *seeds,
                "--steps",
                "3",
                "6",
                "9",
                "11",
            ]
        )
        == 0
    )
    assert (
        cli_main(
            [
                "reward",
                "train",
                *opts,
                "--data",
                str(data),
                "--out",
                str(run),
                "--input",
                "latent",
                "--width",
                "32",
                "--depth",
                "1",
                "--epochs",
                "10",
                "--batch-size",
                "48",
                "--group-size",
                "8",
                "--lr",
                "3e-3",
            ]
        )
        == 0
    )
    assert (
        cli_main(
            [
                "reward",
                "eval",
                *opts,
                "--model",
                str(run / "best"),
                "--data",
                str(data),
                "--out",
                str(report),
            ]
        )
        == 0
    )
    result = json.loads((report / "eval.json").read_text())
    assert (report / "eval.png").stat().st_size > 1000
    rows = {r["step"]: r for r in result["rows"]}
    assert set(rows) == {3, 6, 9, 11}
    assert all(
        r["pairs"] <= 8 * 28 and r["pairs"] > 7 * 28 for r in rows.values()
    )  # 8 validation prompts
    late = (rows[9]["learned_accuracy"] + rows[11]["learned_accuracy"]) / 2
    assert late > 0.65, result
    assert rows[11]["teacher_accuracy"] > 0.9  # the teacher on x0 is nearly exact at the end
    # Bad input is a clear CLI error, before any compute.
    assert (
        cli_main(
            [
                "reward",
                "train",
                *opts,
                "--data",
                str(data),
                "--out",
                str(tmp_path / "x"),
                "--val-fraction",
                "1.5",
            ]
        )
        == 2
    )


def test_plot_report_writes_a_png(tmp_path, world, small_data):
    report = evaluate(_fresh(world), small_data, world, teacher=AnalyticReward(world))
    assert [r.step for r in report.rows] == [4, 9]
    assert "acc learned" in report.table()
    path = plot_report(report, tmp_path / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
