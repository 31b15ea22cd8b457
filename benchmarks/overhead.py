"""Overhead benchmark: the wall time a search spends outside the model, the decoder and the reward.

Overhead is everything but three kinds of work, each timed where it runs:

* the transformer's forward (a forward pre-hook and hook on the pipeline's
  ``WanTransformer3DModel``; the analytic world: the meter's ``model`` phase, which is its
  closed-form velocity plus the solver step);
* the VAE decode (``vae.decode``, wrapped);
* the reward (the meter's ``reward`` phase).

So the scheduler step, the guidance arithmetic, latent casts, trace bookkeeping and the
toolkit's own code are overhead. The same split is measured for diffusers' own
``WanPipeline.__call__`` on the same tiny model, shapes, solver and step count (prompt
embeddings given, so neither side encodes the prompt in the timed region; ``output_type="pt"``),
the reference for what a denoising loop costs beyond its model calls.

Parts:

1. the analytic world, ``BestOfN(n=8)`` at 50 steps with its closed-form reward (a world
   without weights: there everything but the closed-form model is overhead);
2. the tiny random Wan model (64x64 pixels, 17 frames, 50 steps, UniPC with flow shift 5):
   ``Baseline`` (one sample) and ``RGRP`` at the paper's configuration (``N = 6``,
   ``beta = 0.1``, ``tau = 1``, ``S = (10, 15, 20)``), both with the backend's default
   (pixel) reward, beside the ``WanPipeline``. Targets: RGRP under 3%; Baseline under the
   pipeline's own figure.

Run ``python benchmarks/overhead.py``; ``--help`` lists the options. Timings use
``--threads`` CPU threads (default 1: small models on a shared machine are dominated by
thread hand-offs otherwise); each figure is the median over ``--repeats`` runs after a
warm-up run. The tiny Wan model has random weights: its timings measure the toolkit, not a
real model.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

PROMPT = "a red fox running through fresh snow"


class Clock:
    """Seconds spent inside the timed calls since the last :meth:`reset`."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._started: float | None = None

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0

    def start(self, *_args: object) -> None:
        self._started = time.perf_counter()

    def stop(self, *_args: object) -> None:
        self.seconds += time.perf_counter() - self._started
        self.calls += 1


@contextmanager
def timed_components(pipe) -> Iterator[dict[str, Clock]]:
    """Clocks on the pipeline's transformer forward and VAE decode (removed on exit)."""
    clocks = {"transformer": Clock(), "decode": Clock()}
    handles = [
        pipe.transformer.register_forward_pre_hook(clocks["transformer"].start),
        pipe.transformer.register_forward_hook(clocks["transformer"].stop),
    ]
    original = pipe.vae.decode

    def decode(*args, **kwargs):
        clocks["decode"].start()
        try:
            return original(*args, **kwargs)
        finally:
            clocks["decode"].stop()

    pipe.vae.decode = decode
    try:
        yield clocks
    finally:
        for handle in handles:
            handle.remove()
        del pipe.vae.decode  # the instance attribute; the class's method shows again


def _median(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def _split(total: float, model: float, decode: float, reward: float) -> dict[str, float]:
    other = total - model - decode - reward
    return {
        "total": total,
        "model": model,
        "decode": decode,
        "reward": reward,
        "other": other,
        "share": other / total,
    }


def _line(label: str, f: dict[str, float]) -> str:
    return (
        f"  {label:<22} total {f['total']:8.3f} s | transformer {f['model']:7.3f} s "
        f"decode {f['decode']:6.3f} s reward {f['reward']:6.3f} s | "
        f"overhead {f['other']:6.3f} s = {100 * f['share']:5.2f}%"
    )


def measure(run: Callable[[int], dict[str, float]], repeats: int) -> dict[str, float]:
    run(0)  # warm-up: first-call allocations, lazy imports, the prompt's encoding
    return _median([run(i + 1) for i in range(repeats)])


def analytic_overhead(args: argparse.Namespace) -> dict[str, float]:
    from searchkit import BestOfN
    from searchkit.backends import AnalyticBackend
    from searchkit.rewards import AnalyticReward

    backend = AnalyticBackend(num_steps=args.steps)
    reward = AnalyticReward(backend)
    strategy = BestOfN(n=8)

    def run(seed: int) -> dict[str, float]:
        cost = strategy.run(backend, reward, PROMPT, seed=seed).cost
        s = cost.seconds
        return _split(s["total"], s["model"], s["decode"], s["reward"])

    figures = measure(run, args.repeats)
    print(f"(1) analytic world, BestOfN(n=8), {args.steps} steps, median of {args.repeats}:")
    print(_line("searchkit", figures))
    return figures


def _pipeline_run(backend, clocks: dict[str, Clock], args: argparse.Namespace):
    """One ``WanPipeline.__call__`` on the backend's components, as :func:`wan_overhead` times it."""
    from searchkit.solver import make_scheduler

    pipe = backend.pipe
    pipe.set_progress_bar_config(disable=True)
    encoding = backend.encode(PROMPT).data

    def run(seed: int) -> dict[str, float]:
        # the same solver as the backend's (searchkit's UniPC, flow shift from the options)
        pipe.scheduler = make_scheduler(backend.options.solver, flow_shift=backend.options.flow_shift)
        for clock in clocks.values():
            clock.reset()
        started = time.perf_counter()
        pipe(
            prompt_embeds=encoding.prompt_embeds,
            negative_prompt_embeds=encoding.negative_embeds,
            height=args.size,
            width=args.size,
            num_frames=args.frames,
            num_inference_steps=args.steps,
            guidance_scale=backend.options.guidance_scale,
            generator=torch.Generator().manual_seed(seed),
            output_type="pt",
        )
        total = time.perf_counter() - started
        return _split(total, clocks["transformer"].seconds, clocks["decode"].seconds, 0.0)

    return run


def wan_overhead(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    from searchkit import RGRP, Baseline
    from searchkit.backends import WanBackend
    from searchkit.builders import build_reward

    backend = WanBackend.tiny(
        height=args.size,
        width=args.size,
        num_frames=args.frames,
        num_steps=args.steps,
        solver="unipc",
        flow_shift=5.0,
        device=args.device,
    )
    reward = build_reward(None, backend)
    rgrp = RGRP()  # the paper's configuration
    print(
        f"(2) tiny Wan (random weights), {args.size}x{args.size}, {args.frames} frames, "
        f"{args.steps} steps, UniPC (flow shift 5), guidance {backend.options.guidance_scale}, "
        f"on {args.device}, reward {reward.name!r}, median of {args.repeats}:"
    )
    results = {}
    with timed_components(backend.pipe) as clocks:
        for label, strategy in (
            ("Baseline", Baseline()),
            (
                f"RGRP(N={rgrp.num_particles}, beta={rgrp.beta}, S={list(rgrp.schedule)})",
                rgrp,
            ),
        ):

            def run(seed: int, strategy=strategy) -> dict[str, float]:
                for clock in clocks.values():
                    clock.reset()
                cost = strategy.run(backend, reward, PROMPT, seed=seed).cost
                return _split(
                    cost.seconds["total"],
                    clocks["transformer"].seconds,
                    clocks["decode"].seconds,
                    cost.seconds["reward"],
                )

            results[label] = measure(run, args.repeats)
            print(_line(f"searchkit {label.split('(')[0]}", results[label]))
        results["WanPipeline"] = measure(_pipeline_run(backend, clocks, args), args.repeats)
        print(_line("diffusers WanPipeline", results["WanPipeline"]))
    baseline, rgrp_figures = (results[k] for k in list(results)[:2])
    pipeline = results["WanPipeline"]
    print(
        f"    RGRP overhead {100 * rgrp_figures['share']:.2f}% (target < 3%); Baseline "
        f"{100 * baseline['share']:.2f}% vs the WanPipeline's {100 * pipeline['share']:.2f}% "
        "(target: below it)"
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure (median)")
    parser.add_argument("--steps", type=int, default=50, help="denoising steps")
    parser.add_argument("--size", type=int, default=64, help="tiny Wan height and width in pixels")
    parser.add_argument("--frames", type=int, default=17, help="tiny Wan frames (4k+1)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="device of the tiny Wan model")
    parser.add_argument("--only", choices=("analytic", "wan"), default=None, help="run one part")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be positive, got {args.repeats}")
    if args.device != "cpu":
        parser.error("the split is timed on the host clock; run it on the CPU (--device cpu)")
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
