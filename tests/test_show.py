"""``searchkit show`` and ``searchkit.show``: the drawn lineage is the trace's, and files get written."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
import torch

from searchkit import RGRP, BestOfN, Trace
from searchkit.backends import AnalyticBackend
from searchkit.errors import InputError, SearchkitError
from searchkit.lineage import trace_lineage
from searchkit.rewards import AnalyticReward
from searchkit.show import NO_CANDIDATES, result_html, trace_figure

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


@pytest.mark.parametrize(
    ("flags", "keywords", "expected"),
    [
        (
            ["--max-frames", "0"],
            {"max_frames": 0},
            ("--max-frames must be >= 1, got 0", "max_frames must be a positive integer, got 0"),
        ),
        ([], {}, ("video not found", "video not found")),
    ],
)
def test_show_checks_everything_before_it_writes_anything(
    flags, keywords, expected, rgrp_result, tmp_path, capsys
) -> None:
    from searchkit.cli import main
    from searchkit.show import show_result_file
    from searchkit.video_io import save_result

    run = tmp_path / "run"
    files = save_result(rgrp_result, run, video_format="frames")
    if not flags:  # a result whose video is gone
        for frame in Path(files["video"]).iterdir():
            frame.unlink()
        Path(files["video"]).rmdir()
    before = sorted(p.name for p in run.iterdir())
    code = main(["show", str(run), "--out", str(tmp_path / "fig"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"searchkit show: error: {expected[0]}"), err
    with pytest.raises(SearchkitError) as caught:
        show_result_file(run, **keywords)
    assert expected[1] in str(caught.value)
    assert not (tmp_path / "fig").exists()
    assert sorted(p.name for p in run.iterdir()) == before  # no trace.png beside the result


# -- candidates' frames ------------------------------------------------------------------------
def _pixel_best_of_n(n: int = 5):
    from searchkit.rewards import PixelReward

    backend = AnalyticBackend(num_steps=6)
    return BestOfN(n=n).run(backend, PixelReward(backend), PROMPT, seed=3)


def test_best_of_n_with_a_video_reward_keeps_one_strip_per_candidate_scored_as_in_the_trace():
    from searchkit.candidates import THUMB_FRAMES

    result = _pixel_best_of_n(5)
    candidates = result.candidate_frames
    (record,) = result.trace.scored
    assert len(candidates) == 5 and candidates.dropped == 0
    assert candidates.ids.tolist() == record.ids.tolist()
    assert candidates.steps.tolist() == [6] * 5
    assert torch.equal(candidates.scores(result.trace), record.total)
    assert candidates.frames.dtype == torch.uint8
    assert candidates.frames.shape[:2] == (5, THUMB_FRAMES)
    # the strip of the output is its video's frames (the analytic world's video is tiny, so
    # they are kept at full size, only quantised)
    out = candidates.ids.tolist().index(result.trace.output)
    picked = result.video[candidates.frame_index[out]]
    assert torch.equal(candidates.frames[out], (picked.clamp(0, 1) * 255 + 0.5).to(torch.uint8))


def test_every_strip_names_its_scoring_event_across_generations():
    from searchkit import EvoSearch
    from searchkit.rewards import PixelReward

    backend = AnalyticBackend(num_steps=8)
    strategy = EvoSearch(initial_population=4, population=3, evolution_steps=(2, 4))
    result = strategy.run(backend, PixelReward(backend), PROMPT, seed=0)
    candidates = result.candidate_frames
    assert len(candidates) == sum(len(r.ids) for r in result.trace) == 4 + 3 + 3
    for event, row, pid, step in zip(
        *(
            t.tolist()
            for t in (candidates.events, candidates.rows, candidates.ids, candidates.steps)
        ),
        strict=True,
    ):
        assert int(result.trace[event].ids[row]) == pid and result.trace[event].step == step


def test_thumbnails_are_bounded_in_size_count_and_frames():
    from searchkit.candidates import THUMB_FRAMES, THUMB_SIDE, CandidateKeeper, thumbnails

    video = torch.rand(2, 9, 200, 300, 3)
    strips = thumbnails(video)
    assert strips.shape == (2, THUMB_FRAMES, 64, THUMB_SIDE, 3) and strips.dtype == torch.uint8
    keeper = CandidateKeeper(limit=3)
    assert keeper.snapshot() is None
    keeper.keep(0, torch.tensor([0, 1]), 2, video)
    keeper.keep(1, torch.tensor([5, 6]), 4, torch.rand(2, 9, 100, 150, 3))
    kept = keeper.snapshot()
    # the oldest strip is dropped; later strips take the first strips' size
    assert kept.ids.tolist() == [1, 5, 6] and kept.events.tolist() == [0, 1, 1]
    assert kept.dropped == 1 and kept.frames.shape == (3, THUMB_FRAMES, 64, THUMB_SIDE, 3)


def test_candidate_sheet_from_python_and_from_the_saved_files(tmp_path) -> None:
    from searchkit.candidates import CandidateFrames
    from searchkit.show import candidate_sheet, show_result_file
    from searchkit.video_io import save_result

    result = _pixel_best_of_n(4)
    fig = candidate_sheet(result, tmp_path / "sheet.png")
    assert (tmp_path / "sheet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = [ax.get_ylabel() for ax in fig.axes]
    scores = result.candidate_frames.scores(result.trace).tolist()
    ids = result.candidate_frames.ids.tolist()
    assert labels == [
        ("output\n" if pid == result.trace.output else "") + f"id {pid} · step 6\n{s:.3f}"
        for pid, s in zip(ids, scores, strict=True)
    ]
    files = save_result(result, tmp_path / "run", video_format="frames")
    loaded = CandidateFrames.load(files["candidates"])
    for name in ("events", "rows", "ids", "steps", "frame_index", "frames"):
        assert torch.equal(getattr(loaded, name), getattr(result.candidate_frames, name)), name
    shown = show_result_file(tmp_path / "run", tmp_path / "fig")
    assert set(shown) == {"trace", "frames", "candidates"}
    assert Path(shown["candidates"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError, match="no candidate frames"):
        candidate_sheet(attrs.evolve(result, candidate_frames=None))


def test_a_latent_reward_keeps_no_candidates_and_show_says_so(rgrp_result, tmp_path, capsys):
    from searchkit.cli import main

    assert rgrp_result.candidate_frames is None
    out = tmp_path / "run"
    assert main(["generate", "--backend-opt", "num_steps=8", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["show", str(out)]) == 0
    captured = capsys.readouterr()
    assert set(json.loads(captured.out)) == {"trace", "frames"}
    assert captured.err.strip().splitlines() == [NO_CANDIDATES]


# -- the trace figure's readability ---------------------------------------------------------------
def _legend(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_the_legend_lists_only_what_is_drawn(duplicating_result) -> None:
    backend = AnalyticBackend(num_steps=6)
    plain = BestOfN(n=3).run(backend, AnalyticReward(backend), PROMPT, seed=2)
    assert not any("branched" in t for t in _legend(trace_figure(plain)))
    assert any("branched" in t for t in _legend(trace_figure(duplicating_result)))


def test_the_output_star_leaves_its_dot_visible_and_the_colours_skip_the_last_step(
    rgrp_result,
) -> None:
    fig = trace_figure(rgrp_result)
    ax = fig.axes[0]
    dots, star = ax.collections[2], ax.collections[-1]
    final = rgrp_result.trace[-1]
    lineage = trace_lineage(rgrp_result.trace)
    out_dot = [
        tuple(xy) for xy in dots.get_offsets().tolist() if xy[0] == 20
    ]  # the output's dot at the last step
    assert len(out_dot) == 1 and star.get_offsets()[0][0] > out_dot[0][0]
    assert f"{float(final.total[0]):.3f}" in [t.get_text() for t in ax.texts]
    before = [p.score for p in lineage.points if p.step < 20]
    assert dots.norm.vmin == pytest.approx(min(before)) and dots.norm.vmax == pytest.approx(
        max(before)
    )


def test_notebook_view_gives_the_flops_and_their_split(rgrp_result) -> None:
    page = rgrp_result._repr_html_()
    cost = rgrp_result.cost
    assert cost.flops is not None and f"{cost.flops:.3g} (forward " in page
    for part, value in cost.flops_split.items():
        assert f"{part} {value:.3g}" in page
    assert "FLOPs" not in result_html(
        attrs.evolve(rgrp_result, cost=attrs.evolve(cost, flops=None, flops_split={}))
    )
