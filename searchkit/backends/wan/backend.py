"""The Wan2.1 backend: encode, guided velocity, decode, over diffusers components.

What one denoising step does, and how it matches ``WanPipeline.__call__``:

* the latents stay in float32 (as the pipeline keeps them) and are cast to the transformer's
  dtype for the forward;
* classifier-free guidance ``v = v_u + g (v_c - v_u)`` is computed in the transformer's dtype,
  as the pipeline does, and the velocity is returned in that dtype, so the scheduler sees
  exactly what the pipeline's scheduler sees;
* all particles go through the transformer together, ``max_batch`` particles per forward
  at most; with ``cfg_batched`` the conditional and unconditional rows share one forward,
  otherwise they are two forwards (what the pipeline does for one video). With one
  particle and ``cfg_batched=False`` the forwards are the pipeline's own, bit for bit;
  other batchings differ from it by float rounding only (kernels change with the batch
  size: about 1e-6 after 10 float32 steps on the CPU, about 1e-4 relative on a GPU);
* the scheduler is a fresh diffusers scheduler per search with ``set_begin_index(0)``, as in
  the pipeline; searchkit's :class:`~searchkit.solver.SolverState` carries each particle's
  multistep history.

The transformer's dtype and device are read once, when the backend is built: in diffusers
each read walks every submodule, which costs milliseconds a step on a full-size model. A
caller that moves or casts the wrapped transformer afterwards calls
:meth:`WanBackend.refresh_placement`.

Decoding uses the pipeline's latent de-normalisation ``z / (1 / std) + mean`` with the VAE's
``latents_mean`` and ``latents_std``, then maps ``[-1, 1]`` to ``[0, 1]`` as diffusers'
video processor does, returning frames ``[n, F, H, W, 3]``.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import torch

from searchkit.backend import Backend, ComputeProfile, Conditioning
from searchkit.backends.wan.checkpoint import check_path_type, check_pipeline, load_pipeline
from searchkit.backends.wan.encoding import WanEncoding, encode_prompt
from searchkit.backends.wan.options import PIPELINE_SOLVER, WanOptions, parse_dtype
from searchkit.backends.wan.tiny import TINY_SIZE, tiny_pipeline
from searchkit.solver import STOCHASTIC_SOLVERS, make_scheduler

if TYPE_CHECKING:  # diffusers' pipeline module pulls in transformers; import it lazily
    from diffusers import WanPipeline

_ENCODING_CACHE_SIZE = 16


def _check_build_arguments(model_path: object, tiny: object, weights_seed: object) -> None:
    """The choice between a checkpoint and the tiny model, checked without touching a file."""
    if not isinstance(tiny, bool):
        raise TypeError(f"tiny must be true or false, got {tiny!r}")
    if tiny and model_path is not None:
        raise ValueError("pass either model_path (a checkpoint) or tiny=true, not both")
    if tiny:
        return
    if weights_seed is not None:
        raise ValueError(
            f"weights_seed applies to tiny=true only; got weights_seed={weights_seed!r} with a model path"
        )
    if model_path is None:
        raise ValueError(
            "backend 'wan' needs --model-path PATH (a diffusers-format Wan2.1 text-to-video "
            "checkpoint folder) or --backend-opt tiny=true (small random weights)"
        )


class WanBackend(Backend):
    """Wan2.1 text-to-video (diffusers components) behind the searchkit backend interface.

    ``dtype`` is the dtype of the latents the context holds (float32, as in the pipeline);
    the transformer's weights may be lower precision (:attr:`transformer_dtype`).
    """

    name = "wan"
    default_reward = "pixel"

    def __init__(
        self,
        pipe: WanPipeline,
        options: WanOptions | None = None,
        *,
        source: dict[str, Any] | None = None,
    ) -> None:
        check_pipeline(pipe)
        self._pipe = pipe
        self.options = options if options is not None else WanOptions()
        self.source = dict(source or {"kind": "pipeline"})
        opts = self.options
        vae_config = pipe.vae.config
        self._temporal = int(getattr(vae_config, "scale_factor_temporal", 4) or 4)
        self._spatial = int(getattr(vae_config, "scale_factor_spatial", 8) or 8)
        patch = tuple(pipe.transformer.config.patch_size)
        multiple_h, multiple_w = self._spatial * patch[1], self._spatial * patch[2]
        if opts.height % multiple_h or opts.width % multiple_w:
            raise ValueError(
                f"height and width must be multiples of ({multiple_h}, {multiple_w}) for this "
                f"model, got height={opts.height}, width={opts.width}"
            )
        if (opts.num_frames - 1) % self._temporal:
            raise ValueError(
                f"num_frames must be {self._temporal}k+1 for this model, got {opts.num_frames}"
            )
        if opts.solver == PIPELINE_SOLVER and pipe.scheduler is None:
            raise ValueError("solver='pipeline' needs a pipeline with a scheduler, got none")
        self._encodings: OrderedDict[str, WanEncoding] = OrderedDict()
        if opts.vae_tiling:
            pipe.vae.enable_tiling()
        if opts.offload_text_encoder:
            pipe.text_encoder.to("cpu")
        self.refresh_placement()

    def refresh_placement(self) -> None:
        """Read the transformer's and the VAE's dtype and device again (once; every step and
        decode uses these).

        Call it after moving or casting the wrapped transformer or VAE in place, for example
        after ``backend.pipe.to("cuda")``; encodings made before are dropped, as they are in
        the transformer's former dtype and on its former device.
        """
        self._transformer_dtype = self._pipe.transformer.dtype
        self._device = self._pipe.transformer.device
        self._encodings.clear()
        self._text_batch: tuple[WanEncoding, int, torch.Tensor] | None = None
        vae = self._pipe.vae
        channels = int(vae.config.z_dim)
        shape = (1, channels, 1, 1, 1)
        dtype = vae.dtype
        self._vae_placement = (
            vae.device,
            dtype,
            torch.tensor(vae.config.latents_mean).view(shape).to(vae.device, dtype),
            1.0 / torch.tensor(vae.config.latents_std).view(shape).to(vae.device, dtype),
        )

    # -- constructors --------------------------------------------------------------------
    @classmethod
    def from_pipeline(cls, pipe: WanPipeline, **options: Any) -> WanBackend:
        """Wrap a loaded ``diffusers.WanPipeline`` (its components are used, not copied)."""
        return cls(pipe, WanOptions.from_options(**options), source={"kind": "pipeline"})

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        *,
        vae_dtype: torch.dtype | str = torch.float32,
        **options: Any,
    ) -> WanBackend:
        """Load a diffusers-format Wan2.1 text-to-video checkpoint folder.

        The folder layout is checked before any weight is read: it must exist, hold a
        ``model_index.json`` naming ``WanPipeline``, and hold the ``transformer``, ``vae``,
        ``text_encoder``, ``tokenizer`` and ``scheduler`` components. ``dtype`` is the
        transformer's and text encoder's (default bfloat16 on CUDA, float32 on the CPU);
        the VAE loads in ``vae_dtype`` (float32, as diffusers recommends for Wan).
        ``options`` are :class:`WanOptions` fields.
        """
        wan_options = WanOptions.from_options(**options)  # bad options fail before loading
        # an offloaded text encoder stays on the CPU until a prompt comes
        pipe, source = load_pipeline(
            path,
            dtype,
            device,
            vae_dtype=vae_dtype,
            text_encoder_on_device=not wan_options.offload_text_encoder,
        )
        return cls(pipe, wan_options, source=source)

    @classmethod
    def tiny(
        cls,
        *,
        seed: int = 0,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | str = torch.float32,
        **options: Any,
    ) -> WanBackend:
        """Small random Wan components, built offline, for tests and demos (not a real model).

        See :func:`~searchkit.backends.wan.tiny_pipeline`; the same seed gives the same
        model. Default sampling is 32x32 pixels, 9 frames and 50 steps (so the strategies'
        default step schedules apply); any :class:`WanOptions` field can be passed.
        """
        wan_options = WanOptions.from_options(**{**TINY_SIZE, **options})
        pipe = tiny_pipeline(seed=seed)
        pipe.to(device=torch.device(device))
        dtype = parse_dtype(dtype)
        if dtype != torch.float32:
            pipe.transformer.to(dtype=dtype)
            pipe.text_encoder.to(dtype=dtype)
        return cls(pipe, wan_options, source={"kind": "tiny", "seed": seed})

    @classmethod
    def build(
        cls,
        model_path: str | None = None,
        tiny: bool = False,
        dtype: str | None = None,
        device: str | None = None,
        weights_seed: int | None = None,
        **options: Any,
    ) -> WanBackend:
        """Construct from command-line options: ``model_path`` loads a checkpoint, ``tiny=true``
        builds the small random model (``weights_seed`` picks its weights; default 0)."""
        _check_build_arguments(model_path, tiny, weights_seed)
        if tiny:
            seed = 0 if weights_seed is None else weights_seed
            return cls.tiny(
                seed=seed, device=device or "cpu", dtype=dtype or torch.float32, **options
            )
        return cls.from_pretrained(model_path, dtype=dtype, device=device, **options)

    @classmethod
    def compute_profile(
        cls,
        model_path: str | None = None,
        tiny: bool = False,
        dtype: str | None = None,
        device: str | None = None,
        weights_seed: int | None = None,
        **options: Any,
    ) -> ComputeProfile:
        """Steps and forwards per step of ``build(**same options)``, from the options alone.

        Nothing is loaded or built and no file is read (``model_path`` need not exist yet);
        the choice of model, ``dtype`` and the :class:`WanOptions` fields are checked as
        :meth:`build` checks them. ``device`` does not change the count and is not checked.
        """
        _check_build_arguments(model_path, tiny, weights_seed)
        if model_path is not None:
            check_path_type(model_path)
        parse_dtype(dtype)
        wan_options = WanOptions.from_options(**({**TINY_SIZE, **options} if tiny else options))
        return ComputeProfile(wan_options.num_steps, wan_options.forwards_per_step)

    # -- Backend surface -----------------------------------------------------------------
    @property
    def pipe(self) -> WanPipeline:
        """The wrapped pipeline (its components are shared, not copied)."""
        return self._pipe

    @property
    def transformer(self):
        return self._pipe.transformer

    @property
    def transformer_dtype(self) -> torch.dtype:
        """The transformer's dtype, as read when the backend was built."""
        return self._transformer_dtype

    @property
    def device(self) -> torch.device:
        """The transformer's device, as read when the backend was built."""
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def guided(self) -> bool:
        return self.options.guided

    @property
    def latent_shape(self) -> tuple[int, ...]:
        opts = self.options
        return (
            int(self._pipe.transformer.config.in_channels),
            (opts.num_frames - 1) // self._temporal + 1,
            opts.height // self._spatial,
            opts.width // self._spatial,
        )

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
        """A fresh scheduler with its timesteps on the device and ``begin_index`` 0 (as the pipeline)."""
        opts = self.options
        if opts.solver == PIPELINE_SOLVER:
            scheduler = type(self._pipe.scheduler).from_config(self._pipe.scheduler.config)
        else:
            scheduler = make_scheduler(opts.solver, flow_shift=opts.flow_shift)
        scheduler.set_timesteps(opts.num_steps, device=self.device)
        scheduler.set_begin_index(0)
        return scheduler

    def encode(self, prompt: str) -> Conditioning:
        """Run the text encoder once per prompt (the last 16 encodings are kept)."""
        cached = self._encodings.get(prompt)
        if cached is None:
            cached = self._encode(prompt)
            self._encodings[prompt] = cached
            while len(self._encodings) > _ENCODING_CACHE_SIZE:
                self._encodings.popitem(last=False)
        else:
            self._encodings.move_to_end(prompt)
        return Conditioning(prompt=prompt, data=cached)

    def _encode(self, prompt: str) -> WanEncoding:
        return encode_prompt(
            self._pipe, prompt, self.options, device=self._device, dtype=self._transformer_dtype
        )

    def prompt_embedding(self, cond: Conditioning) -> torch.Tensor:
        """Mean of the positive prompt's text-encoder states over its real tokens, ``[D]``."""
        return cond.data.pooled

    def velocity(
        self, latents: torch.Tensor, timestep: torch.Tensor, sigma: float, cond: Conditioning
    ) -> torch.Tensor:
        """Guided velocity for ``[n, *latent_shape]`` latents, in the transformer's dtype.

        Particles go through the transformer in chunks of at most ``max_batch``; with guidance
        the conditional and unconditional rows of a chunk share a forward when ``cfg_batched``
        (``2 * max_batch`` rows), else they are two forwards.
        """
        encoding: WanEncoding = cond.data
        x = latents.to(self._transformer_dtype)
        t = timestep.to(self._device)
        n = x.shape[0]
        limit = self.options.max_batch or n
        if not self.guided:
            return torch.cat(
                [
                    self._forward(x[s : s + limit], t, encoding.prompt_embeds)
                    for s in range(0, n, limit)
                ]
            )
        g = self.options.guidance_scale
        pieces = []
        if self.options.cfg_batched:
            for s in range(0, n, limit):
                chunk = x[s : s + limit]
                k = chunk.shape[0]
                out = self._forward(torch.cat([chunk, chunk]), t, self._guided_text(encoding, k))
                cond_v, uncond_v = out[:k], out[k:]
                pieces.append(uncond_v + g * (cond_v - uncond_v))
        else:
            for s in range(0, n, limit):
                chunk = x[s : s + limit]
                cond_v = self._forward(chunk, t, encoding.prompt_embeds)
                uncond_v = self._forward(chunk, t, encoding.negative_embeds)
                pieces.append(uncond_v + g * (cond_v - uncond_v))
        return torch.cat(pieces) if len(pieces) > 1 else pieces[0]

    def _guided_text(self, encoding: WanEncoding, k: int) -> torch.Tensor:
        """The text rows of a guided forward of ``k`` particles: ``k`` conditional, then ``k``
        unconditional; kept for the next call (every step of a search asks for the same)."""
        cached = self._text_batch
        if cached is not None and cached[0] is encoding and cached[1] == k:
            return cached[2]
        text = torch.cat(
            [encoding.prompt_embeds.expand(k, -1, -1), encoding.negative_embeds.expand(k, -1, -1)]
        )
        self._text_batch = (encoding, k, text)
        return text

    def _forward(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        k = x.shape[0]
        if text.shape[0] != k:
            text = text.expand(k, -1, -1)
        return self._pipe.transformer(
            hidden_states=x,
            timestep=t.expand(k),
            encoder_hidden_states=text,
            return_dict=False,
        )[0]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """De-normalise with the VAE's latent statistics, decode, and return ``[n, F, H, W, 3]``."""
        vae = self._pipe.vae
        device, dtype, mean, inv_std = self._vae_placement
        z = latents.to(device=device, dtype=dtype) / inv_std + mean
        step = 1 if self.options.vae_slicing else z.shape[0]
        videos = [
            vae.decode(z[s : s + step], return_dict=False)[0] for s in range(0, z.shape[0], step)
        ]
        video = torch.cat(videos) if len(videos) > 1 else videos[0]  # [n, 3, F, H, W] in [-1, 1]
        if torch.is_grad_enabled():
            video = (video * 0.5 + 0.5).clamp(0, 1)
        else:  # the same arithmetic in place: no copies of the frames
            video = video.mul_(0.5).add_(0.5).clamp_(0, 1)
        return video.permute(0, 2, 3, 4, 1).float()

    def config_dict(self) -> dict[str, Any]:
        transformer = self._pipe.transformer.config
        model = {
            "num_layers": int(transformer.num_layers),
            "dim": int(transformer.num_attention_heads * transformer.attention_head_dim),
            "transformer_dtype": str(self.transformer_dtype).removeprefix("torch."),
        }
        options = attrs.asdict(self.options)
        if self.options.solver == PIPELINE_SOLVER:
            options["flow_shift"] = None
            scheduler = self._pipe.scheduler
            options["scheduler"] = {
                "class": type(scheduler).__name__,
                **json.loads(scheduler.to_json_string()),
            }
        return {"name": self.name, **options, "model": model, "source": self.source}
