"""Sweep entries with their own solver, search reward, preset or fixed configuration, the
worlds they need, and ``--save-videos`` in VBench-2.0's layout, on the analytic world."""

from __future__ import annotations

import json

import pytest
from bench_helpers import PROMPTS, tiny_sweep, write_config

from searchkit import EvoSearch
from searchkit.backend import ComputeProfile
from searchkit.backends import AnalyticBackend
from searchkit.bench import ConfigError, OutputFolderError, SweepConfig, load_config, run_sweep
from searchkit.bench import runner as runner_module
from searchkit.bench.plan import plan_sweep, sized_strategies
from searchkit.bench.runner import Worlds
from searchkit.bench.store import read_results
from searchkit.cli import main


def _config(**changes) -> SweepConfig:
    return SweepConfig.from_dict(tiny_sweep(**changes))


# -- entries --------------------------------------------------------------------------------
def test_an_entry_runs_with_its_own_solver_and_reward_and_rows_record_them(tmp_path) -> None:
    config = _config(
        strategies=[
            {"name": "baseline"},
            {"name": "best-of-n", "fixed": True, "options": {"n": 2}, "solver": "euler"},
            {
                "name": "best-of-n",
                "fixed": True,
                "options": {"n": 2},
                "solver": "sde-dpmsolver++",
                "reward": {"name": "analytic-proxy"},
            },
        ],
        budgets_nfe=None,
        seeds=1,
    )
    # unlabelled entries of one strategy are told apart by what differs between them
    assert [s.label for s in config.strategies] == [
        "baseline",
        "best-of-n-euler",
        "best-of-n-sde-dpmsolver++-analytic-proxy",
    ]
    outcome = run_sweep(config, tmp_path / "out", progress=False)
    rows = {(r["label"], r["prompt"]): r for r in outcome.rows}
    for prompt in PROMPTS:
        plain, euler, sde = (rows[(s.label, prompt)] for s in config.strategies)
        assert (plain["solver"], euler["solver"], sde["solver"]) == (
            "unipc",
            "euler",
            "sde-dpmsolver++",
        )
        assert plain["search_reward"] == {"name": "analytic", "options": {}}
        assert sde["search_reward"] == {"name": "analytic-proxy", "options": {}}
        assert euler["budget_nfe"] is None and euler["size"] == 2 and euler["nfe"] == 32
        # another solver, another output, from the same seed and noise
        assert euler["oracle"] != plain["oracle"] and sde["oracle"] != euler["oracle"]
        # the proxy steered the last entry: its reward is the proxy's, its oracle the truth's
        assert sde["reward"] != sde["oracle"]
    assert len({r["key"] for r in outcome.rows}) == len(outcome.rows) == 6


def test_worlds_are_built_once_per_solver_and_reward(monkeypatch) -> None:
    config = _config(
        strategies=[
            {"name": "baseline"},
            {"name": "baseline", "label": "euler", "solver": "euler"},
            {
                "name": "baseline",
                "label": "euler-proxy",
                "solver": "euler",
                "reward": "analytic-proxy",
            },
            {"name": "baseline", "label": "again", "solver": "euler"},
        ],
        evaluators=[{"name": "analytic-proxy"}],
    )
    built = []
    original = runner_module.build_backend
    monkeypatch.setattr(
        runner_module,
        "build_backend",
        lambda name, **options: built.append(options.get("solver")) or original(name, **options),
    )
    worlds = Worlds(config)
    runs = plan_sweep(config)
    got = {run.label: worlds.for_run(run) for run in runs}
    assert built == [None, "euler"]  # the analytic backend cannot share weights: one per solver
    assert got["euler"] is got["again"]
    assert got["euler"].backend is got["euler-proxy"].backend
    assert got["euler"].reward is not got["euler-proxy"].reward
    # an evaluator and a search reward of one name and options are one instance per backend
    assert got["euler-proxy"].reward is got["euler-proxy"].evaluators["analytic-proxy"]
    assert got["baseline"].backend.solver == "unipc" and got["euler"].backend.solver == "euler"


def test_planning_sizes_each_entry_with_its_own_solver(monkeypatch) -> None:
    seen = []

    def profile(cls, num_steps=50, solver="unipc", **options):
        seen.append(solver)  # a made-up backend whose Euler steps cost one forward
        return ComputeProfile(num_steps, 1 if solver == "euler" else 2)

    monkeypatch.setattr(AnalyticBackend, "compute_profile", classmethod(profile))
    config = _config(
        strategies=[
            {"name": "best-of-n", "label": "unipc"},
            {"name": "best-of-n", "label": "euler", "solver": "euler"},
        ],
        budgets_nfe=[32],
    )
    sized = {
        label: (strategy.n, expected) for label, strategy, _, expected in sized_strategies(config)
    }
    assert sorted(seen) == ["euler", "unipc"]
    assert sized == {"unipc": (2, 32.0), "euler": (4, 32.0)}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"name": "rgrp", "solver": "dpm-fast"},
            "strategies[0] ('rgrp'): solver 'dpm-fast' is not one of backend 'analytic''s "
            "solvers: unipc, euler, sde-dpmsolver++",
        ),
        ({"name": "rgrp", "solver": 3}, "strategies[0].solver must be a solver's name, got 3"),
        (
            {"name": "rgrp", "reward": {"name": "clip"}},
            "strategies[0].reward.name: unknown reward 'clip'",
        ),
        (
            {"name": "evo-search", "preset": "paper"},
            "has no preset 'paper'; known: evosearch, latsearch",
        ),
        (
            {"name": "evo-search", "preset": "latsearch"},
            "preset 'latsearch' sets 'population', the size knob of 'evo-search'",
        ),
        (
            {"name": "best-of-n", "options": {"n": 4}},
            'or make the entry one fixed configuration with "fixed": true',
        ),
        (
            {"name": "best-of-n", "fixed": True, "budgets_nfe": [32]},
            "fixed and budgets_nfe contradict",
        ),
        ({"name": "best-of-n", "fixed": "yes"}, "fixed must be true or false, got 'yes'"),
        (
            {"name": "best-of-n", "solvers": "euler"},
            "unknown field 'solvers'; known: name, options, preset",
        ),
    ],
)
def test_bad_entries_are_named_before_compute(entry, message) -> None:
    with pytest.raises(ConfigError) as error:
        _config(strategies=[entry])
    assert message in str(error.value)


def test_a_sized_entry_without_budgets_is_an_error_and_fixed_entries_need_none() -> None:
    with pytest.raises(ConfigError, match=r"strategies\[1\] \('best-of-n'\) has no budget"):
        _config(budgets_nfe=None)
    config = _config(
        budgets_nfe=None,
        strategies=[
            {"name": "baseline"},
            {"name": "evo-search", "preset": "latsearch", "fixed": True},
        ],
        num_steps=24,
    )
    runs = plan_sweep(config)
    evo = next(r for r in runs if r.label == "evo-search")
    assert evo.budget_nfe is None and evo.strategy == EvoSearch.from_preset("latsearch")
    # P = 6 x 24 + 3 x (24 - 5) + 3 x (24 - 20), two forwards a step
    assert evo.expected_nfe == 2 * (6 * 24 + 3 * 19 + 3 * 4)
    assert config.to_dict()["budgets_nfe"] == []
    assert config.to_dict()["strategies"][1]["fixed"] is True
    assert "fixed" not in config.to_dict()["strategies"][0]  # earlier sweeps keep their keys


def test_two_entries_differing_only_in_the_solver_have_distinct_keys() -> None:
    config = _config(
        strategies=[
            {"name": "rgrp", "solver": "unipc"},
            {"name": "rgrp", "solver": "sde-dpmsolver++"},
        ],
        budgets_nfe=[64],
        seeds=1,
    )
    runs = plan_sweep(config)
    assert [r.label for r in runs[:2]] == ["rgrp-unipc", "rgrp-sde-dpmsolver++"]
    assert len({r.key for r in runs}) == len(runs) == 4
    # an entry that changes nothing keeps the key it had before entries could change anything
    plain = plan_sweep(_config(seeds=1))
    assert plain[0].key == plan_sweep(_config(seeds=1, strategies=[{"name": "baseline"}]))[0].key


def test_reward_options_reach_every_reward_of_that_name(tmp_path) -> None:
    path = write_config(
        tmp_path,
        tiny_sweep(
            strategies=[
                {"name": "baseline"},
                {"name": "baseline", "label": "proxy", "reward": "analytic-proxy"},
            ],
            evaluators=[{"name": "analytic-proxy", "options": {"noise": 0.5}}],
        ),
    )
    config = load_config(path, reward_options={"analytic-proxy": {"misalignment": 10.0}})
    assert config.strategies[1].reward.options == {"misalignment": 10.0}
    assert config.evaluators[0].options == {"noise": 0.5, "misalignment": 10.0}
    with pytest.raises(ConfigError) as caught:
        load_config(path, reward_options={"clip-score": {"path": "x"}})
    assert "reward_options names reward 'clip-score', which the sweep" in str(caught.value)
    assert "--" not in str(caught.value)


# -- videos -----------------------------------------------------------------------------------
def _prompts_file(tmp_path, records=None):
    records = records or [
        {"prompt_en": "A ball rolls down a ramp.", "dimension": ["Mechanics", "Material"]},
        {"prompt_en": "A man is playing basketball.", "dimension": ["Diversity"]},
    ]
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps(records))
    return path


def _video_sweep(tmp_path, **changes):
    sweep = tiny_sweep(
        strategies=[{"name": "baseline"}, {"name": "best-of-n"}],
        budgets_nfe=[32],
        prompts_file=str(_prompts_file(tmp_path)),
        seeds="vbench",
        num_steps=4,
    )
    del sweep["prompts"]
    sweep.update(changes)
    return SweepConfig.from_dict(sweep)


def _tree(root) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and ".searchkit" not in p.parts
    }


def _expected(folders, counts) -> set[str]:
    return {
        f"{folder}/{dimension}/{prompt}-{i}.mp4"
        for folder in folders
        for (dimension, prompt), n in counts.items()
        for i in range(n)
    }


COUNTS = {
    ("Mechanics", "A ball rolls down a ramp."): 3,
    ("Material", "A ball rolls down a ramp."): 3,
    ("Diversity", "A man is playing basketball."): 20,
}


def test_vbench_seeds_fill_exactly_the_layout_and_resume_redoes_only_missing_videos(
    tmp_path,
) -> None:
    config = _video_sweep(tmp_path, strategies=[{"name": "baseline"}])
    videos = tmp_path / "videos"
    outcome = run_sweep(config, tmp_path / "out", progress=False, save_videos=videos)
    # VBench-2.0's protocol: 3 seeds for the Mechanics prompt, 20 for the Diversity one
    assert outcome.planned == 3 + 20
    assert _tree(videos) == _expected(["baseline"], COUNTS)
    assert set(outcome.videos) == {"baseline"} and outcome.videos["baseline"].ok
    # a video lost after its row was written is made again, with the same seed; no row twice
    lost = videos / "baseline" / "Material" / "A ball rolls down a ramp.-1.mp4"
    other = videos / "baseline" / "Mechanics" / "A ball rolls down a ramp.-1.mp4"
    lost.unlink()
    again = run_sweep(config, tmp_path / "out", resume=True, progress=False, save_videos=videos)
    assert again.rerun_for_videos == 1 and again.reused == again.planned
    assert lost.is_file() and lost.read_bytes() == other.read_bytes()  # one video, two folders
    rows, _, _ = read_results(tmp_path / "out" / "results.jsonl")
    assert len(rows) == len({r["key"] for r in rows}) == outcome.planned
    assert _tree(videos) == _expected(["baseline"], COUNTS)


def test_a_budgeted_entry_has_a_folder_per_budget(tmp_path) -> None:
    config = _video_sweep(
        tmp_path, strategies=[{"name": "best-of-n"}], budgets_nfe=[16, 32], seeds=1
    )
    outcome = run_sweep(config, tmp_path / "out", progress=False, save_videos=tmp_path / "v")
    counts = {key: 1 for key in COUNTS}
    assert _tree(tmp_path / "v") == _expected(["best-of-n-16nfe", "best-of-n-32nfe"], counts)
    assert set(outcome.videos) == {"best-of-n-16nfe", "best-of-n-32nfe"}


def test_a_count_of_seeds_maps_seeds_to_indices_and_reports_the_gaps(tmp_path, capsys) -> None:
    config = _video_sweep(tmp_path, seeds=[7, 3, 5, 9], strategies=[{"name": "baseline"}])
    outcome = run_sweep(config, tmp_path / "out", progress=False, save_videos=tmp_path / "v")
    # index i is the i-th seed; the 4th seed of the Mechanics prompt has no VBench-2.0 slot
    counts = {key: min(n, 4) for key, n in COUNTS.items()}
    assert _tree(tmp_path / "v") == _expected(["baseline"], counts)
    rows = {(r["prompt"], r["seed"]) for r in outcome.rows}
    assert ("A ball rolls down a ramp.", 9) in rows  # it ran; only its video is not kept
    report = outcome.videos["baseline"]
    assert len(report.missing) == 16 and not report.stray
    assert report.missing[0].name == "A man is playing basketball.-4.mp4"


def test_the_videos_folder_is_checked_before_any_compute(tmp_path, monkeypatch) -> None:
    def no_compute(*args, **kwargs):
        raise AssertionError("a search ran")

    videos = tmp_path / "videos"
    run_sweep(_video_sweep(tmp_path, seeds=1), tmp_path / "a", progress=False, save_videos=videos)
    monkeypatch.setattr(runner_module, "execute", no_compute)
    monkeypatch.setattr("searchkit.bench.executors.execute", no_compute)
    changed = _video_sweep(tmp_path, seeds=1, num_steps=5)  # another model configuration
    with pytest.raises(OutputFolderError, match="holds videos of another configuration"):
        run_sweep(changed, tmp_path / "b", progress=False, save_videos=videos)
    inline = _config(seeds=1)
    with pytest.raises(ConfigError, match="prompt 0 .* has no VBench-2.0 dimension"):
        run_sweep(inline, tmp_path / "c", progress=False, save_videos=tmp_path / "w")
    slashed = _video_sweep(tmp_path, strategies=[{"name": "baseline", "label": "a/b"}])
    with pytest.raises(ConfigError, match="label 'a/b' cannot name a video folder"):
        run_sweep(slashed, tmp_path / "d", progress=False, save_videos=tmp_path / "w")
    assert not (tmp_path / "c").exists() and not (tmp_path / "w").exists()


def test_cli_save_videos_and_vbench_seeds(tmp_path, capsys) -> None:
    sweep = tiny_sweep(
        strategies=[{"name": "baseline"}],
        prompts_file=str(
            _prompts_file(
                tmp_path, [{"prompt_en": "Garden, zoom in.", "dimension": ["Camera_Motion"]}]
            )
        ),
        num_steps=4,
    )
    del sweep["prompts"]
    path = write_config(tmp_path, sweep)
    out = tmp_path / "out"
    code = main(
        [
            "bench",
            "--config",
            str(path),
            "--out",
            str(out),
            "--seeds",
            "vbench",
            "--save-videos",
            "--no-progress",
        ]
    )
    assert code == 0
    assert _tree(out / "videos") == {
        f"baseline/Camera_Motion/Garden, zoom in.-{i}.mp4" for i in range(3)
    }
    assert "3/3 videos, 0 missing, 0 stray" in capsys.readouterr().err
    assert main(["bench", "--config", str(path), "--seeds", "many"]) == 2
    assert "must be a count or 'vbench', got 'many'" in capsys.readouterr().err


def test_the_paper_table_joins_compute_evaluators_and_vbench(tmp_path, capsys) -> None:
    from searchkit.bench.paper_table import main as paper_main

    config = _config(
        strategies=[
            {"name": "baseline"},
            {"name": "best-of-n", "fixed": True, "options": {"n": 3}},
        ],
        budgets_nfe=None,
        evaluators=[{"name": "analytic-proxy"}],
        seeds=2,
    )
    outcome = run_sweep(config, tmp_path / "out", progress=False)
    physics = {"Mechanics": 0.5, "Thermotics": 0.6, "Material": 0.7, "Multi-View_Consistency": 0.2}
    folder = tmp_path / "eval" / "best-of-n" / "Physics"
    folder.mkdir(parents=True)
    (folder / "results_2025-05-01-12:00:00_eval_results.json").write_text(
        json.dumps({d: [s, []] for d, s in physics.items()})
    )
    assert paper_main([str(tmp_path / "out"), str(tmp_path / "eval")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0]
        == "| configuration | videos | NFE | s/video | x baseline | analytic-proxy | Physics |"
    )
    base, best = (
        [r for r in outcome.rows if r["label"] == label] for label in ("baseline", "best-of-n")
    )
    seconds = [sum(r["seconds"]["total"] for r in rows) / 4 for rows in (base, best)]
    proxy = sum(r["evaluators"]["analytic-proxy"]["total"] for r in best) / 4
    shown = [f"{s:.1f}" if s >= 10 else f"{s:.3g}" for s in seconds]  # 3 digits below 10 s
    assert lines[2] == "| baseline | 4 | 16 | {} | 1.00 | {} | – |".format(
        shown[0], lines[2].split(" | ")[5]
    )
    assert lines[3] == (
        f"| best-of-n | 4 | 48 | {shown[1]} | {seconds[1] / seconds[0]:.2f} | {proxy:.3f} | 50.00 |"
    )
