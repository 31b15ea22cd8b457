"""FreqPrior (Yuan et al., ICLR 2025, "FreqPrior: Improving Video Diffusion Models with
Frequency Filtering Gaussian Noise"): a reward-free noise prior, the second noise-prior
baseline LatSearch compares against.

Each refining pass samples only part of the way (to step ``m``, the reference's
``mid_step``), jumps the latent back to the first noise level with the flow's forward
transition, and filters the result into a new Gaussian noise: its low frequencies come from
the re-noised latent (partly refreshed by ``ratio``), its high frequencies are fresh, and
the two are mixed with gains ``H`` and ``sqrt(1 - H^2)`` so that the prior stays
``N(0, I)``. With ``L`` passes::

    z0 = initial noise (the baseline's own); z = z0
    m  = round(mid_fraction * T)
    for pass in 1..L-1:
        x_m = sample z to step m                              # m steps, not to the end
        s   = (1 - sigma_0) / (1 - sigma_m)
        z_T = s x_m + sqrt(sigma_0^2 - s^2 sigma_m^2) z0      # forward jump sigma_m -> sigma_0
        w   = (sqrt(2) r z_T + sqrt(1 - r^2) eta) / sqrt(1 + r^2)            # r = ratio
        z   = IFFT( H * FFT(w) + sqrt(1 - H^2) * FFT(xi) )    # eta, xi ~ N(0, I), fresh
    return sample z to the end

    H(f) = 1 / (1 + (|f| / d0)^(2n)),  |f|^2 = (2 f_t)^2 + (2 f_h)^2 + (2 f_w)^2

``H`` is FreeInit's 3-D Butterworth low-pass gain (:func:`~searchkit.algorithms.free_init.
butterworth_3d`); ``sigma_k`` is the schedule's noise level before step ``k``. Since
``(2 r^2 + 1 - r^2) / (1 + r^2) = 1``, ``w`` is ``N(0, I)`` whenever ``z_T`` is, and every
frequency of ``z`` then has power ``H^2 + (1 - H^2) = 1``: the prior is white Gaussian noise
whose low frequencies are correlated (coefficient ``sqrt(2) r H / sqrt(1 + r^2)``, 0.88 H
for ``r = 0.8``) with those of ``z_T``.

Compute: ``P = (L - 1) m + T`` (at ``T = 50``, ``m = 30``, ``L = 3``: ``2 * 30 + 50 = 110``,
LatSearch's figure); no reward during the search (one reward call reports the output).
Defaults: 3 passes, ratio 0.8, order 4, cutoff 0.25, ``mid_fraction = 0.6`` (the LatSearch
code's configuration: its ``mid_step`` is timestep 768, step 30 of Wan2.1's 50-step,
shift-5 UniPC schedule).

Where this differs from the reference code:

* The reference forms two correlated copies ``x_{1,2} = (r z_T + sqrt(1 - r^2) eta_{1,2}) /
  sqrt(1 + r^2)``, mixes each with its own fresh ``y_{1,2}``, and returns ``(Re + Im`` of the
  first ``+ Re - Im`` of the second ``) / sqrt(2)``, which bounds the prior's covariance
  error for any real filter. The imaginary parts vanish for a filter symmetric in frequency;
  the reference's grid (``2 t / T - 1`` on the shifted spectrum) is off-centre by half a bin
  along odd-sized axes (Wan2.1's latent frames), where they do not. Our gain is centred and
  symmetric (``H(f) = H(-f)``), so both inverse FFTs are real and the two branches sum to
  the single mix above with ``eta = (eta_1 + eta_2) / sqrt(2)`` and ``xi = (y_1 + y_2) /
  sqrt(2)``: the same prior in distribution, two draws instead of four, and an exactly white
  spectrum.
* The jump is the flow-matching one of the LatSearch code; the original, for DDPM models,
  uses ``sqrt(abar_T / abar_m) x_m + sqrt(1 - abar_T / abar_m) z0``.
* The stopping step is a fraction of the steps, so one configuration serves any ``T``
  (the reference names a timestep; its AnimateDiff example, timestep 321 of 25 DDIM
  steps, stops at step 16, a fraction of 0.64).
* Every draw comes from the search's generator (the reference uses NumPy's and torch's
  global ones).

Under flow-matching sigmas ``sigma_0`` is 1 or within ``1e-3`` of it, so ``s`` is at most
about ``1e-3 / (1 - sigma_m)`` and ``z_T`` is essentially the initial noise: as in the
LatSearch code on Wan2.1, each refining pass re-draws a frequency-filtered variant of the
initial noise, and the partial passes barely reach it. We keep that behaviour (it is the
reference's); the re-noising is exact for the flow, so a schedule that starts below
``sigma = 1`` carries more of the partial sample over.
"""

from __future__ import annotations

import math

import attrs
import torch

from searchkit.algorithms.free_init import butterworth_3d
from searchkit.context import SearchContext
from searchkit.registry import register_strategy
from searchkit.result import SearchResult
from searchkit.strategy import Strategy
from searchkit.validation import number, positive_int, to_float


def renoise(
    latents: torch.Tensor, noise: torch.Tensor, sigma_from: float, sigma_to: float
) -> torch.Tensor:
    """The flow's forward jump of ``latents`` at ``sigma_from`` to ``sigma_to >= sigma_from``.

    With ``x_t = (1 - sigma) x0 + sigma eps``, ``s x + sqrt(sigma_to^2 - s^2 sigma_from^2)
    noise`` with ``s = (1 - sigma_to) / (1 - sigma_from)`` has the same ``x0`` and noise
    level ``sigma_to`` (``noise`` independent of ``eps``).
    """
    if sigma_from >= sigma_to:
        return latents  # no jump (the latent is already at the target level)
    s = (1.0 - sigma_to) / (1.0 - sigma_from)
    return s * latents + math.sqrt(max(sigma_to**2 - (s * sigma_from) ** 2, 0.0)) * noise


def variance_preserving_mix(
    low: torch.Tensor, high: torch.Tensor, gain: torch.Tensor
) -> torch.Tensor:
    """``IFFT(H FFT(low) + sqrt(1 - H^2) FFT(high))`` over the last three axes.

    For white ``N(0, I)`` inputs the output is white ``N(0, I)`` when ``gain`` is symmetric in
    frequency (``H(f) = H(-f)``, so the inverse FFT is real).
    """
    dims = (-3, -2, -1)
    gain = gain.to(device=low.device, dtype=torch.float64)
    spectrum = torch.fft.fftn(low.double(), dim=dims) * gain + torch.fft.fftn(
        high.double(), dim=dims
    ) * torch.sqrt(1.0 - gain**2)
    return torch.fft.ifftn(spectrum, dim=dims).real.to(low.dtype)


def frequency_prior(
    latents: torch.Tensor, eta: torch.Tensor, xi: torch.Tensor, ratio: float, gain: torch.Tensor
) -> torch.Tensor:
    """FreqPrior's noise from re-noised ``latents`` and two fresh ``N(0, I)`` draws ``eta``, ``xi``.

    ``w = (sqrt(2) r latents + sqrt(1 - r^2) eta) / sqrt(1 + r^2)`` keeps unit variance; its
    low frequencies (gain ``H``) and the high ones of ``xi`` (gain ``sqrt(1 - H^2)``) form the
    result, in float32 (the context casts it to the backend's dtype).
    """
    norm = math.sqrt(1.0 + ratio**2)
    w = (math.sqrt(2.0) * ratio / norm) * latents.float() + (
        math.sqrt(1.0 - ratio**2) / norm
    ) * eta.float()
    return variance_preserving_mix(w, xi, gain)


@register_strategy("freqprior")
@attrs.frozen
class FreqPrior(Strategy):
    """Refine the noise over ``num_passes - 1`` partial passes with a frequency-filtered prior.

    Args:
        num_passes: ``L``, passes in all: ``L - 1`` partial ones and the final full one
            (1 is the baseline).
        ratio: ``r`` in ``[0, 1]``, how much of the re-noised latent the low frequencies keep
            (1 keeps them, 0 re-draws them).
        mid_fraction: the partial passes stop at step ``round(mid_fraction * T)``, in
            ``[0, 1]`` (1 samples to the end and re-noises the clean output).
        cutoff: normalised cutoff frequency ``d0`` in ``(0, 1]`` of the Butterworth gain.
        order: Butterworth order ``n``.
    """

    name = "freqprior"
    size_knob = "num_passes"

    num_passes: int = attrs.field(default=3, validator=positive_int)
    ratio: float = attrs.field(
        default=0.8, converter=to_float, validator=number(at_least=0.0, at_most=1.0)
    )
    mid_fraction: float = attrs.field(
        default=0.6, converter=to_float, validator=number(at_least=0.0, at_most=1.0)
    )
    cutoff: float = attrs.field(
        default=0.25, converter=to_float, validator=number(above=0.0, at_most=1.0)
    )
    order: int = attrs.field(default=4, validator=positive_int)

    def mid_step(self, num_steps: int) -> int:
        """``m``, the step at which the partial passes stop (half-way ties round up)."""
        return math.floor(self.mid_fraction * num_steps + 0.5)

    def search(self, ctx: SearchContext) -> SearchResult:
        particles = ctx.start(1)
        initial = particles.latents
        sigma_max = particles.sigma
        gain = butterworth_3d(tuple(initial.shape[-3:]), self.cutoff, self.order)
        mid = self.mid_step(ctx.num_steps)
        for _ in range(self.num_passes - 1):
            partial = ctx.advance(particles, to=mid)
            renoised = renoise(partial.latents.float(), initial.float(), partial.sigma, sigma_max)
            noise = frequency_prior(renoised, ctx.noise(1), ctx.noise(1), self.ratio, gain)
            particles = ctx.start(1, noise=noise)
        return ctx.finish(ctx.advance(particles, to=ctx.num_steps))

    def expected_particle_steps(self, num_steps: int) -> float:
        return float((self.num_passes - 1) * self.mid_step(num_steps) + num_steps)
