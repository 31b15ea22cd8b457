"""Batching benchmark: CPU time per particle-step when particles share transformer forwards.

``--particles`` particles (default 8) of the tiny random Wan model (64x64 pixels, 17
frames, UniPC, guidance 5) are denoised for ``--steps`` steps through
:meth:`SearchContext.advance <searchkit.context.SearchContext.advance>`, the loop every
strategy uses, with three batchings of the same weights:

* ``batched``: every particle's conditional and unconditional rows in one forward (the
  default, ``max_batch=None``);
* ``one particle per forward``: ``max_batch=1`` (two rows: the particle's conditional and
  unconditional rows);
* ``one row per forward``: ``max_batch=1, cfg_batched=false``, one forward per particle
  and guidance branch, as the paper's public code runs its candidates (and as the pipeline
  runs one video).

The figure is CPU time of this process per particle-step (``time.process_time``: other
work on a shared machine does not count; with one ``--threads`` thread it is the work
done), the median over ``--repeats`` interleaved repeats after a warm-up. Target: the
batched path at least 3x cheaper per particle-step than one row per forward at 8
particles. Run ``python benchmarks/batching.py``; ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

PROMPT = "a red fox running through fresh snow"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--particles", type=int, default=8, help="particles denoised together")
    parser.add_argument("--steps", type=int, default=20, help="steps timed (of a 50-step schedule)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median)")
    parser.add_argument("--size", type=int, default=64, help="height and width in pixels")
    parser.add_argument("--frames", type=int, default=17, help="frames (4k+1)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    if min(args.particles, args.steps, args.repeats) < 1 or args.steps > 50:
        parser.error("--particles and --repeats must be positive, --steps in [1, 50]")
    torch.set_num_threads(args.threads)

    from searchkit.backends import WanBackend
    from searchkit.builders import build_reward
    from searchkit.context import SearchContext

    options = {
        "height": args.size,
        "width": args.size,
        "num_frames": args.frames,
        "num_steps": 50,
        "solver": "unipc",
        "flow_shift": 5.0,
    }
    batched = WanBackend.tiny(**options)
    backends = {
        "batched": batched,
        "one particle per forward": WanBackend.from_pipeline(batched.pipe, **options, max_batch=1),
        "one row per forward": WanBackend.from_pipeline(
            batched.pipe, **options, max_batch=1, cfg_batched=False
        ),
    }
    reward = build_reward(None, batched)

    def per_particle_step(backend) -> float:
        ctx = SearchContext(backend, reward, PROMPT, generator=torch.Generator().manual_seed(0))
        particles = ctx.start(args.particles)
        started = time.process_time()
        ctx.advance(particles, to=args.steps)
        return (time.process_time() - started) / (args.particles * args.steps)

    times: dict[str, list[float]] = {label: [] for label in backends}
    for repeat in range(args.repeats + 1):
        for label, backend in backends.items():
            seconds = per_particle_step(backend)
            if repeat:  # the first round warms up
                times[label].append(seconds)
    median = {label: statistics.median(runs) for label, runs in times.items()}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s); tiny Wan "
        f"{args.size}x{args.size}, {args.frames} frames, {args.particles} particles, "
        f"{args.steps} steps, guidance {batched.options.guidance_scale}; CPU time per "
        f"particle-step, median of {args.repeats}:"
    )
    for label, seconds in median.items():
        ratio = seconds / median["batched"]
        print(f"  {label:<26} {1000 * seconds:7.3f} ms   {ratio:5.2f}x the batched path")
    print(
        f"batched vs one row per forward: {median['one row per forward'] / median['batched']:.2f}x "
        "less CPU time per particle-step (target >= 3x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
