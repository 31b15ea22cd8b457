"""Particles: a batch of trajectories whose state moves as one.

A :class:`Particles` holds, for ``n`` trajectories at the same denoising step, the latents
``x_t``, the solver history (inside a :class:`~searchkit.solver.SolverState`), the latest
predicted clean latent ``x0``, per-particle strategy state and ids. :meth:`Particles.select` is the one way
to resample, prune or duplicate: every per-particle field is indexed by the same indices,
so a particle never continues with another's history.

Ids and parents are recorded in a :class:`Lineage` shared by all particles of one search,
so the genealogy can be drawn afterwards. On ``select``, the first copy of a particle keeps
its id; each further copy is a new particle whose parent is the original.
"""

from __future__ import annotations

import attrs
import torch

from searchkit.solver import SolverState


@attrs.define
class Lineage:
    """Parent of every particle id ever created in one search (``-1`` for roots)."""

    parents: list[int] = attrs.Factory(list)

    def new_roots(self, n: int) -> torch.Tensor:
        return self.new_children([-1] * n)

    def new_children(self, parents: list[int]) -> torch.Tensor:
        start = len(self.parents)
        self.parents.extend(int(p) for p in parents)
        return torch.arange(start, start + len(parents), dtype=torch.long)


@attrs.define(eq=False)
class Particles:
    """``n`` trajectories at one denoising step, selected together."""

    latents: torch.Tensor
    solver: SolverState
    ids: torch.Tensor
    lineage: Lineage
    x0: torch.Tensor | None = None
    #: Per-particle strategy state (``[n, ...]`` tensors: cumulative weights, reward
    #: history), selected together with everything else.
    extras: dict[str, torch.Tensor] = attrs.Factory(dict)

    def __len__(self) -> int:
        return int(self.latents.shape[0])

    @property
    def step(self) -> int:
        """Number of denoising steps already taken."""
        return self.solver.step_index

    @property
    def sigma(self) -> float:
        """Noise level of the current latents (``sigma = 1`` is pure noise, 0 is clean)."""
        return float(self.solver.scheduler.sigmas[self.step])

    def select(self, indices: torch.Tensor | list[int]) -> Particles:
        """Particles ``indices[0], indices[1], ...``; duplicates get independent state."""
        index = torch.as_tensor(indices, dtype=torch.long)
        if index.dim() != 1 or index.numel() == 0:
            raise ValueError(
                f"indices must be a non-empty 1-D sequence, got shape {tuple(index.shape)}"
            )
        n = len(self)
        if int(index.min()) < 0 or int(index.max()) >= n:
            raise IndexError(f"indices must lie in [0, {n}), got {index.tolist()}")
        device_index = index.to(self.latents.device)
        old_ids = self.ids[index]
        seen: set[int] = set()
        ids: list[int] = []
        fresh_parents: list[int] = []
        fresh_slots: list[int] = []
        for slot, pid in enumerate(old_ids.tolist()):
            if pid in seen:
                fresh_parents.append(pid)
                fresh_slots.append(slot)
                ids.append(-1)
            else:
                seen.add(pid)
                ids.append(pid)
        new_ids = torch.tensor(ids, dtype=torch.long)
        if fresh_slots:
            new_ids[fresh_slots] = self.lineage.new_children(fresh_parents)
        return Particles(
            latents=self.latents.index_select(0, device_index),
            solver=self.solver.select(device_index),
            ids=new_ids,
            lineage=self.lineage,
            x0=None if self.x0 is None else self.x0.index_select(0, device_index),
            extras={k: v[index.to(v.device)] for k, v in self.extras.items()},
        )

    def with_latents(self, latents: torch.Tensor, x0: torch.Tensor | None = None) -> Particles:
        """The same particles (ids, solver history) with replaced latents, e.g. after a perturbation."""
        if latents.shape != self.latents.shape:
            raise ValueError(
                f"latents must keep shape {tuple(self.latents.shape)}, got {tuple(latents.shape)}"
            )
        return attrs.evolve(self, latents=latents, x0=x0)

    def with_extras(self, **extras: torch.Tensor) -> Particles:
        """The same particles with per-particle state ``extras`` added or replaced."""
        for key, value in extras.items():
            if value.shape[0] != len(self):
                raise ValueError(
                    f"extras[{key!r}] must have {len(self)} rows, got {value.shape[0]}"
                )
        return attrs.evolve(self, extras={**self.extras, **extras})
