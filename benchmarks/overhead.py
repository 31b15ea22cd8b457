"""Overhead benchmark: the time a search spends outside the model, the decoder and the reward.

Overhead is everything but three kinds of work, each timed where it runs:

* the transformer's forward (a forward pre-hook and hook on the pipeline's
  ``WanTransformer3DModel``; in the analytic world, its closed-form velocity);
* the VAE decode (``vae.decode``, wrapped; the analytic world's closed-form decode);
* the reward (``reward.score``, wrapped).

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

Run ``python benchmarks/overhead.py``; ``--help`` lists the options. Every time is CPU
time of this process (``time.process_time``) by default, so that other work on a shared
machine does not count (``--clock wall`` uses wall time); with one thread (``--threads``,
default 1) CPU time is the work done. The three searches run interleaved, one of each per
repeat, after a warm-up of each, and each figure is the median over ``--repeats``. The tiny
Wan model has random weights: its timings measure the toolkit, not a real model.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

PROMPT = "a red fox running through fresh snow"


#: The clock every figure is read from; ``main`` sets it from ``--clock``.
now: Callable[[], float] = time.process_time


class Clock:
    """Seconds spent inside the timed calls since the last :meth:`reset`."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._started: float | None = None

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0

    def start(self, *_args: object) -> None:
        self._started = now()

    def stop(self, *_args: object) -> None:
        self.seconds += now() - self._started
        self.calls += 1


@contextmanager
def timed_call(obj: object, name: str, clock: Clock) -> Iterator[None]:
    """Time every call of ``obj.name`` (an instance attribute shadowing the method) on ``clock``."""
    original = getattr(obj, name)

    def timed(*args, **kwargs):
        clock.start()
        try:
            return original(*args, **kwargs)
        finally:
            clock.stop()

    setattr(obj, name, timed)
    try:
        yield
    finally:
        delattr(obj, name)  # the class's method shows again


@contextmanager
def timed_transformer(transformer, clock: Clock) -> Iterator[None]:
    """Time every forward of ``transformer`` (a forward pre-hook and hook)."""
    handles = [
        transformer.register_forward_pre_hook(clock.start),
        transformer.register_forward_hook(clock.stop),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _split(total: float, clocks: dict[str, Clock]) -> dict[str, float]:
    model, decode, reward = (clocks[k].seconds for k in ("model", "decode", "reward"))
    other = total - model - decode - reward
    return {
        "total": total,
        "model": model,
        "decode": decode,
        "reward": reward,
        "other": other,
        "share": other / total,
    }


def _line(label: str, f: dict[str, float], model: str) -> str:
    return (
        f"  {label:<22} total {f['total']:8.3f} s | {model} {f['model']:7.3f} s "
        f"decode {f['decode']:6.3f} s reward {f['reward']:6.3f} s | "
        f"overhead {f['other']:6.3f} s = {100 * f['share']:5.2f}%"
    )


def measure(
    runs: dict[str, Callable[[int], float]], clocks: dict[str, Clock], repeats: int
) -> dict[str, dict[str, float]]:
    """Median split of each run, interleaved: a warm-up of each, then one of each per repeat.

    A run takes a seed and returns its total time; the clocks hold its parts.
    """
    rows: dict[str, list[dict[str, float]]] = {label: [] for label in runs}
    for repeat in range(repeats + 1):
        for label, run in runs.items():
            for clock in clocks.values():
                clock.reset()
            total = run(repeat)
            if repeat:  # the first round warms up: first-call allocations, lazy imports
                rows[label].append(_split(total, clocks))
    return {
        label: {key: statistics.median(row[key] for row in got) for key in got[0]}
        for label, got in rows.items()
    }


def _timed_search(strategy, backend, reward) -> Callable[[int], float]:
    def run(seed: int) -> float:
        started = now()
        strategy.run(backend, reward, PROMPT, seed=seed)
        return now() - started

    return run


def analytic_overhead(args: argparse.Namespace) -> dict[str, float]:
    from searchkit import BestOfN
    from searchkit.backends import AnalyticBackend
    from searchkit.rewards import AnalyticReward

    clocks = {"model": Clock(), "decode": Clock(), "reward": Clock()}

    class Timed(AnalyticBackend):  # the closed-form velocity and decode, timed
        def velocity(self, *call):
            clocks["model"].start()
            try:
                return super().velocity(*call)
            finally:
                clocks["model"].stop()

        def decode(self, latents):
            clocks["decode"].start()
            try:
                return super().decode(latents)
            finally:
                clocks["decode"].stop()

    backend = Timed(num_steps=args.steps)
    reward = AnalyticReward(backend)
    with timed_call(reward, "score", clocks["reward"]):
        runs = {"BestOfN(n=8)": _timed_search(BestOfN(n=8), backend, reward)}
        figures = measure(runs, clocks, args.repeats)["BestOfN(n=8)"]
    print(
        f"(1) analytic world (no weights: everything but its closed forms is overhead), "
        f"BestOfN(n=8), {args.steps} steps, median of {args.repeats}:"
    )
    print(_line("searchkit BestOfN", figures, "velocity"))
    return figures


def _pipeline_run(backend, args: argparse.Namespace) -> Callable[[int], float]:
    """One ``WanPipeline.__call__`` on the backend's components, with the backend's solver."""
    from searchkit.solver import make_scheduler

    pipe = backend.pipe
    pipe.set_progress_bar_config(disable=True)
    encoding = backend.encode(PROMPT).data
    options = backend.options

    def run(seed: int) -> float:
        pipe.scheduler = make_scheduler(options.solver, flow_shift=options.flow_shift)
        started = now()
        pipe(
            prompt_embeds=encoding.prompt_embeds,
            negative_prompt_embeds=encoding.negative_embeds,
            height=options.height,
            width=options.width,
            num_frames=options.num_frames,
            num_inference_steps=options.num_steps,
            guidance_scale=options.guidance_scale,
            generator=torch.Generator().manual_seed(seed),
            output_type="pt",
        )
        return now() - started

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
    )
    reward = build_reward(None, backend)
    rgrp = RGRP()  # the paper's configuration
    print(
        f"(2) tiny Wan (random weights), {args.size}x{args.size}, {args.frames} frames, "
        f"{args.steps} steps, UniPC (flow shift 5), guidance {backend.options.guidance_scale}, "
        f"reward {reward.name!r}; RGRP(N={rgrp.num_particles}, beta={rgrp.beta}, "
        f"tau={rgrp.temperature}, S={list(rgrp.schedule)}); median of {args.repeats}:"
    )
    clocks = {"model": Clock(), "decode": Clock(), "reward": Clock()}
    runs = {
        "searchkit Baseline": _timed_search(Baseline(), backend, reward),
        "searchkit RGRP": _timed_search(rgrp, backend, reward),
        "diffusers WanPipeline": _pipeline_run(backend, args),
    }
    with (
        timed_transformer(backend.pipe.transformer, clocks["model"]),
        timed_call(backend.pipe.vae, "decode", clocks["decode"]),
        timed_call(reward, "score", clocks["reward"]),
    ):
        results = measure(runs, clocks, args.repeats)
    for label, figures in results.items():
        print(_line(label, figures, "transformer"))
    baseline, found, pipeline = results.values()
    print(
        f"    RGRP overhead {100 * found['share']:.2f}% (target < 3%); Baseline "
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
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="CPU time of this process (default; robust on a shared machine) or wall time",
    )
    parser.add_argument("--only", choices=("analytic", "wan"), default=None, help="run one part")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be positive, got {args.repeats}")
    global now
    now = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s), "
        f"{'CPU time of this process' if args.clock == 'cpu' else 'wall time'}"
    )
    started = time.perf_counter()
    if args.only in (None, "analytic"):
        analytic_overhead(args)
    if args.only in (None, "wan"):
        wan_overhead(args)
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
