"""One backend over diffusers pipelines; a model family is a small adapter on top of it.

:class:`DiffusersBackend` holds what every flow-matching diffusers family shares; the family
subclass supplies the few methods listed in :mod:`searchkit.backends.common.family`. What
one denoising step does, and how it matches the diffusers pipelines' own loops:

* the latents stay in float32 and are cast to the denoiser's dtype for the forward;
* classifier-free guidance ``v = v_u + g (v_c - v_u)`` is computed in the denoiser's dtype, as
  the pipelines do, and returned in that dtype, so the scheduler sees what theirs sees;
* all particles go through the denoiser together, ``max_batch`` particles per forward at
  most; with ``cfg_batched`` the conditional and unconditional rows share one forward
  (``2 * max_batch`` rows, in the
  family's row order: Wan puts the conditional rows first, SD3 the unconditional ones, as
  its pipeline does), otherwise they are two forwards;
* a model with several experts (Wan2.2 A14B) picks, at each step, the first expert that takes
  the step's timestep, with that expert's guidance scale, as ``WanPipeline`` does. Search,
  resampling and solver state never see the switch; :attr:`DiffusersBackend.forwards` counts
  the forwards (rows) each expert ran, and the context's meter counts them all as NFE;
* the scheduler is a fresh diffusers scheduler per search with ``set_begin_index(0)``.

Memory options (for 14B models on one GPU): ``cpu_offload`` is diffusers'
``enable_model_cpu_offload`` (each model moves to the GPU when it runs and back when the next
one runs; on a switch of experts the previous expert is sent back explicitly, as a search may
switch many times); ``offload_text_encoder`` keeps only the text encoders on the CPU between
prompts; ``vae_tiling`` switches the VAE's tiled decoding on; ``vae_slicing`` decodes one
sample at a time.

The denoiser's dtype and device are read once, when the backend is built (in diffusers each
read walks every submodule); after moving or casting the wrapped pipeline call
:meth:`DiffusersBackend.refresh_placement`.
"""

from __future__ import annotations

import json
from collections import Counter, OrderedDict
from contextlib import contextmanager
from typing import Any, ClassVar

import attrs
import torch

from searchkit.backend import Backend, Conditioning
from searchkit.backends.common.checkpoint import CheckpointLayout, default_device
from searchkit.backends.common.constructors import Constructors
from searchkit.backends.common.family import Expert, TextEncoding, pick_expert, rows, stack
from searchkit.backends.common.options import DIFFUSERS_SOLVERS, PIPELINE_SOLVER
from searchkit.solver import STOCHASTIC_SOLVERS, make_scheduler

_ENCODING_CACHE_SIZE = 16


class DiffusersBackend(Constructors, Backend):
    """A diffusers text-to-image or text-to-video flow model behind the backend interface.

    ``dtype`` is the dtype of the latents the context holds (float32); the denoiser's weights
    may be lower precision (:attr:`transformer_dtype`). Subclasses set the class attributes
    and implement the family methods (see :mod:`searchkit.backends.common.family`).
    """

    default_reward = "pixel"
    #: The values of ``solver`` (checked by benchmark configs before any compute).
    solvers: ClassVar[tuple[str, ...]] = DIFFUSERS_SOLVERS
    #: The options class (frozen attrs, ``from_options``) of the family.
    options_class: ClassVar[type]
    #: What a checkpoint folder of the family holds.
    layout: ClassVar[CheckpointLayout]
    #: The pipeline's text encoders (moved by ``offload_text_encoder``).
    text_encoders: ClassVar[tuple[str, ...]] = ("text_encoder",)
    #: Whether batched guidance puts the unconditional rows first (the pipeline's order).
    uncond_first: ClassVar[bool] = False

    def __init__(
        self,
        pipe: Any,
        options: Any = None,
        *,
        source: dict[str, Any] | None = None,
        offload_device: torch.device | str | None = None,
    ) -> None:
        self.check_pipeline(pipe)
        self._pipe = pipe
        self.options = options if options is not None else self.options_class()
        self.source = dict(source or {"kind": "pipeline"})
        opts = self.options
        self._configure()
        if opts.solver == PIPELINE_SOLVER and pipe.scheduler is None:
            raise ValueError("solver='pipeline' needs a pipeline with a scheduler, got none")
        self._encodings: OrderedDict[str, TextEncoding] = OrderedDict()
        self.forwards: Counter[str] = Counter()
        self._active: Expert | None = None
        if opts.vae_tiling:
            pipe.vae.enable_tiling()
        if opts.cpu_offload:
            pipe.enable_model_cpu_offload(device=self._offload_target(offload_device))
        elif opts.offload_text_encoder:
            for encoder in self._text_encoder_modules():
                encoder.to("cpu")
        self.refresh_placement()

    def _offload_target(self, device: torch.device | str | None) -> torch.device:
        if device is not None:
            return torch.device(device)
        current = self._denoiser().device
        return current if current.type != "cpu" else default_device()

    def with_options(self, **changes: Any) -> DiffusersBackend:
        """The same model with other sampling options (``solver="sde-dpmsolver++"``, ...).

        The pipeline's components are shared, not copied or reloaded: a benchmark whose
        entries differ in the solver holds one model. Options that act on the shared
        components (``vae_tiling``, ``offload_text_encoder``, ``cpu_offload``) act on both
        backends.
        """
        return type(self)(self._pipe, attrs.evolve(self.options, **changes), source=self.source)

    def refresh_placement(self) -> None:
        """Read the denoiser's dtype and device again (once; every step uses these).

        Call it after moving or casting the wrapped pipeline in place, for example after
        ``backend.pipe.to("cuda")``; encodings made before are dropped, as they are in the
        former dtype and on the former device. Under ``cpu_offload`` the device is the one
        the models run on.
        """
        self._experts = self._make_experts()
        first = self._experts[0].model
        self._transformer_dtype = first.dtype
        self._device = (
            torch.device(self._pipe._execution_device) if self.options.cpu_offload else first.device
        )
        self._encodings.clear()
        self._text_batch: tuple[TextEncoding, int, dict[str, torch.Tensor]] | None = None

    # -- the family's part (see searchkit.backends.common.family) -------------------------
    @classmethod
    def check_pipeline(cls, pipe: Any) -> None:
        raise NotImplementedError

    def _configure(self) -> None:
        """Read the latent geometry from the pipeline and check the options against it."""
        raise NotImplementedError

    def _make_experts(self) -> tuple[Expert, ...]:
        """The denoisers, high noise first; by default the pipeline's one ``transformer``."""
        return (Expert("transformer", self._pipe.transformer, self.options.guidance_scale),)

    def _denoiser(self) -> Any:
        """The denoiser whose configuration and placement stand for the model's (the
        pipeline's ``transformer``; a family whose pipeline may lack it names another)."""
        return self._pipe.transformer

    def _encode(self, prompt: str) -> TextEncoding:
        raise NotImplementedError

    def _call_model(
        self, model: Any, x: torch.Tensor, t: torch.Tensor, text: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        raise NotImplementedError

    def _decode_chunk(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _model_summary(self) -> dict[str, Any]:
        return {"transformer_dtype": str(self.transformer_dtype).removeprefix("torch.")}

    def _timestep_options(self, scheduler: Any) -> dict[str, Any]:
        """Extra ``set_timesteps`` arguments of the family's pipeline (e.g. a dynamic shift)."""
        return {}

    # -- Backend surface -----------------------------------------------------------------
    @property
    def pipe(self) -> Any:
        """The wrapped pipeline (its components are shared, not copied)."""
        return self._pipe

    @property
    def transformer(self) -> Any:
        """The pipeline's denoiser (of a two-expert model, the first one it has)."""
        return self._denoiser()

    @property
    def experts(self) -> tuple[Expert, ...]:
        """The denoisers with their guidance scales and boundaries, high noise first."""
        return self._experts

    @property
    def transformer_dtype(self) -> torch.dtype:
        """The denoiser's dtype, as read when the backend was built."""
        return self._transformer_dtype

    @property
    def device(self) -> torch.device:
        """The device the denoiser runs on, as read when the backend was built."""
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def guided(self) -> bool:
        return self.options.guided

    @property
    def num_steps(self) -> int:
        return self.options.num_steps

    @property
    def forwards_per_step(self) -> int:
        return self.options.forwards_per_step

    @property
    def is_differentiable(self) -> bool:
        """Gradients flow through :meth:`velocity` and :meth:`decode` when grad mode is on
        (memory grows with every step kept in the graph: practical only at small sizes)."""
        return True

    @property
    def is_stochastic(self) -> bool:
        if self.options.solver != PIPELINE_SOLVER:
            return self.options.solver in STOCHASTIC_SOLVERS
        config = self._pipe.scheduler.config
        return "sde" in str(config.get("algorithm_type", "")) or bool(
            config.get("stochastic_sampling", False)
        )

    def make_scheduler(self):
        """A fresh scheduler with its timesteps on the device and ``begin_index`` 0."""
        opts = self.options
        if opts.solver == PIPELINE_SOLVER:
            scheduler = type(self._pipe.scheduler).from_config(self._pipe.scheduler.config)
        else:
            scheduler = make_scheduler(opts.solver, flow_shift=opts.flow_shift)
        scheduler.set_timesteps(
            opts.num_steps, device=self.device, **self._timestep_options(scheduler)
        )
        scheduler.set_begin_index(0)
        return scheduler

    def denoiser_at(self, timestep: torch.Tensor) -> str:
        """The expert that denoises at ``timestep`` (``"transformer"`` for one-model families)."""
        return pick_expert(self._experts, timestep).name

    def expert_schedule(self) -> tuple[str, ...]:
        """The name of the expert that runs each denoising step, in step order."""
        timesteps = self.make_scheduler().timesteps
        return tuple(pick_expert(self._experts, t).name for t in timesteps)

    def encode(self, prompt: str) -> Conditioning:
        """Run the text encoders once per prompt (the last 16 encodings are kept)."""
        cached = self._encodings.get(prompt)
        if cached is None:
            with self._text_encoders_on_device():
                cached = self._encode(prompt)
            self._encodings[prompt] = cached
            while len(self._encodings) > _ENCODING_CACHE_SIZE:
                self._encodings.popitem(last=False)
        else:
            self._encodings.move_to_end(prompt)
        return Conditioning(prompt=prompt, data=cached)

    def _text_encoder_modules(self) -> list[Any]:
        modules = (getattr(self._pipe, name, None) for name in self.text_encoders)
        return [module for module in modules if module is not None]

    @contextmanager
    def _text_encoders_on_device(self):
        """With ``offload_text_encoder``, the text encoders on the device for the block."""
        if not self.options.offload_text_encoder:
            yield
            return
        encoders = self._text_encoder_modules()
        homes = [encoder.device for encoder in encoders]
        for encoder in encoders:
            encoder.to(self._device)
        try:
            yield
        finally:
            for encoder, home in zip(encoders, homes, strict=True):
                encoder.to(home)

    def prompt_embedding(self, cond: Conditioning) -> torch.Tensor:
        """The family's pooled prompt vector ``[E]`` (float32)."""
        return cond.data.pooled

    def velocity(
        self, latents: torch.Tensor, timestep: torch.Tensor, sigma: float, cond: Conditioning
    ) -> torch.Tensor:
        """Guided velocity for ``[n, *latent_shape]`` latents, in the denoiser's dtype.

        Particles go through the denoiser in chunks of at most ``max_batch``; with guidance the
        conditional and unconditional rows of a chunk share a forward when ``cfg_batched``
        (``2 * max_batch`` rows), else they are two forwards.
        """
        encoding: TextEncoding = cond.data
        t = timestep.to(self._device)
        expert = self._switch_to(pick_expert(self._experts, t))
        x = latents.to(self._transformer_dtype)
        n = x.shape[0]
        limit = self.options.max_batch or n
        positive = encoding.text_inputs()
        if not self.guided:
            return torch.cat(
                [self._forward(expert, x[s : s + limit], t, positive) for s in range(0, n, limit)]
            )
        negative = encoding.text_inputs(negative=True)
        g = expert.guidance_scale
        pieces = []
        if self.options.cfg_batched:
            for s in range(0, n, limit):
                chunk = x[s : s + limit]
                k = chunk.shape[0]
                out = self._forward(
                    expert, torch.cat([chunk, chunk]), t, self._guided_text(encoding, k)
                )
                if self.uncond_first:
                    uncond_v, cond_v = out[:k], out[k:]
                else:
                    cond_v, uncond_v = out[:k], out[k:]
                pieces.append(uncond_v + g * (cond_v - uncond_v))
        else:
            for s in range(0, n, limit):
                chunk = x[s : s + limit]
                cond_v = self._forward(expert, chunk, t, positive)
                uncond_v = self._forward(expert, chunk, t, negative)
                pieces.append(uncond_v + g * (cond_v - uncond_v))
        return torch.cat(pieces) if len(pieces) > 1 else pieces[0]

    def _guided_text(self, encoding: TextEncoding, k: int) -> dict[str, torch.Tensor]:
        """The text rows of a guided forward of ``k`` particles, in the family's row order;
        kept for the next call (every step of a search asks for the same rows)."""
        cached = self._text_batch
        if cached is not None and cached[0] is encoding and cached[1] == k:
            return cached[2]
        positive, negative = encoding.text_inputs(), encoding.text_inputs(negative=True)
        first, second = (negative, positive) if self.uncond_first else (positive, negative)
        text = stack(first, second, k)
        self._text_batch = (encoding, k, text)
        return text

    def _switch_to(self, expert: Expert) -> Expert:
        """Make ``expert`` the active one; under ``cpu_offload`` send the previous one back."""
        previous = self._active
        if previous is not None and previous is not expert and self.options.cpu_offload:
            for hook in getattr(self._pipe, "_all_hooks", ()):
                if getattr(hook, "model", None) is previous.model:
                    hook.offload()
        self._active = expert
        return expert

    def _forward(
        self, expert: Expert, x: torch.Tensor, t: torch.Tensor, text: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        k = x.shape[0]
        self.forwards[expert.name] += k
        return self._call_model(expert.model, x, t, rows(text, k))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Clean latents to frames ``[n, F, H, W, 3]`` in ``[0, 1]`` (images: ``F = 1``)."""
        step = 1 if self.options.vae_slicing else latents.shape[0]
        frames = [
            self._decode_chunk(latents[s : s + step]) for s in range(0, latents.shape[0], step)
        ]
        return torch.cat(frames) if len(frames) > 1 else frames[0]

    def config_dict(self) -> dict[str, Any]:
        options = attrs.asdict(self.options)
        if self.options.solver == PIPELINE_SOLVER:
            options["flow_shift"] = None
            scheduler = self._pipe.scheduler
            options["scheduler"] = {
                "class": type(scheduler).__name__,
                **json.loads(scheduler.to_json_string()),
            }
        model = self._model_summary()
        if len(self._experts) > 1 or self._experts[0].below is not None:
            model["experts"] = [
                {
                    "name": e.name,
                    "guidance_scale": e.guidance_scale,
                    "boundary": e.boundary,
                    **({} if e.below is None else {"below": e.below}),
                }
                for e in self._experts
            ]
        return {"name": self.name, **options, "model": model, "source": self.source}
