"""The strategy interface.

A strategy is a frozen attrs class holding its configuration (validated on construction,
so bad input fails before any compute) and one method, :meth:`Strategy.search`, that
drives a :class:`~searchkit.context.SearchContext`. :meth:`Strategy.run` builds the context
from a backend, a reward, a prompt and a seed, and is what users call::

    result = RGRP(num_particles=6).run(backend, reward, "a cat surfing", seed=0)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import attrs
import torch

from searchkit.backend import Backend, ComputeProfile
from searchkit.context import SearchContext, check_prompt
from searchkit.cost import Meter
from searchkit.errors import InputError, InputTypeError, SearchkitError
from searchkit.memory import check_particle_memory
from searchkit.result import SearchResult
from searchkit.reward import Reward
from searchkit.validation import check_seed


class Strategy(ABC):
    """Base class of search strategies. Subclasses are ``@attrs.frozen`` configurations."""

    #: Registry name.
    name: ClassVar[str] = "strategy"
    #: The attrs field that sets how much compute the strategy spends (``"n"`` for
    #: best-of-N, ``"num_particles"`` for RGRP); ``None`` when it has none. Benchmarks
    #: scale it to match an NFE budget.
    size_knob: ClassVar[str | None] = None
    #: Named configurations (a paper's setting, a known-good variant): option dicts that
    #: :meth:`from_preset` applies over the defaults. Presets are settings, not subclasses.
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> Strategy:
        """The strategy configured as the named preset, with ``overrides`` on top."""
        if preset not in cls.presets:
            known = ", ".join(sorted(cls.presets)) or "(none)"
            raise ValueError(
                f"preset must be one of {cls.name}'s presets: {known} (got {preset!r})"
            )
        return cls(**{**cls.presets[preset], **overrides})

    def run(
        self,
        backend: Backend,
        reward: Reward,
        prompt: str,
        seed: int | None = 0,
        *,
        generator: torch.Generator | None = None,
        budget_nfe: int | None = None,
        noise: torch.Tensor | None = None,
    ) -> SearchResult:
        """Search for the best output for ``prompt``.

        Randomness comes from ``generator`` if given, else from a fresh CPU generator seeded
        with ``seed``; nothing is seeded globally. ``budget_nfe`` makes the search raise
        :class:`~searchkit.errors.BudgetExceededError` before it would overspend. ``noise``
        replaces the initial noise of the first particles drawn.
        """
        check_prompt(prompt)
        if generator is None:
            generator = torch.Generator().manual_seed(check_seed(seed))
        elif not isinstance(generator, torch.Generator):
            raise InputTypeError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__}: "
                f"{generator!r}"
            )
        if not isinstance(backend, Backend):
            raise InputTypeError(
                f"backend must be a searchkit Backend, got {type(backend).__name__}"
            )
        self.checked_compatible(backend, reward)
        self.check_memory(backend)
        ctx = SearchContext(
            backend, reward, prompt, generator=generator, budget_nfe=budget_nfe, noise=noise
        )
        result = self.search(ctx)
        return attrs.evolve(result, strategy=self.name, config=self.config_dict(), seed=seed)

    def peak_particles(self) -> tuple[int, str | None]:
        """The most particles this strategy holds at once, and the field that sets that number
        (``None``: no field; the default, one particle at a time)."""
        return 1, None

    def check_memory(self, backend: Backend) -> None:
        """Refuse, before any compute, a size whose particles' latents cannot fit the memory of
        ``backend``'s device (:func:`searchkit.memory.check_particle_memory`)."""
        count, field = self.peak_particles()
        value = getattr(self, field) if field is not None else count
        check_particle_memory(backend, count, field or "particles", value)

    def check_compatible(self, backend: Backend, reward: Reward) -> None:
        """Raise before compute when this strategy cannot run on ``backend`` with ``reward``."""
        return None

    def checked_compatible(self, backend: Backend, reward: Reward) -> None:
        """:meth:`check_compatible`, its refusals raised as :class:`~searchkit.errors.InputError`.

        Everything ``check_compatible`` raises is, by its contract, a refusal of the input
        (a ``ValueError`` or ``TypeError``), so it is reported as one, message unchanged.
        """
        try:
            self.check_compatible(backend, reward)
        except SearchkitError:
            raise
        except TypeError as error:
            raise InputTypeError(str(error)) from None
        except ValueError as error:
            raise InputError(str(error)) from None

    @abstractmethod
    def search(self, ctx: SearchContext) -> SearchResult:
        """The algorithm: drive ``ctx`` and return ``ctx.finish(...)``."""

    def config_dict(self) -> dict[str, Any]:
        """The configuration as JSON-able values."""
        return attrs.asdict(self, value_serializer=_jsonable) if attrs.has(type(self)) else {}

    def expected_particle_steps(self, num_steps: int) -> float:
        """Mean particle-steps of one run with ``num_steps`` denoising steps (for budgets)."""
        raise NotImplementedError(f"{type(self).__name__} does not state its expected compute")

    def expected_backward_particle_steps(self, num_steps: int) -> float:
        """Mean particle-steps backpropagated through in one run (default: none)."""
        return 0.0

    def expected_nfe(self, world: ComputeProfile | Backend) -> float:
        """Mean NFE of one run on a backend (or its :class:`~searchkit.backend.ComputeProfile`).

        Forwards of the denoising steps plus ``Meter.BACKWARD_FACTOR`` forward-equivalents per
        forward backpropagated through: the rule the context meters by.
        """
        forwards = self.expected_particle_steps(world.num_steps)
        backward = self.expected_backward_particle_steps(world.num_steps)
        return (forwards + Meter.BACKWARD_FACTOR * backward) * world.forwards_per_step


def _jsonable(_inst: object, _field: object, value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value
