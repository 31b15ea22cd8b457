"""FreeInit (Wu et al. 2023, "FreeInit: Bridging Initialization Gap in Video Diffusion
Models"): a reward-free noise prior, the baseline LatSearch compares against.

The algorithm, with ``L`` passes and a 3-D Butterworth low-pass filter ``H`` (order ``n``,
cutoff ``d0``) over frames, height and width::

    z = initial noise (the baseline's own)
    for pass in 1..L:
        x0 = sample z to the end
        if pass < L:
            z_T = (1 - sigma_max) x0 + sigma_max z          # re-noise with the same noise
            z   = IFFT( H * FFT(z_T) + (1 - H) * FFT(eps) ) # low frequencies kept, fresh high ones
    return the last x0

    H(f) = 1 / (1 + (|f| / d0)^(2n)),  |f|^2 = (2 f_t)^2 + (2 f_h)^2 + (2 f_w)^2

with ``f`` the FFT frequencies in cycles per sample (``|2 f| <= 1`` on each axis).
Compute: ``P = L T``, no reward during the search (one reward call reports the output).
Defaults: 5 passes, order 4, cutoff 0.25 (the values LatSearch compares against).

``sigma_max`` is the schedule's first noise level. Under flow-matching sigmas it is 1 (or
within ``1e-3`` of it), so the re-noised latent is the initial noise itself: FreeInit then
keeps the low frequencies of the initial noise and re-draws the high ones. The filter
uses one cutoff for the temporal and the spatial axes (FreeInit's ``d_s = d_t``).
"""

from __future__ import annotations

import attrs
import torch

from searchkit.context import SearchContext
from searchkit.registry import register_strategy
from searchkit.result import SearchResult
from searchkit.strategy import Strategy
from searchkit.validation import number, positive_int, to_float


def butterworth_3d(shape: tuple[int, int, int], cutoff: float, order: int) -> torch.Tensor:
    """Butterworth low-pass gain on the FFT grid of ``shape = (frames, height, width)``."""
    axes = [2.0 * torch.fft.fftfreq(n, dtype=torch.float64) for n in shape]
    ft, fh, fw = torch.meshgrid(*axes, indexing="ij")
    radius2 = ft**2 + fh**2 + fw**2
    return 1.0 / (1.0 + (radius2 / cutoff**2) ** order)


def frequency_mix(low: torch.Tensor, high: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """Low frequencies of ``low`` and high ones of ``high`` over the last three axes."""
    dims = (-3, -2, -1)
    gain = gain.to(device=low.device)
    spectrum = torch.fft.fftn(low.double(), dim=dims) * gain + torch.fft.fftn(
        high.double(), dim=dims
    ) * (1 - gain)
    return torch.fft.ifftn(spectrum, dim=dims).real.to(low.dtype)


@register_strategy("free-init")
@attrs.frozen
class FreeInit(Strategy):
    """Re-initialise the noise from the previous pass's low frequencies, ``num_passes`` times.

    Args:
        num_passes: ``L``, full sampling passes (1 is the baseline).
        cutoff: normalised cutoff frequency ``d0`` in ``(0, 1]``.
        order: Butterworth order ``n``.
    """

    name = "free-init"
    size_knob = "num_passes"

    num_passes: int = attrs.field(default=5, validator=positive_int)
    cutoff: float = attrs.field(
        default=0.25, converter=to_float, validator=number(above=0.0, at_most=1.0)
    )
    order: int = attrs.field(default=4, validator=positive_int)

    def search(self, ctx: SearchContext) -> SearchResult:
        particles = ctx.start(1)
        noise = particles.latents
        sigma_max = particles.sigma
        gain = butterworth_3d(tuple(noise.shape[-3:]), self.cutoff, self.order)
        for pass_ in range(self.num_passes):
            if pass_:
                particles = ctx.start(1, noise=noise)
            particles = ctx.advance(particles, to=ctx.num_steps)
            if pass_ < self.num_passes - 1:
                renoised = (1.0 - sigma_max) * particles.latents + sigma_max * noise
                noise = frequency_mix(renoised, ctx.noise(1), gain)
        return ctx.finish(particles)

    def expected_particle_steps(self, num_steps: int) -> float:
        return float(self.num_passes * num_steps)
