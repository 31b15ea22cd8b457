"""EvoSearch (He et al. 2025, "Scaling Image and Video Generation via Test-Time
Evolutionary Search").

The algorithm, with evolution steps ``s_1 < ... < s_G``, an initial population ``p_0``, a
population ``p_g`` per evolution step, ``E`` elites and tournaments of size ``k``::

    members = p_0 fresh noises at step 0 (the first is the baseline's own)
    for g = 0 .. G:
        roll every member out to the end (one batch), caching its state at s_{g+1}
        decode if the reward reads video, score; remember the best output ever seen
        if g == G: break
        parents = the E fittest members (elites)
                  + p_{g+1} - E tournament winners (k random members, the fittest wins)
        members = the parents' cached states at s_{g+1}; every non-elite one mutated
    return the best output ever seen

Mutation is the context's branching primitive
(:meth:`~searchkit.context.SearchContext.perturb`) with strength ``beta``: at step 0 it is
the correlated re-draw ``sqrt(1 - beta^2) x + beta eps`` of the paper's first generation;
later it re-draws a share ``beta`` of the latent's noise component, a stochastic step of
standard deviation ``beta sigma_t``.

Compute: ``P = p_0 T + sum_g p_g (T - s_g)``; ``p_0 + sum_g p_g`` reward calls. Defaults
are the paper's Wan configuration: steps (5, 20, 30, 45) of 50, populations 10 then 5, 2
elites, ``beta = 0.2``, giving ``P = 1000`` (20 baselines); tournaments of 2 are this
toolkit's choice.

Presets: ``evosearch`` (the defaults above) and ``latsearch``, EvoSearch as the LatSearch
code configures it for its comparison on Wan2.1 (``generate_baseline.py``): evolution at
steps (5, 20), populations 6, 3, 3, 3 elites, ``beta = 0.2``, with the SDE-DPM-Solver++
solver (a backend option) and VideoReward, normalised, as the reward: ``P = 6 x 50 + 3 x 45
+ 3 x 30 = 525`` and 12 reward calls, LatSearch's figures. With 3 elites in populations of 3
every later generation is its elites (no tournament, no mutation: under the stochastic
solver the re-rolled elites still diverge). The LatSearch code picks those elites from every
state it cached at the step (this generation's and the earlier generations' trajectories,
9 at step 20); here they are the fittest of the current generation.

Where this implementation deviates: the paper's later-generation mutation adds
``sigma_t eps`` of its SDE solver on top of the latent (``x + sigma_t eps``), which raises
the latent's variance; the perturbation used here keeps the marginal noise level, so it
works with deterministic solvers too. Elites are rolled out again with the next
generation (so they are counted as in the paper's ``P``); under a deterministic solver
they reproduce their output, except that UniPC skips its corrector for the one step after
a mutation (for the whole batch; see :meth:`~searchkit.context.SearchContext.perturb`).
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from searchkit.backend import Backend
from searchkit.context import SearchContext
from searchkit.registry import register_strategy
from searchkit.result import SearchResult
from searchkit.reward import Reward
from searchkit.strategy import Strategy
from searchkit.validation import (
    as_tuple,
    check_steps_within,
    is_int,
    non_negative_int,
    number,
    positive_int,
    step_schedule,
    to_float,
)


def _check_population(instance: EvoSearch, attribute: attrs.Attribute, value: object) -> None:
    """Population sizes, and the bounds they set on elites and tournaments (attrs runs every
    validator once all fields are set, so the other fields are known here)."""
    sizes = value if isinstance(value, tuple) else (value,)
    if not sizes or any(not is_int(p) or p < 1 for p in sizes):
        raise ValueError(f"population must be a positive integer or a tuple of them, got {value!r}")
    steps = len(instance.evolution_steps)
    if isinstance(value, tuple) and len(value) != steps:
        raise ValueError(
            f"population must hold one size per evolution step ({steps}), got {value!r}"
        )
    sizes = sizes if isinstance(value, tuple) else sizes * steps
    if instance.num_elites > min(sizes):
        raise ValueError(
            f"num_elites must not exceed the smallest later population {min(sizes)}, "
            f"got {instance.num_elites}"
        )
    pools = (instance.initial_population, *sizes[:-1])
    if instance.tournament_size > min(pools):
        raise ValueError(
            f"tournament_size must not exceed the smallest generation it draws from "
            f"({min(pools)}), got {instance.tournament_size}"
        )


def tournament(
    fitness: torch.Tensor, count: int, size: int, generator: torch.Generator
) -> torch.Tensor:
    """``count`` winners of tournaments among ``size`` distinct random members (ties: lowest index)."""
    winners = []
    for _ in range(count):
        contestants = torch.randperm(len(fitness), generator=generator)[:size].sort().values
        winners.append(int(contestants[int(fitness[contestants].argmax())]))
    return torch.tensor(winners, dtype=torch.long)


@register_strategy("evo-search")
@attrs.frozen
class EvoSearch(Strategy):
    """Evolutionary search over intermediate latents, returning the best output ever seen.

    Args:
        evolution_steps: steps ``s_g`` (strictly increasing, below the step count) at which a
            new generation is selected and mutated.
        initial_population: ``p_0``, members of the first generation.
        population: ``p_g``, one size for every later generation or one per evolution step.
        num_elites: ``E``, fittest members carried over unmutated.
        tournament_size: ``k``, members drawn per tournament.
        beta: mutation strength.
    """

    name = "evo-search"
    size_knob = "population"
    presets: ClassVar[dict[str, dict]] = {
        # He et al.'s Wan configuration: the defaults (P = 1000)
        "evosearch": {},
        # as the LatSearch code runs it (see the module docstring): P = 525, 12 reward calls
        "latsearch": {
            "evolution_steps": (5, 20),
            "initial_population": 6,
            "population": (3, 3),
            "num_elites": 3,
            "beta": 0.2,
        },
    }

    evolution_steps: tuple[int, ...] = attrs.field(
        default=(5, 20, 30, 45), converter=as_tuple, validator=step_schedule
    )
    initial_population: int = attrs.field(default=10, validator=positive_int)
    population: int | tuple[int, ...] = attrs.field(
        default=5, converter=as_tuple, validator=_check_population
    )
    num_elites: int = attrs.field(default=2, validator=non_negative_int)
    tournament_size: int = attrs.field(default=2, validator=positive_int)
    beta: float = attrs.field(
        default=0.2, converter=to_float, validator=number(at_least=0.0, at_most=1.0)
    )

    @property
    def populations(self) -> tuple[int, ...]:
        """One population size per evolution step."""
        if isinstance(self.population, tuple):
            return self.population
        return (self.population,) * len(self.evolution_steps)

    def check_compatible(self, backend: Backend, reward: Reward) -> None:
        check_steps_within(self.evolution_steps, backend.num_steps, field="evolution_steps")
        if self.beta == 0.0 and not backend.is_stochastic:
            raise ValueError(
                "beta=0.0 leaves mutated members identical to their parents with a deterministic "
                f"solver; use beta > 0 or a stochastic solver (backend {backend.name!r})"
            )

    def peak_particles(self) -> tuple[int, str | None]:
        if max(self.populations, default=0) > self.initial_population:
            return max(self.populations), "population"
        return self.initial_population, "initial_population"

    def search(self, ctx: SearchContext) -> SearchResult:
        members = ctx.start(self.initial_population)
        best = best_scores = None
        best_total = float("-inf")
        steps = self.evolution_steps
        for generation in range(len(steps) + 1):
            cached = None
            if generation < len(steps):
                members = ctx.advance(members, to=steps[generation])
                cached = members  # advance leaves its input intact
            finished = ctx.advance(members, to=ctx.num_steps)
            record = ctx.score(finished, label=f"generation {generation}")
            fitness = record.total
            top = int(fitness.argmax())
            if float(fitness[top]) > best_total:
                best, best_scores, best_total = (
                    finished.select([top]),
                    record.scores[top],
                    float(fitness[top]),
                )
            if cached is None:
                ctx.record_selection(record, best, chosen=[top])
                break
            size = self.populations[generation]
            elites = torch.argsort(fitness, descending=True, stable=True)[: self.num_elites]
            winners = tournament(
                fitness, size - self.num_elites, self.tournament_size, ctx.generator
            )
            parents = torch.cat([elites, winners])
            strength = torch.full((size,), self.beta)
            strength[: self.num_elites] = 0.0  # elites carry over unmutated
            members = ctx.record_selection(
                record, ctx.perturb(cached.select(parents), strength), chosen=parents
            )
        return ctx.finish(best, 0, scores=best_scores)

    def expected_particle_steps(self, num_steps: int) -> float:
        later = sum(
            p * (num_steps - s) for p, s in zip(self.populations, self.evolution_steps, strict=True)
        )
        return float(self.initial_population * num_steps + later)
