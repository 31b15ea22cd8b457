"""``searchkit show`` and ``searchkit.show``: the drawn lineage is the trace's, and files get written."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from searchkit import RGRP, BestOfN, Trace
from searchkit.backends import AnalyticBackend
from searchkit.lineage import trace_lineage
from searchkit.rewards import AnalyticReward
from searchkit.show import result_html, trace_figure

PROMPT = "a red fox running through fresh snow"


@pytest.fixture(scope="module")
def rgrp_result():
    backend = AnalyticBackend(num_steps=20)
    return RGRP(num_particles=6, schedule=(4, 8, 12)).run(
        backend, AnalyticReward(backend), PROMPT, seed=0
    )


@pytest.fixture(scope="module")
def duplicating_result():
    # duplicates kept under a stochastic solver: resampling makes children with parents
    backend = AnalyticBackend(num_steps=20, solver="sde-dpmsolver++")
    return RGRP(num_particles=6, schedule=(4, 8, 12), keep_duplicates=True).run(
        backend, AnalyticReward(backend), PROMPT, seed=1
    )


def _check_against_trace(trace: Trace) -> None:
    lineage = trace_lineage(trace)
    assert lineage.num_steps == 20
    decisions = [r for r in trace if r.survivors is not None]
    assert decisions, "the run must have made decisions"
    for record in decisions:
        survivors = set(record.survivors.tolist())
        carried = {s.target for s in lineage.segments_from(record.step)}
        assert carried == survivors, f"step {record.step}: drawn {carried}, trace {survivors}"
        pruned = {pid for pid, step in lineage.pruned if step == record.step}
        assert pruned == set(record.ids.tolist()) - survivors
    for segment in lineage.segments:
        if segment.kind == "branch":
            assert trace.parents[segment.target] == segment.source
        else:
            assert segment.source == segment.target and segment.start < segment.stop
    # every particle the trace shows alive, and only those (a select may create duplicates
    # that a later select in the same decision drops: they never carry on and are not drawn)
    alive = {int(i) for r in trace for i in r.ids.tolist()}
    alive |= {int(i) for r in decisions for i in r.survivors.tolist()}
    born = {s.target for s in lineage.segments if s.kind == "branch"}
    assert born == {pid for pid in alive if trace.parents[pid] >= 0}
    assert lineage.output == (trace.output, 20)
    scored = [(int(i), r.step) for r in trace for i in r.ids.tolist()]
    assert [(p.id, p.step) for p in lineage.points] == scored
    assert set(lineage.lanes) == alive and sorted(lineage.lanes.values()) == list(range(len(alive)))


def test_the_lineage_of_an_rgrp_run_is_its_trace(rgrp_result) -> None:
    trace = rgrp_result.trace
    assert len(trace.parents) == 6 and trace.output in range(6)
    _check_against_trace(trace)
    # RGRP prunes: particles end before the last step, and only the output reaches it
    lineage = trace_lineage(trace)
    assert lineage.pruned and all(step < 20 for _, step in lineage.pruned)


def test_the_lineage_with_resampled_duplicates_is_its_trace(duplicating_result) -> None:
    trace = duplicating_result.trace
    assert any(parent >= 0 for parent in trace.parents)
    _check_against_trace(trace)
    lineage = trace_lineage(trace)
    for segment in lineage.segments:  # children are drawn right below their parent's subtree
        if segment.kind == "branch":
            assert lineage.lanes[segment.target] > lineage.lanes[segment.source]


def test_the_figure_draws_exactly_the_lineage(duplicating_result, tmp_path) -> None:
    from matplotlib.collections import LineCollection

    path = tmp_path / "trace.png"
    fig = duplicating_result.plot_trace(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lineage = trace_lineage(duplicating_result.trace)
    lines = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    lane = lineage.lanes
    for collection, kind in zip(lines, ("path", "branch"), strict=True):
        drawn = [tuple(map(tuple, seg.tolist())) for seg in collection.get_segments()]
        want = [
            ((s.start, lane[s.source]), (s.stop, lane[s.target]))
            for s in lineage.segments
            if s.kind == kind
        ]
        assert drawn == want


def test_traces_read_back_from_json(rgrp_result) -> None:
    payload = json.loads(json.dumps(rgrp_result.to_dict()))
    trace = Trace.from_dict(payload["trace"])
    assert trace.to_dict() == rgrp_result.trace.to_dict()
    assert trace_lineage(payload["trace"]) == trace_lineage(rgrp_result.trace)
    # files written before the output id was recorded: the final record's one particle
    del payload["trace"]["output"]
    assert Trace.from_dict(payload["trace"]).output is None
    assert trace_lineage(payload["trace"]).output == (rgrp_result.trace.output, 20)
    with pytest.raises(ValueError, match="trace must be"):
        trace_lineage({"advances": []})


def test_best_of_n_lineage_marks_the_unpicked_as_pruned() -> None:
    backend = AnalyticBackend(num_steps=6)
    result = BestOfN(n=3).run(backend, AnalyticReward(backend), PROMPT, seed=2)
    lineage = trace_lineage(result.trace)
    assert lineage.output == (result.trace.output, 6)
    assert {pid for pid, _ in lineage.pruned} == {0, 1, 2} - {result.trace.output}
    trace_figure(result)  # a figure without branches draws too


def test_notebook_view_shows_the_summary_and_the_video(rgrp_result) -> None:
    page = rgrp_result._repr_html_()
    assert "rgrp" in page and PROMPT in page and f"{rgrp_result.reward:.4f}" in page
    assert f"{rgrp_result.cost.nfe} NFE" in page
    assert "data:image/gif;base64," in page
    without = attrs.evolve(rgrp_result, video=None)
    assert "<img" not in result_html(without) and PROMPT in result_html(without)


def test_cli_show_draws_a_generated_result(tmp_path, capsys) -> None:
    from searchkit.cli import main

    out = tmp_path / "run"
    args = ["generate", "--backend-opt", "num_steps=20", "--strategy", "rgrp"]
    args += ["--schedule", "4,8,12", "--format", "frames", "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["show", str(out / "result.json"), "--out", str(tmp_path / "fig")]) == 0
    files = json.loads(capsys.readouterr().out)
    assert set(files) == {"trace", "frames"}
    for path in files.values():
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["show", str(tmp_path / "missing.json")]) == 2
    assert "result file not found" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"strategy": "x"}')
    assert main(["show", str(tmp_path / "bad.json")]) == 2
    assert "holds no search trace" in capsys.readouterr().err
