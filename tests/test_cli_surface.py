"""The command line's surface: help from the field docs, switches, --version, list, progress,
and one permission mode for every output file."""

from __future__ import annotations

import argparse
import io
import os
import pydoc
import re

import attrs
import pytest

import searchkit
from searchkit import progress
from searchkit.backends import AnalyticBackend
from searchkit.cli import build_parser, main
from searchkit.fielddoc import field_docs, plain, summary
from searchkit.files import file_mode
from searchkit.registry import BACKENDS, REWARDS, STRATEGIES
from searchkit.rewards import AnalyticReward

from searchkit import RGRP  # isort: skip


def _help(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_every_strategy_option_has_help_from_its_field_docs(name, capsys) -> None:
    cls = STRATEGIES.get(name)
    docs = field_docs(cls)
    text = " ".join(_help(capsys, ["generate", "--strategy", name, "--help"]).split())
    for field in attrs.fields(cls):
        if not field.init:
            continue
        assert docs.get(field.name), f"{name}: field {field.name!r} has no entry in Args:"
        flag = "--" + field.name.replace("_", "-")
        assert flag in text
        # the help is the docstring's entry (plain text), followed by the default
        assert " ".join(docs[field.name].rstrip(".").split()) in text
    assert summary(cls) in text


@pytest.mark.parametrize("name", BACKENDS.names())
def test_every_backend_field_is_documented(name) -> None:
    cls = BACKENDS.get(name)
    if attrs.has(cls):
        docs = field_docs(cls)
        missing = [f.name for f in attrs.fields(cls) if f.init and f.name not in docs]
        assert not missing


def test_rgrp_help_shows_switches_choices_and_defaults(capsys) -> None:
    text = _help(capsys, ["generate", "--strategy", "rgrp", "--help"])
    flat = " ".join(text.split())
    assert "--keep-duplicates, --no-keep-duplicates" in text
    assert "one of: multinomial, stratified, systematic, residual; default: multinomial" in flat
    assert "(default: 6)" in flat and "default: 10,15,20" in flat
    assert "``" not in text and ":class:" not in text and ":data:" not in text
    # help(RGRP) documents the same parameters
    rendered = pydoc.render_doc(RGRP, renderer=pydoc.plaintext)
    assert "num_particles: ``N``, candidates at step 0." in rendered


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], False),
        (["--keep-duplicates"], True),
        (["--no-keep-duplicates"], False),
        (["--keep-duplicates", "false"], False),
        (["--keep-duplicates", "true"], True),
    ],
)
def test_booleans_are_switches(argv, expected) -> None:
    full = ["generate", "--strategy", "rgrp", *argv]
    args = build_parser(full).parse_args(full)
    assert getattr(args, "keep_duplicates", False) is expected


def _parsers(argv: list[str]):
    """(name, parser) for every (sub)command of ``build_parser(argv)``, nested ones too."""

    def walk(parser, name):
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, child in action.choices.items():
                    yield from walk(child, f"{name} {sub}")

    return list(walk(build_parser(argv), "searchkit"))


@pytest.mark.parametrize(
    "argv", [[]] + [["generate", "--strategy", name] for name in STRATEGIES.names()]
)
def test_every_help_is_plain_text_and_documents_every_option(argv) -> None:
    for name, parser in _parsers(argv):
        text = parser.format_help()
        for markup in ("``", ":class:", ":data:", ":func:", ":mod:", ":meth:"):
            assert markup not in text, f"{name} --help shows {markup}"
        for action in parser._actions:
            if not action.option_strings or isinstance(action, argparse._SubParsersAction):
                continue
            flag, about = action.option_strings[-1], " ".join((action.help or "").split())
            assert about and about != argparse.SUPPRESS, f"{name} {flag} has no help"
            if action.choices is not None:
                listed = ", ".join(map(str, action.choices))
                assert f"one of: {listed}" in about, f"{name} {flag}: its choices, in {about!r}"
            if action.default not in (None, False, argparse.SUPPRESS):
                assert "default" in about, f"{name} {flag}: its default, in {about!r}"


def _takers(field: str) -> list[str]:
    return [
        name
        for name in STRATEGIES.names()
        if attrs.has(STRATEGIES.get(name)) and field in attrs.fields_dict(STRATEGIES.get(name))
    ]


@pytest.mark.parametrize(
    ("argv", "flag", "field", "strategy"),
    [
        (["--num-particles", "3"], "--num-particles", "num_particles", "baseline"),
        (
            ["--strategy", "best-of-n", "--num-particles=3"],
            "--num-particles",
            "num_particles",
            "best-of-n",
        ),
        (["--no-keep-duplicates"], "--no-keep-duplicates", "keep_duplicates", "baseline"),
    ],
)
def test_an_option_of_other_strategies_says_which_take_it(
    argv, flag, field, strategy, tmp_path, capsys
) -> None:
    takers = _takers(field)
    assert takers and strategy not in takers
    assert main(["generate", "--out", str(tmp_path / "o"), *argv]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and not (tmp_path / "o").exists()
    assert lines[0].startswith("searchkit generate: error: unrecognized arguments: --")
    assert lines[0].endswith(
        f"; {flag} is an option of {', '.join(takers)}, not of {strategy}: pass --strategy NAME"
    )


@pytest.mark.parametrize(
    ("argv", "prog", "unknown"),
    [
        (["generate", "--nmu-particles", "3"], "searchkit generate", "--nmu-particles 3"),
        (["bench", "--bogus"], "searchkit bench", "--bogus"),
        (["reward", "train", "--data", "d", "--out", "o", "-x"], "searchkit reward train", "-x"),
    ],
)
def test_an_unknown_option_is_named_by_its_subcommand(argv, prog, unknown, capsys) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{prog}: error: unrecognized arguments: {unknown}",
        f"Run '{prog} --help' for the options.",
    ]


def test_version(capsys) -> None:
    text = _help(capsys, ["--version"])
    assert text.strip() == f"searchkit {searchkit.__version__}"


def test_list_is_aligned_plain_text(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "``" not in out and ":class:" not in out and ":data:" not in out
    rows = [line for line in out.splitlines() if line.startswith("  ")]
    assert len(rows) >= len(STRATEGIES.names()) + len(BACKENDS.names())
    starts = {re.match(r"  \S+\s+", row).end() for row in rows}
    assert len(starts) == 1  # every description starts in the same column


@pytest.mark.parametrize("name", sorted({*STRATEGIES.names(), *BACKENDS.names(), *REWARDS.names()}))
def test_list_name_documents_every_option_of_every_plugin(name, capsys) -> None:
    assert main(["list", name]) == 0
    out = capsys.readouterr().out
    assert "(undocumented)" not in out and "``" not in out and ":class:" not in out
    assert out.startswith(("strategy ", "reward ", "backend "))
    assert "options, as " in out


def test_list_name_lists_the_fields_with_their_defaults(capsys) -> None:
    assert main(["list", "rgrp"]) == 0
    out = capsys.readouterr().out
    for field in attrs.fields(RGRP):
        assert "--" + field.name.replace("_", "-") in out
    assert "(default: 0.1)" in out  # beta
    assert main(["list", "wan"]) == 0
    wan = capsys.readouterr().out
    for option in ("model_path", "tiny", "cpu_offload", "guidance_scale_2", "max_batch"):
        assert f"  {option} " in wan


def test_list_of_an_unknown_name_suggests_the_closest(capsys) -> None:
    assert main(["list", "rgpr"]) == 2
    err = capsys.readouterr().err
    assert "'rgpr'" in err and "did you mean rgrp" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("``N``, candidates", "N, candidates"),
        (
            "any of :data:`searchkit.resampling.RESAMPLERS`.",
            "any of searchkit.resampling.RESAMPLERS.",
        ),
        ("see :class:`~searchkit.result.ScoreRecord`", "see ScoreRecord"),
        (":func:`the loader <searchkit.bench.load_config>`", "the loader"),
        ("two\n   lines", "two lines"),
    ],
)
def test_plain_strips_rest_markup(text, expected) -> None:
    assert plain(text) == expected


# -- progress ------------------------------------------------------------------------------------
class _Recorder:
    def __init__(self) -> None:
        self.steps: list[tuple[int, int, int, int]] = []
        self.events: list[tuple[int, int]] = []

    def step(self, step, num_steps, alive, nfe) -> None:
        self.steps.append((step, num_steps, alive, nfe))

    def scored(self, step, alive) -> None:
        self.events.append((step, alive))


def test_the_observer_sees_every_step_particle_and_reward_event() -> None:
    backend = AnalyticBackend(channels=2, frames=2, height=2, width=2, num_steps=8)
    reward = AnalyticReward(backend)
    recorder = _Recorder()
    with progress.observe(recorder):
        result = RGRP(num_particles=4, schedule=(2, 4)).run(backend, reward, "a fox", seed=0)
    assert sum(alive for _, _, alive, _ in recorder.steps) == result.cost.particle_steps
    assert recorder.steps[-1][3] == result.cost.nfe and recorder.steps[-1][:2] == (8, 8)
    assert [step for step, _ in recorder.events] == [e.step for e in result.trace.scored]
    # outside the block nothing is reported
    RGRP(num_particles=4, schedule=(2, 4)).run(backend, reward, "a fox", seed=0)
    assert sum(alive for _, _, alive, _ in recorder.steps) == result.cost.particle_steps


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_only_on_a_terminal_and_not_when_quiet() -> None:
    assert progress.wanted(False, _Terminal())
    assert not progress.wanted(True, _Terminal())
    assert not progress.wanted(False, io.StringIO())
    stream = _Terminal()
    bar = progress.ProgressBar(100, "rgrp", stream=stream)
    bar.scored(2, 4)
    bar.step(3, 8, 4, 40)
    bar._bar.refresh()
    bar.close()
    assert "step 3/8, 4 alive, 1 reward events" in stream.getvalue()


def test_generate_is_quiet_when_stderr_is_not_a_terminal(tmp_path, capsys) -> None:
    assert main(["generate", "--backend-opt", "num_steps=4", "--out", str(tmp_path / "g")]) == 0
    assert capsys.readouterr().err == ""


# -- output files ------------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o027])
@pytest.mark.parametrize("video_format", ["mp4", "frames"])
def test_output_files_share_one_mode(umask, video_format, tmp_path, capsys) -> None:
    previous = os.umask(umask)
    try:
        out = tmp_path / "g"
        argv = ["generate", "--backend-opt", "num_steps=4", "--format", video_format]
        assert main([*argv, "--out", str(out)]) == 0
        expected = file_mode()
    finally:
        os.umask(previous)
    assert expected == 0o666 & ~umask
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.rglob("*") if p.is_file()}
    assert {"latents.safetensors", "result.json"} <= set(modes)
    assert set(modes.values()) == {expected}, modes
