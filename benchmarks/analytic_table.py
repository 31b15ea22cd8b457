"""Every strategy on the analytic world: mean oracle reward, its 95% interval, mean NFE.

Each strategy and configuration runs on the same seeds (seed ``i`` searches prompt
``i mod len(prompts)``), searching with the analytic reward on the predicted x0; its output
is then judged by the world's exact oracle (:meth:`AnalyticBackend.oracle`). For each row
the table gives the mean oracle reward, its 95% t-interval (``scipy.stats``), the mean NFE
and particle-steps, and a paired one-sided t-test of "mean oracle above Baseline's" on the
same seeds (``scipy.stats.ttest_rel``, ``alternative="greater"``), marked at the 1% level.

Configurations: Baseline; BestOfN (n = 2, 3, 4, 8); RGRP (N = 4, 6, 8); and beam search,
zero-order search, noise optimisation, FreeInit, FreqPrior, FK steering and EvoSearch at their
paper configurations (the strategies' defaults). Run::

    python benchmarks/analytic_table.py            # 64 seeds, 50 steps
    python benchmarks/analytic_table.py --seeds 128 --only rgrp,beam-search
"""

from __future__ import annotations

import argparse
import math
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
    from searchkit import (
        RGRP,
        Baseline,
        BeamSearch,
        BestOfN,
        EvoSearch,
        FKSteering,
        FreeInit,
        FreqPrior,
        NoiseOptimization,
        ZeroOrderSearch,
    )

    rows = [("baseline", Baseline())]
    rows += [(f"best-of-n n={n}", BestOfN(n=n)) for n in (2, 3, 4, 8)]
    rows += [(f"rgrp N={n}", RGRP(num_particles=n)) for n in (4, 6, 8)]
    rows += [
        ("beam-search B=4 K=2", BeamSearch()),
        ("zero-order M=4 R=2", ZeroOrderSearch()),
        ("noise-optimization I=10", NoiseOptimization()),
        ("free-init 5 passes", FreeInit()),
        ("freqprior 3 passes", FreqPrior()),
        ("fk-steering k=4 max", FKSteering()),
        ("evo-search (10,5,5,5,5)", EvoSearch()),
    ]
    return rows


def run_row(strategy, backend, reward, seeds: int) -> dict[str, np.ndarray]:
    oracle, nfe, steps = [], [], []
    for seed in range(seeds):
        prompt = PROMPTS[seed % len(PROMPTS)]
        result = strategy.run(backend, reward, prompt, seed=seed)
        oracle.append(float(backend.oracle(result.latents[None], prompt)[0]))
        nfe.append(result.cost.nfe)
        steps.append(result.cost.particle_steps)
    return {"oracle": np.array(oracle), "nfe": np.array(nfe), "steps": np.array(steps)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds", type=int, default=64, help="seeds per configuration (default 64)"
    )
    parser.add_argument("--steps", type=int, default=50, help="denoising steps (default 50)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--only", default="", help="comma-separated name prefixes to run (Baseline always runs)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from searchkit.backends import AnalyticBackend
    from searchkit.rewards import AnalyticReward

    backend = AnalyticBackend(num_steps=args.steps)
    reward = AnalyticReward(backend)
    wanted = [w for w in args.only.split(",") if w]
    rows = [
        (label, s)
        for label, s in configurations()
        if label == "baseline" or not wanted or any(label.startswith(w) for w in wanted)
    ]
    print(
        f"analytic world: {backend.latent_shape} latents, {backend.num_components} components, "
        f"{args.steps} {backend.solver} steps, CFG {backend.guidance_scale}; reward: analytic on x0; "
        f"{args.seeds} seeds over {len(PROMPTS)} prompts; {args.threads} thread(s)",
        flush=True,
    )
    results = {}
    for label, strategy in rows:
        start = time.perf_counter()
        results[label] = run_row(strategy, backend, reward, args.seeds)
        print(
            f"  ran {label:<26} in {time.perf_counter() - start:6.1f} s",
            file=sys.stderr,
            flush=True,
        )

    base = results["baseline"]["oracle"]
    header = (
        f"{'strategy':<26} {'oracle':>7} {'95% interval':>17} {'NFE':>7} {'P':>7} "
        f"{'vs baseline':>11} {'p (1-sided)':>11}  beats@1%"
    )
    print(header)
    print("-" * len(header))
    for label, row in results.items():
        oracle = row["oracle"]
        mean, low, high = mean_interval(oracle)
        if label == "baseline":
            diff, p_text, verdict = "", "", ""
        else:
            delta = oracle - base
            if np.allclose(delta, 0.0):
                p = 1.0
            else:
                p = float(stats.ttest_rel(oracle, base, alternative="greater").pvalue)
            diff = f"{float(delta.mean()):+.3f}"
            p_text = f"{p:.1e}" if p > 0 else "<1e-300"
            verdict = "yes" if p < 0.01 else "no"
        print(
            f"{label:<26} {mean:7.3f} [{low:7.3f}, {high:7.3f}] {row['nfe'].mean():7.0f} "
            f"{row['steps'].mean():7.1f} {diff:>11} {p_text:>11}  {verdict}"
        )
    if not math.isfinite(float(base.mean())):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
