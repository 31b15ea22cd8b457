"""Resampling schemes: which particles survive, and how many copies each gets.

Every scheme is a pure function ``f(weights, num_samples, generator) -> LongTensor`` of
``num_samples`` indices into ``weights`` (Douc, Cappé & Moulines 2005, "Comparison of
resampling schemes for particle filtering"). Weights need not sum to one; negative, NaN,
infinite or all-zero weights raise ``ValueError``. With ``N_i`` the number of copies of
particle ``i``, ``M = num_samples`` and ``L_i = M w_i`` (normalised ``w``):

* ``multinomial``: ``N ~ Multinomial(M, w)``, so ``N_i ~ Binomial(M, w_i)``;
* ``stratified``: one uniform per stratum, ``u_k = (k + U_k) / M``; ``|N_i - L_i| < 2``;
* ``systematic``: one uniform for all, ``u_k = (k + U) / M``; ``N_i in {floor L_i, ceil L_i}``;
* ``residual``: ``floor L_i`` copies, then multinomial on the residual weights; ``N_i >= floor L_i``.

All four are unbiased, ``E[N_i] = M w_i``, and never pick a zero-weight particle.
Comparisons are done in float64 on normalised cumulative sums whose last entry is exactly
one, so float32 weights whose sum falls just short of one still give valid indices.

Helpers on log-weights (normalise with logsumexp, effective sample size) live here too.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Resampler = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]


def check_weights(weights: torch.Tensor) -> torch.Tensor:
    """Validated weights as normalised float64 probabilities on the CPU."""
    if not isinstance(weights, torch.Tensor):
        weights = torch.as_tensor(weights)
    if weights.dim() != 1 or weights.numel() == 0:
        raise ValueError(f"weights must be a non-empty 1-D tensor, got shape {list(weights.shape)}")
    w = weights.detach().to(device="cpu", dtype=torch.float64)
    if torch.isnan(w).any():
        raise ValueError(
            f"weights contain NaN at indices {torch.isnan(w).nonzero().flatten().tolist()}"
        )
    if torch.isinf(w).any():
        raise ValueError(
            f"weights contain infinity at indices {torch.isinf(w).nonzero().flatten().tolist()}"
        )
    if (w < 0).any():
        raise ValueError(
            f"weights must be >= 0, got negative values at indices {(w < 0).nonzero().flatten().tolist()}"
        )
    total = w.sum()
    if total <= 0:
        raise ValueError("weights must not all be zero")
    return w / total


def _check_count(num_samples: int) -> None:
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")


def _inverse_cdf(probs: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Index ``i`` with ``c_{i-1} <= u < c_i`` for each point, ``c`` the normalised cumsum."""
    cdf = torch.cumsum(probs, dim=0)
    cdf = cdf / cdf[-1]  # last entry exactly 1.0, so every u in [0, 1) falls inside
    return torch.searchsorted(cdf, points, right=True).clamp_(max=probs.numel() - 1)


def _uniform(shape: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(
        shape, generator=generator, dtype=torch.float64, device=generator.device
    ).cpu()


def multinomial(
    weights: torch.Tensor, num_samples: int, generator: torch.Generator
) -> torch.Tensor:
    """``num_samples`` independent draws from ``w`` (with replacement)."""
    probs = check_weights(weights)
    _check_count(num_samples)
    return _inverse_cdf(probs, _uniform(num_samples, generator))


def stratified(weights: torch.Tensor, num_samples: int, generator: torch.Generator) -> torch.Tensor:
    """One uniform in each of ``num_samples`` equal strata of ``[0, 1)``."""
    probs = check_weights(weights)
    _check_count(num_samples)
    points = (
        torch.arange(num_samples, dtype=torch.float64) + _uniform(num_samples, generator)
    ) / num_samples
    return _inverse_cdf(probs, points)


def systematic(weights: torch.Tensor, num_samples: int, generator: torch.Generator) -> torch.Tensor:
    """One uniform shifted across ``num_samples`` evenly spaced points."""
    probs = check_weights(weights)
    _check_count(num_samples)
    points = (torch.arange(num_samples, dtype=torch.float64) + _uniform(1, generator)) / num_samples
    return _inverse_cdf(probs, points)


def residual(weights: torch.Tensor, num_samples: int, generator: torch.Generator) -> torch.Tensor:
    """``floor(M w_i)`` deterministic copies, the rest multinomial on the residual weights."""
    probs = check_weights(weights)
    _check_count(num_samples)
    expected = probs * num_samples
    copies = torch.floor(expected).to(torch.long)
    deterministic = torch.repeat_interleave(torch.arange(probs.numel()), copies)
    remaining = num_samples - int(copies.sum())
    if remaining == 0:
        return deterministic
    leftover = (expected - copies).clamp_(min=0.0)
    return torch.cat(
        [deterministic, _inverse_cdf(leftover / leftover.sum(), _uniform(remaining, generator))]
    )


RESAMPLERS: dict[str, Resampler] = {
    "multinomial": multinomial,
    "stratified": stratified,
    "systematic": systematic,
    "residual": residual,
}


def get_resampler(name: str) -> Resampler:
    """The resampler called ``name``; unknown names list the known ones."""
    try:
        return RESAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown resampler {name!r}; known: {', '.join(RESAMPLERS)}") from None


def normalize_log_weights(log_weights: torch.Tensor) -> torch.Tensor:
    """Normalised weights ``exp(l_i - logsumexp(l))``; raises on NaN or all ``-inf``."""
    log_weights = torch.as_tensor(log_weights, dtype=torch.float64)
    if torch.isnan(log_weights).any():
        raise ValueError("log-weights contain NaN")
    log_norm = torch.logsumexp(log_weights, dim=0)
    if not torch.isfinite(log_norm):
        raise ValueError(f"log-weights cannot be normalised (logsumexp = {float(log_norm)})")
    return torch.exp(log_weights - log_norm)


def ess(log_weights: torch.Tensor) -> float:
    """Effective sample size ``1 / sum w_i^2`` of normalised weights; lies in ``[1, N]``."""
    log_weights = torch.as_tensor(log_weights, dtype=torch.float64)
    log_w = log_weights - torch.logsumexp(log_weights, dim=0)
    return float(torch.exp(-torch.logsumexp(2.0 * log_w, dim=0)))
