"""The analytic world: flow matching on a Gaussian mixture, with exact velocities.

The data distribution over video-shaped latents ``x0 in R^{C x F x H x W}`` (``D`` numbers)
is a mixture of ``K`` isotropic Gaussians ``N(mu_k, s^2 I)``. Under the flow-matching path
``x_t = (1 - sigma) x0 + sigma eps`` each component gives ``x_t | k ~ N(a mu_k, V I)`` with
``a = 1 - sigma`` and ``V = a^2 s^2 + sigma^2``, and the exact velocity is

    E[eps - x0 | x_t] = sum_k p(k | x_t) [ (sigma - a s^2) (x_t - a mu_k) / V - mu_k ],
    log p(k | x_t) = log pi_k - (D / 2) log V - |x_t - a mu_k|^2 / (2 V) + const.

A prompt chooses the mixture weights ``pi(prompt)`` (a hash of the text seeds its logits,
so any string is a valid prompt and the same string always means the same weights); the
unconditional model has uniform weights, so classifier-free guidance
``v = v_u + g (v_c - v_u)`` is real guidance between two exact fields.

Component means are temporally correlated across frames with a per-component
correlation ``rho_k`` (smooth or jittery "motion"). The world defines three closed-form
rewards on a clean latent, in the LatSearch paper's dimensions:

* ``VQ`` (visual quality): the projection of ``x0`` on a fixed unit direction, in units of
  the component spread ``s`` (continuous within every component: search can climb it);
* ``MQ`` (motion quality): temporal consistency, minus the mean squared difference of
  consecutive frames, standardised;
* ``TA`` (text alignment): the cosine between ``x0`` and the mean of the prompt's most likely
  component, rescaled.

:meth:`AnalyticBackend.oracle` is the exact reward of any output: the benchmark's truth.
A fixed linear map (then a sigmoid) decodes channels to RGB frames.
"""

from __future__ import annotations

import hashlib
import math

import attrs
import torch

from searchkit.backend import Backend, Conditioning
from searchkit.backends import analytic_cost
from searchkit.errors import InputError
from searchkit.solver import SOLVERS, STOCHASTIC_SOLVERS, make_scheduler
from searchkit.validation import (
    int_at_least,
    int_at_most,
    number,
    one_of,
    positive_int,
    seed,
    to_float,
)

DIMENSIONS: tuple[str, ...] = ("VQ", "MQ", "TA")


def prompt_seed(prompt: str) -> int:
    """A stable 63-bit seed from the text (not Python's salted ``hash``)."""
    return int.from_bytes(hashlib.sha256(prompt.encode("utf-8")).digest()[:8], "little") >> 1


#: The largest of each side of the analytic world's latent (channels, frames, height,
#: width) and of its number of mixture components.
MAX_SIDE = 1024
#: The most numbers in one latent ``C F H W`` (64 MiB of float32).
MAX_LATENT_ELEMENTS = 2**24
#: The most numbers in the world's means ``K C F H W`` (1 GiB of float32), built at once.
MAX_WORLD_ELEMENTS = 2**28


def _world_size(instance: AnalyticBackend, _attribute: attrs.Attribute, _value: object) -> None:
    """The latent and the means fit the bounds above (checked once the sizes are known)."""
    c, f, h, w = instance.channels, instance.frames, instance.height, instance.width
    k = instance.num_components
    shape = f"channels={c}, frames={f}, height={h}, width={w}"
    if c * f * h * w > MAX_LATENT_ELEMENTS:
        raise InputError(
            f"the latent shape {shape} holds {c * f * h * w} numbers, more than the "
            f"{MAX_LATENT_ELEMENTS} an analytic latent may hold; lower them"
        )
    if k * c * f * h * w > MAX_WORLD_ELEMENTS:
        raise InputError(
            f"num_components={k} means of shape {shape} hold {k * c * f * h * w} numbers, "
            f"more than the {MAX_WORLD_ELEMENTS} the analytic world may hold; lower them"
        )


@attrs.define(eq=False)
class AnalyticBackend(Backend):
    """Exact flow-matching model of a Gaussian mixture; the embedded default backend.

    Args:
        channels, frames, height, width: latent shape ``[C, F, H, W]``; each at most
            :data:`MAX_SIDE` (1024), and ``C F H W`` at most :data:`MAX_LATENT_ELEMENTS`.
        num_components: mixture components ``K``, in ``[2, MAX_SIDE]``; the means
            (``K C F H W`` numbers) at most :data:`MAX_WORLD_ELEMENTS`.
        component_scale: scale of the component means (per element).
        component_std: within-component standard deviation ``s``.
        prompt_sharpness: scale of the prompt's mixture logits (higher: prompts pick fewer
            components).
        num_steps: denoising steps of one trajectory.
        guidance_scale: classifier-free guidance ``g`` (1 disables guidance: one forward).
        solver: ``"unipc"``, ``"euler"`` or ``"sde-dpmsolver++"``.
        flow_shift: the schedulers' timestep shift.
        world_seed: seed of the world's means, reward direction and decoder, in
            ``[0, 2**64)``.
        flops_per_forward, decode_forwards, latent_reward_forwards, pixel_reward_forwards:
            the cost model (:mod:`searchkit.backends.analytic_cost`): FLOPs of one model
            forward on one latent, and a decode and each kind of reward call in forwards
            (defaults: Wan2.1-1.3B at 832x480x33).
    """

    name = "analytic"
    default_reward = "analytic-proxy"
    #: The values of ``solver`` (checked by benchmark configs before any compute).
    solvers = SOLVERS

    channels: int = attrs.field(default=4, validator=[positive_int, int_at_most(MAX_SIDE)])
    frames: int = attrs.field(default=5, validator=[positive_int, int_at_most(MAX_SIDE)])
    height: int = attrs.field(default=8, validator=[positive_int, int_at_most(MAX_SIDE)])
    width: int = attrs.field(default=8, validator=[positive_int, int_at_most(MAX_SIDE)])
    num_components: int = attrs.field(
        default=8, validator=[int_at_least(2), int_at_most(MAX_SIDE), _world_size]
    )
    component_scale: float = attrs.field(
        default=0.8, converter=to_float, validator=number(above=0.0)
    )
    component_std: float = attrs.field(default=0.6, converter=to_float, validator=number(above=0.0))
    prompt_sharpness: float = attrs.field(
        default=1.5, converter=to_float, validator=number(at_least=0.0)
    )
    num_steps: int = attrs.field(default=50, validator=[positive_int, number(at_most=1000)])
    guidance_scale: float = attrs.field(
        default=5.0, converter=to_float, validator=number(at_least=1.0, at_most=50.0)
    )
    solver: str = attrs.field(default="unipc", validator=one_of(SOLVERS))
    flow_shift: float = attrs.field(default=3.0, converter=to_float, validator=number(above=0.0))
    world_seed: int = attrs.field(default=0, validator=seed)
    flops_per_forward: float = attrs.field(
        default=analytic_cost.WAN21_FORWARD_FLOPS, converter=to_float, validator=number(above=0.0)
    )
    decode_forwards: float = attrs.field(
        default=analytic_cost.DECODE_FORWARDS, converter=to_float, validator=number(at_least=0.0)
    )
    latent_reward_forwards: float = attrs.field(
        default=analytic_cost.LATENT_REWARD_FORWARDS,
        converter=to_float,
        validator=number(at_least=0.0),
    )
    pixel_reward_forwards: float = attrs.field(
        default=analytic_cost.PIXEL_REWARD_FORWARDS,
        converter=to_float,
        validator=number(at_least=0.0),
    )

    means: torch.Tensor = attrs.field(init=False, repr=False)
    rho: torch.Tensor = attrs.field(init=False, repr=False)
    quality_direction: torch.Tensor = attrs.field(init=False, repr=False)
    decoder_weight: torch.Tensor = attrs.field(init=False, repr=False)
    decoder_bias: torch.Tensor = attrs.field(init=False, repr=False)
    # each prompt's most likely component, for the closed-form rewards
    _targets: dict[str, int] = attrs.field(init=False, factory=dict, repr=False)
    # the last guided pair of log weights (prompt, unconditional), kept across steps
    _guided: tuple[torch.Tensor, torch.Tensor] | None = attrs.field(
        init=False, default=None, repr=False
    )

    def __attrs_post_init__(self) -> None:
        g = torch.Generator().manual_seed(self.world_seed)
        k, c, f, h, w = self.num_components, self.channels, self.frames, self.height, self.width
        self.rho = torch.linspace(0.0, 0.95, k)[torch.randperm(k, generator=g)]
        frames = [torch.randn(k, c, h, w, generator=g)]
        for _ in range(1, f):
            innovation = torch.randn(k, c, h, w, generator=g)
            r = self.rho.view(k, 1, 1, 1)
            frames.append(r * frames[-1] + torch.sqrt(1 - r**2) * innovation)
        self.means = self.component_scale * torch.stack(frames, dim=2)  # [K, C, F, H, W]
        direction = torch.randn(c, f, h, w, generator=g)
        self.quality_direction = direction / direction.norm()
        self.decoder_weight = torch.randn(3, c, generator=g) / math.sqrt(c)
        self.decoder_bias = 0.1 * torch.randn(3, generator=g)

    # -- Backend surface ----------------------------------------------------------------
    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.channels, self.frames, self.height, self.width)

    @property
    def forwards_per_step(self) -> int:
        return 1 if self.guidance_scale == 1.0 else 2

    @property
    def is_stochastic(self) -> bool:
        return self.solver in STOCHASTIC_SOLVERS

    @property
    def is_differentiable(self) -> bool:
        return True

    def encode(self, prompt: str) -> Conditioning:
        return Conditioning(prompt=prompt, data=self.prompt_log_weights(prompt))

    def prompt_embedding(self, cond: Conditioning) -> torch.Tensor:
        """The prompt's mixture weights ``pi(prompt)`` (``[K]``): what the text selects."""
        return cond.data.exp()

    def prompt_log_weights(self, prompt: str) -> torch.Tensor:
        """Log mixture weights ``log pi(prompt)`` (the conditional model)."""
        g = torch.Generator().manual_seed(prompt_seed(prompt))
        logits = self.prompt_sharpness * torch.randn(self.num_components, generator=g)
        return torch.log_softmax(logits, dim=0)

    def _target_component(self, prompt: str) -> int:
        """The prompt's most likely component (kept per prompt: every reward call asks)."""
        found = self._targets.get(prompt)
        if found is None:
            found = self._targets[prompt] = int(self.prompt_log_weights(prompt).argmax())
        return found

    def make_scheduler(self):
        scheduler = make_scheduler(self.solver, flow_shift=self.flow_shift)
        scheduler.set_timesteps(self.num_steps)
        return scheduler

    def velocity(
        self, latents: torch.Tensor, timestep: torch.Tensor, sigma: float, cond: Conditioning
    ) -> torch.Tensor:
        if self.guidance_scale == 1.0:
            return self.exact_velocity(latents, sigma, cond.data)
        v_cond, v_uncond = self.exact_velocity(latents, sigma, self._guided_weights(cond.data))
        return v_uncond + self.guidance_scale * (v_cond - v_uncond)

    def _guided_weights(self, log_weights: torch.Tensor) -> torch.Tensor:
        """``[2, K]``: the prompt's log weights and the unconditional (uniform) ones."""
        if self._guided is None or self._guided[0] is not log_weights:
            uniform = torch.full((self.num_components,), -math.log(self.num_components))
            self._guided = (log_weights, torch.stack([log_weights, uniform]))
        return self._guided[1]

    def exact_velocity(
        self, latents: torch.Tensor, sigma: float, log_weights: torch.Tensor
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """``E[eps - x0 | x_t]`` under mixture weights ``log_weights`` (``[K]`` or ``[G, K]``).

        With ``[G, K]`` weights, returns a tuple of ``G`` velocity fields sharing the distances.
        """
        n = latents.shape[0]
        x = latents.reshape(n, -1)
        mu = self.means.reshape(self.num_components, -1).to(x)
        a = 1.0 - sigma
        var = a * a * self.component_std**2 + sigma * sigma
        diff = x[:, None, :] - a * mu[None]  # [n, K, D]
        log_lik = -0.5 * x.shape[1] * math.log(var) - diff.pow(2).sum(-1) / (2 * var)  # [n, K]
        coeff = (sigma - a * self.component_std**2) / var
        per_component = coeff * diff - mu[None]  # [n, K, D]
        groups = log_weights.to(x)[None] if log_weights.dim() == 1 else log_weights.to(x)
        fields = []
        for lw in groups:
            resp = torch.softmax(lw[None] + log_lik, dim=1)  # [n, K]
            # sum_k resp[n, k] per_component[n, k, :] as a batched matrix product (what
            # einsum("nk,nkd->nd") runs, without its parsing on every call)
            fields.append(torch.bmm(resp[:, None], per_component)[:, 0].reshape(latents.shape))
        return fields[0] if log_weights.dim() == 1 else tuple(fields)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        rgb = torch.einsum("rc,ncfhw->nfhwr", self.decoder_weight.to(latents), latents)
        return torch.sigmoid(rgb + self.decoder_bias.to(latents))

    # -- the cost model (analytic_cost) -------------------------------------------------
    def forward_flops(self, batch: int) -> float:
        return batch * self.flops_per_forward

    def decode_flops(self, n: int) -> float:
        return n * self.decode_forwards * self.flops_per_forward

    def reward_flops(self, kind: str, n: int) -> float:
        """FLOPs of ``n`` calls of a reward standing for ``kind`` (a pixel verifier's include
        the decode it needs)."""
        forwards = {
            "latent": self.latent_reward_forwards,
            "pixel": self.pixel_reward_forwards + self.decode_forwards,
            "none": 0.0,
        }[kind]
        return n * forwards * self.flops_per_forward

    # -- the world's truth -------------------------------------------------------------
    def reward_dimensions(self, latents: torch.Tensor, prompt: str) -> torch.Tensor:
        """Closed-form ``[n, 3]`` rewards (VQ, MQ, TA) of latents treated as clean."""
        n = latents.shape[0]
        x = latents.reshape(n, *self.latent_shape).float()
        vq = (x.reshape(n, -1) @ self.quality_direction.reshape(-1)) / self.component_std
        frame_diff = (x[:, :, 1:] - x[:, :, :-1]).pow(2).mean(dim=(1, 2, 3, 4))
        typical = 2 * (self.component_scale**2 * 0.5 + self.component_std**2)
        mq = (typical - frame_diff) / (self.component_scale**2 * 0.5)
        target = self.means[self._target_component(prompt)].reshape(-1)
        cosine = torch.nn.functional.cosine_similarity(x.reshape(n, -1), target[None], dim=1)
        ta = 3.0 * cosine - 1.0
        return torch.stack([vq, mq, ta], dim=1)

    @property
    def has_oracle(self) -> bool:
        return True

    def oracle(self, latents: torch.Tensor, prompt: str) -> torch.Tensor:
        """The exact reward (sum of the three dimensions) of clean outputs ``[n]``."""
        return self.reward_dimensions(latents, prompt).sum(dim=1)

    def config_dict(self) -> dict:
        names = [a.name for a in attrs.fields(type(self)) if a.init]
        return {"name": self.name, **{k: getattr(self, k) for k in names}}
