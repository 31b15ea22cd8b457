"""What a search returns: the output, its scores, its cost, and a trace of every decision."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import torch

from searchkit.cost import Cost


def _list(value: torch.Tensor | None) -> Any:
    return None if value is None else value.detach().cpu().tolist()


@attrs.frozen(eq=False)
class AdvanceRecord:
    """``particles`` trajectories advanced from step ``start`` to step ``stop``."""

    start: int
    stop: int
    particles: int

    @property
    def particle_steps(self) -> int:
        return (self.stop - self.start) * self.particles

    def to_dict(self) -> dict[str, int]:
        return {"start": self.start, "stop": self.stop, "particles": self.particles}


@attrs.frozen(eq=False)
class ScoreRecord:
    """One scoring event and the decision the search took on it; written once, by the context.

    What was scored:

    * ``step``: denoising steps taken (a score "after step j" has ``step = j + 1``);
    * ``sigma``: the noise level the reward was told; ``input``: what it saw (``"latent"``,
      ``"x0"`` or ``"video"``); ``label``: the strategy's name for the event;
    * ``ids``: the ids of the scored particles, ``[n]``; ``scores``: ``[n, dims]``;
      ``total``: their aggregate, ``[n]``.

    What the strategy decided (:meth:`~searchkit.context.SearchContext.record_selection`;
    all three are ``None`` until then, and stay ``None`` where they do not apply):

    * ``weights``: the normalised weights ``[n]`` the decision was drawn from (SMC
      resampling); ``None`` for decisions that use no weights (top-k, argmax);
    * ``chosen``: indices into ``ids`` of the particles the decision picked, in the order
      picked, repeats included: a resampler's draw, the top ``B`` of a beam, the best of a
      best-of-N, the parents of the next generation; ``None`` when it picked none of them (a
      zero-order round that found no better neighbour);
    * ``survivors``: ids of the particles the search carries on after the decision (after
      pruning, duplicating and perturbing; they can include particles of earlier events,
      such as the best output seen so far); ``None`` when none is carried on.
    """

    step: int
    sigma: float
    ids: torch.Tensor
    scores: torch.Tensor
    total: torch.Tensor
    input: str
    label: str = ""
    weights: torch.Tensor | None = None
    chosen: torch.Tensor | None = None
    survivors: torch.Tensor | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "sigma": self.sigma,
            "label": self.label,
            "input": self.input,
            "ids": _list(self.ids),
            "scores": _list(self.scores),
            "total": _list(self.total),
            "weights": _list(self.weights),
            "chosen": _list(self.chosen),
            "survivors": _list(self.survivors),
        }


@attrs.define(eq=False)
class Trace:
    """The scoring events of a search (iterable) and every advance it made.

    Only the :class:`~searchkit.context.SearchContext` of the search appends to it; its
    records are frozen.
    """

    scored: list[ScoreRecord] = attrs.Factory(list)
    advances: list[AdvanceRecord] = attrs.Factory(list)
    parents: list[int] = attrs.Factory(list)

    def __iter__(self) -> Iterator[ScoreRecord]:
        return iter(self.scored)

    def __len__(self) -> int:
        return len(self.scored)

    def __getitem__(self, i: int) -> ScoreRecord:
        return self.scored[i]

    @property
    def particle_steps(self) -> int:
        return sum(a.particle_steps for a in self.advances)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scored": [r.to_dict() for r in self.scored],
            "advances": [a.to_dict() for a in self.advances],
            "parents": list(self.parents),
        }


@attrs.define(eq=False)
class SearchResult:
    """The chosen output of a search.

    ``latents`` is the clean latent ``[C, F, H, W]``; ``video`` its decoded frames
    ``[F, H, W, 3]`` in ``[0, 1]``; ``scores`` its per-dimension reward ``[dims]`` and
    ``reward`` their aggregate; ``cost`` the metered compute of the whole search.
    """

    latents: torch.Tensor
    video: torch.Tensor | None
    scores: torch.Tensor
    reward: float
    dimensions: tuple[str, ...]
    cost: Cost
    trace: Trace
    strategy: str
    config: dict[str, Any]
    prompt: str
    seed: int | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (tensors as lists, the latents and video left out)."""
        return {
            "strategy": self.strategy,
            "config": self.config,
            "prompt": self.prompt,
            "seed": self.seed,
            "dimensions": list(self.dimensions),
            "scores": dict(zip(self.dimensions, _list(self.scores), strict=True)),
            "reward": self.reward,
            "cost": self.cost.to_dict(),
            "trace": self.trace.to_dict(),
        }
