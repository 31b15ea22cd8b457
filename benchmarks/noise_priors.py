"""The reward-free noise priors on the analytic world, each at its own compute.

Baseline (P = T), FreeInit at its paper setting (5 passes, P = 5 T) and FreqPrior at the
LatSearch setting (3 passes, ratio 0.8, partial passes to step 0.6 T: P = 110 at T = 50)
run on the same seeds (seed ``i`` samples prompt ``i mod 4``, so the default 64 seeds are 4
prompts x 16 seeds); every output is judged by the world's exact oracle
(:meth:`AnalyticBackend.oracle`). None of them reads the reward while it searches.

For each method: the mean oracle reward with its 95% t-interval and the mean NFE; for each
pair: the mean paired difference, its 95% t-interval and the two-sided paired t-test
(``scipy.stats.ttest_rel``) on the same seeds. Run::

    python benchmarks/noise_priors.py                  # 64 seeds, 50 UniPC steps
    python benchmarks/noise_priors.py --solver sde-dpmsolver++ --seeds 128
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np
import torch
from scipy import stats

from searchkit.bench.summary import mean_interval

PROMPTS = (
    "a red fox running through fresh snow",
    "a lighthouse in a storm at night",
    "two dogs playing tug of war on a beach",
    "a time-lapse of clouds over a mountain lake",
)


def configurations():
    from searchkit import Baseline, FreeInit, FreqPrior

    return [
        ("baseline", Baseline()),
        ("free-init 5 passes", FreeInit()),
        ("freqprior 3 passes", FreqPrior()),
    ]


def run_row(strategy, backend, reward, seeds: int) -> tuple[np.ndarray, float]:
    oracle, nfe = [], []
    for seed in range(seeds):
        prompt = PROMPTS[seed % len(PROMPTS)]
        result = strategy.run(backend, reward, prompt, seed=seed)
        oracle.append(float(backend.oracle(result.latents[None], prompt)[0]))
        nfe.append(result.cost.nfe)
    return np.array(oracle), float(np.mean(nfe))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=64, help="seeds (default 64: 4 prompts x 16)")
    parser.add_argument("--steps", type=int, default=50, help="denoising steps (default 50)")
    parser.add_argument("--solver", default="unipc", help="sampler (default unipc)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from searchkit.backends import AnalyticBackend
    from searchkit.rewards import AnalyticReward

    backend = AnalyticBackend(num_steps=args.steps, solver=args.solver)
    reward = AnalyticReward(backend)
    print(
        f"analytic world: {backend.latent_shape} latents, {args.steps} {backend.solver} steps, "
        f"CFG {backend.guidance_scale}; {args.seeds} seeds over {len(PROMPTS)} prompts; oracle reward"
    )
    results = {}
    for label, strategy in configurations():
        start = time.perf_counter()
        results[label] = run_row(strategy, backend, reward, args.seeds)
        print(
            f"  ran {label:<20} in {time.perf_counter() - start:6.1f} s",
            file=sys.stderr,
            flush=True,
        )

    print(f"\n{'method':<20} {'oracle':>7} {'95% interval':>18} {'NFE':>6}")
    for label, (oracle, nfe) in results.items():
        mean, low, high = mean_interval(oracle)
        print(f"{label:<20} {mean:7.3f} [{low:7.3f}, {high:7.3f}] {nfe:6.0f}")
    print(f"\n{'paired difference':<44} {'mean':>7} {'95% interval':>18} {'p (2-sided)':>11}")
    for (a, (x, _)), (b, (y, _)) in itertools.combinations(results.items(), 2):
        delta = y - x
        mean, low, high = mean_interval(delta)
        p = 1.0 if np.allclose(delta, 0.0) else float(stats.ttest_rel(y, x).pvalue)
        print(f"{b + ' - ' + a:<44} {mean:+7.3f} [{low:+7.3f}, {high:+7.3f}] {p:11.2g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
