"""The Wan family as an adapter over the common diffusers backend.

:class:`WanBackend` is :class:`~searchkit.backends.common.DiffusersBackend` plus what is Wan's
own, each step matching ``WanPipeline.__call__``:

* encoding: the pipeline's ``encode_prompt`` (UMT5 states padded to ``max_sequence_length``);
* the forward: ``transformer(hidden_states, timestep, encoder_hidden_states)`` with the
  timestep per sample, or, for Wan2.2 TI2V-5B (``expand_timesteps``), per latent token
  (``t`` on every token of the patchified latent, as the pipeline builds it in
  text-to-video mode);
* experts: Wan2.2 T2V-A14B's high-noise ``transformer`` takes the timesteps
  ``t >= boundary_ratio * num_train_timesteps`` with ``guidance_scale``, the low-noise
  ``transformer_2`` the others with ``guidance_scale_2`` (default ``guidance_scale``);
  guidance runs when ``guidance_scale > 1``, for both experts, as in the pipeline. A
  pipeline without ``transformer`` runs ``transformer_2`` alone, as ``WanPipeline`` does:
  every step must then fall below the boundary (``boundary_ratio=1.0`` puts all UniPC and
  DPM-Solver steps there), which is checked when the backend is built, naming the first
  step that does not;
* decoding: the de-normalisation ``z / (1 / std) + mean`` with the VAE's ``latents_mean``
  and ``latents_std`` (16 channels for Wan2.1 and A14B, 48 for TI2V-5B, whose VAE also
  un-patchifies 2x2 pixels), then ``[-1, 1]`` to ``[0, 1]`` as diffusers' video processor
  does, returning frames ``[n, F, H, W, 3]``.

The latent is ``(C, (F - 1) / 4 + 1, H / s, W / s)`` with ``C`` the transformer's input
channels and ``s`` the VAE's spatial factor (8, or 16 for TI2V-5B, whose sizes are then
multiples of 32).
"""

from __future__ import annotations

from typing import Any

import torch

from searchkit.backends.common import DiffusersBackend
from searchkit.backends.common.family import Expert
from searchkit.backends.wan.checkpoint import LAYOUT, check_checkpoint, check_pipeline
from searchkit.backends.wan.encoding import WanEncoding, encode_prompt
from searchkit.backends.wan.flops import WanFlops
from searchkit.backends.wan.options import WanOptions
from searchkit.backends.wan.tiny import TINY_SIZE, tiny_pipeline


class WanBackend(DiffusersBackend):
    """The Wan text-to-video family (Wan2.1 1.3B/14B, Wan2.2 TI2V-5B and T2V-A14B) behind the
    searchkit backend interface.

    ``dtype`` is the dtype of the latents the context holds (float32, as in the pipeline);
    the transformers' weights may be lower precision (:attr:`transformer_dtype`).
    """

    name = "wan"
    options_class = WanOptions
    layout = LAYOUT
    pipeline_class_name = "WanPipeline"
    vae_class_name = "AutoencoderKLWan"
    tiny_size = TINY_SIZE
    cast_components = ("transformer", "transformer_2", "text_encoder")

    # -- checkpoint and pipeline ---------------------------------------------------------
    @classmethod
    def check_checkpoint(cls, path):
        return check_checkpoint(path)

    @classmethod
    def check_pipeline(cls, pipe: Any) -> None:
        check_pipeline(pipe)

    @classmethod
    def tiny_pipeline(cls, seed: int = 0, variant: str | None = None):
        return tiny_pipeline(seed=seed, variant=variant)

    def _configure(self) -> None:
        pipe, opts = self._pipe, self.options
        vae_config = pipe.vae.config
        self._temporal = int(getattr(vae_config, "scale_factor_temporal", 4) or 4)
        self._spatial = int(getattr(vae_config, "scale_factor_spatial", 8) or 8)
        self._patch = tuple(self._denoiser().config.patch_size)
        self._expand_timesteps = bool(pipe.config.get("expand_timesteps", False))
        multiple_h, multiple_w = self._spatial * self._patch[1], self._spatial * self._patch[2]
        if opts.height % multiple_h or opts.width % multiple_w:
            raise ValueError(
                f"height and width must be multiples of ({multiple_h}, {multiple_w}) for this "
                f"model, got height={opts.height}, width={opts.width}"
            )
        if (opts.num_frames - 1) % self._temporal:
            raise ValueError(
                f"num_frames must be {self._temporal}k+1 for this model, got {opts.num_frames}"
            )
        if opts.guidance_scale_2 is not None and pipe.config.get("boundary_ratio") is None:
            raise ValueError(
                f"guidance_scale_2={opts.guidance_scale_2} applies to two-expert (Wan2.2 A14B) "
                "models only; this pipeline has one transformer"
            )

    def _make_experts(self) -> tuple[Expert, ...]:
        pipe, opts = self._pipe, self.options
        ratio = pipe.config.get("boundary_ratio")
        if ratio is None:
            return (Expert("transformer", pipe.transformer, opts.guidance_scale),)
        boundary = ratio * pipe.scheduler.config.num_train_timesteps
        second = opts.guidance_scale if opts.guidance_scale_2 is None else opts.guidance_scale_2
        if pipe.transformer is None:  # the low-noise expert alone, below the boundary
            return (Expert("transformer_2", pipe.transformer_2, second, below=boundary),)
        return (
            Expert("transformer", pipe.transformer, opts.guidance_scale, boundary),
            Expert("transformer_2", pipe.transformer_2, second),
        )

    def _denoiser(self) -> Any:
        pipe = self._pipe
        return pipe.transformer if pipe.transformer is not None else pipe.transformer_2

    def refresh_placement(self) -> None:
        super().refresh_placement()
        if self._pipe.transformer is None:
            self._check_low_noise_steps()

    def _check_low_noise_steps(self) -> None:
        """Without ``transformer`` every step must fall below the boundary, where
        ``transformer_2`` takes it; refused here, before any compute, naming the first step
        at or above it (``WanPipeline`` would fail at that step)."""
        boundary = self._experts[0].below
        timesteps = self.make_scheduler().timesteps
        for step, t in enumerate(timesteps):
            if t >= boundary:
                ratio = self._pipe.config.get("boundary_ratio")
                raise ValueError(
                    f"step {step} of {len(timesteps)} runs at timestep {float(t):g}, at or "
                    f"above the boundary {boundary:g} (boundary_ratio {ratio} x "
                    f"{self._pipe.scheduler.config.num_train_timesteps}); this WanPipeline has "
                    "no transformer (the high-noise expert) and transformer_2 takes only "
                    "timesteps below the boundary: load the pipeline with its transformer, or "
                    "raise boundary_ratio until every step is below it (1.0 does for the "
                    "unipc and sde-dpmsolver++ schedules, which start at 999; euler's starts "
                    "at 1000)"
                )

    # -- the family's step ---------------------------------------------------------------
    @property
    def latent_shape(self) -> tuple[int, ...]:
        opts = self.options
        return (
            int(self._denoiser().config.in_channels),
            (opts.num_frames - 1) // self._temporal + 1,
            opts.height // self._spatial,
            opts.width // self._spatial,
        )

    def _encode(self, prompt: str) -> WanEncoding:
        return encode_prompt(
            self._pipe, prompt, self.options, device=self._device, dtype=self._transformer_dtype
        )

    def _call_model(
        self, model: Any, x: torch.Tensor, t: torch.Tensor, text: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        k = x.shape[0]
        if self._expand_timesteps:
            # one timestep per token of the patchified latent (all equal in text-to-video)
            frames, height, width = x.shape[2:]
            tokens = torch.ones((frames, height, width), dtype=torch.float32, device=x.device)[
                :, :: self._patch[1], :: self._patch[2]
            ]
            timestep = (tokens * t).flatten().unsqueeze(0).expand(k, -1)
        else:
            timestep = t.expand(k)
        return model(
            hidden_states=x,
            timestep=timestep,
            encoder_hidden_states=text["encoder_hidden_states"],
            return_dict=False,
        )[0]

    # -- FLOPs ---------------------------------------------------------------------------
    @property
    def _flops(self) -> WanFlops:
        if getattr(self, "_flop_counts", None) is None:
            self._flop_counts = WanFlops(self._pipe, self.latent_shape, self.options)
        return self._flop_counts

    def forward_flops(self, batch: int) -> float | None:
        """FLOPs of one transformer forward over ``batch`` latents (meta-device count, cached;
        both experts of a two-expert model have one architecture, so the first is counted)."""
        return self._flops.forward(batch)

    def decode_flops(self, n: int) -> float | None:
        """FLOPs of decoding ``n`` latents (meta-device count of the VAE decoder, cached)."""
        return self._flops.decode(n)

    def _decode_chunk(self, z: torch.Tensor) -> torch.Tensor:
        vae = self._pipe.vae
        device = self._device if self.options.cpu_offload else vae.device
        mean, inv_std = self._latent_statistics(device, vae.dtype)
        z = z.to(device=device, dtype=vae.dtype)
        video = vae.decode(z / inv_std + mean, return_dict=False)[0]  # [k, 3, F, H, W] in [-1, 1]
        if torch.is_grad_enabled():
            video = (video * 0.5 + 0.5).clamp(0, 1)
        else:  # the same arithmetic in place: no copies of the frames
            video = video.mul_(0.5).add_(0.5).clamp_(0, 1)
        return video.permute(0, 2, 3, 4, 1).float()

    def _latent_statistics(
        self, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The VAE's latent mean and inverse std ``[1, C, 1, 1, 1]``, kept per device and dtype."""
        cached = getattr(self, "_statistics", None)
        if cached is not None and cached[0] == (device, dtype):
            return cached[1]
        config = self._pipe.vae.config
        shape = (1, int(config.z_dim), 1, 1, 1)
        mean = torch.tensor(config.latents_mean).view(shape).to(device, dtype)
        inv_std = 1.0 / torch.tensor(config.latents_std).view(shape).to(device, dtype)
        self._statistics = ((device, dtype), (mean, inv_std))
        return mean, inv_std

    def _model_summary(self) -> dict[str, Any]:
        transformer = self._denoiser().config
        return {
            "num_layers": int(transformer.num_layers),
            "dim": int(transformer.num_attention_heads * transformer.attention_head_dim),
            "transformer_dtype": str(self.transformer_dtype).removeprefix("torch."),
            "latent_channels": int(transformer.in_channels),
            "vae_spatial_factor": self._spatial,
        }
