"""The benchmark summary on hand-made rows: paired comparisons, columns, cost, Pareto fronts."""

from __future__ import annotations

import csv
import io
import math
import random

import numpy as np
import pytest
from scipy import stats

from searchkit.bench import format_table, summarize
from searchkit.bench.plot import compute_axes, figure, pareto_front, plot_pareto
from searchkit.bench.tables import to_csv, to_markdown

PROMPTS = ("a red fox", "a lighthouse")
SEEDS = range(8)
PAIRS = [(p, s) for p in PROMPTS for s in SEEDS]


def row(label, budget, pair, value, **extra):
    prompt, seed = pair
    return {
        "key": f"{label}-{budget}-{prompt}-{seed}",
        "label": label,
        "strategy": label,
        "budget_nfe": budget,
        "size_knob": None if budget is None else "n",
        "size": None if budget is None else budget // 100,
        "prompt": prompt,
        "prompt_index": PROMPTS.index(prompt),
        "seed": seed,
        "nfe": 100 if budget is None else budget,
        "reward": value + 1.0,  # a search reward that is not the metric
        "oracle": value,
        "seconds": {"total": 1.0},
        **extra,
    }


def rows_of(label, budget, values, pairs=PAIRS, **extra):
    return [
        row(label, budget, pair, float(v), **extra) for pair, v in zip(pairs, values, strict=True)
    ]


def by_label(cells, budget=200):
    return {c.label: c for c in cells if c.budget_nfe == budget}


def md_headers(markdown: str) -> list[list[str]]:
    return [
        [h.strip() for h in line.strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith("| strategy")
    ]


def csv_header(cells) -> list[str]:
    return next(csv.reader(io.StringIO(to_csv(cells))))


# -- paired comparisons ---------------------------------------------------------------------
def test_clearly_better_best_gives_the_direct_paired_interval_excluding_zero():
    rng = np.random.default_rng(0)
    base = rng.normal(3.0, 1.0, len(PAIRS))  # the prompt-and-seed part both strategies share
    strong = base + 1.0 + 0.1 * rng.normal(size=len(PAIRS))
    weak = base + 0.2 * rng.normal(size=len(PAIRS))
    rows = rows_of("baseline", None, base) + rows_of("weak", 200, weak)
    rows += rows_of("strong", 200, strong)
    cells = by_label(summarize(rows, order=["baseline", "weak", "strong"]))
    assert cells["strong"].best and cells["strong"].vs_best is None and not cells["weak"].best
    paired = cells["weak"].vs_best
    d = weak - strong
    n = len(d)
    half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)
    assert paired.pairs == n == 16
    assert paired.diff == pytest.approx(d.mean())
    assert (paired.low, paired.high) == pytest.approx((d.mean() - half, d.mean() + half))
    reference = stats.ttest_rel(weak, strong).confidence_interval(0.95)
    assert (paired.low, paired.high) == pytest.approx((reference.low, reference.high))
    assert paired.win_rate == pytest.approx(np.mean(weak > strong))
    # the true difference is -1 and sd(d) is about 0.22, so the half-width is about
    # t(0.975, 15) * 0.22 / 4 = 0.12: the interval lies far below 0
    assert paired.high < 0
    # the marginal intervals overlap far more: pairing is what makes the difference clear
    assert cells["weak"].ci_high > cells["strong"].ci_low


def test_identical_strategies_differ_by_zero_with_an_interval_holding_zero():
    values = np.random.default_rng(1).normal(size=len(PAIRS))
    rows = rows_of("one", 200, values) + rows_of("twin", 200, values)
    cells = by_label(summarize(rows, order=["one", "twin"]))
    assert cells["one"].best  # equal means: the first in order
    paired = cells["twin"].vs_best
    assert paired.diff == 0.0 and paired.low <= 0.0 <= paired.high and paired.win_rate == 0.5


def test_win_rates_against_best_and_baseline_are_exact():
    pairs = PAIRS[:4]
    rows = rows_of("baseline", None, [2, 3, 4, 1], pairs)
    rows += rows_of("best-of-n", 200, [3, 3, 3, 3], pairs)
    rows += rows_of("rgrp", 200, [4, 3, 1, 2], pairs)  # vs best: win, tie, loss, loss
    cells = by_label(summarize(rows))
    assert cells["best-of-n"].best
    assert cells["rgrp"].vs_best.win_rate == (1 + 0.5) / 4
    assert cells["rgrp"].vs_best.diff == pytest.approx(-0.5)
    assert cells["rgrp"].win_rate == (1 + 0.5 + 0 + 1) / 4  # vs baseline [2, 3, 4, 1]
    assert cells["best-of-n"].win_rate == (1 + 0.5 + 0 + 1) / 4


def test_only_shared_prompt_seed_pairs_are_compared():
    rng = np.random.default_rng(2)
    best, other = rng.normal(2.0, 1.0, len(PAIRS)), rng.normal(0.0, 1.0, len(PAIRS))
    rows = rows_of("best", 200, best) + rows_of("other", 200, other)[:-3]  # 3 runs missing
    cells = by_label(summarize(rows))
    paired = cells["other"].vs_best
    d = other[:-3] - best[:-3]
    assert paired.pairs == len(PAIRS) - 3 and paired.diff == pytest.approx(d.mean())
    assert cells["other"].runs == len(PAIRS) - 3 and cells["best"].runs == len(PAIRS)


def test_fixed_entries_compare_among_themselves_and_budgets_apart():
    rng = np.random.default_rng(3)
    rows = rows_of("baseline", None, rng.normal(size=len(PAIRS)))
    rows += rows_of("paper-rgrp", None, rng.normal(5.0, 1.0, len(PAIRS)))
    rows += rows_of("best-of-n", 200, rng.normal(9.0, 1.0, len(PAIRS)))
    cells = summarize(rows, order=["baseline", "paper-rgrp", "best-of-n"])
    assert [(c.label, c.budget_nfe) for c in cells] == [
        ("baseline", None),
        ("paper-rgrp", None),
        ("best-of-n", 200),
    ]
    fixed = by_label(cells, None)
    assert fixed["paper-rgrp"].best and fixed["baseline"].vs_best.pairs == len(PAIRS)
    lone = cells[2]  # alone at its budget: nothing to compare, although its mean is highest
    assert not lone.best and lone.vs_best is None


def test_a_lone_cell_is_compared_with_the_best_at_the_nearest_lower_budget():
    pairs = PAIRS[:4]
    rows = rows_of("baseline", None, [0, 0, 0, 0], pairs)
    rows += rows_of("lowest", 100, [9, 9, 9, 9], pairs)  # alone, nothing cheaper
    rows += rows_of("a", 200, [1, 2, 3, 4], pairs)
    rows += rows_of("b", 200, [2, 2, 2, 2], pairs)  # a is best at 200 (mean 2.5 > 2)
    rows += rows_of("freqprior", 220, [2, 2, 3, 5], pairs)  # alone: against a @ 200
    rows += rows_of("c", 1600, [5, 5, 5, 5], pairs)
    rows += rows_of("evo", 2400, [6, 4, 5, 5], pairs)  # alone: against c @ 1600, not a
    cells = {c.label: c for c in summarize(rows)}
    lone = cells["freqprior"]
    assert not lone.best and lone.vs_best is None and lone.cheaper == "a @ 200 NFE"
    assert lone.vs_cheaper.pairs == 4 and lone.vs_cheaper.diff == pytest.approx(0.5)
    assert lone.vs_cheaper.win_rate == (1 + 0.5 + 0.5 + 1) / 4  # win, tie, tie, win
    evo = cells["evo"]
    assert evo.cheaper == "c @ 1600 NFE" and evo.vs_cheaper.diff == pytest.approx(0.0)
    assert evo.vs_cheaper.win_rate == 0.5
    # c is alone at 1600 too: the nearest lower budget with cells is 220 (freqprior)
    assert cells["c"].cheaper == "freqprior @ 220 NFE"
    for label in ("baseline", "lowest", "a", "b"):  # grouped, fixed, or nothing cheaper
        assert cells[label].vs_cheaper is None and cells[label].cheaper is None
    # every cell but the baseline also gets its paired difference to the baseline
    assert cells["baseline"].vs_baseline is None
    assert cells["freqprior"].vs_baseline.diff == pytest.approx(3.0)
    assert cells["freqprior"].vs_baseline.win_rate == cells["freqprior"].win_rate == 1.0
    quality, _ = assert_distinct(list(cells.values()))
    for name in ("diff vs baseline [95%]", "cheaper best", "diff vs cheaper [95%]"):
        assert name in quality
    header = csv_header(list(cells.values()))
    assert "vs_cheaper_diff" in header and "vs_baseline_diff" in header
    assert "vs_baseline_win_rate" not in header  # it is win_rate
    assert "| freqprior | 220 |" in to_markdown(list(cells.values()))
    assert "a @ 200 NFE | 0.500 [" in to_markdown(list(cells.values()))
    assert "diff vs cheaper:" in format_table(list(cells.values()))


def test_summary_does_not_depend_on_row_order():
    rng = np.random.default_rng(4)
    rows = rows_of("baseline", None, rng.normal(size=len(PAIRS)))
    rows += rows_of("a", 200, rng.normal(size=len(PAIRS)))
    rows += rows_of("b", 200, rng.normal(size=len(PAIRS)))
    shuffled = list(rows)
    random.Random(0).shuffle(shuffled)
    assert summarize(shuffled, ["baseline", "a", "b"]) == summarize(rows, ["baseline", "a", "b"])


# -- columns ----------------------------------------------------------------------------------
def assert_distinct(cells):
    headers = md_headers(to_markdown(cells))
    assert len(headers) == 2  # quality and cost
    for header in [*headers, csv_header(cells)]:
        assert len(header) == len(set(header)), header
    return headers


def test_a_reward_metric_is_not_repeated_as_the_search_reward():
    rows = [
        {**r, "oracle": None} for r in rows_of("a", 200, range(16)) + rows_of("b", 200, range(16))
    ]
    cells = summarize(rows)
    quality, _ = assert_distinct(cells)
    assert cells[0].metric == "reward" and cells[0].reward_mean is None
    assert quality.count("mean reward") == 1 and "mean search reward" not in quality
    assert "reward_mean" not in csv_header(cells)


def test_a_search_reward_equal_to_the_oracle_is_shown_once():
    rows = [{**r, "reward": r["oracle"]} for r in rows_of("a", 200, range(16))]
    quality, _ = assert_distinct(summarize(rows))
    assert "mean oracle" in quality and "mean search reward" not in quality
    # a search reward that differs from the oracle is a column of its own
    quality, _ = assert_distinct(summarize(rows_of("a", 200, range(16))))
    assert "mean oracle" in quality and "mean search reward" in quality


def test_evaluators_get_one_column_each_and_the_metric_one_only():
    def graded(r):
        evaluators = {"vr": {"total": r["oracle"] * 2}, "clip": {"total": 0.3}}
        return {**r, "oracle": None, "evaluators": evaluators}

    rows = [graded(r) for r in rows_of("a", 200, range(16)) + rows_of("b", 200, range(16))]
    cells = summarize(rows)
    quality, _ = assert_distinct(cells)
    assert cells[0].metric == "vr" and cells[0].mean == pytest.approx(2 * np.mean(range(16)))
    assert cells[0].evaluator_means == {"clip": pytest.approx(0.3)}
    assert "mean vr" in quality and "mean clip" in quality and "mean search reward" in quality
    header = csv_header(cells)
    assert "evaluator:clip" in header and "evaluator:vr" not in header


# -- cost: the paper's columns ----------------------------------------------------------------
def test_cost_columns_report_seconds_split_flops_and_time_over_the_baseline():
    def timed(scale):
        split = {"model": 1.0 * scale, "decode": 0.25 * scale, "reward": 0.5 * scale}
        return {**split, "other": 0.25 * scale, "total": 2.0 * scale, "run": 2.5 * scale}

    rows = rows_of("baseline", None, range(16), seconds=timed(1.0), flops=1e12)
    rows += rows_of("rgrp", None, range(1, 17), seconds=timed(3.0), flops=4e12)
    cells = by_label(summarize(rows), None)
    rgrp = cells["rgrp"]
    assert rgrp.seconds_mean == 6.0 and rgrp.time_ratio == 3.0 and rgrp.flops_mean == 4e12
    assert rgrp.seconds_split == {"model": 3.0, "decode": 0.75, "reward": 1.5, "other": 0.75}
    _, cost = assert_distinct(list(cells.values()))
    for name in ("mean NFE", "FLOPs", "s/video", "model s", "decode s", "reward s", "other s"):
        assert name in cost
    text = format_table(list(cells.values()))
    assert "rgrp      fixed       -     100.0     4e+12  6.0000   3.0000" in text
    assert text.rstrip().endswith("3.00x") and "\nquality\n" in f"\n{text}"
    # a cell with a row without FLOPs has none (not a mean of some), and the figure no FLOPs panel
    rows[0] = {k: v for k, v in rows[0].items() if k != "flops"}
    cells = summarize(rows)
    assert cells[0].flops_mean is None and cells[1].flops_mean == 4e12
    assert "| baseline | fixed | - | 100.0 | - |" in to_markdown(cells)
    assert [attr for attr, _ in compute_axes(cells)] == ["nfe_mean", "seconds_mean"]
    no_flops = summarize([{k: v for k, v in r.items() if k != "flops"} for r in rows])
    assert "FLOPs" not in md_headers(to_markdown(no_flops))[1]


# -- the figure -------------------------------------------------------------------------------
def test_pareto_front_on_hand_made_points():
    x = [1.0, 2.0, 2.0, 4.0, 8.0, 3.0, 8.0, math.nan]
    y = [1.0, 3.0, 2.0, 3.0, 5.0, 0.5, 5.0, 9.0]
    # (2, 2) and (4, 3) lose to (2, 3); (3, 0.5) to (1, 1); the two (8, 5) tie, both stay;
    # the point without an x takes no part
    assert pareto_front(x, y) == [0, 1, 4, 6]
    assert pareto_front([1.0], [0.0]) == [0]


def test_figure_has_a_panel_per_compute_axis_with_its_front(tmp_path):
    rows = rows_of("baseline", None, [1.0] * 16, seconds={"total": 1.0})
    rows += rows_of("a", 200, [2.0] * 16, seconds={"total": 4.0})
    rows += rows_of("b", 200, [3.0] * 16, seconds={"total": 2.0})
    cells = summarize(rows, ["baseline", "a", "b"])
    fig = figure(cells)
    assert [ax.get_xlabel() for ax in fig.axes] == [
        "mean NFE per run (model forwards)",
        "seconds per video (search wall clock)",
    ]
    fronts = [
        [tuple(p) for p in np.column_stack(line.get_data())]
        for ax in fig.axes
        for line in ax.get_lines()
        if line.get_label() == "Pareto front"
    ]
    # NFE: baseline (100, 1) and b (200, 3); seconds: baseline (1 s, 1) and b (2 s, 3)
    assert fronts == [[(100.0, 1.0), (200.0, 3.0)], [(1.0, 1.0), (2.0, 3.0)]]
    # a and b share a budget: drawn apart by a small shift, both near 200
    drawn = {bars.get_label(): bars.lines[0].get_xdata()[0] for bars in fig.axes[0].containers}
    assert (
        drawn["a"] != drawn["b"]
        and 0.95 < drawn["a"] / 200 < 1.05
        and 0.95 < drawn["b"] / 200 < 1.05
    )
    with_flops = summarize([{**r, "flops": 1e9 * r["nfe"]} for r in rows])
    assert len(figure(with_flops).axes) == 3
    split = summarize([{**r, "flops": {"total": 1e9 * r["nfe"], "model": 1.0}} for r in rows])
    assert [c.flops_mean for c in split] == [c.flops_mean for c in with_flops] == [1e11, 2e11, 2e11]
    path = plot_pareto(cells, tmp_path / "f.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
