"""VBench-2.0 output: file names, folders and sample counts, the layout check, generation
over a prompt file (and its resumption), and VBench-2.0's scores read back as a table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import imageio.v2 as imageio
import pytest

from searchkit.bench import vbench
from searchkit.bench.vbench import (
    check_layout,
    load_vbench_prompts,
    plan_videos,
    samples_per_prompt,
    save_vbench_video,
    video_file_name,
)
from searchkit.bench.vbench_results import category_scores, read_vbench_scores, vbench_table
from searchkit.cli import main

# Exactly 180 characters, the last a space: the name keeps it (nothing is stripped).
HEAD_180 = (
    "A tall lighthouse keeper climbs the spiral stairs at dusk, lights the great lamp, then "
    "walks out onto the gallery as the beam sweeps across the stormy sea and a small, old fishing "
)
LONG = HEAD_180 + "boat turns toward the harbour."
QUOTED = 'She says "hello, world", then the chef\'s knife slices 3 tomatoes; 50% done: wow!'
RECORDS = [
    {"prompt_en": "Garden, zoom in.", "dimension": ["Camera_Motion"], "auxiliary_info": "zoom_in"},
    {"prompt_en": "A man is playing basketball.", "dimension": ["Diversity"]},
    {
        "prompt_en": LONG,
        "dimension": ["Complex_Plot"],
        "prompt_aug": "A detailed lighthouse scene.",
    },
    {"prompt_en": QUOTED, "dimension": "Human_Clothes"},  # the bare-string form of meta_info files
]


def _expected() -> set[str]:
    """The relative paths VBench-2.0 looks up for RECORDS, written out by hand."""
    return (
        {f"Camera_Motion/Garden, zoom in.-{i}.mp4" for i in range(3)}
        | {f"Diversity/A man is playing basketball.-{i}.mp4" for i in range(20)}
        | {f"Complex_Plot/{HEAD_180}-{i}.mp4" for i in range(3)}
        | {f"Human_Clothes/{QUOTED}-{i}.mp4" for i in range(3)}
    )


@pytest.fixture
def prompts_file(tmp_path):
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps(RECORDS), encoding="utf-8")
    return path


def _tree(root) -> set[str]:
    """Every file under ``root`` (hidden ones too), relative, outside searchkit's own folder."""
    found = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != vbench.STATE_DIR]
        found |= {os.path.relpath(os.path.join(folder, f), root) for f in files}
    return found


def test_names_folders_and_sample_counts(prompts_file):
    assert len(HEAD_180) == 180 and HEAD_180.endswith(" ")
    plan = plan_videos(load_vbench_prompts(prompts_file))
    assert {f"{s.dimension}/{s.file_name}" for s in plan} == _expected()
    assert len(plan) == 3 + 20 + 3 + 3
    assert video_file_name(LONG, 2) == HEAD_180 + "-2.mp4"
    assert video_file_name(QUOTED, 0) == QUOTED + "-0.mp4"
    # the count follows the record's first dimension, as VBench-2.0 counts it
    assert samples_per_prompt(["Diversity"]) == 20
    assert samples_per_prompt(["Diversity", "Mechanics"]) == 20
    assert samples_per_prompt(["Mechanics", "Diversity"]) == 3
    # the model gets the augmented prompt; the file keeps the original's name
    long_slots = [s for s in plan if s.dimension == "Complex_Plot"]
    assert {s.prompt for s in long_slots} == {"A detailed lighthouse scene."}
    assert {
        s.prompt
        for s in plan_videos(load_vbench_prompts(prompts_file), augmented=False)
        if s.dimension == "Complex_Plot"
    } == {LONG}
    # every video its own seed, the same on every plan, independent of the file's order
    assert len({s.seed for s in plan}) == len(plan)
    reordered = plan_videos(load_vbench_prompts(prompts_file)[::-1])
    assert {(s.dimension, s.file_name, s.seed) for s in reordered} == {
        (s.dimension, s.file_name, s.seed) for s in plan
    }
    shifted = plan_videos(load_vbench_prompts(prompts_file), seed=5)
    assert [s.seed - 5 for s in shifted] == [s.seed for s in plan]


def test_a_record_in_two_dimensions_fills_both_folders(tmp_path):
    path = tmp_path / "two.json"
    path.write_text(
        json.dumps(
            [
                {"prompt_en": "A ball rolls.", "dimension": ["Mechanics", "Material"]},
                {"prompt_en": "A ball rolls.", "dimension": ["Mechanics"]},
            ]
        )
    )
    plan = plan_videos(load_vbench_prompts(path))
    assert sorted(f"{s.dimension}/{s.file_name}" for s in plan) == sorted(
        [f"Mechanics/A ball rolls.-{i}.mp4" for i in range(3)]
        + [f"Material/A ball rolls.-{i}.mp4" for i in range(3)]
    )


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"prompt_en": "AC/DC plays on a stage.", "dimension": ["Composition"]},
            r"record 1: .*'/'",
        ),
        (
            {"prompt_en": "A cat.", "dimension": ["Aesthetic_Quality"]},
            r"record 1: unknown dimension 'Aesthetic_Quality'",
        ),
        (
            {"prompt_en": "A cat.", "dimension": []},
            r"record 1: 'dimension' must be a non-empty list",
        ),
        (
            {"prompt_en": "  ", "dimension": ["Composition"]},
            r"record 1: lacks a non-empty string 'prompt_en'",
        ),
        (
            {"prompt_en": "A cat.", "dimension": ["Composition"], "prompt_aug": 3},
            r"record 1: 'prompt_aug'",
        ),
        (
            {"prompt_en": "\u2019" * 90, "dimension": ["Composition"]},
            r"record 1: .*longer than 255 bytes",
        ),
    ],
)
def test_a_record_vbench_cannot_grade_is_refused(tmp_path, record, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([RECORDS[0], record]), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_vbench_prompts(path)


def test_the_check_reports_a_missing_and_a_stray_file(prompts_file, tmp_path):
    plan = plan_videos(load_vbench_prompts(prompts_file))
    root = tmp_path / "videos"
    for slot in plan:
        slot.path(root).parent.mkdir(parents=True, exist_ok=True)
        slot.path(root).write_bytes(b"video")
    assert check_layout(plan, root).ok
    gone = plan[4].path(root)
    gone.unlink()
    (root / "Diversity" / "notes.txt").write_text("mine")
    (root / "Camera_Motion" / ".DS_Store").write_bytes(b"")
    (root / "unrelated.txt").write_text("the root is not read by VBench-2.0")
    report = check_layout(plan, root)
    assert not report.ok
    assert report.missing == (gone,)
    assert set(report.stray) == {
        root / "Diversity" / "notes.txt",
        root / "Camera_Motion" / ".DS_Store",
    }
    assert report.expected == len(plan)
    text = report.describe()
    assert f"missing: {gone}" in text and "notes.txt" in text


def test_an_empty_file_counts_as_missing(prompts_file, tmp_path):
    plan = plan_videos(load_vbench_prompts(prompts_file))
    plan[0].path(tmp_path).parent.mkdir(parents=True)
    plan[0].path(tmp_path).write_bytes(b"")
    assert plan[0].path(tmp_path) in check_layout(plan, tmp_path).missing


def test_a_failed_write_leaves_nothing_in_the_video_folder(prompts_file, tmp_path, monkeypatch):
    import torch

    import searchkit.video_io

    slot = plan_videos(load_vbench_prompts(prompts_file))[0]

    def crash(video, path, fps=16):
        with open(path, "wb") as handle:
            handle.write(b"half a video")
        raise RuntimeError("encoder died")

    monkeypatch.setattr(searchkit.video_io, "write_video", crash)
    with pytest.raises(RuntimeError, match="encoder died"):
        save_vbench_video(torch.zeros(5, 8, 8, 3), slot, tmp_path)
    assert os.listdir(tmp_path / slot.dimension) == []
    assert os.listdir(tmp_path / vbench.STATE_DIR / "partial") == []


def _frames(path):
    reader = imageio.get_reader(path)
    try:
        return [frame.copy() for frame in reader], reader.get_meta_data()["fps"]
    finally:
        reader.close()


def test_generate_over_a_prompt_file_writes_exactly_the_layout_and_resumes(
    prompts_file, tmp_path, capsys
):
    out = tmp_path / "vbench_videos"
    argv = ["generate", "--prompts-file", str(prompts_file), "--vbench-out", str(out)]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["written"], first["skipped"], first["missing"], first["stray"]) == (29, 0, [], [])
    assert _tree(out) == _expected()
    assert os.listdir(out / vbench.STATE_DIR / "partial") == []
    video = out / "Human_Clothes" / f"{QUOTED}-1.mp4"
    frames, fps = _frames(video)
    assert len(frames) == 5 and frames[0].shape == (8, 8, 3) and fps == 16
    mtimes = {p: (out / p).stat().st_mtime_ns for p in _expected()}

    # a rerun writes nothing; a deleted video is made again, the same (same seed)
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["written"] == 0
    assert {p: (out / p).stat().st_mtime_ns for p in _expected()} == mtimes
    video.unlink()
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["written"], again["skipped"]) == (1, 28)
    assert all((a == b).all() for a, b in zip(_frames(video)[0], frames, strict=True))
    assert _tree(out) == _expected()

    # another strategy may not add its videos to this folder
    assert main([*argv, "--strategy", "best-of-n"]) == 2
    assert "holds videos of another run" in capsys.readouterr().err


def test_sigkill_mid_run_leaves_only_finished_videos_and_resume_completes(
    prompts_file, tmp_path, capsys
):
    out = tmp_path / "videos"
    diversity = out / "Diversity"
    command = [
        sys.executable,
        "-m",
        "searchkit.cli",
        "generate",
        "--prompts-file",
        str(prompts_file),
        "--vbench-out",
        str(out),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if diversity.is_dir() and len(os.listdir(diversity)) >= 3:
                break
            time.sleep(0.002)
        assert process.poll() is None, "the run ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    done = _tree(out)
    assert 3 <= len(done) < 29 and done < _expected()  # no stray, no foreign name
    for name in done:  # every file under its final name is a whole video
        assert len(_frames(out / name)[0]) == 5
    assert main(["generate", "--prompts-file", str(prompts_file), "--vbench-out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["written"], report["skipped"]) == (29 - len(done), len(done))
    assert _tree(out) == _expected()


def test_check_only_reports_without_generating(prompts_file, tmp_path, capsys):
    out = tmp_path / "videos"
    code = main(
        ["generate", "--prompts-file", str(prompts_file), "--vbench-out", str(out), "--check-only"]
    )
    assert code == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["written"], len(report["missing"]), report["stray"]) == (0, 29, [])
    assert not out.exists()


def test_generate_refuses_options_that_do_not_apply(prompts_file, tmp_path, capsys):
    base = ["generate", "--prompts-file", str(prompts_file), "--vbench-out", str(tmp_path / "v")]
    assert main([*base, "--format", "frames"]) == 2
    assert main([*base, "--prompt", "a cat"]) == 2
    assert main(["generate", "--prompts-file", str(prompts_file)]) == 2
    assert main(["generate"]) == 2
    assert not (tmp_path / "v").exists()


def _eval_results(folder, scores: dict[str, float], stamp: str) -> None:
    """A result file as VBench-2.0's evaluate.py writes it, with its full_info companion."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        d: [s, [{"video_path": f"vbench_videos/{d}/x-0.mp4", "video_results": s}]]
        for d, s in scores.items()
    }
    (folder / f"results_{stamp}_eval_results.json").write_text(json.dumps(payload, indent=4))
    (folder / f"results_{stamp}_full_info.json").write_text(json.dumps([{"prompt_en": "x"}]))


ALL = {
    "Diversity": 0.50,
    "Composition": 0.40,
    "Motion_Rationality": 0.30,
    "Instance_Preservation": 0.90,
    "Dynamic_Spatial_Relationship": 0.20,
    "Dynamic_Attribute": 0.10,
    "Motion_Order_Understanding": 0.30,
    "Human_Interaction": 0.70,
    "Complex_Landscape": 0.20,
    "Complex_Plot": 0.10,
    "Camera_Motion": 0.40,
    "Human_Anatomy": 0.80,
    "Human_Identity": 0.70,
    "Human_Clothes": 0.90,
    "Mechanics": 0.60,
    "Thermotics": 0.50,
    "Material": 0.70,
    "Multi-View_Consistency": 0.20,
}


def test_vbench_results_come_back_as_one_table(tmp_path):
    # evaluate.sh writes evaluation_results/{dimension}/{model}/results_*_eval_results.json
    for dimension, score in ALL.items():
        _eval_results(
            tmp_path / "full" / dimension / "vbench_videos",
            {dimension: score},
            "2025-05-01-10:00:00",
        )
    _eval_results(
        tmp_path / "part", {"Diversity": 0.25, "Composition": 0.35}, "2025-05-02-10:00:00"
    )
    full = read_vbench_scores(tmp_path / "full")
    assert full == ALL
    categories = category_scores(full)
    # the README's averages, worked by hand
    assert categories["Creativity"] == pytest.approx(0.45)
    assert categories["Commonsense"] == pytest.approx(0.60)
    assert categories["Controllability"] == pytest.approx(2.0 / 7)
    assert categories["Human Fidelity"] == pytest.approx(0.80)
    assert categories["Physics"] == pytest.approx(0.50)
    assert categories["Total"] == pytest.approx((0.45 + 0.60 + 2.0 / 7 + 0.80 + 0.50) / 5)
    part = read_vbench_scores(tmp_path / "part")
    assert category_scores(part) == {"Creativity": pytest.approx(0.30)}

    table = vbench_table({"baseline": full, "rgrp": part}).splitlines()
    assert table[0] == "| dimension | baseline | rgrp |"
    assert "| Diversity | 50.00% | 25.00% |" in table
    assert "| Camera Motion | 40.00% | – |" in table
    assert "| **Creativity** | 45.00% | 30.00% |" in table
    assert f"| **Total** | {100 * categories['Total']:.2f}% | – |" in table
    assert len(table) == 2 + 18 + 6


def test_a_dimension_scored_twice_is_an_error(tmp_path):
    _eval_results(tmp_path / "a", {"Diversity": 0.5}, "2025-05-01-10:00:00")
    _eval_results(tmp_path / "b", {"Diversity": 0.6}, "2025-05-01-11:00:00")
    with pytest.raises(ValueError, match="'Diversity': also scored in"):
        read_vbench_scores(tmp_path)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x_eval_results.json").write_text(json.dumps({"Diversity": "high"}))
    with pytest.raises(ValueError, match=r"expected \[score, per_video\]"):
        read_vbench_scores(tmp_path / "c")
