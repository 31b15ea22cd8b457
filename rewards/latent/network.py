"""The latent reward network and its configuration.

The LatSearch paper scores partially denoised latents with a 2.3-billion-parameter
vision-language model conditioned on five discrete step labels. This is a network of our
own, small enough to cost a negligible share of one denoising step, conditioned on the
*continuous* noise level so that any step of any schedule can be scored::

    x [n, C, F, H, W] ─► Conv3d patch embedding (kernel = stride = patch) ─► tokens [n, T, W]
                          + learned position table (resampled to the token grid)
    c = MLP(sinusoidal(1000 * sigma)) + MLP(prompt embedding)          conditioning [n, W]
    depth x { h += DepthwiseConv3d(film(h, c)) ; h += MLP(film(h, c)) }   film: h * (1 + a) + b
    r = sum_t <R_t, patch_t> / T          linear readouts of the raw patches (R: a learned table)
    pooled = [r * (1 + A c), mean_t(film(h_t, c)), c]
    one MLP head per dimension (VQ, MQ, TA) ─► [n, dims]  (in reward units: * std + mean)

The linear readouts let the model read position-dependent linear functionals of the latent
(a fixed "quality direction", a prompt's target layout) while staying defined for any
latent size: the position and readout tables live on a reference token grid (the backend's
own when built with :meth:`LatentRewardModel.for_backend
<searchkit.rewards.latent.reward.LatentRewardModel.for_backend>`) and are resampled
trilinearly for other sizes.

Deviation from the paper: continuous noise-level conditioning instead of step labels, a
compact convolutional network instead of a VLM backbone, prompt conditioning through the
backend's prompt embedding rather than the VLM's own text encoder.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
from torch import nn

from searchkit.errors import InputError
from searchkit.validation import as_tuple, int_between, is_int, one_of, positive_int

#: Largest token width, noise-feature and readout count, and depth a config may ask for: far
#: above any model that fits in memory, so a typo is refused before it reaches the allocator.
MAX_WIDTH = 65536
MAX_DEPTH = 1024

#: What a model can read: the noisy latent ``x_t`` or the one-step prediction ``x0``.
MODEL_INPUTS: tuple[str, ...] = ("latent", "x0")
#: The most parameters a configuration may ask for (4 GB of float32 weights): a bound that
#: refuses a mistyped size on construction, before any tensor is allocated.
MAX_PARAMETERS = 10**9


def _three_positive_ints(_inst: Any, attribute: attrs.Attribute, value: object) -> None:
    if (
        not isinstance(value, tuple)
        or len(value) != 3
        or not all(is_int(p) and p > 0 for p in value)
    ):
        raise ValueError(
            f"{attribute.name} must be three positive integers (f, h, w), got {value!r}"
        )


def _distinct_names(_inst: Any, attribute: attrs.Attribute, value: object) -> None:
    if (
        not isinstance(value, tuple)
        or not value
        or not all(isinstance(d, str) and d for d in value)
        or len(set(value)) != len(value)
    ):
        raise ValueError(f"{attribute.name} must be distinct non-empty names, got {value!r}")


def _even(_inst: Any, attribute: attrs.Attribute, value: int) -> None:
    if value % 2:
        raise ValueError(f"{attribute.name} must be even, got {value!r}")


def _odd(_inst: Any, attribute: attrs.Attribute, value: int) -> None:
    if value % 2 != 1:
        raise ValueError(f"{attribute.name} must be odd, got {value!r}")


@attrs.frozen
class LatentRewardConfig:
    """Architecture and interface of a latent reward model (saved as ``config.json``).

    Args:
        in_channels: latent channels ``C`` (16 for Wan2.1).
        text_dim: length of the backend's prompt embedding.
        input: ``"latent"`` (score ``x_t``) or ``"x0"`` (score the predicted clean latent).
        dimensions: output heads, in column order (the paper's ``VQ``, ``MQ``, ``TA``).
        patch_size: 3-D patch ``(f, h, w)`` of the embedding.
        width: token width.
        depth: number of conditioned blocks.
        noise_features: sinusoidal features of the noise level (even).
        readouts: number of linear readouts (position-dependent linear functionals of the
            raw latent, read before any normalisation).
        position_grid: token grid of the learned position and readout tables (for_backend sets
            the backend's own); other grids are resampled trilinearly.
        mixing_kernel: kernel of the depthwise spatio-temporal convolution (odd).
    """

    in_channels: int = attrs.field(validator=positive_int)
    text_dim: int = attrs.field(validator=positive_int)
    input: str = attrs.field(default="latent", validator=one_of(MODEL_INPUTS))
    dimensions: tuple[str, ...] = attrs.field(
        default=("VQ", "MQ", "TA"), converter=as_tuple, validator=_distinct_names
    )
    patch_size: tuple[int, int, int] = attrs.field(
        default=(1, 2, 2), converter=as_tuple, validator=_three_positive_ints
    )
    width: int = attrs.field(default=64, validator=int_between(1, MAX_WIDTH))
    depth: int = attrs.field(default=2, validator=int_between(0, MAX_DEPTH))
    noise_features: int = attrs.field(default=32, validator=[int_between(1, MAX_WIDTH), _even])
    readouts: int = attrs.field(default=16, validator=int_between(1, MAX_WIDTH))
    position_grid: tuple[int, int, int] = attrs.field(
        default=(8, 16, 16), converter=as_tuple, validator=_three_positive_ints
    )
    mixing_kernel: int = attrs.field(default=3, validator=[positive_int, _odd])

    def __attrs_post_init__(self) -> None:
        count = self.num_parameters()
        if count > MAX_PARAMETERS:
            sizes = ", ".join(
                f"{name}={getattr(self, name)!r}"
                for name in ("width", "depth", "readouts", "patch_size", "position_grid")
            )
            raise InputError(
                f"a latent reward model with {sizes} (in_channels={self.in_channels}, "
                f"text_dim={self.text_dim}) would have {count:.3g} parameters; at most "
                f"{MAX_PARAMETERS:.0e} are allowed: choose smaller sizes"
            )

    def num_parameters(self) -> int:
        """The network's parameter count, from the sizes alone (nothing is allocated)."""
        w, c, r, k = self.width, self.in_channels, self.readouts, self.mixing_kernel
        patch, grid = math.prod(self.patch_size), math.prod(self.position_grid)

        def mlp(d_in: int, hidden: int, d_out: int) -> int:
            return d_in * hidden + hidden + hidden * d_out + d_out

        block = (w * k**3 + w) + mlp(w, 2 * w, w) + (w * 4 * w + 4 * w)
        return (
            (c * patch * w + w)  # patch embedding
            + w * grid  # position table
            + r * c * patch * grid  # readout table
            + mlp(self.noise_features, w, w)
            + mlp(self.text_dim, w, w)
            + self.depth * block
            + (w * 2 * w + 2 * w)  # output modulation
            + (w * r + r)  # readout modulation
            + len(self.dimensions) * mlp(2 * w + r, w, 1)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (tuples as lists)."""
        return attrs.asdict(
            self, value_serializer=lambda _i, _f, x: list(x) if isinstance(x, tuple) else x
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatentRewardConfig:
        """The config of :meth:`to_dict`'s output; unknown fields are an error."""
        if not isinstance(data, dict):
            raise ValueError(f"config must be a JSON object, got {type(data).__name__}")
        known = {a.name for a in attrs.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


def sinusoidal_features(values: torch.Tensor, size: int, scale: float = 1000.0) -> torch.Tensor:
    """``[n] -> [n, size]``: sin/cos of ``scale * values`` at geometric frequencies."""
    half = size // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    angles = scale * values.float()[:, None] * freqs.to(values.device)[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.SiLU(), nn.Linear(d_hidden, d_out))


class _Block(nn.Module):
    """Depthwise spatio-temporal mixing and a token MLP, each behind a FiLM modulation.

    No normalisation: rewards depend on magnitudes (energies, projections) that a per-token
    LayerNorm would erase.
    """

    def __init__(self, width: int, kernel: int) -> None:
        super().__init__()
        self.mix = nn.Conv3d(width, width, kernel, padding=kernel // 2, groups=width)
        self.mlp = _mlp(width, 2 * width, width)
        self.modulation = nn.Linear(width, 4 * width)

    def forward(self, h: torch.Tensor, c: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        # h: [n, T, W]; c: [n, W]
        scale1, shift1, scale2, shift2 = self.modulation(c)[:, None].chunk(4, dim=-1)
        n, t, w = h.shape
        x = h * (1 + scale1) + shift1
        x = self.mix(x.transpose(1, 2).reshape(n, w, *grid)).reshape(n, w, t).transpose(1, 2)
        h = h + x
        return h + self.mlp(h * (1 + scale2) + shift2)


class LatentRewardNet(nn.Module):
    """The network behind ``LatentRewardModel``; outputs are in normalised units."""

    def __init__(self, config: LatentRewardConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.patch = nn.Conv3d(config.in_channels, w, config.patch_size, stride=config.patch_size)
        # Learned tables over a reference token grid, resampled (trilinear) to other grids.
        self.position = nn.Parameter(torch.zeros(w, *config.position_grid))
        patch_dim = config.in_channels * math.prod(config.patch_size)
        self.readout = nn.Parameter(torch.zeros(config.readouts * patch_dim, *config.position_grid))
        self.noise = _mlp(config.noise_features, w, w)
        self.text = _mlp(config.text_dim, w, w)
        self.blocks = nn.ModuleList(_Block(w, config.mixing_kernel) for _ in range(config.depth))
        self.out_modulation = nn.Linear(w, 2 * w)
        self.readout_modulation = nn.Linear(w, config.readouts)
        self.heads = nn.ModuleList(_mlp(2 * w + config.readouts, w, 1) for _ in config.dimensions)
        # Reward units: prediction = output * target_std + target_mean (set by training).
        dims = len(config.dimensions)
        self.register_buffer("target_mean", torch.zeros(dims))
        self.register_buffer("target_std", torch.ones(dims))

    def forward(
        self, latents: torch.Tensor, sigma: torch.Tensor, text: torch.Tensor
    ) -> torch.Tensor:
        """Normalised scores ``[n, dims]`` of ``latents [n, C, F, H, W]`` at ``sigma [n]``."""
        cfg = self.config
        pads = [(-s) % p for s, p in zip(latents.shape[2:], cfg.patch_size, strict=True)]
        if any(pads):
            latents = nn.functional.pad(latents, (0, pads[2], 0, pads[1], 0, pads[0]))
        tokens = self.patch(latents)  # [n, W, f, h, w]
        grid = tuple(int(s) for s in tokens.shape[2:])
        h = tokens.flatten(2).transpose(1, 2)  # [n, T, W]
        h = h + self._table(self.position, grid)[None]
        # Linear readouts: a position-dependent linear functional of the raw patches.
        n, c_in = latents.shape[:2]
        pf, ph, pw = cfg.patch_size
        patches = latents.reshape(n, c_in, grid[0], pf, grid[1], ph, grid[2], pw)
        patches = patches.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(
            n, math.prod(grid), -1
        )  # [n, T, P]
        weights = self._table(self.readout, grid).reshape(patches.shape[1], cfg.readouts, -1)
        readouts = torch.einsum("ntp,tkp->nk", patches, weights) / patches.shape[1]
        c = self.noise(sinusoidal_features(sigma, cfg.noise_features).to(h.dtype)) + self.text(text)
        for block in self.blocks:
            h = block(h, c, grid)
        readouts = readouts * (1 + self.readout_modulation(c))  # prompt-dependent selection
        scale, shift = self.out_modulation(c)[:, None].chunk(2, dim=-1)
        plain = (h * (1 + scale) + shift).mean(dim=1)
        pooled = torch.cat([readouts, plain, c], dim=1)
        return torch.cat([head(pooled) for head in self.heads], dim=1)

    @staticmethod
    def _table(table: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        if tuple(table.shape[1:]) != grid:
            table = nn.functional.interpolate(
                table[None], size=grid, mode="trilinear", align_corners=False
            )[0]
        return table.flatten(1).transpose(0, 1)

    def init_weights(self, generator: torch.Generator) -> None:
        """Deterministic initialisation from ``generator`` (no global random state)."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Conv3d):
                fan_in = module.weight[0].numel()
                with torch.no_grad():
                    module.weight.copy_(
                        torch.randn(module.weight.shape, generator=generator) / math.sqrt(fan_in)
                    )
                    if module.bias is not None:
                        module.bias.zero_()
        # Modulations start as identity (adaLN-zero style).
        with torch.no_grad():
            self.position.copy_(0.02 * torch.randn(self.position.shape, generator=generator))
            self.readout.copy_(
                torch.randn(self.readout.shape, generator=generator)
                / math.sqrt(self.readout.shape[0])
            )
            for block in self.blocks:
                block.modulation.weight.zero_()
            self.out_modulation.weight.zero_()
            self.readout_modulation.weight.zero_()


def build_net(
    config: LatentRewardConfig, generator: torch.Generator | None = None
) -> LatentRewardNet:
    """A freshly initialised network on the CPU (``generator`` defaults to seed 0).

    Built on the meta device first, so the default PyTorch initialisation (which would draw
    from the global random state) never runs; :meth:`LatentRewardNet.init_weights` sets every
    parameter.
    """
    with torch.device("meta"):
        net = LatentRewardNet(config)
    net = net.to_empty(device="cpu")
    net.target_mean.zero_()
    net.target_std.fill_(1.0)
    net.init_weights(generator if generator is not None else torch.Generator().manual_seed(0))
    return net
