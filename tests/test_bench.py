"""The benchmark harness: configuration, budget matching, results store, summary, CLI errors."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import attrs
import numpy as np
import pytest
from scipy import stats

from searchkit.backends import AnalyticBackend
from searchkit.bench import (
    BudgetError,
    ConfigError,
    OutputFolderError,
    SweepConfig,
    load_config,
    match_budget,
    read_results,
    resolve_config_path,
    run_sweep,
    shipped_configs,
    summarize,
)
from searchkit.bench.store import RESULTS_FILE
from searchkit.cli import main
from searchkit.registry import STRATEGIES
from tests.bench_helpers import PROMPTS, tiny_sweep, write_config

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str) -> int:
    return main(["bench", *map(str, args), "--no-progress"])


# -- budget matching ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", [n for n in STRATEGIES.names() if STRATEGIES.get(n).size_knob])
def test_budget_matching_takes_the_largest_knob_within_budget(name):
    cls = STRATEGIES.get(name)
    backend = AnalyticBackend()  # 50 steps under CFG: one sample is 100 NFE
    for budget in (3200, 6400):
        strategy, expected = match_budget(cls, {}, budget, backend)
        knob = getattr(strategy, cls.size_knob)
        assert expected == strategy.expected_nfe(backend) <= budget
        try:
            bigger = cls(**{cls.size_knob: knob + 1})
        except (TypeError, ValueError):
            continue
        assert bigger.expected_nfe(backend) > budget, (
            f"{name}: {cls.size_knob}={knob + 1} also fits"
        )


def test_best_of_n_budget_rounds_down():
    backend = AnalyticBackend(num_steps=8)
    strategy, expected = match_budget(STRATEGIES.get("best-of-n"), {}, 50, backend)
    assert (strategy.n, expected) == (3, 48.0)


def test_budget_below_one_sample_is_an_error_naming_strategy_and_budget(tmp_path, capsys):
    path = write_config(tmp_path, tiny_sweep(budgets_nfe=[10, 64]))
    assert cli("--config", path, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "budget 10 NFE" in err and "'best-of-n'" in err and "16 NFE" in err
    assert not (tmp_path / "out" / RESULTS_FILE).exists()  # refused before any compute
    with pytest.raises(BudgetError, match="budget 10 NFE"):
        match_budget(STRATEGIES.get("best-of-n"), {}, 10, AnalyticBackend(num_steps=8))


# -- configuration errors -----------------------------------------------------------------------
def test_unknown_strategy_is_an_error_naming_the_entry(tmp_path, capsys):
    config = tiny_sweep(strategies=[{"name": "baseline"}, {"name": "no-such-search"}])
    assert cli("--config", write_config(tmp_path, config), "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "strategies[1].name" in err and "'no-such-search'" in err and "best-of-n" in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"strategies": [{"name": "best-of-n", "options": {"n": 4}}]}, "size knob"),
        ({"strategies": [{"name": "best-of-n", "options": {"width": 4}}]}, "no option 'width'"),
        ({"strategies": ["baseline", "baseline"]}, "label 'baseline' is used twice"),
        ({"budgets_nfe": [64, -1]}, "budgets_nfe"),
        ({"seeds": 0}, "seeds"),
        ({"prompts": []}, "prompts"),
        ({"num_steps": "many"}, "num_steps"),
        ({"backend": {"name": "no-such-backend"}}, "backend.name"),
        ({"colour": "red"}, "unknown field 'colour'"),
    ],
)
def test_bad_config_fields_are_named(change, message):
    with pytest.raises(ConfigError, match=message):
        SweepConfig.from_dict(tiny_sweep(**change))


def test_prompt_file_that_is_not_json_names_the_file(tmp_path, capsys):
    bad = tmp_path / "prompts.json"
    bad.write_text('[{"prompt_en": "a cat",', encoding="utf-8")
    config = write_config(tmp_path, tiny_sweep())
    assert cli("--config", config, "--out", tmp_path / "out", "--prompts-file", bad) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "not valid JSON" in err


def test_prompt_record_without_prompt_en_names_file_and_record(tmp_path, capsys):
    bad = tmp_path / "prompts.json"
    records = [{"prompt_en": "a cat", "dimension": ["Mechanics"]}, {"prompt": "a dog"}]
    bad.write_text(json.dumps(records), encoding="utf-8")
    config = write_config(tmp_path, tiny_sweep())
    assert cli("--config", config, "--out", tmp_path / "out", "--prompts-file", bad) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "record 1" in err and "prompt_en" in err


def test_prompt_file_is_filtered_by_dimension(tmp_path):
    path = tmp_path / "vbench.json"
    path.write_text(
        json.dumps(
            [
                {"prompt_en": "a cat jumps", "dimension": ["Mechanics"]},
                {"prompt_en": "a dog runs", "dimension": "Human_Anatomy"},
                {"prompt_en": "a ball falls", "dimension": ["Mechanics", "Thermotics"]},
            ]
        ),
        encoding="utf-8",
    )
    config = load_config(
        write_config(tmp_path, tiny_sweep()), prompts_file=path, dimension="Mechanics"
    )
    assert [p.text for p in config.prompts] == ["a cat jumps", "a ball falls"]
    with pytest.raises(ConfigError, match="no prompt with dimension 'Colour'.*Human_Anatomy"):
        load_config(write_config(tmp_path, tiny_sweep()), prompts_file=path, dimension="Colour")


# -- the default sweeps ---------------------------------------------------------------------------
def test_default_config_is_shipped_and_covers_every_strategy():
    config = load_config()  # no argument: the shipped analytic sweep
    assert config.name == "analytic"
    assert {s.name for s in config.strategies} == set(STRATEGIES.names())
    for spec in config.strategies:
        if STRATEGIES.get(spec.name).size_knob is not None:
            assert len(spec.budgets_nfe or config.budgets_nfe) >= 3, spec.name


def test_shipped_configs_load_by_name_from_one_folder(tmp_path, capsys):
    folder = REPO / "searchkit" / "bench" / "configs"
    assert shipped_configs() == ("analytic", "latsearch-paper", "rgrp_beta", "sd3.5", "wan2.1")
    assert sorted(p.stem for p in folder.glob("*.json")) == list(shipped_configs())
    assert not (REPO / "benchmarks" / "configs").exists()  # no second copy to drift
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps([{"prompt_en": "a cat", "dimension": ["Human_Anatomy"]}]))
    for name in shipped_configs():
        assert (
            resolve_config_path(name)
            == resolve_config_path(f"{name}.json")
            == folder / f"{name}.json"
        )
        config = load_config(
            name, prompts_file=prompts
        )  # wan2.1 names a prompts file of the user's
        assert config.name == json.loads((folder / f"{name}.json").read_text())["name"]
    with pytest.raises(
        FileNotFoundError, match="analytic, latsearch-paper, rgrp_beta, sd3.5, wan2.1"
    ):
        resolve_config_path("no-such-sweep")
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    help_text = capsys.readouterr().out
    assert all(name in help_text for name in shipped_configs())


# -- results, resume, output folder ---------------------------------------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One tiny sweep run to the end."""
    out = tmp_path_factory.mktemp("finished")
    config = SweepConfig.from_dict(tiny_sweep())
    return config, run_sweep(config, out, progress=False)


def test_rows_record_cost_scores_oracle_and_versions(finished):
    config, outcome = finished
    # 2 prompts x 3 seeds x (baseline + best-of-n at 32 and 64 NFE)
    assert outcome.complete and outcome.planned == len(outcome.rows) == 18
    backend = AnalyticBackend(frames=3, height=4, width=4, num_steps=8)
    for row in outcome.rows:
        assert set(row["scores"]) == {"VQ", "MQ", "TA"}
        assert set(row["seconds"]) >= {"model", "reward", "decode", "other", "total"}
        assert row["nfe"] == 2 * row["particle_steps"] and row["reward_calls"] >= 1
        assert row["decodes"] >= 1 and row["versions"]["torch"]
        assert row["prompt"] in PROMPTS and row["seed"] in config.seeds
        if row["strategy"] == "best-of-n":
            assert row["size"] == row["budget_nfe"] // 16 and row["nfe"] <= row["budget_nfe"]
    row = outcome.rows[-1]
    from searchkit import get_strategy
    from searchkit.rewards import AnalyticReward

    result = get_strategy(row["strategy"])(**row["config"]).run(
        backend, AnalyticReward(backend), row["prompt"], seed=row["seed"]
    )
    assert row["reward"] == result.reward
    assert row["oracle"] == pytest.approx(
        float(backend.oracle(result.latents[None], row["prompt"])[0])
    )


def test_summary_table_csv_and_figure_are_written(finished):
    _, outcome = finished
    folder = outcome.folder
    md = (folder / "summary.md").read_text()
    quality, cost = md.split("## Quality")[1].split("## Cost")
    assert "| best-of-n | 64 | 6 |" in quality and "| baseline | fixed | 6 |" in quality
    assert "| best-of-n | 64 | n=4 | 64.0 |" in cost and "| baseline | fixed | - | 16.0 |" in cost
    # searched with the perfect verifier: the search reward is the oracle, shown once
    assert all(c.reward_mean is None for c in outcome.cells) and "search reward" not in quality
    assert "the search reward equals the oracle on every output" in md
    with open(folder / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["label"], r["budget_nfe"]) for r in rows] == [
        ("baseline", ""),
        ("best-of-n", "32"),
        ("best-of-n", "64"),
    ]
    assert (folder / "reward_vs_nfe.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # best-of-n keeps the baseline's own sample among its candidates: it never loses
    assert all(c.win_rate >= 0.5 for c in outcome.cells if c.label == "best-of-n")


def test_existing_results_need_resume_or_force(finished, tmp_path, capsys):
    config, outcome = finished
    same = write_config(tmp_path, tiny_sweep())
    other = write_config(tmp_path, tiny_sweep(seeds=4), "other.json")
    assert cli("--config", same, "--out", outcome.folder) == 2
    assert "already holds 18 results of this sweep" in capsys.readouterr().err
    assert cli("--config", other, "--out", outcome.folder) == 2
    err = capsys.readouterr().err
    assert "different sweep configuration" in err and "seeds" in err and "--resume" in err
    with pytest.raises(OutputFolderError, match="different sweep"):
        run_sweep(SweepConfig.from_dict(tiny_sweep(seeds=4)), outcome.folder, progress=False)
    # --force starts over in a copy of the folder
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in outcome.folder.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    assert cli("--config", other, "--out", copy, "--force") == 0
    printed = capsys.readouterr().out  # the quality table, then the cost table
    assert printed.startswith("quality\n") and "\ncost\n" in printed and "s/video" in printed
    rows, _, _ = read_results(copy / RESULTS_FILE)
    assert len(rows) == 24 and {r["seed"] for r in rows} == {0, 1, 2, 3}


def test_resume_with_more_seeds_runs_only_the_new_ones(finished, tmp_path):
    config, outcome = finished
    out = tmp_path / "out"
    out.mkdir()
    (out / RESULTS_FILE).write_bytes((outcome.folder / RESULTS_FILE).read_bytes())
    more = run_sweep(SweepConfig.from_dict(tiny_sweep(seeds=4)), out, resume=True, progress=False)
    assert (more.reused, more.planned) == (18, 24)
    keys = [r["key"] for r in read_results(out / RESULTS_FILE)[0]]
    assert len(keys) == len(set(keys)) == 24


def test_truncated_last_line_is_discarded_and_run_again(finished, tmp_path):
    config, outcome = finished
    out = tmp_path / "out"
    out.mkdir()
    data = (outcome.folder / RESULTS_FILE).read_bytes()
    lines = data.split(b"\n")
    last = json.loads(lines[-2])
    (out / RESULTS_FILE).write_bytes(b"\n".join(lines[:-2]) + b"\n" + lines[-2][:40])
    rows, _, tail = read_results(out / RESULTS_FILE)
    assert len(rows) == 17 and tail == lines[-2][:40].decode()
    again = run_sweep(config, out, resume=True, progress=False)
    assert again.reused == 17 and again.discarded == tail and again.complete
    rows, _, tail = read_results(out / RESULTS_FILE)
    assert tail is None and len(rows) == len({r["key"] for r in rows}) == 18
    redone = next(r for r in rows if r["key"] == last["key"])
    assert redone["reward"] == last["reward"] and redone["nfe"] == last["nfe"]


def test_damaged_line_in_the_middle_is_an_error(finished, tmp_path):
    _, outcome = finished
    lines = (outcome.folder / RESULTS_FILE).read_bytes().split(b"\n")
    lines[3] = lines[3][:30]
    path = tmp_path / RESULTS_FILE
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(OutputFolderError, match="line 4"):
        read_results(path)


# -- the summary ------------------------------------------------------------------------------------
def _row(label, budget, seed, value, nfe=100):
    return {
        "key": f"{label}{budget}{seed}",
        "label": label,
        "strategy": label,
        "budget_nfe": budget,
        "size_knob": None if budget is None else "n",
        "size": None if budget is None else 2,
        "prompt": "p",
        "prompt_index": 0,
        "seed": seed,
        "nfe": nfe,
        "reward": value,
        "oracle": value,
        "seconds": {"total": 1.0},
    }


def test_summary_interval_and_win_rate():
    base = [1.0, 2.0, 3.0, 4.0]
    other = [2.0, 2.0, 5.0, 3.5]
    rows = [_row("baseline", None, s, v) for s, v in enumerate(base)]
    rows += [_row("best-of-n", 200, s, v, nfe=200) for s, v in enumerate(other)]
    cells = summarize(rows[::-1], order=["baseline", "best-of-n"])
    assert [c.label for c in cells] == ["baseline", "best-of-n"]
    cell = cells[1]
    half = stats.t.ppf(0.975, 3) * np.std(other, ddof=1) / math.sqrt(4)
    assert cell.mean == pytest.approx(np.mean(other))
    assert (cell.ci_low, cell.ci_high) == pytest.approx(
        (np.mean(other) - half, np.mean(other) + half)
    )
    assert cell.win_rate == pytest.approx((1 + 0.5 + 1 + 0) / 4)
    assert cells[0].win_rate is None and cell.nfe_mean == 200 and cell.metric == "oracle"
    # without an oracle on every row, the search reward is the metric
    rows[0] = {**rows[0], "oracle": None}
    assert summarize(rows)[0].metric == "reward"


def test_config_round_trips_and_fingerprint_tracks_changes():
    config = SweepConfig.from_dict(tiny_sweep())
    assert SweepConfig.from_dict(tiny_sweep()).fingerprint() == config.fingerprint()
    assert SweepConfig.from_dict(tiny_sweep(seeds=[0, 1, 5])).fingerprint() != config.fingerprint()
    assert attrs.evolve(config, seeds=(0,)).to_dict()["seeds"] == [0]
