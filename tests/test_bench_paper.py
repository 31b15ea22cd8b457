"""The shipped ``latsearch-paper`` sweep end to end on tiny Wan with tiny verifiers.

The configuration is the shipped file with the video made tiny (16x16 pixels, 9 frames), 24
steps instead of 50 (every schedule of the paper's entries still fits: RGRP scores after
steps 10, 15, 20, EvoSearch evolves at 5 and 20) and RGRP at 3 candidates; the rewards and
evaluators are tiny random VideoReward, LatSearch latent reward and CLIP checkpoints
(tests/video_reward_fixture.py, tests/test_clip_score.py), pointed at with ``--reward-opt``
as a user points at real ones. The scores mean nothing; what is checked is that each entry
runs with its own solver and search reward, once, that every row is graded by the held-out
evaluators, and that ``--save-videos`` leaves VBench-2.0's layout.
"""

from __future__ import annotations

import csv
import json
from importlib import resources

import pytest
from test_clip_score import write_tiny_clip
from video_reward_fixture import build_base, build_latent_checkpoint, build_video_reward

from searchkit.bench import read_results
from searchkit.bench import runner as runner_module
from searchkit.cli import main

PROMPT = "a small boat on a lake at sunset"
SEARCH = {  # label: (solver, search reward, samples its search scores: least, most)
    "baseline": ("unipc", "pixel", (1, 1)),
    "freeinit": ("unipc", "pixel", (1, 1)),
    "freqprior": ("unipc", "pixel", (1, 1)),
    "best-of-4-videoreward": ("unipc", "video-reward", (4, 4)),
    "evosearch": ("sde-dpmsolver++", "video-reward", (6 + 3 + 3, 6 + 3 + 3)),
    # 3 candidates, then the 1 to 3 survivors of each resample, then the output
    "rgrp-unipc": ("unipc", "latsearch-latent-reward", (3 + 1 + 1 + 1, 3 + 3 + 3 + 1)),
    "rgrp-sde-dpmsolver++": ("sde-dpmsolver++", "latsearch-latent-reward", (6, 10)),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("verifiers")
    backbone = build_video_reward(root / "VideoReward", build_base(root / "base"))
    latent = build_latent_checkpoint(root / "latent_reward.pt", backbone)
    return backbone, latent, write_tiny_clip(root / "clip")


def test_the_paper_sweep_runs_each_entry_as_configured(tmp_path, checkpoints, monkeypatch, capsys):
    shipped = resources.files("searchkit.bench") / "configs" / "latsearch-paper.json"
    config = json.loads(shipped.read_text(encoding="utf-8"))
    config["backend"]["options"].update(
        tiny=True, height=16, width=16, num_frames=9, max_sequence_length=16
    )
    config["num_steps"] = 24
    for entry in config["strategies"]:
        if entry["name"] == "rgrp":
            entry["options"] = {"num_particles": 3}
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps([{"prompt_en": PROMPT, "dimension": ["Mechanics"]}]))
    (tmp_path / "sweep.json").write_text(json.dumps({**config, "prompts_file": str(prompts)}))

    built = {"backends": 0, "rewards": []}
    build_backend, build_reward = runner_module.build_backend, runner_module.build_reward

    def count_backend(name, **options):
        built["backends"] += 1
        return build_backend(name, **options)

    def count_reward(name, backend, **options):
        built["rewards"].append(name)
        return build_reward(name, backend, **options)

    monkeypatch.setattr(runner_module, "build_backend", count_backend)
    monkeypatch.setattr(runner_module, "build_reward", count_reward)
    backbone, latent, clip = checkpoints
    out = tmp_path / "out"
    code = main(
        [
            "bench", "--config", str(tmp_path / "sweep.json"), "--out", str(out), "--seeds", "1",
            "--save-videos", "--no-progress",
            "--reward-opt", f"video-reward:path={backbone}",
            "--reward-opt", "video-reward:dtype=float32",
            "--reward-opt", f"latsearch-latent-reward:backbone_path={backbone}",
            "--reward-opt", f"latsearch-latent-reward:checkpoint_path={latent}",
            "--reward-opt", "latsearch-latent-reward:dtype=float32",
            "--reward-opt", f"clip-score:path={clip}",
        ]
    )  # fmt: skip
    assert code == 0
    # one Wan model for both solvers; each reward built once, the evaluator VideoReward shared
    assert built["backends"] == 1
    assert sorted(built["rewards"], key=str) == [
        None,  # the backend's own (pixel), for the entries without a reward of their own
        "clip-score",
        "latsearch-latent-reward",
        "video-reward",
    ]

    rows, _, _ = read_results(out / "results.jsonl")
    assert [r["label"] for r in rows] == list(SEARCH)
    for row in rows:
        solver, reward, calls = SEARCH[row["label"]]
        assert (row["solver"], row["search_reward"]["name"]) == (solver, reward), row["label"]
        assert calls[0] <= row["reward_calls"] <= calls[1], row["label"]
        assert row["budget_nfe"] is None and row["expected_nfe"] > 0, row["label"]
        assert row["nfe"] == row["expected_nfe"] or row["strategy"] == "rgrp", row["label"]
        graded = row["evaluators"]
        assert set(graded) == {"video-reward", "clip-score"}
        assert set(graded["clip-score"]["scores"]) == {"CLIP"}
        assert graded["clip-score"]["total"] != pytest.approx(row["reward"], rel=1e-3)
        assert graded["clip-score"]["seconds"] > 0 and row["seconds"]["model"] > 0
        # the Wan forwards and decodes are counted on the meta device, the model rewards on
        # their first real call
        assert row["flops_split"]["forward"] > 0, row["label"]
        if reward != "pixel":
            assert row["flops_split"][f"reward:{reward}"] > 0, row["label"]
        if reward == "video-reward":  # best-of-4 and EvoSearch are graded by their own signal
            assert graded["video-reward"]["total"] == pytest.approx(row["reward"], rel=1e-4)
        else:
            assert graded["video-reward"]["total"] != pytest.approx(row["reward"], rel=1e-3)
    by_label = {r["label"]: r for r in rows}
    assert by_label["evosearch"]["nfe"] == 2 * (6 * 24 + 3 * (24 - 5) + 3 * (24 - 20))
    assert by_label["best-of-4-videoreward"]["size"] == 4
    assert set(by_label["rgrp-unipc"]["scores"]) == {"VQ", "MQ", "TA"}
    # the SDE entry's outputs differ from the UniPC entry's, from the same seed
    assert by_label["rgrp-unipc"]["evaluators"] != by_label["rgrp-sde-dpmsolver++"]["evaluators"]

    # the summary has the paper's columns: quality per evaluator, seconds per video with its
    # split, NFE, FLOPs and the time relative to the baseline's
    summary = (out / "summary.md").read_text()
    for column in (
        "mean clip-score", "mean video-reward", "mean NFE", "FLOPs", "s/video", "model s",
        "decode s", "reward s", "time vs baseline",
    ):  # fmt: skip
        assert column in summary, column
    # ...and their values are the rows': one cell per entry (one prompt, one seed), its NFE
    # and FLOPs those of its row (FLOPs stated for every entry, the pixel reward's included),
    # its time over the baseline's the rows' seconds over the baseline row's
    with open(out / "summary.csv", newline="", encoding="utf-8") as f:
        cells = {c["label"]: c for c in csv.DictReader(f)}
    assert list(cells) == list(SEARCH)
    base_seconds = by_label["baseline"]["seconds"]["total"]
    for label, cell in cells.items():
        row = by_label[label]
        assert row["flops"] is not None and row["flops"] > 0, label
        assert float(cell["flops_mean"]) == pytest.approx(row["flops"], rel=1e-12), label
        assert float(cell["nfe_mean"]) == row["nfe"], label
        ratio = row["seconds"]["total"] / base_seconds
        assert float(cell["time_ratio"]) == pytest.approx(ratio, rel=1e-12), label
        cost_table = summary.split("## Cost", 1)[1].splitlines()
        line = next(x for x in cost_table if x.startswith(f"| {label} |"))
        assert f"{ratio:.2f}x" in line and f"{row['flops']:.3g}" in line, line
    assert float(cells["baseline"]["time_ratio"]) == 1.0

    videos = out / "videos"
    files = {
        str(p.relative_to(videos)) for p in videos.rglob("*.mp4") if ".searchkit" not in p.parts
    }
    assert files == {f"{label}/Mechanics/{PROMPT}-0.mp4" for label in SEARCH}
    assert not any(p.is_file() for label in SEARCH for p in (videos / label).iterdir())
    err = capsys.readouterr().err
    assert err.count("1/3 videos, 2 missing, 0 stray") == len(SEARCH)  # --seeds 1: gaps reported
