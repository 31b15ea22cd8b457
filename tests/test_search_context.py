"""The context's verbs that write the trace and meter gradients, the SMC driver's weight
bookkeeping, and presets."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
import torch

from searchkit import RGRP, FKSteering, ParticleFilter, SearchContext
from searchkit.backends import AnalyticBackend
from searchkit.cost import Meter
from searchkit.resampling import normalize_log_weights
from searchkit.rewards import AnalyticReward
from searchkit.smc import SMCPolicy, run_smc

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def small() -> AnalyticBackend:
    return AnalyticBackend(channels=2, frames=3, height=4, width=4, num_steps=10)


def _context(backend, prompt, seed=0) -> SearchContext:
    return SearchContext(
        backend, AnalyticReward(backend), prompt, generator=torch.Generator().manual_seed(seed)
    )


# -- record_selection ---------------------------------------------------------------------
def test_record_selection_writes_the_decision_into_the_trace(small, prompt) -> None:
    ctx = _context(small, prompt)
    particles = ctx.advance(ctx.start(4), to=5)
    record = ctx.score(particles, label="mid")
    drawn = torch.tensor([2, 2, 0, 3])
    weights = torch.tensor([0.25, 0.0, 0.5, 0.25])
    survivors = ctx.record_selection(record, particles.select(drawn), chosen=drawn, weights=weights)
    event = ctx.trace[0]
    assert event is not record  # the trace holds a new frozen record with the decision
    assert event.chosen.tolist() == [2, 2, 0, 3]
    assert torch.equal(event.weights, weights)
    assert event.survivors.tolist() == survivors.ids.tolist()
    assert event.survivors.tolist()[:1] == [int(particles.ids[2])]  # first copy keeps its id
    assert torch.equal(event.scores, record.scores) and event.label == "mid"


def test_records_are_frozen(small, prompt) -> None:
    ctx = _context(small, prompt)
    record = ctx.score(ctx.advance(ctx.start(2), to=3))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.chosen = torch.tensor([0])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ctx.trace.advances[0].stop = 7


def test_a_record_takes_one_decision(small, prompt) -> None:
    ctx = _context(small, prompt)
    particles = ctx.advance(ctx.start(2), to=3)
    record = ctx.score(particles)
    ctx.record_selection(record, particles, chosen=[0, 1])
    with pytest.raises(ValueError, match="already has a decision"):
        ctx.record_selection(record, particles, chosen=[0, 1])


def test_record_selection_refuses_foreign_records_and_bad_fields(small, prompt) -> None:
    ctx, other = _context(small, prompt), _context(small, prompt)
    particles = ctx.advance(ctx.start(3), to=3)
    record = ctx.score(particles)
    foreign = other.score(other.advance(other.start(3), to=3))
    with pytest.raises(ValueError, match="returned by this search"):
        ctx.record_selection(foreign, particles)
    with pytest.raises(
        ValueError,
        match=re.escape("chosen must be indices into the 3 scored particles, got [0, 3]"),
    ):
        ctx.record_selection(record, particles, chosen=[0, 3])
    with pytest.raises(ValueError, match=re.escape("weights must have shape [3], got [2]")):
        ctx.record_selection(record, particles, weights=torch.tensor([0.5, 0.5]))


def test_only_the_context_assigns_record_fields_and_strategies_reach_nothing_private() -> None:
    """The code base's own rule, checked on its source: no trace-record field is assigned
    outside ``searchkit/context.py``; no strategy reads the context's backend or noise."""
    assign = re.compile(
        r"\brecord\w*\.(weights|chosen|survivors|scores|total|ids|step|sigma|label)\s*=[^=]"
    )
    private = re.compile(r"\bctx\.(_?backend|_?given_noise|_?reward|_?lineage)\b")
    sources = [
        p
        for folder in ("searchkit", "algorithms", "rewards")
        for p in (REPO / folder).rglob("*.py")
    ]
    assert sources
    offenders = [
        f"{p.relative_to(REPO)}:{n}"
        for p in sources
        if p.name != "context.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if assign.search(line)
    ]
    assert not offenders, offenders
    strategies = [p for p in (REPO / "algorithms").glob("*.py")]
    reaching = [
        f"{p.name}:{n}"
        for p in strategies
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if private.search(line)
    ]
    assert not reaching, reaching


# -- gradients ---------------------------------------------------------------------------
def test_backward_is_charged_for_the_forwards_in_the_graph(small, prompt) -> None:
    """2 particles x 4 steps with the graph kept, guidance on (2 forwards a step)."""
    ctx = _context(small, prompt)
    noise = ctx.start(2).latents.detach().requires_grad_(True)
    finished = ctx.advance(ctx.start(2, noise=noise), to=4, grad=True)
    ctx.advance(finished, to=6)  # without the graph: not charged to the backward pass
    ctx.backward(finished.latents.sum())
    forwards = 2 * 4 * small.forwards_per_step
    assert ctx.meter.backward_nfe == Meter.BACKWARD_FACTOR * forwards
    assert noise.grad is not None and torch.isfinite(noise.grad).all()
    ctx.backward(ctx.advance(ctx.start(1, noise=noise[:1]), to=1, grad=True).latents.sum())
    assert ctx.meter.backward_nfe == Meter.BACKWARD_FACTOR * (forwards + small.forwards_per_step)


# -- the SMC driver ----------------------------------------------------------------------
@attrs.frozen
class _NeverResample(SMCPolicy):
    """Potential = the reward; weights accumulate because nothing is ever resampled."""

    def log_potential(self, particles, record):
        return record.total.double(), particles

    def should_resample(self, log_weights, last):
        return False


def test_driver_accumulates_log_weights_until_it_resamples(small, prompt) -> None:
    ctx = _context(small, prompt)
    result = run_smc(ctx, ctx.start(3), (2, 5, 7), _NeverResample(), label="acc")
    events = list(result.trace)[:3]
    running = torch.zeros(3, dtype=torch.float64)
    for event in events:
        running = running + event.total.double()
        assert event.chosen is None  # no draw
        assert torch.allclose(event.weights.double(), normalize_log_weights(running), atol=1e-7)
        assert event.survivors.tolist() == event.ids.tolist()


def test_driver_resets_weights_after_each_resampling(small, prompt) -> None:
    """RGRP resamples at every event: its weights are softmax(r / tau) of that event alone."""
    result = RGRP(num_particles=4, temperature=0.5, schedule=(2, 5, 7), keep_duplicates=True).run(
        small, AnalyticReward(small), prompt, seed=1
    )
    for event in list(result.trace)[:3]:
        expected = torch.softmax(event.total.double() / 0.5, dim=0)
        assert torch.allclose(event.weights.double(), expected, atol=1e-7)
        assert len(event.chosen) == len(event.ids)


def test_particle_filter_resamples_only_below_the_ess_threshold(small, prompt) -> None:
    result = ParticleFilter(num_particles=6, schedule=(2, 4, 6, 8), lmbda=3.0).run(
        small, AnalyticReward(small), prompt, seed=0
    )
    scheduled = list(result.trace)[:4]
    for event in scheduled:
        w = event.weights.double()
        low_ess = 1.0 / float((w**2).sum()) < 0.5 * len(w)
        assert (event.chosen is not None) == low_ess
    assert any(e.chosen is not None for e in scheduled), "lambda = 3 should force a resample"


# -- presets -----------------------------------------------------------------------------
def test_presets_are_settings_with_overrides() -> None:
    assert RGRP.from_preset("latsearch") == RGRP(
        num_particles=6, beta=0.1, temperature=1.0, schedule=(10, 15, 20)
    )
    assert RGRP.from_preset("independent", num_particles=8) == RGRP(num_particles=8, beta=1.0)
    assert FKSteering.from_preset("tilted-sample").selection == "sample"
    with pytest.raises(
        ValueError, match="preset must be one of rgrp's presets: independent, latsearch"
    ):
        RGRP.from_preset("nope")


def test_expected_nfe_counts_backward_passes_by_the_meters_rule(small) -> None:
    from searchkit import NoiseOptimization

    strategy = NoiseOptimization(num_iterations=3)
    f, t = small.forwards_per_step, small.num_steps
    assert strategy.expected_nfe(small) == f * (4 * t) + Meter.BACKWARD_FACTOR * f * 3 * t
    assert math.isclose(ParticleFilter(num_particles=5).expected_nfe(small), 5 * t * f)


def test_import_rewards_from_the_repository_root_is_refused() -> None:
    """``rewards/`` and ``algorithms/`` install as ``searchkit.rewards`` / ``searchkit.algorithms``
    only: importing them as top-level packages would give modules a second identity."""
    for name in ("rewards", "algorithms"):
        run = subprocess.run(
            [sys.executable, "-c", f"import {name}"], cwd=REPO, capture_output=True, text=True
        )
        assert run.returncode != 0
        assert f"import searchkit.{name}" in run.stderr
