"""FLOPs of the latent reward model against one Wan2.1-T2V-1.3B transformer forward.

Both are measured with ``torch.utils.flop_counter.FlopCounterMode`` on the meta device (no
weights, no memory, no time): one latent of 832x480 pixels and 33 frames, i.e. 16 channels,
9 latent frames, 60x104 latent pixels. The Wan transformer is diffusers'
``WanTransformer3DModel`` built from the 1.3B configuration (30 layers, 12 heads of 128,
FFN 8960, text dim 4096, patch (1, 2, 2)) with a 512-token text context. A guided
denoising step costs two such forwards (conditional and unconditional).

    python benchmarks/latent_reward_cost.py [--width 64 --depth 2 --patch 1,2,2]
"""

from __future__ import annotations

import argparse
import functools
import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from searchkit.backends.wan import WAN21_1_3B_TRANSFORMER

WAN_1_3B = WAN21_1_3B_TRANSFORMER
LATENT = (16, 9, 60, 104)  # 832x480, 33 frames -> (33 - 1) / 4 + 1 = 9 latent frames, /8 spatially
TEXT_TOKENS = 512
WAN_TEXT_DIM = 4096


def wan_forward_flops() -> tuple[int, int]:
    """(FLOPs of one forward, parameter count) of the Wan2.1-1.3B transformer."""
    from diffusers import WanTransformer3DModel

    with torch.device("meta"):
        model = WanTransformer3DModel(**WAN_1_3B)
        latents = torch.empty(1, *LATENT)
        timestep = torch.empty(1)
        text = torch.empty(1, TEXT_TOKENS, WAN_TEXT_DIM)
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(
            hidden_states=latents, timestep=timestep, encoder_hidden_states=text, return_dict=False
        )
    return counter.get_total_flops(), params


def reward_model_flops(text_dim: int = WAN_TEXT_DIM, **options) -> tuple[int, int]:
    """(FLOPs of one scoring, parameter count) of the latent reward model on one Wan latent."""
    from searchkit.rewards.latent import LatentRewardConfig, LatentRewardNet

    # The position and readout tables on Wan's own token grid (what for_backend builds).
    options.setdefault(
        "position_grid",
        tuple(
            -(-s // p)
            for s, p in zip(LATENT[1:], options.get("patch_size", (1, 2, 2)), strict=True)
        ),
    )
    config = LatentRewardConfig(in_channels=LATENT[0], text_dim=text_dim, **options)
    with torch.device("meta"):
        net = LatentRewardNet(config)
        latents = torch.empty(1, *LATENT)
        sigma = torch.empty(1)
        text = torch.empty(1, text_dim)
    params = sum(p.numel() for p in net.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(latents, sigma, text)
    return counter.get_total_flops(), params


def _timed(fn, device: torch.device, repeats: int = 20) -> float:
    """Median seconds of ``fn()`` after warm-up (CUDA-synchronised)."""
    import statistics
    import time

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(3):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.no_grad()
def wall_clock(
    device: str, width: int, depth: int, patch: tuple[int, int, int], text_dim: int
) -> dict:
    """Wall-clock seconds of one Wan2.1-1.3B forward (random weights, bf16) and one scoring."""
    from diffusers import WanTransformer3DModel

    from searchkit.rewards.latent import LatentRewardConfig, LatentRewardNet

    dev = torch.device(device)
    g = torch.Generator(device="cpu").manual_seed(0)
    wan = WanTransformer3DModel(**WAN_1_3B).to(device=dev, dtype=torch.bfloat16).eval()
    latents = torch.randn(1, *LATENT, generator=g).to(dev)
    text = torch.randn(1, TEXT_TOKENS, WAN_TEXT_DIM, generator=g).to(dev, torch.bfloat16)
    timestep = torch.tensor([500.0], device=dev)
    forward = functools.partial(
        wan,
        hidden_states=latents.bfloat16(),
        timestep=timestep,
        encoder_hidden_states=text,
        return_dict=False,
    )
    wan_s = _timed(forward, dev, repeats=5)
    del forward, wan
    config = LatentRewardConfig(
        in_channels=LATENT[0],
        text_dim=text_dim,
        width=width,
        depth=depth,
        patch_size=patch,
        position_grid=tuple(-(-s // p) for s, p in zip(LATENT[1:], patch, strict=True)),
    )
    net = LatentRewardNet(config).to(dev).eval()
    sigma = torch.tensor([0.5], device=dev)
    pooled = torch.randn(1, text_dim, generator=g).to(dev)
    fp32_s = _timed(lambda: net(latents, sigma, pooled), dev)
    batch6 = latents.expand(6, -1, -1, -1, -1).contiguous()
    fp32_b6_s = _timed(lambda: net(batch6, sigma.expand(6), pooled.expand(6, -1)), dev)
    return {
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev),
        "wan_forward_bf16_ms": 1e3 * wan_s,
        "reward_model_fp32_ms": 1e3 * fp32_s,
        "reward_model_fp32_6_latents_ms": 1e3 * fp32_b6_s,
        "wall_fraction_of_one_forward": fp32_s / wan_s,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--patch", default="1,2,2")
    parser.add_argument(
        "--text-dim",
        type=int,
        default=WAN_TEXT_DIM,
        help="prompt-embedding length (Wan's pooled UMT5 embedding: 4096)",
    )
    parser.add_argument(
        "--time",
        default=None,
        metavar="DEVICE",
        help="also measure wall-clock time on DEVICE (e.g. cuda); needs memory for Wan",
    )
    args = parser.parse_args(argv)
    patch = tuple(int(p) for p in args.patch.split(","))
    wan, wan_params = wan_forward_flops()
    lrm, lrm_params = reward_model_flops(
        args.text_dim, width=args.width, depth=args.depth, patch_size=patch
    )
    report = {
        "latent": list(LATENT),
        "wan_forward_tflops": wan / 1e12,
        "wan_params": wan_params,
        "reward_model_gflops": lrm / 1e9,
        "reward_model_params": lrm_params,
        "fraction_of_one_forward": lrm / wan,
        "fraction_of_one_guided_step": lrm / (2 * wan),
    }
    if args.time is not None:
        report["wall_clock"] = wall_clock(args.time, args.width, args.depth, patch, args.text_dim)
    print(json.dumps(report, indent=2))
    print(
        f"latent reward model: {lrm / 1e9:.3f} GFLOPs, {lrm_params / 1e6:.2f} M parameters; "
        f"Wan2.1-1.3B forward: {wan / 1e12:.2f} TFLOPs ({wan_params / 1e9:.2f} B parameters); "
        f"fraction {100 * lrm / wan:.4f}% of one forward (target < 2%)"
    )
    return report


if __name__ == "__main__":
    main()
