"""``searchkit diagnose`` and ``searchkit.diagnostics``: predictivity by step and candidate spread."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from searchkit import Baseline, get_strategy
from searchkit.backends import AnalyticBackend
from searchkit.diagnostics import candidate_spread, predictivity, write_diagnosis
from searchkit.diagnostics.predictivity import MIN_SEEDS as RANKED_SEEDS
from searchkit.diagnostics.spread import MIN_SEEDS as SPREAD_SEEDS
from searchkit.rewards import AnalyticReward, ProxyVerifier

PROMPTS = ("a red fox running through fresh snow", "a lighthouse in a storm at night")


@pytest.fixture(scope="module")
def world() -> AnalyticBackend:
    return AnalyticBackend(num_steps=12)


def test_predictivity_is_one_at_the_last_step_when_the_reward_is_the_evaluator(world) -> None:
    # the exact analytic reward on the finished output is the oracle itself: identical
    # scores, so every resample's rank correlation is 1 and so is the interval
    report = predictivity(world, AnalyticReward(world), PROMPTS, seeds=8, steps=(3, 11))
    assert report.evaluator == "oracle" and report.steps == (3, 11)
    np.testing.assert_allclose(report.rewards[:, :, 1], report.evaluations, rtol=1e-5)
    assert report.at(11) == pytest.approx(1.0)
    assert report.ci_low[1] == pytest.approx(1.0) and report.ci_high[1] == pytest.approx(1.0)
    assert report.per_prompt[0][1] == pytest.approx(1.0)
    assert report.sigmas[1] == 0.0 and report.sigmas[0] > 0.5


def test_predictivity_rows_are_the_baselines_outputs_and_rho_is_spearman(world) -> None:
    reward = ProxyVerifier(world)
    report = predictivity(world, reward, PROMPTS, seeds=(3, 5, 7, 9, 11), steps=(2, 6, 11))
    for i, seed in enumerate(report.seeds):  # a deterministic solver: row s is seed s's baseline
        result = Baseline().run(world, reward, PROMPTS[1], seed=seed)
        oracle = float(world.oracle(result.latents[None], PROMPTS[1])[0])
        assert report.evaluations[1, i] == pytest.approx(oracle, rel=1e-4, abs=1e-4)
        assert report.rewards[1, i, 2] == pytest.approx(result.reward, rel=1e-4, abs=1e-4)
    for p in range(2):
        for k in range(3):
            want = spearmanr(report.rewards[p, :, k], report.evaluations[p]).statistic
            assert report.per_prompt[p][k] == pytest.approx(want)
    for k in range(3):
        assert report.rho[k] == pytest.approx(np.mean([report.per_prompt[p][k] for p in range(2)]))
        assert report.ci_low[k] <= report.rho[k] <= report.ci_high[k]
    # metered through the context: every trajectory runs to the end, scored at 3 steps
    assert report.cost["particle_steps"] == 2 * 5 * 12
    assert report.cost["nfe"] == 2 * report.cost["particle_steps"]  # guidance: 2 forwards
    assert report.cost["reward_calls"] == 2 * 5 * 3


def test_predictivity_checks_its_input_before_compute(world) -> None:
    reward = AnalyticReward(world)
    with pytest.raises(ValueError) as caught:
        predictivity(world, reward, PROMPTS, seeds=4, steps=(5, 12))
    assert str(caught.value).startswith("steps must lie in [0, 12) for a 12-step backend")
    with pytest.raises(ValueError, match=f"seeds must hold at least {RANKED_SEEDS} seeds"):
        predictivity(world, reward, PROMPTS, seeds=RANKED_SEEDS - 1)
    with pytest.raises(ValueError, match="prompts"):
        predictivity(world, reward, [], seeds=4)
    with pytest.raises(ValueError, match="score_input"):
        predictivity(world, reward, PROMPTS, seeds=4, score_input="video")


def test_an_evaluator_is_needed_without_an_oracle(world) -> None:
    from searchkit.diagnostics import resolve_evaluator
    from searchkit.rewards import PixelReward

    class NoOracle(AnalyticBackend):
        @property
        def has_oracle(self) -> bool:
            return False

    with pytest.raises(ValueError, match="has no oracle"):
        resolve_evaluator(NoOracle(num_steps=4), None)
    assert resolve_evaluator(world, PixelReward(world)).name == "pixel"


def test_candidate_spread_measures_rgrps_own_candidates(world) -> None:
    n = 4
    report = candidate_spread(
        world, AnalyticReward(world), PROMPTS[0], seeds=3, betas=(0.0, 0.3, 1.0), num_candidates=n
    )
    assert report.betas == (0.0, 0.3, 1.0) and report.groups["best_gain"].shape == (3, 3)
    # beta 0: every candidate is z, so there is nothing to choose from
    for metric in ("noise_distance", "output_distance", "evaluator_std", "best_gain"):
        assert report.mean(metric, 0.0) == pytest.approx(0.0, abs=1e-6)
    # the noise distances follow from the construction x_k = c z + b eps_k, c = sqrt(1 - b^2):
    # |x_k - z|^2 / D -> (1 - c)^2 + b^2 and |x_k - x_l|^2 / D -> 2 b^2 (pairs: n - 1 and
    # (n - 1)(n - 2) / 2). D = 1280 elements, so each RMS distance has relative sd about
    # 1 / sqrt(2 D) = 2%; 8% is four of them
    for b in (0.3, 1.0):
        c = math.sqrt(1 - b * b)
        pairs = (n - 1) * math.hypot(1 - c, b) + (n - 1) * (n - 2) / 2 * math.sqrt(2) * b
        expected = pairs / (n * (n - 1) / 2)
        assert report.mean("noise_distance", b) == pytest.approx(expected, rel=0.08)
    # independent candidates land further apart and differ more than correlated ones
    assert report.mean("output_distance", 1.0) > report.mean("output_distance", 0.3) > 0
    groups = report.groups
    assert (groups["best_gain"] >= groups["reward_pick_gain"] - 1e-6).all()
    assert (groups["best_gain"] >= 0).all()
    # with the exact reward as the search reward, its pick on finished outputs is the best
    np.testing.assert_allclose(groups["reward_pick_gain"], groups["best_gain"], atol=1e-4)


def test_candidate_spread_first_candidate_is_the_seeds_baseline(world) -> None:
    reward = AnalyticReward(world)
    report = candidate_spread(
        world, reward, PROMPTS[0], seeds=(4, 5), betas=(0.5,), num_candidates=3, keep_outputs=True
    )
    baseline = Baseline().run(world, reward, PROMPTS[0], seed=4)
    torch.testing.assert_close(report.outputs[0, 0], baseline.latents, rtol=1e-4, atol=1e-4)
    # and RGRP with the same seed starts from the same candidates: with its schedule at the
    # last step and one candidate kept, its output is one of them
    rgrp = get_strategy("rgrp")(num_particles=3, beta=0.5, schedule=(11,))
    out = rgrp.run(world, reward, PROMPTS[0], seed=4).latents
    distances = (report.outputs[0] - out).flatten(1).norm(dim=1)
    assert float(distances.min()) < 1e-3


def test_write_diagnosis_writes_json_and_figures(world, tmp_path) -> None:
    reward = ProxyVerifier(world)
    pred = predictivity(world, reward, PROMPTS[0], seeds=4, steps=(5, 11))
    spread = candidate_spread(
        world, reward, PROMPTS[0], seeds=2, betas=(0.1, 1.0), num_candidates=2, keep_outputs=True
    )
    files = write_diagnosis(tmp_path, predictivity=pred, spread=spread, backend=world)
    payload = json.loads((tmp_path / "diagnose.json").read_text())
    assert payload["predictivity"]["steps"] == [5, 11]
    assert payload["predictivity"]["interval"].startswith("95% percentile bootstrap")
    assert [row["beta"] for row in payload["spread"]["summary"]["output_distance"]] == [0.1, 1.0]
    for name in ("figure", "candidates"):
        assert Path(files[name]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_diagnose_on_the_analytic_world(tmp_path, capsys) -> None:
    from searchkit.cli import main

    out = tmp_path / "d"
    args = ["diagnose", "--backend-opt", "num_steps=10", "--reward", "analytic", "--seeds", "4"]
    args += ["--steps", "4,9", "--betas", "0.1,1", "--candidates", "2", "--out", str(out)]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["predictivity"]["rho_by_step"]["9"][0] == pytest.approx(1.0)
    assert set(summary["spread"]["by_beta"]) == {"0.1", "1"}
    assert {p.name for p in out.iterdir()} == {"diagnose.json", "diagnose.png", "candidates.png"}
    assert main(args[:-2] + ["--candidates", "1", "--out", str(out)]) == 2
    assert "--candidates must be at least 2" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ["--seeds", str(RANKED_SEEDS - 1)],
            f"--seeds must be at least {RANKED_SEEDS}, got {RANKED_SEEDS - 1}",
        ),
        (
            ["--seeds", str(SPREAD_SEEDS - 1), "--only", "spread"],
            f"--seeds must be at least {SPREAD_SEEDS}, got {SPREAD_SEEDS - 1}",
        ),
        (
            ["--spread-seeds", str(SPREAD_SEEDS - 1)],
            f"--spread-seeds must be at least {SPREAD_SEEDS}, got {SPREAD_SEEDS - 1}",
        ),
        (["--steps", "999"], "--steps must lie in [0, 50) for a 50-step backend, got (999,)"),
        (["--only", "spread", "--betas", "2"], "--betas must be distinct values in [0, 1]"),
    ],
)
def test_cli_diagnose_names_the_flag_and_the_api_bound(flags, expected, tmp_path, capsys) -> None:
    from searchkit.cli import main

    # the command line refuses exactly what the Python API refuses, and names its flag
    code = main(["diagnose", "--seeds", "4", *flags, "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"searchkit diagnose: error: {expected}"), err
    assert len(err.strip().splitlines()) <= 2 and not (tmp_path / "d").exists()


def test_cli_diagnose_runs_with_the_fewest_seeds_the_api_takes(tmp_path, capsys) -> None:
    from searchkit.cli import main

    args = ["diagnose", "--backend-opt", "num_steps=2", "--steps", "1", "--candidates", "2"]
    args += ["--betas", "1", "--seeds", str(RANKED_SEEDS), "--spread-seeds", str(SPREAD_SEEDS)]
    assert main([*args, "--out", str(tmp_path / "d")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary) == {"predictivity", "spread", "files"}


def test_cli_diagnose_names_a_missing_evaluator(tmp_path, capsys) -> None:
    from searchkit.cli import main

    code = main(["diagnose", "--evaluator", "nope", "--seeds", "4", "--out", str(tmp_path)])
    assert code == 2 and "nope" in capsys.readouterr().err


WAN = ["--backend", "wan", "--backend-opt", "tiny=true", "--backend-opt", "num_steps=3"]
WAN += ["--backend-opt", "max_sequence_length=16"]


def test_cli_diagnose_on_tiny_wan(tmp_path, capsys) -> None:
    from searchkit.cli import main

    out = tmp_path / "wan"
    args = ["diagnose", *WAN, "--reward", "pixel", "--evaluator", "pixel", "--seeds", "4"]
    args += ["--steps", "0,2", "--betas", "0.2,1", "--candidates", "2", "--out", str(out)]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    # the pixel reward after the last step is the pixel evaluator on the same output
    assert summary["predictivity"]["rho_by_step"]["2"][0] == pytest.approx(1.0)
    payload = json.loads((out / "diagnose.json").read_text())
    assert payload["backend"]["name"] == "wan" and payload["spread"]["evaluator"] == "pixel"
    assert payload["predictivity"]["cost"]["decodes"] == 4 * 2  # a video reward decodes x0


def test_python_api_on_tiny_wan() -> None:
    from searchkit.backends.wan import WanBackend
    from searchkit.rewards import PixelReward

    backend = WanBackend.build(tiny=True, num_steps=3, max_sequence_length=16)
    reward = PixelReward(backend)
    report = predictivity(backend, reward, "a red fox", seeds=4, steps=(1, 2), evaluator=reward)
    assert report.at(2) == pytest.approx(1.0) and report.evaluator == "pixel"
    spread = candidate_spread(
        backend, reward, "a red fox", seeds=2, betas=(0.0, 1.0), num_candidates=2, evaluator=reward
    )
    assert spread.mean("output_distance", 0.0) == pytest.approx(0.0, abs=1e-6)
    assert spread.mean("output_distance", 1.0) > 0
