"""Overhead benchmark: how much wall time the toolkit itself adds, and what batching saves.

Two worlds, each timed ``--repeats`` times (the median is reported):

1. the analytic world: ``BestOfN(n=8)`` at 50 steps with the closed-form reward; the share
   of wall time outside the metered model, reward and decode phases (``cost.seconds``);
2. the tiny random Wan backend (64x64 pixels, 17 frames, 50 steps) with RGRP at its paper
   configuration (``N = 6``, ``beta = 0.1``, ``tau = 1``, ``S = (10, 15, 20)``) and the
   backend's default (pixel) reward:

   a. the speed-up of the batched path (all alive particles, conditional and unconditional
      rows, in one transformer forward) over a per-particle loop (one forward per particle
      and per guidance branch, as the paper's public code runs: ``max_batch=1``,
      ``cfg_batched=False``), on the denoising time per particle-step and on the whole search;
   b. the share of wall time outside model, reward and decode (target: under 10%).

Run ``python benchmarks/overhead.py``; ``--help`` lists the options. With ``--device cuda``
the phases are timed without synchronising the GPU inside a search (each phase's wall time
absorbs the queued work that its first synchronising call waits for); totals are exact. Timings use
``--threads`` CPU threads (default 1: small models on a shared machine are dominated by
thread hand-offs otherwise). The tiny Wan model has random weights: its timings measure the
toolkit and the batching, not a real model.
"""

from __future__ import annotations

import argparse
import statistics
import time

import attrs
import torch

PROMPT = "a red fox running through fresh snow"


def _median_costs(run, repeats: int) -> dict[str, float]:
    """Run ``run()`` (returning a SearchResult) ``repeats`` times; median of each figure."""
    rows = []
    for i in range(repeats):
        result = run(i)
        seconds = dict(result.cost.seconds)
        seconds["particle_steps"] = result.cost.particle_steps
        seconds["nfe"] = result.cost.nfe
        seconds["other_share"] = seconds["other"] / seconds["total"]
        seconds["model_per_ps"] = seconds["model"] / result.cost.particle_steps
        rows.append(seconds)
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def _line(label: str, figures: dict[str, float]) -> str:
    return (
        f"  {label:<26} total {figures['total']:8.3f} s | model {figures['model']:7.3f} s "
        f"reward {figures['reward']:6.3f} s decode {figures['decode']:6.3f} s "
        f"other {figures['other']:6.3f} s ({100 * figures['other_share']:4.1f}%) | "
        f"P {figures['particle_steps']:.0f}, {1000 * figures['model_per_ps']:.2f} ms per particle-step"
    )


def analytic_overhead(args: argparse.Namespace) -> dict[str, float]:
    from searchkit import BestOfN
    from searchkit.backends import AnalyticBackend
    from searchkit.rewards import AnalyticReward

    backend = AnalyticBackend(num_steps=args.steps)
    reward = AnalyticReward(backend)
    strategy = BestOfN(n=8)
    strategy.run(backend, reward, PROMPT, seed=0)  # warm-up
    figures = _median_costs(lambda i: strategy.run(backend, reward, PROMPT, seed=i), args.repeats)
    print(f"(1) analytic world, BestOfN(n=8), {args.steps} steps, median of {args.repeats}:")
    print(_line("batched", figures))
    print(
        f"    share of wall time outside model/reward/decode: {100 * figures['other_share']:.1f}%"
    )
    return figures


def wan_overhead(args: argparse.Namespace) -> dict[str, float]:
    from searchkit import RGRP
    from searchkit.backends import WanBackend
    from searchkit.builders import build_reward

    batched = WanBackend.tiny(
        height=args.size,
        width=args.size,
        num_frames=args.frames,
        num_steps=args.steps,
        solver=args.solver,
        device=args.device,
    )
    options = attrs.asdict(attrs.evolve(batched.options, max_batch=1, cfg_batched=False))
    looped = WanBackend.from_pipeline(batched.pipe, **options)  # same weights, one row per forward
    reward = build_reward(None, batched)
    strategy = RGRP()  # the paper's configuration
    print(
        f"(2) tiny Wan (random weights), {args.size}x{args.size}, {args.frames} frames, "
        f"{args.steps} steps, {args.solver}, on {args.device}, RGRP(N={strategy.num_particles}, beta={strategy.beta}, "
        f"tau={strategy.temperature}, S={strategy.schedule}), reward {reward.name!r}, "
        f"median of {args.repeats}:"
    )
    results = {}
    for label, backend in (("batched", batched), ("per-particle loop", looped)):
        strategy.run(backend, reward, PROMPT, seed=0)  # warm-up
        results[label] = _median_costs(
            lambda i, b=backend: strategy.run(b, reward, PROMPT, seed=i), args.repeats
        )
        print(_line(label, results[label]))
    fast, slow = results["batched"], results["per-particle loop"]
    step_speedup = slow["model_per_ps"] / fast["model_per_ps"]
    total_speedup = slow["total"] / fast["total"]
    print(
        f"    (a) batched speed-up, denoising time per particle-step: {step_speedup:.2f}x (target >= 2x)"
    )
    print(f"        batched speed-up, whole search wall time:          {total_speedup:.2f}x")
    print(
        f"    (b) share of wall time outside model/reward/decode (batched): "
        f"{100 * fast['other_share']:.1f}% (target < 10%)"
    )
    return {"step_speedup": step_speedup, "total_speedup": total_speedup, **fast}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure (median)")
    parser.add_argument("--steps", type=int, default=50, help="denoising steps")
    parser.add_argument("--size", type=int, default=64, help="tiny Wan height and width in pixels")
    parser.add_argument("--frames", type=int, default=17, help="tiny Wan frames (4k+1)")
    parser.add_argument("--solver", default="unipc", help="tiny Wan solver")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="device of the tiny Wan model")
    parser.add_argument("--only", choices=("analytic", "wan"), default=None, help="run one part")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be positive, got {args.repeats}")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)")
    started = time.perf_counter()
    if args.only in (None, "analytic"):
        analytic_overhead(args)
    if args.only in (None, "wan"):
        wan_overhead(args)
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
