"""Held-out evaluators in generate and bench, and the analytic world's proxy verifier."""

from __future__ import annotations

import json
import math

import pytest
import torch

from searchkit import BestOfN, SearchContext
from searchkit.backends import AnalyticBackend
from searchkit.bench import SweepConfig, run_sweep
from searchkit.builders import build_reward
from searchkit.cli import main
from searchkit.evaluation import build_evaluators, evaluate
from searchkit.reward import RewardBatch
from searchkit.rewards import AnalyticReward, ProxyVerifier
from tests.bench_helpers import tiny_sweep


@pytest.fixture(scope="module")
def small() -> AnalyticBackend:
    return AnalyticBackend(channels=2, frames=3, height=4, width=4, num_steps=8)


def _outputs(backend, prompt, n=64, seed=0) -> torch.Tensor:
    ctx = SearchContext(
        backend, AnalyticReward(backend), prompt, generator=torch.Generator().manual_seed(seed)
    )
    return ctx.advance(ctx.start(n), to=backend.num_steps).latents


def _batch(backend, x, prompt) -> RewardBatch:
    return RewardBatch(
        data=x,
        sigma=torch.zeros(len(x)),
        conditioning=backend.encode(prompt),
        step=backend.num_steps,
    )


# -- the proxy verifier ---------------------------------------------------------------------------
def test_the_analytic_world_searches_with_the_proxy_by_default(small) -> None:
    assert isinstance(build_reward(None, small), ProxyVerifier)


def test_without_misalignment_and_noise_the_proxy_is_the_exact_reward(small, prompt) -> None:
    x = _outputs(small, prompt, n=8)
    exact = AnalyticReward(small)(_batch(small, x, prompt))
    proxy = ProxyVerifier(small, misalignment=0.0, noise=0.0)(_batch(small, x, prompt))
    assert torch.allclose(proxy, exact, atol=1e-5)


def test_the_proxy_errs_on_clean_outputs_deterministically(small, prompt) -> None:
    """Its error does not vanish at noise level 0, has about the configured spread, and the
    same output always gets the same score. Over 256 outputs the sample std of a
    random-feature sum with std ``noise`` lies within 25% of it (the features make the
    error only approximately Gaussian; 25% is several standard errors of a std estimate,
    ``noise / sqrt(2 * 256)`` = 4.4%)."""
    x = _outputs(small, prompt, n=256)
    proxy = ProxyVerifier(small, misalignment=0.0, noise=0.7)
    exact = AnalyticReward(small)(_batch(small, x, prompt))
    first, again = proxy(_batch(small, x, prompt)), proxy(_batch(small, x, prompt))
    assert torch.equal(first, again)
    error = (first - exact)[:, 1]  # MQ: no misalignment term, only the error
    assert abs(float(error.std()) - 0.7) < 0.25 * 0.7
    assert float(error.abs().mean()) > 0.1


def test_misalignment_turns_the_quality_direction(small, prompt) -> None:
    """With noise 0, VQ' of an output is its projection on d' = cos(t) d + sin(t) u."""
    x = _outputs(small, prompt, n=32)
    proxy = ProxyVerifier(small, misalignment=90.0, noise=0.0)
    vq_true = AnalyticReward(small)(_batch(small, x, prompt))[:, 0]
    vq_seen = proxy(_batch(small, x, prompt))[:, 0]
    # at 90 degrees the proxy's direction is orthogonal to the true one
    assert abs(float(proxy._direction @ small.quality_direction.reshape(-1))) < 1e-6
    assert not torch.allclose(vq_seen, vq_true, atol=1e-2)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("misalignment", 91.0),
        ("noise", -1.0),
        ("length_scale", 0.0),
        ("num_features", 0),
        ("input", "video"),
    ],
)
def test_bad_proxy_options_name_the_field(small, option, value) -> None:
    with pytest.raises(ValueError, match=option):
        ProxyVerifier(small, **{option: value})


# -- evaluators -------------------------------------------------------------------------------------
class _Counted:
    """Counts the particles a reward scores (a mixin for the analytic world's rewards)."""

    def score(self, batch):
        self.scored = getattr(self, "scored", 0) + len(batch.data)
        return super().score(batch)


class _CountedProxy(_Counted, ProxyVerifier):
    pass


class _CountedOracle(_Counted, AnalyticReward):
    pass


def test_evaluate_grades_the_output_apart_from_the_search(small, prompt) -> None:
    proxy = _CountedProxy(small)
    result = BestOfN(n=3).run(small, proxy, prompt, seed=0)
    searched, cost = proxy.scored, result.cost.to_dict()
    assert searched >= 3 and result.cost.reward_calls >= 1
    evaluator = _CountedOracle(small)
    graded = evaluate({"analytic": evaluator}, small, result)
    assert set(graded) == {"analytic"}
    total = graded["analytic"]["total"]
    assert math.isclose(total, float(small.oracle(result.latents[None], prompt)[0]), rel_tol=1e-5)
    assert not math.isclose(total, result.reward, rel_tol=1e-3)  # the proxy saw something else
    # grading is not search compute: the evaluator scored the one output, the search reward
    # was not called again, and the search's cost (calls, FLOPs, seconds) is as it was
    assert evaluator.scored == 1 and proxy.scored == searched
    assert result.cost.to_dict() == cost
    # its time is recorded apart, beside the search's, and none of it is charged to the search
    assert graded["analytic"]["seconds"] > 0
    assert "reward:analytic" not in result.cost.flops_split


def test_repeated_evaluators_are_refused(small) -> None:
    with pytest.raises(ValueError, match="evaluators must be distinct"):
        build_evaluators([("analytic", {}), ("analytic", {"input": "latent"})], small)


def test_bench_rows_carry_evaluator_scores_apart_from_the_search_reward(tmp_path) -> None:
    config = SweepConfig.from_dict(
        tiny_sweep(
            reward={"name": "analytic-proxy"},
            evaluators=[{"name": "analytic"}],
            metric="analytic",
            seeds=2,
        )
    )
    outcome = run_sweep(config, tmp_path / "out", progress=False)
    assert outcome.rows and all(set(r["evaluators"]) == {"analytic"} for r in outcome.rows)
    for row in outcome.rows:
        assert math.isclose(row["evaluators"]["analytic"]["total"], row["oracle"], rel_tol=1e-5)
        assert row["evaluators"]["analytic"]["total"] != row["reward"]
    assert {c.metric for c in outcome.cells} == {"analytic"}
    assert "held-out evaluator" in (outcome.folder / "summary.md").read_text()


def test_a_sweep_graded_by_its_own_reward_says_so(tmp_path) -> None:
    config = SweepConfig.from_dict(tiny_sweep(metric="reward", seeds=1))
    outcome = run_sweep(config, tmp_path / "out", progress=False)
    assert {c.metric for c in outcome.cells} == {"reward"}
    assert "self-graded" in (outcome.folder / "summary.md").read_text()


def test_an_unknown_metric_is_a_config_error() -> None:
    from searchkit.errors import ConfigError

    with pytest.raises(ConfigError, match="metric must be one of oracle, reward, analytic"):
        SweepConfig.from_dict(tiny_sweep(evaluators=[{"name": "analytic"}], metric="clip"))


def test_generate_records_backend_versions_and_evaluators(tmp_path, capsys) -> None:
    out = tmp_path / "gen"
    code = main(
        [
            "generate",
            "--strategy",
            "best-of-n",
            "--n",
            "2",
            "--out",
            str(out),
            "--backend-opt",
            "num_steps=6",
            "--evaluator",
            "analytic",
            "--evaluator-opt",
            "analytic:input=latent",
            "--format",
            "frames",
        ]
    )
    assert code == 0
    record = json.loads((out / "result.json").read_text())
    assert record["backend"]["name"] == "analytic" and record["backend"]["num_steps"] == 6
    assert set(record["versions"]) >= {"searchkit", "torch", "diffusers"}
    assert set(record["evaluators"]) == {"oracle", "analytic"}
    assert set(record["evaluators"]["analytic"]["scores"]) == {"VQ", "MQ", "TA"}
    assert record["reward_config"]["name"] == "analytic-proxy"


def test_an_option_for_an_evaluator_not_named_is_an_error(tmp_path, capsys) -> None:
    code = main(["generate", "--out", str(tmp_path / "g"), "--evaluator-opt", "clip-score:path=x"])
    assert code == 2
    assert "names evaluator 'clip-score', which no --evaluator gives" in capsys.readouterr().err


# -- grading in words: self-graded or held out ------------------------------------------------
def _notes(outcome) -> str:
    """The summary's notes: the lines after its tables."""
    return (outcome.folder / "summary.md").read_text().split("## Cost", 1)[1]


def test_an_evaluator_that_is_every_entrys_search_reward_is_named_self_graded(tmp_path) -> None:
    from searchkit.evaluation import SELF_GRADED

    config = SweepConfig.from_dict(
        tiny_sweep(
            reward={"name": "analytic-proxy"},
            evaluators=[{"name": "analytic-proxy"}],
            metric="analytic-proxy",
            seeds=1,
        )
    )
    assert config.self_graded("analytic-proxy") == ("baseline", "best-of-n")
    outcome = run_sweep(config, tmp_path / "out", progress=False)
    notes = _notes(outcome)
    assert f"metric: analytic-proxy ({SELF_GRADED})" in notes
    assert "held out" not in notes and "held-out" not in notes


def test_an_evaluator_that_is_one_entrys_search_reward_names_that_entry(tmp_path) -> None:
    config = SweepConfig.from_dict(
        tiny_sweep(
            strategies=[
                {"name": "baseline"},
                {"name": "best-of-n", "reward": {"name": "analytic-proxy"}},
            ],
            evaluators=[{"name": "analytic-proxy"}],
            metric="analytic-proxy",
            seeds=1,
        )
    )
    assert config.self_graded("analytic-proxy") == ("best-of-n",)
    assert config.self_graded("oracle") == () and config.self_graded("reward") == (
        "baseline",
        "best-of-n",
    )
    outcome = run_sweep(config, tmp_path / "out", progress=False)
    assert (
        "metric: analytic-proxy (held out, except for best-of-n: self-graded, their search "
        "reward is analytic-proxy)"
    ) in _notes(outcome)


def test_evaluator_on_the_command_line_replaces_the_files_metric(tmp_path, capsys) -> None:
    sweep = tiny_sweep(
        evaluators=[{"name": "analytic-proxy"}], metric="analytic-proxy", seeds=1, num_steps=4
    )
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(sweep), encoding="utf-8")
    out = tmp_path / "out"
    argv = ["bench", "--config", str(path), "--out", str(out), "--no-progress"]
    assert main([*argv, "--evaluator", "analytic"]) == 0
    printed = capsys.readouterr().out
    # the file's metric named an evaluator the command line replaced: the oracle grades now
    assert "metric: oracle (the exact reward of the output)" in printed
    rows = [json.loads(line) for line in (out / "results.jsonl").open()]
    assert rows and all(set(r["evaluators"]) == {"analytic"} for r in rows)


def test_generate_refuses_a_repeated_evaluator_naming_it(tmp_path, capsys) -> None:
    out = tmp_path / "gen"
    argv = ["generate", "--out", str(out), "--evaluator", "analytic", "--evaluator", "analytic"]
    assert main(argv) == 2
    assert "--evaluator 'analytic' is given twice" in capsys.readouterr().err
    assert not (out / "result.json").exists()


def test_generate_says_who_graded_the_output(tmp_path, capsys) -> None:
    from searchkit.evaluation import SELF_GRADED

    # tiny Wan has no oracle: with no evaluator, only the search reward scored the output
    wan = [
        "generate", "--backend", "wan", "--backend-opt", "tiny=true",
        "--backend-opt", "num_steps=3", "--backend-opt", "max_sequence_length=16",
        "--out", str(tmp_path / "wan"),
    ]  # fmt: skip
    assert main(wan) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["evaluators"] == {}
    assert summary["graded_by"].startswith(f"{SELF_GRADED}: only 'pixel' scored it")
    # the analytic world grades by its oracle, which the search never saw
    assert main(["generate", "--backend-opt", "num_steps=4", "--out", str(tmp_path / "a")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["evaluators"]) == {"oracle"}
    assert summary["graded_by"] == "held out: oracle"
