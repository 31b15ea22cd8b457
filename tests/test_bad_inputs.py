"""A battery of bad inputs: each is refused before any compute, clearly, naming what is wrong.

On the command line (``main(argv)`` in-process) a user error exits with status 2 and prints
one or two lines to stderr, with no traceback; in the Python API it raises a
:class:`~searchkit.errors.SearchkitError` (a ``ValueError`` or ``TypeError``) whose message
names the field and the value. Every command-line case runs with the analytic backend's
velocity replaced by a function that fails the test, so a case that starts computing before
it refuses its input cannot pass.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from searchkit import argtypes
from searchkit.backends import AnalyticBackend
from searchkit.bench import load_config
from searchkit.bench.config import SweepConfig
from searchkit.bench.prompts import load_prompt_file
from searchkit.bench.store import ResultsStore
from searchkit.bench.sweep import run_sweep
from searchkit.builders import build_backend, build_reward
from searchkit.cli import main
from searchkit.construct import construct
from searchkit.diagnostics import candidate_spread, predictivity
from searchkit.errors import (
    ConfigError,
    FileFormatError,
    InputError,
    InputTypeError,
    MissingFileError,
    OutputFolderError,
    SearchkitError,
)
from searchkit.files import check_output_folder, read_json
from searchkit.rewards import AnalyticReward
from searchkit.rewards.latent import TrainConfig
from searchkit.rewards.latent.network import LatentRewardConfig
from searchkit.video_io import save_result

from searchkit import (  # isort: skip
    RGRP,
    Baseline,
    BeamSearch,
    BestOfN,
    EvoSearch,
    FKSteering,
    FreeInit,
    NoiseOptimization,
    ParticleFilter,
    SearchContext,
    ZeroOrderSearch,
)

PROMPT = "a red fox running through fresh snow"


@pytest.fixture
def files(tmp_path):
    """Bad files and paths, by name."""
    (tmp_path / "afile").write_text("x")
    (tmp_path / "latin1.json").write_bytes(b'{"name": "caf\xe9"}')
    (tmp_path / "broken.json").write_text('{"name": "x",\n  "seeds": 2,,\n}')
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "prompts-latin1.txt").write_bytes(b"a fox\nun caf\xe9\n")
    (tmp_path / "seeds.json").write_text(
        json.dumps(
            {"strategies": ["baseline"], "budgets_nfe": [100], "prompts": ["a fox"], "seeds": [-1]}
        )
    )
    return tmp_path


@pytest.fixture
def no_compute(monkeypatch):
    """Any model forward fails the test: the refusals below must come before compute."""

    def velocity(*_args, **_kwargs):
        raise AssertionError("compute started before the input was refused")

    monkeypatch.setattr(AnalyticBackend, "velocity", velocity)


# -- the command line ---------------------------------------------------------------------------
#: Every command with an output folder, as argv before ``--out``.
OUTPUT_COMMANDS = [
    ["generate"],
    ["bench"],
    ["diagnose"],
    ["show", "{tmp}/no-result"],
    ["reward", "collect", "--prompt", "a"],
    ["reward", "train", "--data", "{tmp}"],
    ["reward", "eval", "--model", "{tmp}/no-model", "--data", "{tmp}"],
]
#: A folder that cannot be made: ``/proc`` takes no new entries, root or not.
UNCREATABLE = "/proc/searchkit-no-such/out"
#: Each command's output folder as a file, inside a file, and where none can be created.
OUTPUT_CASES = [
    case
    for command in OUTPUT_COMMANDS
    for case in (
        ([*command, "--out", "{tmp}/afile"], "--out folder '{tmp}/afile' is a file, not a folder"),
        (
            [*command, "--out", "{tmp}/afile/deeper/sub"],
            "--out folder '{tmp}/afile/deeper/sub' cannot be created: '{tmp}/afile' is a file",
        ),
        ([*command, "--out", UNCREATABLE], f"--out folder '{UNCREATABLE}'"),
    )
]
#: Sizes that would reach the allocator: refused where they enter, or by the memory preflight.
HUGE = str(10**12)
SIZE_CASES = [
    (
        ["generate", "--strategy", "rgrp", "--num-particles", HUGE],
        f"--num-particles {HUGE} makes the search hold {HUGE} latents of shape [4, 5, 8, 8]",
    ),
    (
        ["generate", "--strategy", "best-of-n", "--n", HUGE],
        f"--n {HUGE} makes the search hold {HUGE} latents",
    ),
    (
        ["generate", "--strategy", "beam-search", "--beam-width", HUGE],
        f"--beam-width {HUGE} makes the search hold",
    ),
    (["generate", "--backend-opt", f"channels={HUGE}"], f"channels must be <= 1024, got {HUGE}"),
    (["generate", "--backend-opt", "height=1000000"], "height must be <= 1024, got 1000000"),
    (
        ["generate", "--backend-opt", "num_components=1000000000"],
        "num_components must be <= 1024, got 1000000000",
    ),
    (
        ["generate", "--backend-opt", "height=1024", "--backend-opt", "width=1024"],
        "the latent shape channels=4, frames=5, height=1024, width=1024 holds 20971520 numbers",
    ),
    (
        ["generate", "--backend-opt", "world_seed=-1"],
        "world_seed must lie in [0, 2**64), got -1",
    ),
    (
        ["diagnose", "--only", "predictivity", "--seeds", "100000000000", "--steps", "0"],
        "--seeds must be at most 100000, got 100000000000",
    ),
    (
        ["diagnose", "--seeds", "4", "--spread-seeds", "100000000000"],
        "--spread-seeds must be at most 100000, got 100000000000",
    ),
    (
        ["diagnose", "--only", "spread", "--seeds", "4", "--candidates", HUGE, "--betas", "0.1"],
        f"--candidates {HUGE} makes the search hold {HUGE} latents",
    ),
    (
        ["generate", "--strategy", "rgrp", "--beta", "true"],
        "--beta must be a number, got 'true'",
    ),
]
# (argv with {tmp} for the files fixture's folder, text the message must hold)
CLI_CASES = [
    *SIZE_CASES,
    # values validated where they enter
    (["generate", "--seed", "-1"], "--seed must lie in [0, 2**64), got -1"),
    (["generate", "--seed", str(2**64)], f"--seed must lie in [0, 2**64), got {2**64}"),
    (["generate", "--seed", "abc"], "--seed must be an integer, got 'abc'"),
    (["generate", "--fps", "0"], "--fps must lie in [1, 240], got 0"),
    (["generate", "--fps", "-3"], "--fps must lie in [1, 240], got -3"),
    (["generate", "--fps", "1000000000"], "--fps must lie in [1, 240], got 1000000000"),
    (["bench", "--fps", "0"], "--fps must lie in [1, 240], got 0"),
    (["bench", "--fps", "241"], "--fps must lie in [1, 240], got 241"),
    (["bench", "--reward-opt", "nocolon"], "--reward-opt must be NAME:KEY=VALUE, got 'nocolon'"),
    (["generate", "--prompt", ""], "--prompt must be a non-empty text, got ''"),
    (["generate", "--prompt", "   "], "--prompt must be a non-empty text, got '   '"),
    (["generate", "--budget-nfe", "0"], "--budget-nfe must be >= 1, got 0"),
    (["generate", "--budget-nfe", "3"], "--budget-nfe 3 is below the 100 NFE that baseline"),
    (
        ["generate", "--strategy", "best-of-n", "--n", "3", "--budget-nfe", "299"],
        "raise it or lower --n",
    ),
    (
        ["generate", "--strategy", "rgrp", "--keep-duplicates", "maybe"],
        "--keep-duplicates must be true or false, got 'maybe'",
    ),
    (
        ["generate", "--strategy", "rgrp", "--no-keep-duplicates", "true"],
        "--no-keep-duplicates takes no value",
    ),
    (["generate", "--strategy", "best-of-n", "--n", "true"], "--n must be an integer, got 'true'"),
    (["generate", "--strategy", "best-of-n", "--n", "0"], "--n must be >= 1, got 0"),
    (
        ["generate", "--strategy", "rgrp", "--num-particles", "1"],
        "--num-particles must be >= 2, got 1",
    ),
    (["generate", "--strategy", "rgrp", "--beta", "2"], "--beta must be <= 1.0 (got 2.0)"),
    (["generate", "--strategy", "rgrp", "--beta", "nan"], "--beta must be a finite number"),
    (
        ["generate", "--strategy", "rgrp", "--temperature", "warm"],
        "--temperature must be a number, got 'warm'",
    ),
    (
        ["generate", "--strategy", "rgrp", "--resampler", "bogus"],
        "--resampler must be one of multinomial, stratified, systematic, residual (got 'bogus')",
    ),
    (
        ["generate", "--strategy", "rgrp", "--score-input", "pixels"],
        "--score-input must be one of latent, x0, none (got 'pixels')",
    ),
    (
        ["generate", "--strategy", "rgrp", "--schedule", "1,x"],
        "--schedule must be comma-separated integers like 10,15,20, got '1,x'",
    ),
    (
        ["generate", "--strategy", "rgrp", "--schedule", "10,,20"],
        "--schedule must be comma-separated integers",
    ),
    (
        ["generate", "--strategy", "rgrp", "--schedule", "20,10"],
        "--schedule must be sorted in increasing order",
    ),
    (
        ["generate", "--strategy", "rgrp", "--schedule", "10,60"],
        "schedule steps must lie in [0, 50) for a 50-step backend",
    ),
    (["generate", "--strategy", "rgpr"], "unknown strategy 'rgpr'; did you mean 'rgrp'?"),
    (["generate", "--format", "gif"], "--format must be one of mp4, frames (got 'gif')"),
    (
        ["generate", "--backend-opt", "channels=true"],
        "--backend-opt channels must be an integer, got 'true'",
    ),
    (["generate", "--backend-opt", "channels=0"], "channels must be >= 1, got 0"),
    (["generate", "--backend-opt", "bogus=1"], "backend 'analytic' has no option 'bogus'; known:"),
    (["generate", "--backend-opt", "novalue"], "--backend-opt must be KEY=VALUE, got 'novalue'"),
    (
        ["generate", "--backend-opt", "solver=bogus"],
        "--backend-opt solver must be one of unipc, euler, sde-dpmsolver++ (got 'bogus')",
    ),
    (
        ["generate", "--backend-opt", "guidance_scale=loud"],
        "--backend-opt guidance_scale must be a number, got 'loud'",
    ),
    (["generate", "--backend-opt", "num_steps=0"], "num_steps must be >= 1, got 0"),
    (["generate", "--backend", "nope"], "unknown backend 'nope'"),
    (["generate", "--backend", "wan"], "backend 'wan' needs --model-path PATH"),
    (
        ["generate", "--backend", "wan", "--model-path", "{tmp}/no-model"],
        "model_path '{tmp}/no-model' does not exist",
    ),
    (["generate", "--reward", "nope"], "unknown reward 'nope'"),
    (["generate", "--reward-opt", "foo=1"], "reward 'analytic-proxy' has no option 'foo'"),
    (["generate", "--reward-opt", "input=pixels"], "input must be 'x0' or 'latent'"),
    (["generate", "--evaluator-opt", "x"], "--evaluator-opt must be NAME:KEY=VALUE, got 'x'"),
    (["generate", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (
        ["generat"],
        "COMMAND must be one of generate, bench, diagnose, show, reward, list (got 'generat'); "
        "did you mean 'generate'?",
    ),
    # errors at the CLI boundary: output paths before the search
    *OUTPUT_CASES,
    # files named in every file error, with the position
    (
        ["bench", "--config", "{tmp}/latin1.json"],
        "config '{tmp}/latin1.json' is not UTF-8 text: byte 0xe9 at line 1, column 14",
    ),
    (
        ["bench", "--config", "{tmp}/broken.json"],
        "config '{tmp}/broken.json' is not valid JSON: Expecting property name enclosed in "
        "double quotes at line 2, column 14",
    ),
    (["bench", "--config", "{tmp}/list.json"], "a sweep configuration must be a JSON object"),
    (["bench", "--config", "{tmp}/missing.json"], "is neither a file nor a shipped configuration"),
    (["bench", "--config", "{tmp}/seeds.json"], "seeds must hold integers in [0, 2**64), got -1"),
    (
        ["bench", "--prompts-file", "{tmp}/broken.json"],
        "prompts file '{tmp}/broken.json' is not valid JSON",
    ),
    (["bench", "--seeds", "0"], "--seeds must be >= 1, got 0"),
    (["bench", "--retries", "-1"], "--retries must be >= 0, got -1"),
    (["bench", "--executor", "slurm"], "--executor must be one of local, ray (got 'slurm')"),
    (["bench", "--address", "auto"], "--address is for --executor ray"),
    (["bench", "--backend-opt", "channels"], "--backend-opt must be KEY=VALUE, got 'channels'"),
    (
        ["generate", "--prompts-file", "{tmp}/latin1.json", "--vbench-out", "{tmp}/vb"],
        "prompts file '{tmp}/latin1.json' is not UTF-8 text",
    ),
    (
        ["reward", "train", "--data", "{tmp}", "--out", "{tmp}/t", "--patch-size", "1,2"],
        "--patch-size must be 3 comma-separated integers like 1,2,2, got '1,2'",
    ),
    (
        ["reward", "train", "--data", "{tmp}", "--out", "{tmp}/t", "--patch-size", "1,x,2"],
        "--patch-size must be 3 comma-separated integers like 1,2,2, got '1,x,2'",
    ),
    (
        ["reward", "train", "--data", "{tmp}", "--out", "{tmp}/t", "--patch-size", "0,2,2"],
        "--patch-size entries must be >= 1, got 0 in '0,2,2'",
    ),
    (
        ["diagnose", "--out", "{tmp}/d", "--steps", "4,-1"],
        "--steps entries must be >= 0, got -1 in '4,-1'",
    ),
    (
        ["diagnose", "--out", "{tmp}/d", "--betas", "0.1,inf"],
        "--betas entries must be a finite number, got 'inf' in '0.1,inf'",
    ),
    (
        ["diagnose", "--out", "{tmp}/d", "--steps", "4,x"],
        "--steps must be comma-separated integers like 4,9, got '4,x'",
    ),
    (
        ["reward", "train", "--data", "{tmp}", "--out", "{tmp}/t", "--width", str(10**12)],
        "--width must lie in [1, 65536], got 1000000000000",
    ),
    (
        ["reward", "train", "--data", "{tmp}", "--out", "{tmp}/t", "--epochs", "0"],
        "--epochs must be >= 1, got 0",
    ),
    (
        ["reward", "train", "--data", "{tmp}", "--out", "{tmp}/t", "--seed", "-1"],
        "--seed must lie in [0, 2**64), got -1",
    ),
    (
        ["reward", "train", "--data", "{tmp}", "--out", "{tmp}/t", "--val-fraction", "1.5"],
        "--val-fraction must lie in (0, 1), got 1.5",
    ),
    (
        ["reward", "train", "--data", "{tmp}", "--out", "{tmp}/afile"],
        "--out folder '{tmp}/afile' is a file",
    ),
    (
        ["reward", "collect", "--out", "{tmp}/c", "--prompt-file", "{tmp}/prompts-latin1.txt"],
        "--prompt-file '{tmp}/prompts-latin1.txt' is not UTF-8 text: byte 0xe9 at line 2, column 7",
    ),
    (
        ["reward", "collect", "--out", "{tmp}/c", "--prompt-file", "{tmp}/broken.json"],
        "--prompt-file '{tmp}/broken.json' is not valid JSON",
    ),
    (
        ["reward", "collect", "--out", "{tmp}/c", "--prompt-file", "{tmp}/list.json"],
        "--prompt-file '{tmp}/list.json': item 0 is not a prompt: 1",
    ),
    (
        ["reward", "collect", "--out", "{tmp}/c", "--prompt-file", "{tmp}/none.txt"],
        "--prompt-file '{tmp}/none.txt' does not exist",
    ),
    (["reward", "collect", "--out", "{tmp}/c", "--prompt", " "], "--prompt must be a non-empty"),
    (
        ["reward", "collect", "--out", "{tmp}/c", "--prompt", "a", "--seeds", "-5"],
        "--seeds must lie in [0, 2**64), got -5",
    ),
    (
        ["reward", "collect", "--out", "{tmp}/c", "--prompt", "a", "--seeds", "1", "1"],
        "--seeds must be distinct, got (1, 1)",
    ),
    (
        ["reward", "collect", "--out", "{tmp}/afile", "--prompt", "a"],
        "--out folder '{tmp}/afile' is a file",
    ),
]


@pytest.mark.parametrize(("argv", "expected"), CLI_CASES, ids=lambda x: " ".join(x)[:60])
def test_the_command_line_refuses_bad_input_in_two_lines(
    argv, expected, files, no_compute, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(files)
    argv = [a.replace("{tmp}", str(files)) for a in argv]
    if argv[0] == "generate" and "--out" not in argv and "--vbench-out" not in argv:
        argv += ["--out", str(files / "out")]
    if argv[0] == "bench" and "--out" not in argv:
        argv += ["--out", str(files / "bench")]
    if argv[0] == "diagnose" and "--out" not in argv:
        argv += ["--out", str(files / "out")]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2, err
    assert "Traceback" not in err
    assert lines[0].startswith("searchkit")
    assert expected.replace("{tmp}", str(files)) in lines[0], lines[0]
    assert not (files / "out").exists() and not (files / "bench").exists()
    assert not (files / "afile").is_dir() and not Path(UNCREATABLE).exists()


@pytest.mark.parametrize(
    ("text", "scalar", "expected"),
    [
        ("1,0,2", False, "--k entries must be >= 1, got 0 in '1,0,2'"),  # the value is wrong
        ("1,y,2", False, "--k must be comma-separated integers like 1,2, got '1,y,2'"),  # the form
        ("1,,2", False, "--k must be comma-separated integers like 1,2, got '1,,2'"),
        ("0", True, "--k must be >= 1, got 0"),  # one value standing for itself
        ("0", False, "--k entries must be >= 1, got 0 in '0'"),
    ],
)
def test_a_list_flag_tells_a_bad_entry_from_a_bad_form(text, scalar, expected) -> None:
    parse = argtypes.sequence(
        "--k", argtypes.integer("--k", minimum=1), example="1,2", scalar=scalar
    )
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        parse(text)
    assert str(caught.value) == expected
    assert parse("3,4") == (3, 4) and parse("5") == (5 if scalar else (5,))


def test_a_bug_keeps_its_traceback(monkeypatch) -> None:
    """Only deliberate refusals are caught: an error from inside the run propagates."""

    def broken(*_args, **_kwargs):
        raise ValueError("a bug, not bad input")

    monkeypatch.setattr(AnalyticBackend, "velocity", broken)
    with pytest.raises(ValueError, match="a bug, not bad input"):
        main(["generate", "--out", "unused-never-written"])


def test_api_errors_name_keywords_and_the_command_line_names_flags(tmp_path, capsys) -> None:
    out = tmp_path / "sweep"
    (out).mkdir()
    (out / "results.jsonl").write_text('{"key": "x"}\n')
    with pytest.raises(OutputFolderError) as caught:
        ResultsStore.check(out, {}, "fingerprint")
    assert "resume=True" in str(caught.value) and "force=True" in str(caught.value)
    assert "--" not in str(caught.value)
    assert main(["bench", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "--force" in err and "resume=True" not in err


# (keywords of run_sweep/load_config, the flags of the same, what the message says after them)
BENCH_KEYWORD_CASES = [
    (
        {"reward_options": {"clip-score": {"path": "x"}}},
        ["--reward-opt", "clip-score:path=x"],
        "reward_options",
        "--reward-opt",
        " names reward 'clip-score', which the sweep does not use",
    ),
    (
        {"save_videos": "{tmp}/afile"},
        ["--save-videos", "{tmp}/afile"],
        "save_videos",
        "--save-videos",
        " folder '{tmp}/afile' is a file",
    ),
    (
        {"save_videos": "{tmp}/videos"},
        ["--save-videos", "{tmp}/videos"],
        "save_videos",
        "--save-videos",
        ": prompt 0 ('a fox') has no VBench-2.0 dimension",
    ),
]


@pytest.mark.parametrize(("keywords", "flags", "keyword", "flag", "rest"), BENCH_KEYWORD_CASES)
def test_bench_api_errors_name_the_keyword_and_the_command_line_the_flag(
    keywords, flags, keyword, flag, rest, files, no_compute, capsys
) -> None:
    path = files / "sweep.json"
    path.write_text(
        json.dumps(
            {"strategies": ["baseline"], "budgets_nfe": [100], "prompts": ["a fox"], "seeds": 1}
        )
    )
    keywords = {
        k: v if k != "save_videos" else v.replace("{tmp}", str(files)) for k, v in keywords.items()
    }
    rest = rest.replace("{tmp}", str(files))
    with pytest.raises(SearchkitError) as caught:
        options = keywords.get("reward_options")
        config = load_config(path, reward_options=options)
        run_sweep(config, files / "bench", progress=False, save_videos=keywords["save_videos"])
    assert keyword + rest in str(caught.value) and "--" not in str(caught.value)
    argv = ["bench", "--config", str(path), "--out", str(files / "bench"), "--no-progress"]
    assert main(argv + [f.replace("{tmp}", str(files)) for f in flags]) == 2
    err = capsys.readouterr().err
    assert flag + rest in err and keyword not in err
    assert not (files / "bench").exists()


# (field, flags that set it, its value in a file, its value as load_config's keyword, message)
BLAME_CASES = [
    (
        "metric",
        ["--metric", "bogus"],
        "bogus",
        "bogus",
        "metric must be one of oracle, reward (got 'bogus')",
    ),
    (
        "seeds",
        ["--seeds", str(10**6)],
        10**6,
        10**6,
        "seeds must be a count in [1, 100000], got 1000000",
    ),
    (
        "evaluators",
        ["--evaluator", "bogus"],
        [{"name": "bogus"}],
        [("bogus", {})],
        ": unknown reward 'bogus'; known: analytic",
    ),
]


@pytest.mark.parametrize(("field", "flags", "in_file", "keyword", "expected"), BLAME_CASES)
def test_a_bench_flag_is_blamed_for_its_value_and_the_file_for_its_own(
    field, flags, in_file, keyword, expected, files, no_compute, capsys
) -> None:
    base = {"strategies": ["baseline"], "budgets_nfe": [100], "prompts": ["a fox"], "seeds": 1}
    clean, dirty = files / "clean.json", files / "dirty.json"
    clean.write_text(json.dumps(base))
    dirty.write_text(json.dumps({**base, field: in_file}))
    out = ["--out", str(files / "bench"), "--no-progress"]
    # on the command line: the flag, not the file
    assert main(["bench", "--config", str(clean), *flags, *out]) == 2
    line = capsys.readouterr().err.splitlines()[0]
    assert line.startswith(f"searchkit bench: error: {flags[0]}") and expected in line, line
    assert "clean.json" not in line
    # a value from the file names the file, and its field
    assert main(["bench", "--config", str(dirty), *out]) == 2
    line = capsys.readouterr().err.splitlines()[0]
    assert f"config '{dirty}': {field}" in line and expected in line, line
    assert flags[0] not in line
    assert not (files / "bench").exists()
    # the Python API names its keyword, not the file it did not read the value from
    with pytest.raises(ConfigError) as caught:
        load_config(clean, **{field: keyword})
    assert str(caught.value).startswith(field) and expected in str(caught.value)
    assert "clean.json" not in str(caught.value) and "--" not in str(caught.value)


# -- the Python API -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world():
    backend = AnalyticBackend(channels=2, frames=2, height=2, width=2, num_steps=4)
    return backend, AnalyticReward(backend)


def _run(strategy=None, **kwargs):
    def call(world):
        backend, reward = world
        arguments = {"prompt": PROMPT, **kwargs}
        prompt = arguments.pop("prompt")
        return (strategy or Baseline()).run(backend, reward, prompt, **arguments)

    return call


# (what to call with the world, error type, text the message must hold)
API_CASES = [
    (_run(seed=-1), InputError, "seed must lie in [0, 2**64), got -1"),
    (_run(seed=2**64), InputError, f"seed must lie in [0, 2**64), got {2**64}"),
    (_run(seed=True), InputTypeError, "seed must be an integer, got True"),
    (_run(seed=1.5), InputTypeError, "seed must be an integer, got 1.5"),
    (_run(seed="3"), InputTypeError, "seed must be an integer, got '3'"),
    (_run(prompt=""), InputError, "prompt must be a non-empty text, got ''"),
    (_run(prompt=" \n\t"), InputError, "prompt must be a non-empty text"),
    (_run(prompt=None), InputTypeError, "prompt must be a string, got NoneType"),
    (_run(prompt=["a fox"]), InputTypeError, "prompt must be a string, got list"),
    (_run(budget_nfe=True), InputError, "budget_nfe must be a positive integer or None, got True"),
    (_run(budget_nfe=0), InputError, "budget_nfe must be a positive integer or None, got 0"),
    (_run(RGRP(schedule=(1, 9))), InputError, "schedule steps must lie in [0, 4)"),
    (lambda w: BestOfN(n=True), InputTypeError, "n must be an integer, got True"),
    (lambda w: BestOfN(n=0), InputError, "n must be >= 1, got 0"),
    (lambda w: RGRP(num_particles=2.0), InputTypeError, "num_particles must be an integer"),
    (lambda w: RGRP(keep_duplicates="maybe"), TypeError, "keep_duplicates"),
    (lambda w: RGRP(resampler="bogus"), ValueError, "'bogus'"),
    (lambda w: RGRP(schedule=(3, 3)), InputError, "schedule must not repeat a step"),
    (lambda w: RGRP.from_preset("nope"), ValueError, "preset must be one of rgrp's presets"),
    (
        lambda w: construct(RGRP, owner="rgrp", keep_duplicates="maybe"),
        InputTypeError,
        "keep_duplicates must be true or false, got 'maybe'",
    ),
    (
        lambda w: construct(RGRP, owner="rgrp", resampler="bogus"),
        InputError,
        "resampler must be one of multinomial, stratified, systematic, residual (got 'bogus')",
    ),
    (
        lambda w: construct(RGRP, owner="strategy 'rgrp'", particles=4),
        InputError,
        "strategy 'rgrp' has no option 'particles'; known: num_particles, beta",
    ),
    (
        lambda w: construct(RGRP, owner="rgrp", beta="high"),
        InputError,
        "beta must be a number, got 'high'",
    ),
    (
        lambda w: build_backend("analytic", channels=True),
        InputTypeError,
        "channels must be an integer, got True",
    ),
    (
        lambda w: build_backend("analytic", bogus=1),
        InputError,
        "backend 'analytic' has no option 'bogus'; known: channels, frames",
    ),
    (
        lambda w: build_backend("analytic", solver="bogus"),
        InputError,
        "solver must be one of unipc, euler, sde-dpmsolver++ (got 'bogus')",
    ),
    (
        lambda w: build_backend("analytic", guidance_scale=0.5),
        InputError,
        "guidance_scale must be >= 1.0 (got 0.5)",
    ),
    (
        lambda w: build_backend("analytic", guidance_scale=None),
        InputTypeError,
        "guidance_scale must be a number, got None",
    ),
    (lambda w: build_reward("analytic", w[0], input="pixels"), InputError, "'pixels'"),
    (
        lambda w: build_reward("analytic", w[0], scale=2),
        InputError,
        "reward 'analytic' has no option 'scale'; known: input",
    ),
    (
        lambda w: build_reward("analytic-proxy", w[0], num_features=10**9),
        InputError,
        "num_features must be an integer in [1, 4096], got 1000000000",
    ),
    (lambda w: TrainConfig(seed=-1), InputError, "seed must lie in [0, 2**64), got -1"),
    (
        lambda w: LatentRewardConfig(in_channels=2, text_dim=4, width=10**12),
        InputError,
        "width must lie in [1, 65536], got 1000000000000",
    ),
    (
        lambda w: LatentRewardConfig(in_channels=2, text_dim=4, depth=True),
        InputTypeError,
        "depth must be an integer, got True",
    ),
    (lambda w: TrainConfig(split_seed=2**64), InputError, "split_seed must lie in [0, 2**64)"),
    # the project's own validators, never attrs' tuples
    (
        lambda w: RGRP(resampler="bogus"),
        InputError,
        "resampler must be one of multinomial, stratified, systematic, residual (got 'bogus')",
    ),
    (
        lambda w: RGRP(keep_duplicates="maybe"),
        InputTypeError,
        "keep_duplicates must be true or false, got 'maybe'",
    ),
    (
        lambda w: RGRP(score_input="bogus"),
        InputError,
        "score_input must be one of latent, x0 (got 'bogus')",
    ),
    (lambda w: RGRP(beta=True), InputTypeError, "beta must be a number, got True"),
    (lambda w: RGRP(beta=math.nan), InputError, "beta must be a number, not NaN (got nan)"),
    (lambda w: RGRP(beta=1.5), InputError, "beta must be <= 1.0 (got 1.5)"),
    (lambda w: RGRP(temperature=0.0), InputError, "temperature must be > 0.0 (got 0.0)"),
    (lambda w: RGRP(temperature=None), InputTypeError, "temperature must be a number, got None"),
    (lambda w: FKSteering(potential="bogus"), InputError, "potential must be one of"),
    (lambda w: FKSteering(ess_threshold=False), InputTypeError, "must be a number, got False"),
    (lambda w: ParticleFilter(resampler="x"), InputError, "resampler must be one of"),
    (
        lambda w: NoiseOptimization(learning_rate=True),
        InputTypeError,
        "learning_rate must be a number, got True",
    ),
    (
        lambda w: NoiseOptimization(max_grad_norm=0),
        InputError,
        "max_grad_norm must be > 0.0 (got 0.0)",
    ),
    (lambda w: ZeroOrderSearch(similarity=1.0), InputError, "similarity must be < 1.0 (got 1.0)"),
    (lambda w: FreeInit(cutoff=0), InputError, "cutoff must be > 0.0 (got 0.0)"),
    (lambda w: BeamSearch(beta=2), InputError, "beta must be <= 1.0 (got 2.0)"),
    (lambda w: EvoSearch(beta="high"), InputError, "beta must be a number, got 'high'"),
    (
        lambda w: AnalyticBackend(solver="bogus"),
        InputError,
        "solver must be one of unipc, euler, sde-dpmsolver++ (got 'bogus')",
    ),
    (
        lambda w: AnalyticBackend(guidance_scale=math.nan),
        InputError,
        "guidance_scale must be a number, not NaN (got nan)",
    ),
    (lambda w: AnalyticBackend(flow_shift=True), InputTypeError, "flow_shift must be a number"),
    (lambda w: AnalyticBackend(world_seed=-1), InputError, "world_seed must lie in [0, 2**64)"),
    (lambda w: AnalyticBackend(world_seed=True), InputTypeError, "world_seed must be an integer"),
    # sizes bounded where they enter, before anything is allocated
    (
        lambda w: AnalyticBackend(channels=10**12),
        InputError,
        "channels must be <= 1024, got 1000000000000",
    ),
    (
        lambda w: AnalyticBackend(num_components=10**9),
        InputError,
        "num_components must be <= 1024, got 1000000000",
    ),
    (lambda w: AnalyticBackend(height=10**6), InputError, "height must be <= 1024, got 1000000"),
    (lambda w: AnalyticBackend(frames=2000), InputError, "frames must be <= 1024, got 2000"),
    (
        lambda w: AnalyticBackend(height=512, width=512, num_components=1024),
        InputError,
        "num_components=1024 means of shape channels=4, frames=5, height=512, width=512",
    ),
    # the memory preflight: before the first draw of noise
    (
        _run(BestOfN(n=10**12)),
        InputError,
        "n 1000000000000 makes the search hold 1000000000000 latents of shape [2, 2, 2, 2]",
    ),
    (
        _run(RGRP(num_particles=10**12, schedule=(1, 2))),
        InputError,
        "num_particles 1000000000000 makes the search hold",
    ),
    (
        _run(EvoSearch(initial_population=4, population=10**12, evolution_steps=(1,))),
        InputError,
        "population 1000000000000 makes the search hold",
    ),
    (
        lambda w: candidate_spread(*w, ["a fox"], seeds=2, betas=(0.1,), num_candidates=10**12),
        InputError,
        "num_candidates 1000000000000 makes the search hold",
    ),
    (
        lambda w: predictivity(*w, ["a fox"], seeds=10**11),
        InputError,
        "seeds must be at most 100000, got 100000000000",
    ),
    # where values enter the run
    (_run(generator="x"), InputTypeError, "generator must be a torch.Generator or None, got str"),
    (
        lambda w: SearchContext(*w, PROMPT, generator=3),
        InputTypeError,
        "generator must be a torch.Generator, got int: 3",
    ),
]


@pytest.mark.parametrize(("call", "kind", "expected"), API_CASES)
def test_the_python_api_refuses_bad_input_naming_field_and_value(
    call, kind, expected, world
) -> None:
    with pytest.raises(kind) as caught:
        call(world)
    assert expected in str(caught.value), str(caught.value)
    assert isinstance(caught.value, SearchkitError) or kind in (TypeError, ValueError)
    assert "--" not in str(caught.value)  # the Python API never names command-line flags
    assert "Attribute(" not in str(caught.value)  # never attrs' own tuple


FILE_CASES = [
    (
        "latin1.json",
        load_config,
        FileFormatError,
        "config '{path}' is not UTF-8 text: byte 0xe9 at line 1, column 14 (byte offset 13)",
    ),
    (
        "broken.json",
        load_config,
        FileFormatError,
        "config '{path}' is not valid JSON: Expecting property name enclosed in double quotes at "
        "line 2, column 14",
    ),
    ("broken.json", load_prompt_file, FileFormatError, "prompts file '{path}' is not valid JSON"),
    ("latin1.json", load_prompt_file, FileFormatError, "prompts file '{path}' is not UTF-8 text"),
    ("missing.json", load_prompt_file, MissingFileError, "prompts file '{path}' does not exist"),
    ("list.json", load_prompt_file, ValueError, "prompts file '{path}', record 0"),
    ("missing.json", read_json, MissingFileError, "file '{path}' does not exist"),
    ("", read_json, FileFormatError, "is a folder, not a file"),
    ("afile", check_output_folder, OutputFolderError, "'{path}' is a file, not a folder"),
    ("afile/x/y", check_output_folder, OutputFolderError, "is a file"),
    (UNCREATABLE, check_output_folder, OutputFolderError, "output folder '{path}'"),
    ("seeds.json", load_config, ConfigError, "seeds must hold integers in [0, 2**64), got -1"),
]


@pytest.mark.parametrize(("name", "call", "kind", "expected"), FILE_CASES)
def test_file_errors_name_the_file_and_the_position(name, call, kind, expected, files) -> None:
    path = files / name if name else files  # an absolute name stays as it is
    with pytest.raises(kind) as caught:
        call(path)
    assert expected.replace("{path}", str(path)) in str(caught.value), str(caught.value)


def test_an_unwritable_output_folder_is_refused(tmp_path, monkeypatch) -> None:
    # the tests may run as root, for whom permission bits do not bind: ask os.access instead
    monkeypatch.setattr("searchkit.files.os.access", lambda path, mode: False)
    with pytest.raises(OutputFolderError, match="not writable"):
        check_output_folder(tmp_path / "new" / "out")
    with pytest.raises(OutputFolderError, match="is not writable"):
        check_output_folder(tmp_path)


@pytest.mark.parametrize("fps", [0, -1, 241, 10**9, float("nan"), float("inf"), True, "16"])
def test_save_result_refuses_bad_fps_before_writing(fps, tmp_path, world) -> None:
    result = Baseline().run(*world, PROMPT, seed=0)
    with pytest.raises((InputError, InputTypeError), match="fps must be"):
        save_result(result, tmp_path / "out", fps=fps)
    assert not (tmp_path / "out").exists()


def test_sweep_seed_counts_and_lists_are_checked() -> None:
    base = {"strategies": ["baseline"], "budgets_nfe": [100], "prompts": ["a fox"]}
    for seeds, message in [
        (0, "seeds must be a count in [1, 100000], got 0"),
        (10**12, "seeds must be a count in [1, 100000]"),
        ([2**64], "seeds must hold integers in [0, 2**64)"),
        ([True], "seeds must hold integers"),
    ]:
        with pytest.raises(ConfigError) as caught:
            SweepConfig.from_dict({**base, "seeds": seeds})
        assert message in str(caught.value)


# -- commands that need a dataset or a model ------------------------------------------------------
@pytest.fixture(scope="module")
def latent_data(tmp_path_factory):
    """A tiny collection of latents (frames=2, height=4, width=4, 4 channels) and a model."""
    from searchkit.rewards.latent import CollectConfig, collect
    from searchkit.rewards.latent.reward import LatentRewardModel

    root = tmp_path_factory.mktemp("latent")
    backend = AnalyticBackend(frames=2, height=4, width=4, num_steps=4)
    collect(
        backend,
        AnalyticReward(backend),
        ["a", "b"],
        root / "data",
        CollectConfig(steps=(1,), seeds=(0,)),
    )
    model = LatentRewardModel.for_backend(backend, width=8, depth=1)
    model.save_pretrained(root / "model")
    return root


WORLD_OPTS = ["--backend-opt", "frames=2", "--backend-opt", "height=4", "--backend-opt", "width=4"]
DATASET_CASES = [
    (
        ["reward", "train", "--patch-size", "1,64,64", *WORLD_OPTS],
        "--patch-size (1, 64, 64) is larger than the latents of backend 'analytic': "
        "(frames, height, width) = (2, 4, 4)",
    ),
    (
        [
            "reward",
            "eval",
            "--model",
            "{root}/model",
            "--all",
            *WORLD_OPTS,
            "--backend-opt",
            "channels=8",
        ],
        "backend 'analytic' has 8 latent channels (latents of shape (8, 2, 4, 4)), but the latent "
        "reward model was built for in_channels=4 (latents of shape (4, F, H, W))",
    ),
]


@pytest.mark.parametrize(("argv", "expected"), DATASET_CASES, ids=lambda x: " ".join(x)[:40])
def test_reward_commands_refuse_a_world_that_does_not_fit(
    argv, expected, latent_data, tmp_path, capsys
) -> None:
    argv = [a.replace("{root}", str(latent_data)) for a in argv]
    out = tmp_path / "out"
    code = main([*argv, "--data", str(latent_data / "data"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and 1 <= len(err.strip().splitlines()) <= 2, err
    assert expected.replace("{root}", str(latent_data)) in err, err
    assert not (out / "best").exists()


def test_the_latent_reward_model_refuses_a_patch_larger_than_the_latents() -> None:
    from searchkit.rewards.latent.reward import LatentRewardModel

    with pytest.raises(InputError, match=r"patch_size \(1, 64, 64\) is larger than the latents"):
        LatentRewardModel.for_backend(
            AnalyticBackend(frames=2, height=4, width=4), patch_size=(1, 64, 64)
        )


def _nothing_run() -> SimpleNamespace:
    """What ``run_sweep`` returns for a sweep with no runs (the fields the command reads)."""
    return SimpleNamespace(
        cells=[],
        rows=[],
        planned=0,
        reused=0,
        seconds=0.0,
        files={},
        videos=None,
        failures=[],
        workers=1,
    )


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_bench_resume_with_nothing_to_resume_says_so(folder, tmp_path, capsys, monkeypatch) -> None:
    (tmp_path / "empty").mkdir()
    calls = []

    def run_sweep(config, out, **kwargs):
        calls.append(kwargs["resume"])
        return _nothing_run()

    monkeypatch.setattr("searchkit.bench.run_sweep", run_sweep)
    out = tmp_path / folder
    assert main(["bench", "--out", str(out), "--resume", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"nothing to resume in {str(out)!r}; starting a fresh sweep" in printed
    assert calls == [True]


def test_bench_resume_with_results_says_nothing_of_the_kind(tmp_path, capsys, monkeypatch) -> None:
    (tmp_path / "results.jsonl").write_text('{"key": "x"}\n')
    monkeypatch.setattr(
        "searchkit.bench.run_sweep",
        lambda *a, **k: _nothing_run(),
    )
    assert main(["bench", "--out", str(tmp_path), "--resume", "--no-progress"]) == 0
    assert "nothing to resume" not in capsys.readouterr().out
