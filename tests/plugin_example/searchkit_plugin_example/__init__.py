"""An example searchkit plugin: one strategy, one reward and one backend, found by entry points.

Its ``*.dist-info/entry_points.txt`` names the three classes in searchkit's groups; once
this folder is on ``sys.path`` (here, as an installed distribution would be),
``searchkit list`` shows them and configurations can use their names. The three pass
searchkit's conformance suites (``searchkit.testing``), as a plugin's own tests would check.
"""

from __future__ import annotations

import hashlib

import attrs
import torch
from attrs import validators as v

from searchkit import Backend, Conditioning, Reward, Strategy
from searchkit.solver import make_scheduler


@attrs.frozen
class SuccessiveHalving(Strategy):
    """Start ``n`` samples, keep the better half at mid-way (reward on the predicted x0),
    finish them and return the best. ``P = n T/2 + ceil(n/2) T/2``."""

    name = "successive-halving"
    size_knob = "n"

    n: int = attrs.field(default=8, validator=[v.instance_of(int), v.ge(2)])

    def search(self, ctx):
        half = ctx.num_steps // 2
        particles = ctx.advance(ctx.start(self.n), to=half)
        midway = ctx.score(particles, label="midway")
        keep = midway.total.argsort(descending=True)[: (self.n + 1) // 2]
        particles = ctx.advance(particles.select(keep), to=ctx.num_steps)
        final = ctx.score(particles, label="final")
        best = int(final.total.argmax())
        return ctx.finish(particles, best, scores=final.scores[best])

    def expected_particle_steps(self, num_steps: int) -> float:
        half = num_steps // 2
        return float(self.n * half + (self.n + 1) // 2 * (num_steps - half))


class Brightness(Reward):
    """Mean pixel value of the decoded video (one dimension)."""

    name = "brightness"
    dimensions = ("brightness",)
    input = "video"

    def __init__(self, backend: Backend | None = None) -> None:
        self.backend = backend

    def score(self, batch) -> torch.Tensor:
        return batch.data.mean(dim=(1, 2, 3, 4))[:, None]


class GaussianBackend(Backend):
    """Exact flow matching when the data is one Gaussian ``N(mu(prompt), s^2 I)``.

    With ``x_t = (1 - sigma) x0 + sigma eps`` and ``a = 1 - sigma``, ``V = a^2 s^2 + sigma^2``,
    the velocity is ``E[eps - x0 | x_t] = (sigma - a s^2) (x_t - a mu) / V - mu``. The
    unconditional model has ``mu = 0``, so guidance pushes towards the prompt's mean.
    """

    name = "gaussian"
    default_reward = "brightness"

    def __init__(self, num_steps: int = 10, guidance_scale: float = 3.0, std: float = 0.5) -> None:
        if not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
        self._num_steps = num_steps
        self.guidance_scale = float(guidance_scale)
        self.std = float(std)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (4, 3, 4, 4)

    @property
    def num_steps(self) -> int:
        return self._num_steps

    @property
    def forwards_per_step(self) -> int:
        return 1 if self.guidance_scale == 1.0 else 2

    def encode(self, prompt: str) -> Conditioning:
        seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "little") >> 1
        mean = torch.randn(self.latent_shape, generator=torch.Generator().manual_seed(seed))
        return Conditioning(prompt=prompt, data=mean)

    def make_scheduler(self):
        scheduler = make_scheduler("euler", flow_shift=3.0)
        scheduler.set_timesteps(self.num_steps)
        return scheduler

    def velocity(self, latents, timestep, sigma, cond):
        a, s2 = 1.0 - sigma, self.std**2
        var = a * a * s2 + sigma * sigma

        def field(mu):
            return (sigma - a * s2) * (latents - a * mu) / var - mu

        v_cond, v_uncond = field(cond.data), field(torch.zeros_like(cond.data))
        return v_uncond + self.guidance_scale * (v_cond - v_uncond)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(latents[:, :3]).permute(0, 2, 3, 4, 1)

    def config_dict(self) -> dict:
        return {
            "name": self.name,
            "num_steps": self.num_steps,
            "guidance_scale": self.guidance_scale,
            "std": self.std,
        }
