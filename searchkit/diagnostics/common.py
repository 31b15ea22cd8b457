"""What both diagnostics share: the evaluator, the seeds' noise, the checks and the intervals.

* The **evaluator** grades finished outputs apart from the search (as in
  :mod:`searchkit.evaluation`): the backend's oracle by default (the analytic world's exact
  reward), otherwise any registered reward, shown the clean latent (noise level 0) or, for a
  video reward, the decoded frames. Its compute is not search compute and is not metered.
* A seed's **noise** is what ``Strategy.run(..., seed=s)`` starts from: the first draw of a
  CPU generator seeded with ``s`` (so diagnostic row ``s`` starts where the baseline of
  seed ``s`` starts).
* **Intervals** are 95%: a percentile bootstrap over seeds for rank correlations, and
  Student's t over groups for means.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import numpy as np
import torch
from scipy import stats

from searchkit.backend import Backend, Conditioning
from searchkit.cost import Cost
from searchkit.errors import InputError, InputTypeError
from searchkit.reward import Reward, RewardBatch
from searchkit.validation import is_int


@attrs.frozen(eq=False)
class Evaluator:
    """Grades clean outputs: the backend's oracle (``reward is None``) or a reward."""

    name: str
    reward: Reward | None = None

    def __call__(
        self, backend: Backend, latents: torch.Tensor, conditioning: Conditioning
    ) -> torch.Tensor:
        """Aggregate scores ``[n]`` (float32, CPU) of clean ``latents`` ``[n, ...]``."""
        with torch.no_grad():
            if self.reward is None:
                return backend.oracle(latents, conditioning.prompt).detach().float().cpu()
            data = backend.decode(latents) if self.reward.input == "video" else latents
            n = latents.shape[0]
            batch = RewardBatch(
                data=data,
                sigma=torch.zeros(n),
                conditioning=conditioning,
                step=backend.num_steps,
            )
            scores = self.reward(batch)
        dims = len(self.reward.dimensions)
        if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (n, dims):
            shape = list(scores.shape) if isinstance(scores, torch.Tensor) else type(scores)
            raise InputError(
                f"evaluator {self.name!r} must return [{n}, {dims}] scores, got {shape}"
            )
        scores = scores.detach().float().cpu()
        if not torch.isfinite(scores).all():
            raise InputError(f"evaluator {self.name!r} returned a non-finite score")
        return self.reward.aggregate(scores)


def resolve_evaluator(backend: Backend, evaluator: Reward | None) -> Evaluator:
    """``evaluator`` as an :class:`Evaluator`; ``None`` means the backend's oracle."""
    if evaluator is None:
        if not backend.has_oracle:
            raise InputError(
                f"evaluator is needed: backend {backend.name!r} has no oracle; "
                "name a reward to grade the outputs (e.g. --evaluator video-reward)"
            )
        return Evaluator("oracle")
    if not isinstance(evaluator, Reward):
        raise InputTypeError(
            f"evaluator must be a searchkit Reward or None (the oracle), got {type(evaluator).__name__}"
        )
    return Evaluator(evaluator.name, evaluator)


def check_prompts(prompts: str | Sequence[str]) -> tuple[str, ...]:
    prompts = (prompts,) if isinstance(prompts, str) else tuple(prompts)
    if not prompts or not all(isinstance(p, str) and p for p in prompts):
        raise InputError(f"prompts must be one or more non-empty strings, got {prompts!r}")
    if len(set(prompts)) != len(prompts):
        raise InputError(f"prompts must be distinct, got {list(prompts)}")
    return prompts


#: The most seeds a diagnostic runs (each one a full trajectory per prompt).
MAX_SEEDS = 100_000


def check_seeds(seeds: int | Iterable[int], minimum: int) -> tuple[int, ...]:
    """``n`` means seeds ``0..n-1``; at least ``minimum`` distinct integers, at most
    :data:`MAX_SEEDS`."""
    if is_int(seeds):
        if seeds > MAX_SEEDS:  # type: ignore[operator]
            raise InputError(f"seeds must be at most {MAX_SEEDS}, got {seeds!r}")
        seeds = range(seeds)  # type: ignore[arg-type]
    seeds = tuple(seeds)  # type: ignore[arg-type]
    if not all(is_int(s) for s in seeds) or len(set(seeds)) != len(seeds):
        raise InputError(f"seeds must be distinct integers, got {list(seeds)}")
    if len(seeds) < minimum:
        raise InputError(f"seeds must hold at least {minimum} seeds, got {len(seeds)}")
    if len(seeds) > MAX_SEEDS:
        raise InputError(f"seeds must hold at most {MAX_SEEDS} seeds, got {len(seeds)}")
    return seeds


def check_positive(name: str, value: object) -> int:
    if not is_int(value) or value < 1:  # type: ignore[operator]
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return value  # type: ignore[return-value]


def seed_noise(backend: Backend, seeds: Sequence[int]) -> torch.Tensor:
    """The initial noise ``[len(seeds), ...]`` that a run with each seed starts from."""
    return torch.cat([backend.initial_noise(1, torch.Generator().manual_seed(s)) for s in seeds])


def add_costs(costs: Sequence[Cost]) -> dict[str, Any]:
    """Counters and seconds of several contexts, summed (JSON-able)."""
    total: dict[str, Any] = {
        "particle_steps": 0,
        "nfe": 0,
        "reward_calls": 0,
        "decodes": 0,
        "seconds": {},
    }
    for cost in costs:
        for key in ("particle_steps", "nfe", "reward_calls", "decodes"):
            total[key] += int(getattr(cost, key))
        for phase, seconds in cost.seconds.items():
            total["seconds"][phase] = total["seconds"].get(phase, 0.0) + float(seconds)
    return total


def rank_correlation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho between ``x [..., n, k]`` and ``y [..., n]`` along the seeds axis ``n``.

    Average ranks (``scipy.stats.rankdata``), then Pearson's r of the ranks: Spearman's rho,
    ties included. NaN where either side is constant.
    """
    rx = stats.rankdata(x, axis=-2)
    ry = stats.rankdata(y, axis=-1)[..., None]
    rx = rx - rx.mean(axis=-2, keepdims=True)
    ry = ry - ry.mean(axis=-2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(-2) / np.sqrt((rx**2).sum(-2) * (ry**2).sum(-2))


def mean_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` and its Student-t interval (NaN bounds for fewer than 2 values)."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if values.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2, values.size - 1) * stats.sem(values))
    return mean, mean - half, mean + half
