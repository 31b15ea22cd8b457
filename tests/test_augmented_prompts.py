"""Augmented prompts: a record's ``prompt_aug`` reaches the model in ``bench`` and ``generate``
while runs, videos and grades stay keyed by ``prompt_en``; VBench-2.0's rewrites are read
from its line-aligned text files."""

from __future__ import annotations

import json

import pytest
from bench_helpers import tiny_sweep, write_config

from searchkit.bench import SweepConfig, run_sweep
from searchkit.bench.augmented import AugmentedPrompts, attach_augmented
from searchkit.bench.plan import plan_sweep
from searchkit.bench.vbench import load_vbench_prompts
from searchkit.cli import main
from searchkit.errors import FileFormatError, MissingFileError, OutputFolderError

ORIGINAL = "Garden, zoom in."
REWRITE = "A lush garden in soft light; the camera slowly zooms in on a flower bed."
OTHER = "Garden, zoom out."
OTHER_REWRITE = "A lush garden; the camera pulls back to show the whole lawn."


def _records_file(tmp_path, records, name="prompts.json"):
    path = tmp_path / name
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def _vbench_prompts(tmp_path, aug_lines=None, extender="wanx_aug_prompt"):
    """A miniature of VBench-2.0's ``prompts`` folder: one dimension, two prompts."""
    root = tmp_path / "vbench_prompts"
    (root / "prompt").mkdir(parents=True)
    (root / "prompt" / "Camera_Motion.txt").write_text(f"{ORIGINAL}\n{OTHER}\n", encoding="utf-8")
    aug = root / "prompt_aug" / extender
    aug.mkdir(parents=True)
    lines = aug_lines if aug_lines is not None else [REWRITE, OTHER_REWRITE]
    (aug / "Camera_Motion.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _sweep(tmp_path, records=None, name="prompts.json", **changes) -> SweepConfig:
    records = records or [{"prompt_en": ORIGINAL, "dimension": ["Camera_Motion"]}]
    sweep = tiny_sweep(
        strategies=[{"name": "baseline"}],
        budgets_nfe=None,
        prompts_file=str(_records_file(tmp_path, records, name)),
        seeds=1,
        num_steps=4,
    )
    del sweep["prompts"]
    sweep.update(changes)
    return SweepConfig.from_dict(sweep)


def _inline(prompt: str) -> SweepConfig:
    return SweepConfig.from_dict(
        tiny_sweep(strategies=[{"name": "baseline"}], budgets_nfe=None, prompts=[prompt], seeds=1)
        | {"num_steps": 4}
    )


def _row(config, out):
    outcome = run_sweep(config, out, progress=False)
    assert outcome.complete and len(outcome.rows) == 1
    return outcome.rows[0]


# -- bench ----------------------------------------------------------------------------------
def test_bench_sends_prompt_aug_grades_and_names_by_prompt_en(tmp_path) -> None:
    aug_record = [{"prompt_en": ORIGINAL, "dimension": ["Camera_Motion"], "prompt_aug": REWRITE}]
    augmented = _sweep(tmp_path, aug_record, "aug.json")
    outcome = run_sweep(augmented, tmp_path / "aug", progress=False, save_videos=tmp_path / "v")
    row = outcome.rows[0]
    assert row["prompt"] == ORIGINAL and row["prompt_sent"] == REWRITE
    # the search saw the rewrite: its output and search reward are those of a run on it
    on_rewrite = _row(_inline(REWRITE), tmp_path / "rewrite")
    assert row["reward"] == on_rewrite["reward"] and row["scores"] == on_rewrite["scores"]
    # ...but the oracle graded it against prompt_en, as VBench-2.0 grades a rewrite's video
    assert on_rewrite["oracle"] == pytest.approx(on_rewrite["reward"])
    assert row["oracle"] != pytest.approx(on_rewrite["oracle"])
    # the video is named from prompt_en
    assert sorted(p.name for p in (tmp_path / "v" / "baseline" / "Camera_Motion").iterdir()) == [
        f"{ORIGINAL}-0.mp4"
    ]

    # opting out sends prompt_en: the run is then the plain file's, key and all
    plain = _sweep(tmp_path, name="plain.json")
    opted_out = _sweep(tmp_path, aug_record, "aug.json", use_prompt_aug=False)
    out_row = _row(opted_out, tmp_path / "opted-out")
    assert "prompt_sent" not in out_row
    assert out_row["key"] == plan_sweep(plain)[0].key != row["key"]
    assert out_row["reward"] == _row(_inline(ORIGINAL), tmp_path / "original")["reward"]
    assert out_row["reward"] != row["reward"]
    assert opted_out.fingerprint() != augmented.fingerprint()
    # the originals' videos may not join the rewrites' of the same names
    with pytest.raises(OutputFolderError, match="differs in prompt_aug"):
        run_sweep(opted_out, tmp_path / "again", progress=False, save_videos=tmp_path / "v")


def test_a_sweep_without_prompt_aug_describes_itself_as_before(tmp_path) -> None:
    config = _sweep(tmp_path)
    description = config.to_dict()
    assert "use_prompt_aug" not in description
    assert set(description["prompts"][0]) == {"text", "dimensions"}
    assert set(description["prompts_source"]) == {"file", "dimension", "max_prompts"}
    assert plan_sweep(config)[0].sent_prompt is None


def test_bench_cli_attaches_vbench_rewrites_and_opts_out(tmp_path, capsys) -> None:
    folder = _vbench_prompts(tmp_path)
    sweep = tiny_sweep(
        strategies=[{"name": "baseline"}],
        budgets_nfe=None,
        prompts_file=str(
            _records_file(
                tmp_path,
                [
                    {"prompt_en": OTHER, "dimension": ["Camera_Motion"]},
                    {"prompt_en": ORIGINAL, "dimension": ["Camera_Motion"]},
                ],
            )
        ),
        seeds=1,
        num_steps=4,
    )
    del sweep["prompts"]
    path = write_config(tmp_path, sweep)
    base = ["bench", "--config", str(path), "--no-progress", "--augmented-prompts", str(folder)]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "a" / "results.jsonl").open()]
    assert {(r["prompt"], r["prompt_sent"]) for r in rows} == {
        (OTHER, OTHER_REWRITE),
        (ORIGINAL, REWRITE),
    }
    assert main([*base, "--no-augmented", "--out", str(tmp_path / "b")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "b" / "results.jsonl").open()]
    assert len(rows) == 2 and not any("prompt_sent" in r for r in rows)
    capsys.readouterr()
    assert main([*base, "--extender", "nope", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "prompt_aug/nope" in err and "wanx_aug_prompt" in err


# -- the VBench-2.0 text files --------------------------------------------------------------
def test_rewrites_are_the_aligned_line_of_the_extenders_file(tmp_path) -> None:
    folder = _vbench_prompts(tmp_path)
    records = [
        {"prompt_en": OTHER, "dimension": ["Camera_Motion"]},
        {"prompt_en": ORIGINAL, "dimension": "Camera_Motion", "auxiliary_info": "zoom_in"},
    ]
    attached = attach_augmented(records, AugmentedPrompts(folder), "f")
    assert [r["prompt_aug"] for r in attached] == [OTHER_REWRITE, REWRITE]
    assert attached[1]["auxiliary_info"] == "zoom_in" and "prompt_aug" not in records[0]
    loaded = load_vbench_prompts(_records_file(tmp_path, records), AugmentedPrompts(folder))
    assert [(r.prompt_en, r.prompt_aug) for r in loaded] == [
        (OTHER, OTHER_REWRITE),
        (ORIGINAL, REWRITE),
    ]


def test_misaligned_or_missing_files_are_errors_naming_the_file(tmp_path) -> None:
    record = [{"prompt_en": ORIGINAL, "dimension": ["Camera_Motion"]}]
    short = _vbench_prompts(tmp_path / "a", aug_lines=[REWRITE])
    with pytest.raises(FileFormatError, match=r"wanx_aug_prompt/Camera_Motion.txt' has 1 lines"):
        attach_augmented(record, AugmentedPrompts(short), "f")
    folder = _vbench_prompts(tmp_path / "b")
    with pytest.raises(MissingFileError, match=r"prompt/Mechanics.txt"):
        attach_augmented(
            [{"prompt_en": ORIGINAL, "dimension": ["Mechanics"]}], AugmentedPrompts(folder), "f"
        )
    with pytest.raises(MissingFileError, match=r"prompt_aug/VBench2_aug_prompt'.*wanx_aug_prompt"):
        AugmentedPrompts(folder, "VBench2_aug_prompt")
    with pytest.raises(FileFormatError, match=r"f, record 0: prompt_en 'A cat.' is on no line"):
        attach_augmented(
            [{"prompt_en": "A cat.", "dimension": ["Camera_Motion"]}], AugmentedPrompts(folder), "f"
        )
    with pytest.raises(FileFormatError, match=r"record 0: has prompt_aug 'mine'"):
        attach_augmented([{**record[0], "prompt_aug": "mine"}], AugmentedPrompts(folder), "f")


# -- generate --------------------------------------------------------------------------------
def test_generate_sends_the_vbench_rewrite_and_names_by_prompt_en(tmp_path, capsys) -> None:
    folder = _vbench_prompts(tmp_path)
    plain = _records_file(tmp_path, [{"prompt_en": ORIGINAL, "dimension": ["Camera_Motion"]}])
    own = _records_file(
        tmp_path,
        [{"prompt_en": ORIGINAL, "dimension": ["Camera_Motion"], "prompt_aug": REWRITE}],
        "own.json",
    )

    def generate(prompts, out, *extra):
        argv = ["generate", "--prompts-file", str(prompts), "--vbench-out", str(tmp_path / out)]
        assert main([*argv, *extra]) == 0, capsys.readouterr().err
        capsys.readouterr()
        return {p.name: p.read_bytes() for p in (tmp_path / out / "Camera_Motion").iterdir()}

    from_files = generate(plain, "files", "--augmented-prompts", str(folder))
    assert sorted(from_files) == [f"{ORIGINAL}-{i}.mp4" for i in range(3)]
    # the same videos as a record carrying the rewrite itself; others with prompt_en
    assert generate(own, "own") == from_files
    assert generate(plain, "original") != from_files
    assert main(["generate", "--extender", "x", "--out", str(tmp_path / "single")]) == 2
    assert "--augmented-prompts and --extender apply with --prompts-file" in (
        capsys.readouterr().err
    )
