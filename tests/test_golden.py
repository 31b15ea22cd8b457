"""Every strategy gives bit-identical results to the committed golden ones.

A refactor changes no numbers: the output latents must be equal to the bit, and the
reward, scores, trace and cost counters equal as JSON. The golden files are made by
``python tests/golden/make_golden.py`` (see its docstring for when to regenerate).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.golden.make_golden import all_cases, run_case, summary

GOLDEN = Path(__file__).resolve().parent / "golden"
LATENTS = load_file(str(GOLDEN / "strategies.safetensors"))
SUMMARIES = json.loads((GOLDEN / "strategies.json").read_text())
CASES = dict(all_cases())


def test_golden_files_cover_every_case():
    assert set(CASES) == set(SUMMARIES) == set(LATENTS)


def test_every_registered_strategy_has_a_golden_case():
    from searchkit.registry import STRATEGIES

    covered = {args[1] for args in CASES.values()}
    assert set(STRATEGIES.names()) <= covered, set(STRATEGIES.names()) - covered


@pytest.mark.parametrize("key", sorted(CASES))
def test_strategy_result_equals_golden(key):
    result = run_case(*CASES[key])
    assert torch.equal(result.latents, LATENTS[key]), f"{key}: output latents changed"
    # JSON round trip so that floats compare as they were stored (repr is exact)
    got = json.loads(json.dumps(summary(result)))
    want = SUMMARIES[key]
    for field in ("reward", "scores"):
        assert got[field] == want[field], f"{key}: {field} changed"
    # every cost field the golden files hold keeps its value; fields added since (the FLOP
    # count) are checked by tests/test_flops.py
    assert {k: got["cost"].get(k) for k in want["cost"]} == want["cost"], f"{key}: cost changed"
    assert got["trace"]["advances"] == want["trace"]["advances"], f"{key}: advances changed"
    assert got["trace"]["parents"] == want["trace"]["parents"], f"{key}: lineage changed"
    assert len(got["trace"]["scored"]) == len(want["trace"]["scored"]), f"{key}: scoring events"
    for i, (g, w) in enumerate(zip(got["trace"]["scored"], want["trace"]["scored"], strict=True)):
        assert g == w, f"{key}: scoring event {i} changed"


def test_benchmark_rows_with_the_exact_reward_keep_their_values(tmp_path):
    """Every field a golden sweep row had keeps its value (new fields may be added)."""
    from tests.golden.make_golden import sweep_rows

    want = json.loads((GOLDEN / "sweep_rows.json").read_text())
    got = json.loads(json.dumps(sweep_rows(tmp_path)))
    assert [r["key"] for r in got] == [r["key"] for r in want]
    for new, old in zip(got, want, strict=True):
        assert {k: new.get(k) for k in old} == old, old["key"]
