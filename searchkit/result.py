"""What a search returns: the output, its scores, its cost, and a trace of every decision."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import torch

from searchkit.candidates import CandidateFrames
from searchkit.cost import Cost

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.figure import Figure


def _list(value: torch.Tensor | None) -> Any:
    return None if value is None else value.detach().cpu().tolist()


def _tensor(value: Any, dtype: torch.dtype) -> torch.Tensor | None:
    return None if value is None else torch.tensor(value, dtype=dtype)


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdvanceRecord:
        return cls(int(data["start"]), int(data["stop"]), int(data["particles"]))


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreRecord:
        """The record :meth:`to_dict` wrote (e.g. read back from ``result.json``)."""
        return cls(
            step=int(data["step"]),
            sigma=float(data["sigma"]),
            ids=torch.tensor(data["ids"], dtype=torch.long),
            scores=torch.tensor(data["scores"], dtype=torch.float32).reshape(len(data["ids"]), -1),
            total=torch.tensor(data["total"], dtype=torch.float32),
            input=str(data["input"]),
            label=str(data.get("label", "")),
            weights=_tensor(data.get("weights"), torch.float32),
            chosen=_tensor(data.get("chosen"), torch.long),
            survivors=_tensor(data.get("survivors"), torch.long),
        )


@attrs.define(eq=False)
class Trace:
    """The scoring events of a search (iterable) and every advance it made.

    ``parents[i]`` is the parent id of particle ``i`` (``-1`` for a particle drawn from
    noise) and ``output`` the id of the particle the search returned (``None`` until the
    search finishes, and in results written before it was recorded). Only the
    :class:`~searchkit.context.SearchContext` of the search appends to it; its records are
    frozen.
    """

    scored: list[ScoreRecord] = attrs.Factory(list)
    advances: list[AdvanceRecord] = attrs.Factory(list)
    parents: list[int] = attrs.Factory(list)
    output: int | None = None

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
            "output": self.output,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        """The trace :meth:`to_dict` wrote; ``output`` may be missing (older files)."""
        output = data.get("output")
        return cls(
            scored=[ScoreRecord.from_dict(r) for r in data.get("scored", [])],
            advances=[AdvanceRecord.from_dict(a) for a in data.get("advances", [])],
            parents=[int(p) for p in data.get("parents", [])],
            output=None if output is None else int(output),
        )


@attrs.define(eq=False)
class SearchResult:
    """The chosen output of a search.

    ``latents`` is the clean latent ``[C, F, H, W]``; ``video`` its decoded frames
    ``[F, H, W, 3]`` in ``[0, 1]``; ``scores`` its per-dimension reward ``[dims]`` and
    ``reward`` their aggregate; ``cost`` the metered compute of the whole search.
    ``candidate_frames`` holds small thumbnail strips of the candidates the search decoded
    to score them (a video reward), tied to their scoring events in ``trace``; ``None``
    when it decoded none (:mod:`searchkit.candidates`).
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
    candidate_frames: CandidateFrames | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (tensors as lists; the latents, video and candidate frames
        left out: :func:`searchkit.video_io.save_result` writes them as files)."""
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

    def plot_trace(self, path: str | Path | None = None) -> Figure:
        """The figure of this search (:func:`searchkit.show.trace_figure`); a PNG at ``path``."""
        from searchkit.show import trace_figure

        return trace_figure(self, path)

    def _repr_html_(self) -> str:
        """A notebook's view: a short summary and the video (:func:`searchkit.show.result_html`)."""
        from searchkit.show import result_html

        return result_html(self)
