"""Seconds per denoising step of Wan2.1-T2V-1.3B shapes, with random weights, on a GPU.

No weights are downloaded: the transformer is built from the 1.3B configuration (30 layers,
12 heads of 128, FFN 8960, text width 4096) directly on the device, with random weights,
in bfloat16 except the modules diffusers keeps in float32 (``rope``, time embedder, norms,
``scale_shift_table``); the VAE is the Wan2.1 VAE configuration in float32. The text
encoder is reduced to one UMT5 layer of width 4096 (it runs once per prompt, not per step,
so it does not enter the per-step figure), with the tiny word-level tokenizer. Timings of
random weights equal those of trained ones: the work per step depends only on the shapes.

For each particle count (default 1 and 6) it times ``--steps`` denoising steps through
:class:`~searchkit.context.SearchContext` (the toolkit's own loop: UniPC, guidance 5.0,
512 text tokens), after ``--warmup`` steps, for

* ``batched``: all particles and both guidance branches in one transformer forward;
* ``per-particle``: one forward per particle and branch (``max_batch=1``,
  ``cfg_batched=False``), as the paper's public code runs;

and prints seconds per step, seconds per particle-step and peak GPU memory. ``--decode``
also times one VAE decode at that size. ``--json PATH`` writes the figures.

``--search`` instead times whole searches of ``--search-steps`` steps end to end, the
runtime comparison of the LatSearch paper's table: Baseline, RGRP at its paper
configuration guided by a latent reward model (freshly initialised: its scores mean
nothing, its cost is real) and best-of-4 with the pixel reward on decoded video (four
decodes), each with its NFE, particle-steps and wall time per phase.

    python benchmarks/wan_real_size.py                  # 832x480, 33 frames, 1 and 6 particles
    python benchmarks/wan_real_size.py --search         # whole 50-step searches
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from searchkit.backends.wan import WAN21_1_3B_TRANSFORMER

PROMPT = "a red fox running through fresh snow, cinematic, golden light"

WAN_1_3B = WAN21_1_3B_TRANSFORMER


def build_pipeline(device: torch.device, dtype: torch.dtype, num_layers: int = 30):
    """A WanPipeline of random 1.3B-shaped components on ``device`` (see the module docstring)."""
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    from searchkit.backends.wan import TINY_VOCABULARY, tiny_tokenizer

    with torch.device(device):
        transformer = WanTransformer3DModel(**{**WAN_1_3B, "num_layers": num_layers})
        keep = tuple(getattr(WanTransformer3DModel, "_keep_in_fp32_modules", None) or ())
        for name, param in transformer.named_parameters():
            if not any(part in keep for part in name.split(".")):
                param.data = param.data.to(dtype)
        vae = AutoencoderKLWan()  # the Wan2.1 VAE configuration
        text_encoder = UMT5EncoderModel(
            UMT5Config(
                vocab_size=len(TINY_VOCABULARY),
                d_model=4096,
                d_kv=64,
                d_ff=256,
                num_layers=1,
                num_heads=8,
                dropout_rate=0.0,
                pad_token_id=0,
                eos_token_id=1,
                decoder_start_token_id=0,
            )
        ).to(dtype)
    for module in (transformer, vae, text_encoder):
        module.eval().requires_grad_(False)
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0, solver_order=2
    )
    return WanPipeline(
        tokenizer=tiny_tokenizer(),
        text_encoder=text_encoder,
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(backend, n: int, steps: int, warmup: int) -> dict[str, float]:
    from searchkit import SearchContext
    from searchkit.rewards.pixel import PixelReward

    device = backend.device
    ctx = SearchContext(
        backend, PixelReward(backend), PROMPT, generator=torch.Generator().manual_seed(0)
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    particles = ctx.advance(ctx.start(n), to=warmup)
    _sync(device)
    start = time.perf_counter()
    particles = ctx.advance(particles, to=warmup + steps)
    _sync(device)
    seconds = (time.perf_counter() - start) / steps
    if not torch.isfinite(particles.latents).all():
        raise RuntimeError("non-finite latents: the random model diverged")
    peak = (
        torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    )
    return {
        "particles": n,
        "s_per_step": seconds,
        "s_per_particle_step": seconds / n,
        "peak_gib": peak,
    }


def time_searches(pipe, common: dict, steps: int) -> list[dict]:
    """Baseline, RGRP (latent reward model) and best-of-4 (pixel reward), end to end."""
    from searchkit import RGRP, Baseline, BestOfN
    from searchkit.backends import WanBackend
    from searchkit.rewards import LatentRewardModel
    from searchkit.rewards.pixel import PixelReward

    backend = WanBackend.from_pipeline(pipe, **{**common, "num_steps": steps})
    latent_reward = LatentRewardModel.for_backend(
        backend, input="latent", generator=torch.Generator().manual_seed(0)
    )
    runs = [
        ("baseline", Baseline(), PixelReward(backend)),
        ("rgrp N=6 (latent reward model)", RGRP(num_particles=6), latent_reward),
        ("best-of-4 (pixel reward)", BestOfN(n=4), PixelReward(backend)),
    ]
    Baseline().run(backend, PixelReward(backend), PROMPT, seed=1)  # warm-up: kernels, allocator
    rows = []
    for label, strategy, reward in runs:
        _sync(backend.device)
        start = time.perf_counter()
        result = strategy.run(backend, reward, PROMPT, seed=0)
        _sync(backend.device)
        cost = result.cost
        row = {
            "search": label,
            "wall_s": time.perf_counter() - start,
            "nfe": cost.nfe,
            "particle_steps": cost.particle_steps,
            "decodes": cost.decodes,
            "reward_calls": cost.reward_calls,
            "seconds": cost.seconds,
        }
        rows.append(row)
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in cost.seconds.items() if k != "total")
        print(
            f"  {label:<32} {row['wall_s']:7.1f} s  P {cost.particle_steps:4d}  NFE {cost.nfe:4d}  "
            f"decodes {cost.decodes}  ({phases})",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--particles", default="1,6", help="comma-separated particle counts")
    parser.add_argument(
        "--variants",
        default="batched,per-particle",
        help="comma-separated variants, timed in this order",
    )
    parser.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--layers",
        type=int,
        default=30,
        help="transformer layers (30: 1.3B; fewer for a smoke test)",
    )
    parser.add_argument("--decode", action="store_true", help="also time one VAE decode")
    parser.add_argument("--json", default=None, help="write the figures to this file")
    parser.add_argument("--search", action="store_true", help="time whole searches instead")
    parser.add_argument("--search-steps", type=int, default=50, help="steps of a whole search")
    args = parser.parse_args(argv)

    from searchkit.backends import WanBackend
    from searchkit.backends.wan import parse_dtype

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is available")
    counts = [int(x) for x in args.particles.split(",") if x.strip()]
    built = time.perf_counter()
    pipe = build_pipeline(device, parse_dtype(args.dtype), args.layers)
    common = {
        "height": args.height,
        "width": args.width,
        "num_frames": args.frames,
        "num_steps": args.warmup + args.steps,
        "solver": "unipc",
        "guidance_scale": 5.0,
    }
    known = {
        "batched": WanBackend.from_pipeline(pipe, **common),
        "per-particle": WanBackend.from_pipeline(pipe, max_batch=1, cfg_batched=False, **common),
    }
    names = [x.strip() for x in args.variants.split(",") if x.strip()]
    if not names or any(name not in known for name in names):
        parser.error(f"--variants must name some of {sorted(known)}, got {args.variants!r}")
    variants = {name: known[name] for name in names}
    backend = known["batched"]
    params = sum(p.numel() for p in pipe.transformer.parameters()) / 1e9
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    tokens = (
        backend.latent_shape[1] * (backend.latent_shape[2] // 2) * (backend.latent_shape[3] // 2)
    )
    print(
        f"{name}; torch {torch.__version__}; transformer {params:.2f}B params "
        f"({backend.transformer_dtype}), latents {list(backend.latent_shape)} = {tokens} tokens per "
        f"sample, 512 text tokens; built in {time.perf_counter() - built:.1f} s"
    )
    if args.search:
        report = {
            "device": name,
            "shape": common,
            "searches": time_searches(pipe, common, args.search_steps),
        }
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(report, handle, indent=2)
        return 0
    rows = []
    for label, variant in variants.items():
        for n in counts:
            row = {"variant": label, **time_steps(variant, n, args.steps, args.warmup)}
            rows.append(row)
            print(
                f"  {label:<13} {n} particle(s): {row['s_per_step']:.3f} s/step, "
                f"{row['s_per_particle_step']:.3f} s per particle-step, peak {row['peak_gib']:.1f} GiB",
                flush=True,
            )
    for n in counts if len(variants) == 2 else ():
        fast = next(r for r in rows if r["variant"] == "batched" and r["particles"] == n)
        slow = next(r for r in rows if r["variant"] == "per-particle" and r["particles"] == n)
        print(
            f"  speed-up of batched over per-particle at {n}: {slow['s_per_step'] / fast['s_per_step']:.2f}x"
        )
    report = {"device": name, "shape": common, "rows": rows}
    if args.decode:
        z = torch.randn(1, *backend.latent_shape, generator=torch.Generator().manual_seed(0)).to(
            device
        )
        with torch.no_grad():
            backend.decode(z)
            _sync(device)
            start = time.perf_counter()
            video = backend.decode(z)
            _sync(device)
        report["decode_s"] = time.perf_counter() - start
        print(f"  one VAE decode to {list(video.shape)}: {report['decode_s']:.2f} s")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
