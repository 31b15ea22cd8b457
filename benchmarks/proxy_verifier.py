"""How often the analytic world's proxy verifier ranks two outputs as the oracle does.

Draws base-model outputs (the baseline's samples) of several prompts, scores them with the
oracle and with :class:`~searchkit.rewards.ProxyVerifier`, and reports, over every pair of
outputs of the same prompt, the share the proxy orders as the oracle does (ties excluded),
with Kendall's tau and Spearman's rho of the two. The proxy's defaults are chosen so that
the pairwise accuracy is about 0.73, VideoReward's reported accuracy against human
preference (ties excluded). Run::

    python benchmarks/proxy_verifier.py [--samples 128] [--grid]
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch
from scipy import stats

from searchkit import SearchContext
from searchkit.backends import AnalyticBackend
from searchkit.reward import RewardBatch
from searchkit.rewards import AnalyticReward, ProxyVerifier

PROMPTS = (
    "a red fox running through fresh snow",
    "a lighthouse in a storm at night",
    "two dogs playing tug of war on a beach",
    "a time-lapse of clouds over a mountain lake",
)


def outputs(backend: AnalyticBackend, prompt: str, n: int, seed: int) -> torch.Tensor:
    ctx = SearchContext(
        backend, AnalyticReward(backend), prompt, generator=torch.Generator().manual_seed(seed)
    )
    return ctx.advance(ctx.start(n), to=backend.num_steps).latents


def agreement(backend, samples: dict[str, torch.Tensor], **proxy_options) -> dict[str, float]:
    proxy = ProxyVerifier(backend, **proxy_options)
    correct = total = 0
    taus, rhos = [], []
    for prompt, x in samples.items():
        truth = backend.oracle(x, prompt).numpy()
        batch = RewardBatch(
            data=x,
            sigma=torch.zeros(len(x)),
            conditioning=backend.encode(prompt),
            step=backend.num_steps,
        )
        seen = proxy.aggregate(proxy(batch)).numpy()
        for i, j in itertools.combinations(range(len(x)), 2):
            if truth[i] != truth[j] and seen[i] != seen[j]:
                total += 1
                correct += (truth[i] > truth[j]) == (seen[i] > seen[j])
        taus.append(stats.kendalltau(truth, seen).statistic)
        rhos.append(stats.spearmanr(truth, seen).statistic)
    return {
        "pairwise accuracy": correct / total,
        "kendall tau": float(np.mean(taus)),
        "spearman rho": float(np.mean(rhos)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=128, help="outputs per prompt")
    parser.add_argument("--grid", action="store_true", help="also scan misalignment x noise")
    args = parser.parse_args()
    torch.set_num_threads(1)
    backend = AnalyticBackend()
    samples = {p: outputs(backend, p, args.samples, seed=i) for i, p in enumerate(PROMPTS)}
    spread = np.mean([backend.oracle(x, p).std().item() for p, x in samples.items()])
    print(
        f"{len(PROMPTS)} prompts x {args.samples} base-model outputs; oracle std within a prompt {spread:.3f}"
    )
    print("defaults:", {k: round(v, 3) for k, v in agreement(backend, samples).items()})
    if args.grid:
        for misalignment, noise in itertools.product(
            (0.0, 30.0, 45.0, 60.0, 75.0), (0.0, 0.5, 1.0, 1.5, 2.0)
        ):
            figures = agreement(backend, samples, misalignment=misalignment, noise=noise)
            print(
                f"misalignment {misalignment:4.0f}  noise {noise:3.1f}  "
                + "  ".join(f"{k} {v:.3f}" for k, v in figures.items())
            )


if __name__ == "__main__":
    main()
