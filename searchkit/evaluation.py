"""Held-out evaluators: rewards that grade a search's finished output, apart from the search.

A search is steered by its *search reward*; judging it by the same reward lets it grade
itself (and rewards a search for exploiting its verifier's errors). An *evaluator* is any
registered reward applied once to the output a search returns:

* it never takes part in the search: the strategy never sees it, and its compute is neither
  metered into the search's :class:`~searchkit.cost.Cost` nor charged to a budget;
* it is timed apart (``seconds`` per evaluator);
* a latent-space evaluator sees the clean output latent (noise level 0); a video evaluator
  sees the frames the search decoded (no second decode).

On a backend with an oracle (the analytic world) the oracle is the natural evaluator and
benchmark rows carry it as ``oracle``; on a real model the evaluators are verifiers the
search did not use (the LatSearch paper searches with a latent reward model and evaluates
with VBench-2.0; here, e.g., VideoReward or CLIP score).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from searchkit.backend import Backend
from searchkit.errors import InputError
from searchkit.result import SearchResult
from searchkit.reward import Reward, RewardBatch

#: The words for a grade given by the reward that steered the search itself.
SELF_GRADED = "self-graded: each output is scored by the reward that steered its search"


def build_evaluators(
    specs: Sequence[tuple[str, Mapping[str, Any]]], backend: Backend
) -> dict[str, Reward]:
    """Rewards by registry name and options, keyed by name; a repeated name is an error."""
    from searchkit.builders import build_reward

    evaluators: dict[str, Reward] = {}
    for name, options in specs:
        if name in evaluators:
            raise InputError(f"evaluators must be distinct, got {name!r} twice")
        evaluators[name] = build_reward(name, backend, **dict(options))
    return evaluators


def evaluate(
    evaluators: Mapping[str, Reward],
    backend: Backend,
    result: SearchResult,
    prompt: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Every evaluator's scores of ``result``'s output, against ``prompt``.

    ``prompt`` defaults to the one the search ran with; a search run on a rewritten prompt
    (VBench-2.0's ``prompt_aug``) is graded against the original, as VBench-2.0 grades it.

    Returns ``{name: {"scores": {dimension: value}, "total": aggregate, "seconds": s}}``.
    Raises ``ValueError`` naming the evaluator when it returns a non-finite or misshapen score.
    """
    if not evaluators:
        return {}
    conditioning = backend.encode(result.prompt if prompt is None else prompt)
    graded: dict[str, dict[str, Any]] = {}
    for name, reward in evaluators.items():
        if reward.input == "video":
            if result.video is None:
                raise InputError(f"evaluator {name!r} reads video, but the result has none")
            data = result.video[None]
        else:
            data = result.latents[None]
        batch = RewardBatch(
            data=data, sigma=torch.zeros(1), conditioning=conditioning, step=backend.num_steps
        )
        started = time.perf_counter()
        with torch.no_grad():
            scores = reward(batch)
        seconds = time.perf_counter() - started
        dims = tuple(reward.dimensions)
        if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (1, len(dims)):
            shape = (
                list(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
            )
            raise ValueError(f"evaluator {name!r} must return [1, {len(dims)}] scores, got {shape}")
        scores = scores.detach().float().cpu()
        if not torch.isfinite(scores).all():
            raise ValueError(f"evaluator {name!r} returned a non-finite score {scores[0].tolist()}")
        graded[name] = {
            "scores": dict(zip(dims, scores[0].tolist(), strict=True)),
            "total": float(reward.aggregate(scores)[0]),
            "seconds": seconds,
        }
    return graded
