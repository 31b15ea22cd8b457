"""Wan2.1 text-to-video through diffusers, as a searchkit backend.

:class:`WanBackend` wraps the components of a ``diffusers.WanPipeline`` (UMT5 text encoder,
``WanTransformer3DModel``, ``AutoencoderKLWan``) and exposes them as the
:class:`~searchkit.backend.Backend` surface; the denoising loop itself stays in
:class:`~searchkit.context.SearchContext`. Three constructors:

* :meth:`WanBackend.from_pretrained` loads a diffusers-format Wan2.1 text-to-video checkpoint
  folder (1.3B or 14B), checking its layout first;
* :meth:`WanBackend.from_pipeline` wraps a loaded ``WanPipeline``;
* :meth:`WanBackend.tiny` builds small *random* components offline (no download), for tests
  and demos: its videos are noise-like patterns, not generations.

What one denoising step does, and how it matches ``WanPipeline.__call__``:

* the latents stay in float32 (as the pipeline keeps them) and are cast to the transformer's
  dtype for the forward;
* classifier-free guidance ``v = v_u + g (v_c - v_u)`` is computed in the transformer's dtype,
  as the pipeline does, and the velocity is returned in that dtype, so the scheduler sees
  exactly what the pipeline's scheduler sees;
* all particles go through the transformer together, ``max_batch`` rows per forward at
  most; with ``cfg_batched`` the conditional and unconditional rows share one forward,
  otherwise they are two forwards (what the pipeline does for one video). With one
  particle and ``cfg_batched=False`` the forwards are the pipeline's own, bit for bit;
  other batchings differ from it by float rounding only (kernels change with the batch
  size: about 1e-6 after 10 float32 steps on the CPU, about 1e-4 relative on a GPU);
* the scheduler is a fresh diffusers scheduler per search with ``set_begin_index(0)``, as in
  the pipeline; searchkit's :class:`~searchkit.solver.SolverState` carries each particle's
  multistep history.

Decoding uses the pipeline's latent de-normalisation ``z / (1 / std) + mean`` with the VAE's
``latents_mean`` and ``latents_std``, then maps ``[-1, 1]`` to ``[0, 1]`` as diffusers'
video processor does, returning frames ``[n, F, H, W, 3]``.

Settings. Defaults are the LatSearch paper's configuration (its own Wan code): UniPC with
flow shift 5.0, 50 steps, guidance 5.0, 832x480, 33 frames; ``max_sequence_length`` is 512,
the value ``WanPipeline.__call__`` uses (``encode_prompt`` alone defaults to 226). The
Wan2.1-T2V-1.3B diffusers checkpoint ships UniPC with flow shift 3.0: ``solver="pipeline"``
uses the wrapped pipeline's own scheduler configuration instead of a named solver. The
paper's best configuration is ``solver="sde-dpmsolver++"``. The negative prompt defaults to
the pipeline's (empty); Wan's reference code uses a long fixed negative prompt, pass it as
``negative_prompt`` to reproduce that.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import torch

from searchkit.backend import Backend, Conditioning
from searchkit.solver import SOLVERS, STOCHASTIC_SOLVERS, make_scheduler

if TYPE_CHECKING:  # diffusers' pipeline module pulls in transformers; import it lazily
    from diffusers import WanPipeline

#: ``solver`` value that uses the wrapped pipeline's own scheduler configuration.
PIPELINE_SOLVER = "pipeline"
WAN_SOLVERS: tuple[str, ...] = (*SOLVERS, PIPELINE_SOLVER)
#: Pixel size multiple: VAE spatial factor 8 times transformer patch 2 (all Wan2.1 models).
SIZE_MULTIPLE = 16
#: Frames are ``4 k + 1`` (VAE temporal factor 4).
FRAME_MULTIPLE = 4
#: The Wan2.1-T2V-1.3B transformer configuration (diffusers format), for building
#: random-weight models of the real size (benchmarks, FLOP counts) without a checkpoint.
WAN21_1_3B_TRANSFORMER: dict[str, Any] = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 12,
    "attention_head_dim": 128,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 8960,
    "num_layers": 30,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 1024,
}
#: Components a Wan2.1 text-to-video checkpoint folder must hold, with the file naming each.
REQUIRED_COMPONENTS: dict[str, tuple[str, ...]] = {
    "transformer": ("config.json",),
    "vae": ("config.json",),
    "text_encoder": ("config.json",),
    "tokenizer": ("tokenizer_config.json", "tokenizer.json", "spiece.model"),
    "scheduler": ("scheduler_config.json",),
}
_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}
_ENCODING_CACHE_SIZE = 16


# -- configuration ----------------------------------------------------------------------
def _int(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be an integer, got {value!r}")


def _bool(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{attribute.name} must be true or false, got {value!r}")


def _size(instance: object, attribute: attrs.Attribute, value: int) -> None:
    _int(instance, attribute, value)
    if value <= 0 or value % SIZE_MULTIPLE:
        raise ValueError(
            f"{attribute.name} must be a positive multiple of {SIZE_MULTIPLE} pixels "
            f"(VAE factor 8 x patch 2), got {value}"
        )


def _frames(instance: object, attribute: attrs.Attribute, value: int) -> None:
    _int(instance, attribute, value)
    if value < 1 or (value - 1) % FRAME_MULTIPLE:
        raise ValueError(
            f"{attribute.name} must be 4k+1 (1, 5, 9, ..., 33, ..., 81), got {value}"
        )


def _positive(instance: object, attribute: attrs.Attribute, value: int) -> None:
    _int(instance, attribute, value)
    if value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer, got {value}")


def _finite_float(low: float, strict: bool = False):
    def check(instance: object, attribute: attrs.Attribute, value: float) -> None:
        if not isinstance(value, float):
            raise TypeError(f"{attribute.name} must be a number, got {value!r}")
        bad = not math.isfinite(value) or (value <= low if strict else value < low)
        if bad:
            bound = f"> {low}" if strict else f">= {low}"
            raise ValueError(f"{attribute.name} must be a finite number {bound}, got {value}")

    return check


def _solver(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if value not in WAN_SOLVERS:
        raise ValueError(f"solver must be one of {WAN_SOLVERS}, got {value!r}")


def _max_batch(instance: WanOptions, attribute: attrs.Attribute, value: int | None) -> None:
    if value is None:
        return
    _positive(instance, attribute, value)


def _float(value: object) -> object:
    """Integers to floats; anything else is left for the validator to name."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


@attrs.frozen
class WanOptions:
    """How :class:`WanBackend` samples; validated on construction, before any compute.

    Args:
        solver: ``"unipc"`` (UniPC, flow sigmas, order 2), ``"euler"`` (FlowMatchEuler),
            ``"sde-dpmsolver++"`` (stochastic; the paper's best), or ``"pipeline"`` (a fresh
            copy of the wrapped pipeline's own scheduler; ``flow_shift`` is then unused).
        flow_shift: timestep shift of the named solvers (paper 5.0; the 1.3B checkpoint 3.0).
        guidance_scale: classifier-free guidance ``g``; 1.0 disables guidance (one forward
            per particle-step), as the pipeline does for ``g <= 1``.
        height, width: pixels, multiples of 16. num_frames: ``4k + 1``.
        num_steps: denoising steps of one trajectory.
        negative_prompt: the unconditional prompt of guidance.
        max_sequence_length: text tokens (the pipeline's 512).
        max_batch: most rows (samples) per transformer forward; ``None`` for no limit. With
            ``cfg_batched`` a forward holds ``max_batch // 2`` particles, so it must be >= 2.
        cfg_batched: conditional and unconditional passes in one forward (``True``) or two.
        vae_slicing: decode one video at a time (bounds decoder memory).
        vae_tiling: let the VAE decode in spatial tiles (switches tiling on in the wrapped VAE).
        offload_text_encoder: keep the text encoder on the CPU between prompts and move it to
            the device only while encoding.
    """

    solver: str = attrs.field(default="unipc", validator=_solver)
    flow_shift: float = attrs.field(default=5.0, converter=_float, validator=_finite_float(0.0, strict=True))
    guidance_scale: float = attrs.field(default=5.0, converter=_float, validator=_finite_float(1.0))
    height: int = attrs.field(default=480, validator=_size)
    width: int = attrs.field(default=832, validator=_size)
    num_frames: int = attrs.field(default=33, validator=_frames)
    num_steps: int = attrs.field(default=50, validator=_positive)
    negative_prompt: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    max_sequence_length: int = attrs.field(default=512, validator=_positive)
    max_batch: int | None = attrs.field(default=None, validator=_max_batch)
    cfg_batched: bool = attrs.field(default=True, validator=_bool)
    vae_slicing: bool = attrs.field(default=False, validator=_bool)
    vae_tiling: bool = attrs.field(default=False, validator=_bool)
    offload_text_encoder: bool = attrs.field(default=False, validator=_bool)

    def __attrs_post_init__(self) -> None:
        guided = self.guidance_scale > 1.0
        if guided and self.cfg_batched and self.max_batch is not None and self.max_batch < 2:
            raise ValueError(
                f"max_batch must be at least 2 when cfg_batched is true (the conditional and "
                f"unconditional rows share a forward), got {self.max_batch}; "
                "set cfg_batched=false for one row per forward"
            )

    @classmethod
    def from_options(cls, **options: Any) -> WanOptions:
        """Build from keyword options, naming any unknown one."""
        known = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(
                f"unknown Wan backend option(s) {unknown}; known: {', '.join(sorted(known))}"
            )
        return cls(**options)


def parse_dtype(value: torch.dtype | str | None, field: str = "dtype") -> torch.dtype | None:
    """``torch.bfloat16`` or ``"bf16"``/``"bfloat16"`` (etc.) to a torch dtype; ``None`` passes."""
    if value is None or isinstance(value, torch.dtype):
        return value
    if isinstance(value, str) and value.lower() in _DTYPES:
        return _DTYPES[value.lower()]
    raise ValueError(f"{field} must be one of {sorted(_DTYPES)} or a torch.dtype, got {value!r}")


# -- conditioning -----------------------------------------------------------------------
@attrs.frozen(eq=False)
class WanEncoding:
    """A prompt encoded for the transformer.

    ``prompt_embeds`` and ``negative_embeds`` are ``[1, L, D]`` in the transformer's dtype,
    zero beyond the real tokens (as the pipeline pads them); ``negative_embeds`` is ``None``
    without guidance. ``pooled`` is the mean of the prompt's real-token embeddings (``[D]``,
    float32), for rewards conditioned on text.
    """

    prompt_embeds: torch.Tensor
    negative_embeds: torch.Tensor | None
    num_tokens: int
    pooled: torch.Tensor


# -- the backend ------------------------------------------------------------------------
class WanBackend(Backend):
    """Wan2.1 text-to-video (diffusers components) behind the searchkit backend interface.

    ``dtype`` is the dtype of the latents the context holds (float32, as in the pipeline);
    the transformer's weights may be lower precision (:attr:`transformer_dtype`).
    """

    name = "wan"
    default_reward = "pixel"

    def __init__(self, pipe: WanPipeline, options: WanOptions | None = None, *,
                 source: dict[str, Any] | None = None) -> None:
        _check_pipeline(pipe)
        self.pipe = pipe
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
        root = check_checkpoint(path)
        device = torch.device(device) if device is not None else _default_device()
        dtype = parse_dtype(dtype) or (torch.bfloat16 if device.type == "cuda" else torch.float32)
        vae_dtype = parse_dtype(vae_dtype, "vae_dtype")
        from diffusers import AutoencoderKLWan, WanPipeline

        key = _dtype_keyword()
        vae = AutoencoderKLWan.from_pretrained(root, subfolder="vae", **{key: vae_dtype})
        pipe = WanPipeline.from_pretrained(root, vae=vae, **{key: dtype})
        pipe.transformer.to(device)
        pipe.vae.to(device)
        if not wan_options.offload_text_encoder:  # else it stays on the CPU until a prompt comes
            pipe.text_encoder.to(device)
        source = {"kind": "checkpoint", "path": str(root), "dtype": str(dtype).removeprefix("torch.")}
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

        The transformer (2 layers, 2 heads of 12) and VAE (base width 3) follow the configs
        of diffusers' own Wan tests; the text encoder is a 2-layer UMT5 from a config, and the
        tokenizer a word-level one built in memory over a fixed English vocabulary (unknown
        words map to ``<unk>``). Weights are drawn from a generator seeded with ``seed``, so
        the same seed gives the same model. Default sampling is 32x32 pixels, 9 frames and
        50 steps (so the strategies' default step schedules apply); any :class:`WanOptions`
        field can be passed.
        """
        defaults = {"height": 32, "width": 32, "num_frames": 9}
        wan_options = WanOptions.from_options(**{**defaults, **options})
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
        if not isinstance(tiny, bool):
            raise TypeError(f"tiny must be true or false, got {tiny!r}")
        if tiny and model_path is not None:
            raise ValueError("pass either model_path (a checkpoint) or tiny=true, not both")
        if tiny:
            seed = 0 if weights_seed is None else weights_seed
            return cls.tiny(seed=seed, device=device or "cpu", dtype=dtype or torch.float32, **options)
        if weights_seed is not None:
            raise ValueError(
                f"weights_seed applies to tiny=true only; got weights_seed={weights_seed!r} with a model path"
            )
        if model_path is None:
            raise ValueError(
                "backend 'wan' needs --model-path PATH (a diffusers-format Wan2.1 text-to-video "
                "checkpoint folder) or --backend-opt tiny=true (small random weights)"
            )
        return cls.from_pretrained(model_path, dtype=dtype, device=device, **options)

    # -- Backend surface -----------------------------------------------------------------
    @property
    def transformer(self):
        return self.pipe.transformer

    @property
    def transformer_dtype(self) -> torch.dtype:
        return self.pipe.transformer.dtype

    @property
    def device(self) -> torch.device:
        return self.pipe.transformer.device

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def guided(self) -> bool:
        return self.options.guidance_scale > 1.0

    @property
    def latent_shape(self) -> tuple[int, ...]:
        opts = self.options
        return (
            int(self.pipe.transformer.config.in_channels),
            (opts.num_frames - 1) // self._temporal + 1,
            opts.height // self._spatial,
            opts.width // self._spatial,
        )

    @property
    def num_steps(self) -> int:
        return self.options.num_steps

    @property
    def forwards_per_step(self) -> int:
        return 2 if self.guided else 1

    @property
    def is_differentiable(self) -> bool:
        """Gradients flow through :meth:`velocity` and :meth:`decode` when grad mode is on
        (memory grows with every step kept in the graph: practical only at small sizes)."""
        return True

    @property
    def is_stochastic(self) -> bool:
        if self.options.solver != PIPELINE_SOLVER:
            return self.options.solver in STOCHASTIC_SOLVERS
        config = self.pipe.scheduler.config
        return "sde" in str(config.get("algorithm_type", "")) or bool(
            config.get("stochastic_sampling", False)
        )

    def make_scheduler(self):
        """A fresh scheduler with its timesteps on the device and ``begin_index`` 0 (as the pipeline)."""
        opts = self.options
        if opts.solver == PIPELINE_SOLVER:
            scheduler = type(self.pipe.scheduler).from_config(self.pipe.scheduler.config)
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
        from diffusers.pipelines.wan.pipeline_wan import prompt_clean

        pipe, opts = self.pipe, self.options
        encoder = pipe.text_encoder
        home = encoder.device
        if opts.offload_text_encoder:
            encoder.to(self.device)
        try:
            with torch.no_grad():
                positive, negative = pipe.encode_prompt(
                    prompt=prompt,
                    negative_prompt=opts.negative_prompt,
                    do_classifier_free_guidance=self.guided,
                    max_sequence_length=opts.max_sequence_length,
                    device=self.device,
                )
        finally:
            if opts.offload_text_encoder:
                encoder.to(home)
        tokens = pipe.tokenizer(
            [prompt_clean(prompt)],
            padding="max_length",
            max_length=opts.max_sequence_length,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
        )
        num_tokens = max(int(sum(tokens["attention_mask"][0])), 1)
        pooled = positive[0, :num_tokens].float().mean(dim=0)
        dtype = self.transformer_dtype
        return WanEncoding(
            prompt_embeds=positive.to(dtype),
            negative_embeds=None if negative is None else negative.to(dtype),
            num_tokens=num_tokens,
            pooled=pooled,
        )

    def prompt_embedding(self, cond: Conditioning) -> torch.Tensor:
        """Mean of the positive prompt's text-encoder states over its real tokens, ``[D]``."""
        return cond.data.pooled

    def velocity(
        self, latents: torch.Tensor, timestep: torch.Tensor, sigma: float, cond: Conditioning
    ) -> torch.Tensor:
        """Guided velocity for ``[n, *latent_shape]`` latents, in the transformer's dtype.

        Rows go through the transformer in chunks of at most ``max_batch``; with guidance the
        conditional and unconditional rows share a forward when ``cfg_batched``.
        """
        encoding: WanEncoding = cond.data
        x = latents.to(self.transformer_dtype)
        t = timestep.to(self.device)
        n = x.shape[0]
        limit = self.options.max_batch or n
        if not self.guided:
            return torch.cat([
                self._forward(x[s : s + limit], t, encoding.prompt_embeds)
                for s in range(0, n, limit)
            ])
        g = self.options.guidance_scale
        pieces = []
        if self.options.cfg_batched:
            step = max(limit // 2, 1) if self.options.max_batch is not None else n
            for s in range(0, n, step):
                chunk = x[s : s + step]
                k = chunk.shape[0]
                text = torch.cat([
                    encoding.prompt_embeds.expand(k, -1, -1),
                    encoding.negative_embeds.expand(k, -1, -1),
                ])
                out = self._forward(torch.cat([chunk, chunk]), t, text)
                cond_v, uncond_v = out[:k], out[k:]
                pieces.append(uncond_v + g * (cond_v - uncond_v))
        else:
            for s in range(0, n, limit):
                chunk = x[s : s + limit]
                cond_v = self._forward(chunk, t, encoding.prompt_embeds)
                uncond_v = self._forward(chunk, t, encoding.negative_embeds)
                pieces.append(uncond_v + g * (cond_v - uncond_v))
        return torch.cat(pieces) if len(pieces) > 1 else pieces[0]

    def _forward(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        k = x.shape[0]
        if text.shape[0] != k:
            text = text.expand(k, -1, -1)
        return self.pipe.transformer(
            hidden_states=x,
            timestep=t.expand(k),
            encoder_hidden_states=text,
            return_dict=False,
        )[0]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """De-normalise with the VAE's latent statistics, decode, and return ``[n, F, H, W, 3]``."""
        vae = self.pipe.vae
        z = latents.to(device=vae.device, dtype=vae.dtype)
        channels = int(vae.config.z_dim)
        mean = torch.tensor(vae.config.latents_mean).view(1, channels, 1, 1, 1).to(z.device, z.dtype)
        inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, channels, 1, 1, 1).to(
            z.device, z.dtype
        )
        z = z / inv_std + mean
        step = 1 if self.options.vae_slicing else z.shape[0]
        videos = [vae.decode(z[s : s + step], return_dict=False)[0] for s in range(0, z.shape[0], step)]
        video = torch.cat(videos) if len(videos) > 1 else videos[0]  # [n, 3, F, H, W] in [-1, 1]
        return (video * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 4, 1).float()

    def config_dict(self) -> dict[str, Any]:
        transformer = self.pipe.transformer.config
        model = {
            "num_layers": int(transformer.num_layers),
            "dim": int(transformer.num_attention_heads * transformer.attention_head_dim),
            "transformer_dtype": str(self.transformer_dtype).removeprefix("torch."),
        }
        options = attrs.asdict(self.options)
        if self.options.solver == PIPELINE_SOLVER:
            options["flow_shift"] = None
            scheduler = self.pipe.scheduler
            options["scheduler"] = {"class": type(scheduler).__name__,
                                    **json.loads(scheduler.to_json_string())}
        return {"name": self.name, **options, "model": model, "source": self.source}


# -- checks -----------------------------------------------------------------------------
def _dtype_keyword() -> str:
    """``from_pretrained``'s dtype keyword: ``dtype`` in newer diffusers, ``torch_dtype`` before."""
    try:
        from diffusers.utils import deprecation_utils
    except ImportError:
        return "torch_dtype"
    return "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _check_pipeline(pipe: object) -> None:
    missing = [
        name for name in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
        if getattr(pipe, name, None) is None
    ]
    if missing:
        raise ValueError(
            f"pipe must be a diffusers WanPipeline with all components; "
            f"{type(pipe).__name__} lacks {', '.join(missing)}"
        )
    config = getattr(pipe, "config", {})
    if getattr(pipe, "transformer_2", None) is not None or config.get("boundary_ratio") is not None:
        raise ValueError("two-stage (Wan2.2) pipelines are not supported; pass a Wan2.1 pipeline")
    if config.get("expand_timesteps", False):
        raise ValueError("pipelines with expand_timesteps (Wan2.2 TI2V) are not supported")


def check_checkpoint(path: str | Path) -> Path:
    """The folder of a diffusers-format Wan2.1 text-to-video checkpoint, checked; else a clear error."""
    if not isinstance(path, str | Path):
        raise TypeError(f"model_path must be a path, got {type(path).__name__}: {path!r}")
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"model_path {str(path)!r} does not exist")
    if not root.is_dir():
        raise ValueError(
            f"model_path {str(path)!r} is a file; pass the checkpoint folder holding model_index.json"
        )
    index_file = root / "model_index.json"
    if not index_file.is_file():
        raise ValueError(
            f"model_path {str(path)!r} is not a diffusers Wan checkpoint: it has no model_index.json"
        )
    try:
        index = json.loads(index_file.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"model_path {str(path)!r}: model_index.json is not valid JSON ({error})") from None
    class_name = index.get("_class_name") if isinstance(index, dict) else None
    if class_name != "WanPipeline":
        raise ValueError(
            f"model_path {str(path)!r} is not a Wan2.1 text-to-video checkpoint: model_index.json "
            f"names pipeline {class_name!r}, expected 'WanPipeline'"
        )
    if index.get("transformer_2") not in (None, [None, None]) or index.get("boundary_ratio") is not None:
        raise ValueError(
            f"model_path {str(path)!r} is a two-stage (Wan2.2) checkpoint; only Wan2.1 is supported"
        )
    for component, files in REQUIRED_COMPONENTS.items():
        folder = root / component
        entry = index.get(component)
        if entry in (None, [None, None]) or not folder.is_dir():
            raise ValueError(
                f"Wan checkpoint {str(path)!r} is missing component {component!r} "
                f"(expected folder {component}/ listed in model_index.json)"
            )
        if not any((folder / name).is_file() for name in files):
            raise ValueError(
                f"Wan checkpoint {str(path)!r}: component {component!r} has none of {list(files)}"
            )
        if component in ("transformer", "vae", "text_encoder") and not _has_weights(folder):
            raise ValueError(
                f"Wan checkpoint {str(path)!r}: component {component!r} has no weight files "
                "(*.safetensors or *.bin)"
            )
    return root


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))


# -- tiny random components ---------------------------------------------------------------
#: The tiny tokenizer's vocabulary: special tokens, then common words of video prompts.
TINY_VOCABULARY: tuple[str, ...] = (
    "<pad>", "</s>", "<unk>",
    "a", "an", "the", "of", "in", "on", "at", "with", "and", "through", "over", "under", "into",
    "by", "from", "to", "its", "is", "are", ",", ".",
    "red", "orange", "yellow", "green", "blue", "purple", "pink", "white", "black", "gray",
    "brown", "golden", "silver", "dark", "bright", "colorful",
    "fox", "cat", "dog", "horse", "bird", "fish", "bear", "wolf", "rabbit", "panda", "tiger",
    "lion", "deer", "owl", "eagle", "dragon", "robot", "man", "woman", "child", "people",
    "astronaut", "car", "train", "boat", "ship", "plane", "bicycle", "city", "street", "forest",
    "mountain", "mountains", "river", "lake", "ocean", "sea", "beach", "desert", "field",
    "garden", "sky", "clouds", "sun", "moon", "stars", "rain", "snow", "fire", "water",
    "waves", "night", "sunset", "sunrise", "morning", "winter", "summer", "space", "room",
    "kitchen", "window", "tree", "trees", "flowers", "grass", "road", "bridge", "building",
    "running", "walking", "flying", "swimming", "jumping", "dancing", "playing", "eating",
    "sitting", "standing", "driving", "riding", "surfing", "falling", "floating", "moving",
    "slowly", "quickly", "fresh", "old", "young", "big", "small", "tall", "beautiful",
    "cinematic", "realistic", "close", "up", "shot", "view", "camera", "aerial", "wide",
    "light", "shadow", "reflection", "glowing", "misty", "foggy", "snowy", "rainy", "sunny",
)


def tiny_tokenizer():
    """A word-level tokenizer over :data:`TINY_VOCABULARY`, built in memory (lower-cased,
    split on whitespace and punctuation, ``</s>`` appended as UMT5's tokenizer does)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(TINY_VOCABULARY)}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=4096,
    )


def tiny_pipeline(seed: int = 0) -> WanPipeline:
    """A ``WanPipeline`` of small random components (see :meth:`WanBackend.tiny`), on the CPU."""
    from diffusers import AutoencoderKLWan, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    text_dim = 32
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=text_dim,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    text_config = UMT5Config(
        vocab_size=len(TINY_VOCABULARY),
        d_model=text_dim,
        d_kv=8,
        d_ff=32,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=32,
        dropout_rate=0.0,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    text_encoder = UMT5EncoderModel(text_config)
    generator = torch.Generator().manual_seed(seed)
    for module in (transformer, vae, text_encoder):
        _reinitialise(module, generator)
        module.eval()
    from diffusers import UniPCMultistepScheduler

    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0, solver_order=2
    )
    return WanPipeline(
        tokenizer=tiny_tokenizer(),
        text_encoder=text_encoder,
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
    )


@torch.no_grad()
def _reinitialise(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Redraw every parameter from ``generator`` (so weights depend on the seed alone).

    Parameters that start as all ones (norm scales) stay ones; matrices and kernels get
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (PyTorch's default scale), vectors ``N(0, 0.02)``.
    """
    for _, param in sorted(module.named_parameters()):
        if not param.is_floating_point() or bool((param == 1).all()):
            continue
        if param.dim() >= 2:
            bound = 1.0 / math.sqrt(max(param[0].numel(), 1))
            fresh = (torch.rand(param.shape, generator=generator) * 2 - 1) * bound
        else:
            fresh = 0.02 * torch.randn(param.shape, generator=generator)
        param.copy_(fresh.to(param.dtype))
