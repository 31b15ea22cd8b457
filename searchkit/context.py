"""The search context: the only denoising loop in searchkit, and the meter around it.

Every strategy drives a :class:`SearchContext`; nothing else calls the backend or the
reward, which is what makes "equal compute" comparisons honest::

    particles = ctx.start(n)                  # initial noise, fresh solver state
    particles = ctx.advance(particles, to=j)  # denoise to step j: batched forwards, metered
    record    = ctx.score(particles)          # reward on x_t / predicted x0 / video, metered
    particles = ctx.record_selection(record, particles.select(idx), chosen=idx)
                                              # resample, prune or duplicate; into the trace
    return ctx.finish(particles, index)       # decode the chosen output, report

The context is the only writer of the trace: :meth:`SearchContext.score` appends a frozen
:class:`~searchkit.result.ScoreRecord`, and :meth:`SearchContext.record_selection` replaces
it, once, with the same record carrying the decision. Gradients are metered here too: the
context counts the forwards it ran with the graph kept, and :meth:`SearchContext.backward`
charges their backward pass. Every metered call is also charged in FLOPs, by the backend's
and the reward's own figures (:mod:`searchkit.cost`).

Predicted clean latents come for free: the step from ``x_{t_k}`` evaluates the velocity
``v`` there, and ``x0 = x_{t_k} - sigma_k v`` is kept on the particles. A reward that
declares input ``"x0"`` sees that prediction (made at the noise level of the last step's
input, which is the ``sigma`` it is given); after the last step ``x0`` is the output
itself. This costs no forward beyond the denoising step, so scoring on ``x0`` keeps the
particle-step count of the paper's formulas.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import attrs
import torch

from searchkit import contracts, progress, validation
from searchkit.backend import Backend
from searchkit.candidates import CandidateKeeper
from searchkit.cost import Meter
from searchkit.errors import InputError, InputTypeError
from searchkit.memory import check_particle_memory
from searchkit.particles import Lineage, Particles
from searchkit.result import AdvanceRecord, ScoreRecord, SearchResult, Trace
from searchkit.reward import Reward, RewardBatch
from searchkit.solver import SolverState


def check_prompt(prompt: object) -> str:
    """A prompt: a string with some text (see :func:`searchkit.validation.check_prompt`)."""
    return validation.check_prompt(prompt)


class SearchContext:
    """Runs one search of one prompt: owns the loop, the meter, the trace and the randomness."""

    def __init__(
        self,
        backend: Backend,
        reward: Reward,
        prompt: str,
        *,
        generator: torch.Generator,
        budget_nfe: int | None = None,
        noise: torch.Tensor | None = None,
    ) -> None:
        check_prompt(prompt)
        if not isinstance(backend, Backend):
            raise TypeError(f"backend must be a searchkit Backend, got {type(backend).__name__}")
        if not isinstance(reward, Reward):
            raise TypeError(f"reward must be a searchkit Reward, got {type(reward).__name__}")
        if budget_nfe is not None and (not validation.is_int(budget_nfe) or budget_nfe <= 0):
            raise InputError(f"budget_nfe must be a positive integer or None, got {budget_nfe!r}")
        self._backend = backend
        # the plugins' declarations now, their outputs at first use (searchkit.contracts)
        self._checks = contracts.PluginChecks(backend, contracts.check_backend(backend))
        contracts.check_reward(reward)
        contracts.check_pairing(backend, reward)
        if noise is not None:
            noise = self._check_latents("noise", noise, allow_unbatched=True)
            contracts.check_noise(noise)
        if not isinstance(generator, torch.Generator):
            raise InputTypeError(
                f"generator must be a torch.Generator, got {type(generator).__name__}: "
                f"{generator!r}"
            )
        self._reward = reward
        self.prompt = prompt
        self.generator = generator
        self._given_noise = noise
        self.meter = Meter(budget_nfe=budget_nfe)
        self.trace = Trace()
        self._lineage = Lineage()
        # the scoring records as score() returned them, parallel to trace.scored, and the
        # positions whose decision has been recorded
        self._issued: list[ScoreRecord] = []
        self._decided: set[int] = set()
        # model forwards run with the autograd graph kept since the last backward pass, and
        # their FLOPs (None: unknown)
        self._graph_forwards = 0
        self._graph_flops: float | None = 0.0
        # frames of finished outputs decoded for a video reward, by particle id, with the
        # latents they came from, so that finish() never decodes the same output twice
        self._decoded: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        # thumbnail strips of the candidates decoded for a video reward (bounded; no compute
        # beyond a resize of frames already decoded; searchkit.candidates)
        self._candidates = CandidateKeeper()
        with self.meter.timed("model"):
            self.conditioning = backend.encode(prompt)

    # -- the trajectory ---------------------------------------------------------------
    @property
    def num_steps(self) -> int:
        return self._backend.num_steps

    @property
    def reward_dimensions(self) -> tuple[str, ...]:
        """The search reward's dimension names, in column order of every score."""
        return tuple(self._reward.dimensions)

    def noise(self, n: int) -> torch.Tensor:
        """``n`` fresh ``N(0, I)`` latents from the search's generator (refused before they are
        drawn when they cannot fit the device's memory)."""
        check_particle_memory(self._backend, n, "n", n)
        noise = self._backend.initial_noise(n, self.generator)
        self._checks.initial_noise(noise, n)
        return noise

    def initial_noise(self, n: int) -> torch.Tensor:
        """The run's starting noise for ``n`` particles: the noise the caller gave fills the
        first rows, fresh draws from the generator the rest (what :meth:`start` uses)."""
        if self._given_noise is None:
            return self.noise(n)
        given = self._given_noise[:n]
        return torch.cat([given, self.noise(n - given.shape[0])]) if given.shape[0] < n else given

    def start(self, n: int, noise: torch.Tensor | None = None) -> Particles:
        """``n`` particles at step 0.

        The noise is ``noise`` when given (``[n, *latent_shape]``); otherwise
        :meth:`initial_noise`.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"number of particles must be a positive integer, got {n!r}")
        if noise is not None:
            noise = self._check_latents("noise", noise, allow_unbatched=True)
            if noise.shape[0] != n:
                raise ValueError(f"noise must hold {n} latents, got {noise.shape[0]}")
            contracts.check_noise(noise)
        else:
            noise = self.initial_noise(n)
        noise = noise.to(device=self._backend.device, dtype=self._backend.dtype).clone()
        solver = SolverState(self._backend.make_scheduler(), batch=n, rank=noise.dim())
        return Particles(
            latents=noise, solver=solver, ids=self._lineage.new_roots(n), lineage=self._lineage
        )

    def advance(self, particles: Particles, to: int, *, grad: bool = False) -> Particles:
        """Denoise every particle from its current step to step ``to`` (exclusive of ``to``).

        All particles go through the model as one batch per step; each step is metered
        (``len(particles)`` particle-steps, ``forwards_per_step`` forwards each) before it
        runs. ``grad=True`` keeps the autograd graph (for noise optimisation); the forwards
        run so are counted for the next :meth:`backward`.
        """
        start = particles.step
        if not isinstance(to, int) or not start <= to <= self.num_steps:
            raise ValueError(f"to must be an integer in [{start}, {self.num_steps}], got {to!r}")
        latents, x0 = particles.latents, particles.x0
        solver = particles.solver.copy() if to > start else particles.solver  # inputs stay intact
        n = len(particles)
        forwards = self._backend.forwards_per_step
        per_forward = self._backend.forward_flops(n) if to > start else None
        step_flops = None if per_forward is None else forwards * per_forward
        grad_mode = nullcontext() if grad else torch.no_grad()
        scheduler = solver.scheduler
        sigmas = torch.as_tensor(scheduler.sigmas[start:to]).tolist()  # one read, not one a step
        with grad_mode:
            for k, sigma in zip(range(start, to), sigmas, strict=True):
                timestep = scheduler.timesteps[k]
                model = self._backend.denoiser_at(timestep)
                self.meter.charge_model(n, forwards, step_flops, model)
                if grad:
                    self._graph_forwards += n * forwards
                    if self._graph_flops is not None:
                        self._graph_flops = (
                            None if step_flops is None else self._graph_flops + step_flops
                        )
                with self.meter.timed("model"):
                    velocity = self._backend.velocity(latents, timestep, sigma, self.conditioning)
                    self._checks.velocity(velocity, latents, k)
                    x0 = latents - sigma * velocity
                    latents = solver.step(velocity, timestep, latents, self.generator)
                progress.notify_step(k + 1, self.num_steps, n, self.meter.nfe)
        if to > start:
            self.trace.advances.append(AdvanceRecord(start, to, n))
        return attrs.evolve(particles, latents=latents, solver=solver, x0=x0)

    def perturb(self, particles: Particles, beta: float | torch.Tensor) -> Particles:
        """Re-draw a share ``beta`` of each particle's noise component; the branching primitive.

        With ``x_t = (1 - sigma) x0 + sigma eps`` and ``x0`` the particles' latest
        prediction, the noise estimate ``eps = (x_t - (1 - sigma) x0) / sigma`` is replaced
        by ``sqrt(1 - beta^2) eps + beta xi`` with fresh ``xi ~ N(0, I)``. At step 0 this is
        the correlated re-draw ``sqrt(1 - beta^2) z + beta xi`` of RGRP and EvoSearch; later
        it is a stochastic step of size ``beta * sigma_t`` that keeps the marginal noise
        level. No model forward is spent. Right after a deterministic flow (Euler/DDIM) step
        the stored ``x0`` is exactly the one the step used, so this is the stochastic DDIM
        step with noise share ``beta``; for multistep solvers it is close to it. A corrector
        that would re-derive the latents from the previous sample (UniPC) is skipped for the
        next step, so the perturbation is not undone.

        ``beta`` is one value or one per particle (``[n]``; 0 leaves a particle's latent as it
        is, e.g. an elite kept among mutated members).
        """
        betas = torch.as_tensor(beta, dtype=torch.float64).reshape(-1)
        if betas.numel() not in (1, len(particles)):
            raise ValueError(f"beta must be one value or {len(particles)}, got {betas.numel()}")
        if torch.isnan(betas).any() or (betas < 0).any() or (betas > 1).any():
            raise ValueError(f"beta must lie in [0, 1], got {betas.tolist()}")
        sigma = particles.sigma
        if sigma <= 0.0 or not betas.any():
            return particles
        shape = (-1,) + (1,) * (particles.latents.dim() - 1)
        keep = torch.sqrt(1.0 - betas**2).to(particles.latents).reshape(shape)
        share = betas.to(particles.latents).reshape(shape)
        x0 = particles.x0 if particles.x0 is not None else torch.zeros_like(particles.latents)
        eps = (particles.latents - (1.0 - sigma) * x0) / sigma
        # x_t' = (1 - sigma) x0 + sigma (keep eps + share xi), written as a change of x_t so
        # that a particle with share 0 keeps its latent exactly
        change = sigma * ((keep - 1.0) * eps + share * self.noise(len(particles)))
        perturbed = particles.with_latents(particles.latents + change, x0=particles.x0)
        return attrs.evolve(perturbed, solver=particles.solver.copy(drop_corrector_input=True))

    # -- rewards and output -------------------------------------------------------------
    def score(
        self, particles: Particles, label: str = "", *, input: str | None = None
    ) -> ScoreRecord:
        """Score every particle with the reward on its declared input; append to the trace.

        ``input`` overrides what a latent-space reward is shown (``"latent"`` for ``x_t``,
        ``"x0"`` for the predicted clean latent); video rewards always see video.
        """
        if input is not None and (input not in ("latent", "x0") or self._reward.input == "video"):
            raise ValueError(
                f"input must be 'latent' or 'x0' for reward {self._reward.name!r} "
                f"(declared input {self._reward.input!r}), got {input!r}"
            )
        return self._score(particles, label, input or self._reward.input, keep_graph=False)[0]

    def score_with_grad(
        self, particles: Particles, label: str = ""
    ) -> tuple[ScoreRecord, torch.Tensor]:
        """Score fully denoised ``particles`` keeping the autograd graph (gradient-based search).

        Returns the trace's record (detached, as :meth:`score` makes it) and the aggregate
        reward ``[n]`` still attached to the graph of ``advance(..., grad=True)``. The reward
        sees the clean output (decoded, and metered, when it reads video).
        """
        if particles.step != self.num_steps:
            raise ValueError(
                f"score_with_grad needs fully denoised particles (step {self.num_steps}), "
                f"got step {particles.step}"
            )
        record, scores = self._score(particles, label, self._reward.input, keep_graph=True)
        return record, self._reward.aggregate(scores)

    def _score(
        self, particles: Particles, label: str, kind: str, *, keep_graph: bool
    ) -> tuple[ScoreRecord, torch.Tensor]:
        step = particles.step
        if kind == "latent":
            data, sigma = particles.latents, particles.sigma
        else:
            if step == 0:
                raise ValueError(
                    f"reward {self._reward.name!r} needs input {kind!r}, which exists only after the "
                    "first denoising step; score after advancing"
                )
            data = particles.latents if step == self.num_steps else particles.x0
            scheduler = particles.solver.scheduler
            sigma = 0.0 if step == self.num_steps else float(scheduler.sigmas[step - 1])
            if kind == "video":
                data = self.decode(data, keep_graph=keep_graph)
                self._candidates.keep(len(self.trace.scored), particles.ids, step, data)
                if step == self.num_steps:
                    self._decoded = {
                        int(pid): (latents, frames.detach())
                        for pid, latents, frames in zip(
                            particles.ids, particles.latents, data, strict=True
                        )
                    }
        n = len(particles)
        batch = RewardBatch(
            data=data, sigma=torch.full((n,), sigma), conditioning=self.conditioning, step=step
        )
        grad_mode = torch.enable_grad() if keep_graph else torch.no_grad()
        with grad_mode, self.meter.timed("reward"):
            scores = self._reward(batch)
        self.meter.reward_calls += n
        self.meter.charge_flops(f"reward:{self._reward.name}", self._reward.flops(batch))
        detached = contracts.check_scores(self._reward, scores, n, step, particles.ids, data)
        record = ScoreRecord(
            step=step,
            sigma=sigma,
            ids=particles.ids.clone(),
            scores=detached,
            total=self._reward.aggregate(detached),
            input=kind,
            label=label,
        )
        self.trace.scored.append(record)
        self._issued.append(record)
        progress.notify_scored(step, n)
        return record, scores

    def record_selection(
        self,
        record: ScoreRecord,
        survivors: Particles | None,
        *,
        chosen: torch.Tensor | Sequence[int] | None = None,
        weights: torch.Tensor | None = None,
    ) -> Particles | None:
        """Record the decision taken on a scoring event and hand back the ``survivors``.

        ``record`` is what :meth:`score` returned in this search; ``chosen`` the indices into
        its particles that the decision picked (as drawn, repeats included); ``weights`` the
        normalised weights the draw used; ``survivors`` the particles the search carries on
        (``None`` if none). The trace's record is replaced by a copy carrying the decision;
        a record takes one decision. See :class:`~searchkit.result.ScoreRecord` for the
        meaning of each field.
        """
        position = next((i for i, r in enumerate(self._issued) if r is record), None)
        if position is None:
            raise ValueError("record must be a ScoreRecord returned by this search's score()")
        if position in self._decided:
            raise ValueError(
                f"scoring event {position} (step {record.step}) already has a decision"
            )
        if chosen is not None:
            chosen = torch.as_tensor(chosen, dtype=torch.long)
            if chosen.dim() != 1 or (
                chosen.numel() and not 0 <= int(chosen.min()) <= int(chosen.max()) < len(record.ids)
            ):
                raise ValueError(
                    f"chosen must be indices into the {len(record.ids)} scored particles, "
                    f"got {chosen.tolist()}"
                )
        if weights is not None:
            weights = weights.detach().cpu()
            if weights.shape != (len(record.ids),):
                raise ValueError(
                    f"weights must have shape [{len(record.ids)}], got {list(weights.shape)}"
                )
        self.trace.scored[position] = attrs.evolve(
            record,
            weights=weights,
            chosen=chosen,
            survivors=None if survivors is None else survivors.ids.clone(),
        )
        self._decided.add(position)
        return survivors

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` through the model forwards run with ``grad=True``, metered.

        The context counts the forwards that :meth:`advance` ran keeping the graph since the
        last backward pass; the meter charges ``Meter.BACKWARD_FACTOR`` forward-equivalents
        for each (and checks the budget) before the backward pass runs. Forwards run with the
        graph kept count towards the next backward pass, so run them only for a loss you
        backpropagate.
        """
        forwards, self._graph_forwards = self._graph_forwards, 0
        flops, self._graph_flops = self._graph_flops, 0.0
        self.meter.charge_backward(forwards, flops)
        with self.meter.timed("model"):
            loss.backward()

    def decode(self, latents: torch.Tensor, *, keep_graph: bool = False) -> torch.Tensor:
        """Decode clean latents to video frames, metered (one decode per latent)."""
        grad_mode = torch.enable_grad() if keep_graph else torch.no_grad()
        with grad_mode, self.meter.timed("decode"):
            video = self._backend.decode(latents)
        n = int(latents.shape[0])
        self._checks.decode(video, n)
        self.meter.decodes += n
        self.meter.charge_flops("decode", self._backend.decode_flops(n))
        return video

    def finish(
        self, particles: Particles, index: int = 0, *, scores: torch.Tensor | None = None
    ) -> SearchResult:
        """Decode particle ``index`` of fully denoised ``particles`` and report the search.

        ``scores`` are its per-dimension rewards when the strategy already computed them;
        otherwise the output is scored once (metered). Frames already decoded for a video
        reward are reused, not decoded again.
        """
        if particles.step != self.num_steps:
            raise ValueError(
                f"finish needs fully denoised particles (step {self.num_steps}), got step {particles.step}"
            )
        chosen = particles.select([index])
        if scores is None:
            scores = self.score(chosen, label="final").scores[0]
        cached = self._decoded.get(int(chosen.ids[0]))
        if cached is not None and torch.equal(cached[0], chosen.latents[0]):
            video = cached[1]
        else:
            video = self.decode(chosen.latents)[0]
        self.trace.parents = list(self._lineage.parents)
        self.trace.output = int(chosen.ids[0])
        scores = scores.detach().float().cpu()
        return SearchResult(
            latents=chosen.latents[0].detach(),
            video=video.detach().cpu(),
            scores=scores,
            reward=float(self._reward.aggregate(scores[None])[0]),
            dimensions=tuple(self._reward.dimensions),
            cost=self.meter.snapshot(),
            trace=self.trace,
            strategy="",  # Strategy.run fills in the strategy, its config and the seed
            config={},
            prompt=self.prompt,
            seed=None,
            candidate_frames=self._candidates.snapshot(),
        )

    # -- checks -----------------------------------------------------------------------
    def _check_latents(self, field: str, value: object, *, allow_unbatched: bool) -> torch.Tensor:
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{field} must be a torch.Tensor, got {type(value).__name__}")
        shape = tuple(self._backend.latent_shape)
        if allow_unbatched and tuple(value.shape) == shape:
            value = value[None]
        if value.dim() != len(shape) + 1 or tuple(value.shape[1:]) != shape:
            raise ValueError(
                f"{field} must have shape [n, {', '.join(map(str, shape))}], got {list(value.shape)}"
            )
        return value
