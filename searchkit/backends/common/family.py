"""What a model family supplies to the common diffusers backend, and the experts it runs.

A family (Wan, SD3) is a small adapter over :class:`~searchkit.backends.common.DiffusersBackend`;
it declares, besides its options class and checkpoint layout:

* ``_encode(prompt)`` -> a :class:`TextEncoding`: the conditional and unconditional text
  inputs of one forward, as keyword tensors with a leading batch dimension of 1;
* ``_call_model(model, x, t, text)`` -> the model output for rows ``x`` at timestep ``t``
  (how the family's transformer is called: timestep layout, latent packing);
* ``_decode_chunk(z)`` -> frames ``[k, F, H, W, 3]`` in ``[0, 1]`` (the VAE and its latent
  de-normalisation);
* ``latent_shape`` and ``_configure()`` (the latent geometry, checked against the options);
* ``check_pipeline(pipe)`` and ``layout`` (what a loaded pipeline and a folder must hold);
* optionally ``_make_experts()``: the denoisers and their guidance scales (one by default).

Everything else (guidance, batching rows, the prompt cache, schedulers, memory options,
constructors, compute profiles, metering of each expert's forwards) is common.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
import torch


class TextEncoding(Protocol):
    """A prompt encoded for a family's denoiser (the ``data`` of a ``Conditioning``).

    ``pooled`` is one float32 vector ``[E]`` summarising the prompt, for rewards conditioned
    on text. :meth:`text_inputs` gives the keyword tensors of one forward, each with a leading
    batch dimension of 1 (the unconditional ones with ``negative=True``; ``None`` without
    guidance).
    """

    pooled: torch.Tensor

    def text_inputs(self, negative: bool = False) -> dict[str, torch.Tensor] | None: ...


@attrs.frozen(eq=False)
class Expert:
    """One denoiser of a pipeline and the classifier-free guidance scale it runs with.

    The expert denoises timesteps ``t >= boundary`` (compared as the pipeline compares them,
    tensor against number); ``boundary=None`` takes every timestep that reaches it. Experts
    are tried in order, so a two-expert model lists its high-noise expert first. ``below``
    bounds the expert from above (``t < below``): a low-noise expert whose high-noise
    partner the pipeline leaves out takes only the timesteps under their boundary.
    """

    name: str
    model: Any
    guidance_scale: float
    boundary: float | None = None
    below: float | None = None

    def takes(self, timestep: torch.Tensor) -> bool:
        above = self.boundary is None or bool(timestep >= self.boundary)
        return above and (self.below is None or bool(timestep < self.below))

    def describe(self) -> str:
        """The timesteps this expert takes, in words (for errors)."""
        low = "" if self.boundary is None else f"{self.boundary:g} <= "
        high = "" if self.below is None else f" < {self.below:g}"
        return f"{self.name} takes {low}t{high}" if low or high else f"{self.name} takes every t"


def pick_expert(experts: tuple[Expert, ...], timestep: torch.Tensor) -> Expert:
    """The first expert of ``experts`` that takes ``timestep``."""
    for expert in experts:
        if expert.takes(timestep):
            return expert
    ranges = "; ".join(expert.describe() for expert in experts)
    raise ValueError(f"no expert takes timestep {float(timestep):g} ({ranges})")


def rows(text: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """``text`` with every tensor expanded (not copied) to ``k`` rows."""
    return {
        key: value if value.shape[0] == k else value.expand(k, *value.shape[1:])
        for key, value in text.items()
    }


def stack(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor], k: int):
    """``k`` rows of ``first`` then ``k`` rows of ``second``, key by key."""
    a, b = rows(first, k), rows(second, k)
    return {key: torch.cat([a[key], b[key]]) for key in a}
