"""The denoising backend interface.

A backend is a flow-matching video model behind a small surface:

* :meth:`Backend.encode` turns a prompt into a :class:`Conditioning` (once per prompt);
* :meth:`Backend.initial_noise` draws ``x_T ~ N(0, I)`` of shape ``[n, *latent_shape]``;
* :meth:`Backend.make_scheduler` builds a fresh diffusers scheduler with its timesteps set;
* :meth:`Backend.velocity` runs the model on a batch (classifier-free guidance inside) and
  returns the guided flow velocity ``v = eps - x0``;
* :meth:`Backend.decode` maps clean latents to video frames ``[n, F, H, W, 3]`` in ``[0, 1]``;
* :meth:`Backend.forward_flops` and :meth:`Backend.decode_flops` state what one model
  forward and one decode cost in FLOPs (``None``: unknown), for the meter.

Backends never loop over denoising steps: the only denoising loop is
:meth:`searchkit.context.SearchContext.advance`, which meters every call. With flow
matching ``x_t = (1 - sigma) x0 + sigma eps``, so the predicted clean latent is
``x0 = x_t - sigma * v``; the context computes it, not the backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import attrs
import torch

if TYPE_CHECKING:  # diffusers loads when a backend makes its first scheduler
    from diffusers.schedulers.scheduling_utils import SchedulerMixin


@attrs.frozen
class ComputeProfile:
    """What compute planning needs to know of a backend, known without loading any weights.

    ``num_steps`` denoising steps per trajectory and ``forwards_per_step`` model forwards per
    particle-step (2 under classifier-free guidance). A :class:`Backend` has both attributes
    too, so anything that takes a profile also takes a built backend.
    """

    num_steps: int
    forwards_per_step: int


@attrs.frozen(eq=False)
class Conditioning:
    """A prompt encoded by a backend; ``data`` is backend-specific (embeddings, weights)."""

    prompt: str
    data: Any


class Backend(ABC):
    """A flow-matching denoiser that searchkit can drive."""

    #: Registry name, for the CLI and result files.
    name: str = "backend"

    @property
    @abstractmethod
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one latent, ``(C, F, H, W)``."""

    @property
    @abstractmethod
    def num_steps(self) -> int:
        """Number of denoising steps of one full trajectory."""

    @property
    def forwards_per_step(self) -> int:
        """Model forwards per particle-step: 2 under classifier-free guidance, else 1."""
        return 2

    @property
    def is_stochastic(self) -> bool:
        """Whether the solver injects noise at each step (so duplicates diverge)."""
        return False

    @property
    def is_differentiable(self) -> bool:
        """Whether gradients flow through :meth:`velocity` to the input latents."""
        return False

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @abstractmethod
    def encode(self, prompt: str) -> Conditioning:
        """Encode ``prompt`` (and the negative prompt for guidance)."""

    @abstractmethod
    def make_scheduler(self) -> SchedulerMixin:
        """A fresh scheduler with ``set_timesteps(num_steps)`` already called."""

    @abstractmethod
    def velocity(
        self, latents: torch.Tensor, timestep: torch.Tensor, sigma: float, cond: Conditioning
    ) -> torch.Tensor:
        """Guided flow velocity for a batch ``[n, *latent_shape]`` at one timestep."""

    @abstractmethod
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Clean latents ``[n, *latent_shape]`` to frames ``[n, F, H, W, 3]`` in ``[0, 1]``."""

    def denoiser_at(self, timestep: torch.Tensor) -> str:
        """The name of the model that denoises at ``timestep`` (one name for one model).

        A backend with several denoisers (Wan2.2 A14B's two experts) names the one that
        runs, so that the meter counts each one's forwards (``Cost.nfe_by_model``).
        """
        return "model"

    def forward_flops(self, batch: int) -> float | None:
        """FLOPs of one model forward over ``batch`` latents (``None``: unknown, the default).

        A denoising step of ``n`` particles is charged ``forwards_per_step * forward_flops(n)``
        whatever the backend's batching (FLOPs are linear in the batch). Called every step:
        implementations cache per batch size (:class:`searchkit.flops.FlopCache`).
        """
        return None

    def decode_flops(self, n: int) -> float | None:
        """FLOPs of decoding ``n`` latents (``None``: unknown, the default); cached likewise."""
        return None

    def prompt_embedding(self, cond: Conditioning) -> torch.Tensor:
        """One vector ``[E]`` summarising the prompt, for rewards conditioned on text."""
        raise NotImplementedError(f"{type(self).__name__} does not provide prompt embeddings")

    def initial_noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` draws of ``N(0, I)`` in latent shape, on the backend's device."""
        noise = torch.randn(
            (n, *self.latent_shape),
            generator=generator,
            dtype=torch.float32,
            device=generator.device,
        )
        return noise.to(device=self.device, dtype=self.dtype)

    def config_dict(self) -> dict[str, Any]:
        """A JSON-able description, recorded in results."""
        return {"name": self.name}

    @classmethod
    def compute_profile(cls, **options: Any) -> ComputeProfile:
        """Steps and forwards per step of the backend ``cls.build(**options)`` would make.

        Benchmark planning sizes strategies with this, so it must not load weights. The
        default builds the backend, which is right only for backends that are cheap to build;
        backends that load checkpoints override it and read their options alone.
        """
        builder = getattr(cls, "build", None)
        backend = builder(**options) if builder is not None else cls(**options)
        return ComputeProfile(backend.num_steps, backend.forwards_per_step)

    # -- an optional exact evaluator ---------------------------------------------------------
    @property
    def has_oracle(self) -> bool:
        """Whether :meth:`oracle` knows the true reward of an output (synthetic worlds only)."""
        return False

    def oracle(self, latents: torch.Tensor, prompt: str) -> torch.Tensor:
        """The exact reward ``[n]`` of clean latents ``[n, *latent_shape]`` for ``prompt``.

        Only worlds whose data distribution is known (the analytic world) have one; real models
        raise ``NotImplementedError``. Benchmarks use it as the held-out truth.
        """
        raise NotImplementedError(f"backend {self.name!r} has no oracle")
