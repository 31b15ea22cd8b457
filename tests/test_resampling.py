"""Resampling schemes: properties (hypothesis) and statistics (fixed seeds, derived tolerances)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from searchkit.resampling import (
    RESAMPLERS,
    ess,
    get_resampler,
    multinomial,
    normalize_log_weights,
    residual,
    stratified,
    systematic,
)

SCHEMES = sorted(RESAMPLERS)

weight_lists = st.lists(
    st.one_of(st.just(0.0), st.floats(min_value=1e-6, max_value=100.0)), min_size=1, max_size=12
).filter(lambda w: sum(w) > 0)


def _counts(indices: torch.Tensor, n: int) -> torch.Tensor:
    return torch.bincount(indices, minlength=n)


@settings(max_examples=60, deadline=None)
@given(weights=weight_lists, num=st.integers(1, 40), seed=st.integers(0, 2**31 - 1))
@pytest.mark.parametrize("scheme", SCHEMES)
def test_indices_valid_and_zero_weights_never_chosen(scheme, weights, num, seed) -> None:
    w = torch.tensor(weights, dtype=torch.float32)
    idx = RESAMPLERS[scheme](w, num, torch.Generator().manual_seed(seed))
    assert idx.dtype == torch.long and idx.shape == (num,)
    assert int(idx.min()) >= 0 and int(idx.max()) < len(weights)
    counts = _counts(idx, len(weights))
    assert int(counts.sum()) == num
    assert torch.all(counts[w == 0] == 0)


@settings(max_examples=60, deadline=None)
@given(weights=weight_lists, num=st.integers(1, 40), seed=st.integers(0, 2**31 - 1))
def test_count_bounds_of_the_low_variance_schemes(weights, num, seed) -> None:
    w = torch.tensor(weights, dtype=torch.float64)
    expected = num * w / w.sum()
    g = torch.Generator().manual_seed(seed)
    sys_counts = _counts(systematic(w, num, g), len(weights)).double()
    assert torch.all(sys_counts >= torch.floor(expected - 1e-9))
    assert torch.all(sys_counts <= torch.ceil(expected + 1e-9))
    res_counts = _counts(residual(w, num, g), len(weights)).double()
    assert torch.all(res_counts >= torch.floor(expected + 1e-9))
    strat_counts = _counts(stratified(w, num, g), len(weights)).double()
    assert torch.all((strat_counts - expected).abs() < 2)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_one_hot_gives_all_copies(scheme) -> None:
    w = torch.tensor([0.0, 0.0, 3.0, 0.0])
    idx = RESAMPLERS[scheme](w, 7, torch.Generator().manual_seed(0))
    assert idx.tolist() == [2] * 7


def _float32_weights_summing_below_one() -> torch.Tensor:
    x = torch.rand(8, generator=torch.Generator().manual_seed(0))
    w = (x / x.sum()).float()
    assert float(w.cumsum(0)[-1]) < 1.0  # the case a naive cumsum search gets wrong
    return w


@pytest.mark.parametrize("scheme", SCHEMES)
def test_float32_weights_summing_below_one(scheme) -> None:
    w = _float32_weights_summing_below_one()
    for seed in range(50):
        idx = RESAMPLERS[scheme](w, 10, torch.Generator().manual_seed(seed))
        assert int(idx.min()) >= 0 and int(idx.max()) <= 7


def test_a_uniform_above_the_float32_total_still_maps_to_the_last_particle() -> None:
    from searchkit.resampling import _inverse_cdf, check_weights

    w = _float32_weights_summing_below_one()
    u = torch.tensor([float(w.cumsum(0)[-1]) + 1e-8, 1.0 - 1e-12], dtype=torch.float64)
    assert _inverse_cdf(check_weights(w), u).tolist() == [7, 7]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize(
    "weights, message",
    [
        ([0.5, -0.1], "negative"),
        ([0.5, float("nan")], "NaN"),
        ([float("inf"), 1.0], "infinity"),
        ([0.0, 0.0], "all be zero"),
        ([], "non-empty"),
    ],
)
def test_bad_weights_raise(scheme, weights, message) -> None:
    with pytest.raises(ValueError, match=message):
        RESAMPLERS[scheme](torch.tensor(weights), 3, torch.Generator().manual_seed(0))


def test_unknown_resampler_lists_known() -> None:
    with pytest.raises(ValueError, match="known: multinomial"):
        get_resampler("bootstrap")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_counts_are_unbiased(scheme) -> None:
    """E[N_i] = M w_i, checked over R repetitions with a z-test per particle.

    Var(N_i) is at most M w_i (1 - w_i) for multinomial, stratified and residual
    resampling, and at most 1/4 for systematic (N_i takes two adjacent values), so the
    standard error of the mean count is at most sqrt(max(M w (1 - w), 1/4) / R). A bound of
    4.5 standard errors keeps the family-wise false alarm rate under 1e-4 for the 24
    comparisons in this test.
    """
    w = torch.tensor([0.05, 0.3, 0.0, 0.15, 0.5])
    m, reps = 7, 4000
    g = torch.Generator().manual_seed(123)
    counts = torch.stack([_counts(RESAMPLERS[scheme](w, m, g), 5) for _ in range(reps)]).double()
    mean = counts.mean(0)
    expected = m * w.double()
    se = torch.sqrt(torch.clamp(m * w.double() * (1 - w.double()), min=0.25) / reps)
    assert torch.all((mean - expected).abs() < 4.5 * se), (mean, expected)


def test_expected_unique_count_of_a_multinomial_draw() -> None:
    """E[#unique] = sum_i (1 - (1 - w_i)^n); z-test with the sample standard error, 4.5 sigma."""
    for w in (torch.full((6,), 1 / 6), torch.tensor([0.5, 0.2, 0.1, 0.1, 0.05, 0.05])):
        n, reps = 6, 4000
        g = torch.Generator().manual_seed(7)
        uniques = torch.tensor(
            [float(torch.unique(multinomial(w, n, g)).numel()) for _ in range(reps)],
            dtype=torch.float64,
        )
        expected = float((1 - (1 - w.double()) ** n).sum())
        se = float(uniques.std()) / math.sqrt(reps)
        assert abs(float(uniques.mean()) - expected) < 4.5 * se
    assert (
        abs(float((1 - (1 - torch.full((6,), 1 / 6, dtype=torch.float64)) ** 6).sum()) - 3.99)
        < 0.01
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=1, max_size=20))
def test_ess_lies_between_one_and_n(log_weights) -> None:
    lw = torch.tensor(log_weights, dtype=torch.float64)
    value = ess(lw)
    assert 1 - 1e-9 <= value <= len(log_weights) + 1e-9
    w = normalize_log_weights(lw)
    assert abs(float(w.sum()) - 1) < 1e-9
    assert abs(value - 1 / float((w**2).sum())) < 1e-6


def test_ess_extremes() -> None:
    assert abs(ess(torch.zeros(8)) - 8) < 1e-9
    assert abs(ess(torch.tensor([0.0, -1e9, -1e9])) - 1) < 1e-9
    with pytest.raises(ValueError, match="cannot be normalised"):
        normalize_log_weights(torch.full((3,), -math.inf))
