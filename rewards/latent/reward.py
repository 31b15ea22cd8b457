"""``LatentRewardModel``: the latent reward network as a searchkit :class:`~searchkit.reward.Reward`.

A trainable reward in the paper's dimensions that scores a (noisy) latent at any noise
level, for any prompt (the network: :mod:`searchkit.rewards.latent.network`). Its input
(``"latent"``: the noisy ``x_t`` with its own ``sigma``; ``"x0"``: the one-step prediction
with the ``sigma`` it was predicted at) is fixed at construction and recorded in its config.
Prompts are embedded with :meth:`Backend.prompt_embedding
<searchkit.backend.Backend.prompt_embedding>` and cached per prompt. Scores are in reward
units: the network's normalised output times the training targets' standard deviation plus
their mean (the final reward scaled by ``s_t``, the training target).

Checkpoints: :meth:`LatentRewardModel.save_pretrained` and
:meth:`LatentRewardModel.from_pretrained` (format and checks:
:mod:`searchkit.rewards.latent.checkpoint`); loading also checks the backend's channel count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from searchkit.backend import Backend, Conditioning
from searchkit.errors import InputError
from searchkit.flops import FlopCache, count_flops, meta_copy, meta_empty
from searchkit.reward import Reward, RewardBatch
from searchkit.rewards.latent import checkpoint
from searchkit.rewards.latent.network import LatentRewardConfig, LatentRewardNet, build_net


class LatentRewardModel(Reward):
    """A trainable latent reward in the paper's dimensions, conditioned on noise level and prompt.

    Build a fresh (untrained) model with :meth:`for_backend` or ``LatentRewardModel(config,
    backend)``, train it with :func:`searchkit.rewards.latent.train`, load a trained one with
    :meth:`from_pretrained`. As a reward it reads ``config.input`` and returns ``[n, dims]``
    scores in reward units.
    """

    name = "latent-reward-model"

    def __init__(
        self,
        config: LatentRewardConfig,
        backend: Backend | None = None,
        *,
        generator: torch.Generator | None = None,
        net: LatentRewardNet | None = None,
    ) -> None:
        if not isinstance(config, LatentRewardConfig):
            raise TypeError(f"config must be a LatentRewardConfig, got {type(config).__name__}")
        if backend is not None and not isinstance(backend, Backend):
            raise TypeError(f"backend must be a searchkit Backend, got {type(backend).__name__}")
        self.config = config
        self.input = config.input
        self.dimensions = tuple(config.dimensions)
        self.net = net if net is not None else build_net(config, generator)
        self.net.eval()
        self.backend = None
        self._text_cache: dict[str, torch.Tensor] = {}
        self._flops = FlopCache()
        #: JSON-able metadata saved beside the config (e.g. the training split).
        self.extra: dict[str, Any] = {}
        if backend is not None:
            self.attach(backend)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def for_backend(
        cls,
        backend: Backend,
        *,
        input: str = "latent",
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> LatentRewardModel:
        """A fresh model sized for ``backend`` (channels, prompt-embedding length, token grid).

        A ``patch_size`` larger than the backend's latents (frames, height, width) on any side
        is refused: every token would be mostly padding.
        """
        patch = options.get("patch_size", LatentRewardConfig.__attrs_attrs__.patch_size.default)
        shape = tuple(int(s) for s in backend.latent_shape[1:])
        fits = not isinstance(patch, tuple | list) or len(patch) != len(shape)
        if not fits and any(int(p) > s for p, s in zip(patch, shape, strict=True)):
            raise InputError(
                f"patch_size {tuple(patch)} is larger than the latents of backend "
                f"{backend.name!r}: (frames, height, width) = {shape}; each side of the "
                "patch must be at most the latent's"
            )
        text_dim = int(backend.prompt_embedding(backend.encode("")).numel())
        if "position_grid" not in options:
            patch = tuple(patch)
            options["position_grid"] = tuple(
                -(-int(s) // int(p)) for s, p in zip(shape, patch, strict=True)
            )
        config = LatentRewardConfig(
            in_channels=int(backend.latent_shape[0]), text_dim=text_dim, input=input, **options
        )
        return cls(config, backend, generator=generator)

    @classmethod
    def build(cls, backend: Backend, path: str | None = None, **options: Any) -> LatentRewardModel:
        """For the CLI and builders: ``--reward latent-reward-model --reward-opt path=FOLDER``.

        Args:
            path: a folder written by ``searchkit reward train`` (or :meth:`save_pretrained`).
            input: what the model was trained to read, ``latent`` or ``x0``: checked against
                its saved config (it cannot change at load time).
            expect: config field -> value pairs the saved config must hold (checked, not set).
        """
        if path is None:
            raise ValueError(
                "latent-reward-model needs path=FOLDER, a trained model "
                "(train one with `searchkit reward train`)"
            )
        return cls.from_pretrained(path, backend, **options)

    def attach(self, backend: Backend) -> None:
        """Use ``backend`` for prompt embeddings; its latent channels must match the config."""
        channels = int(backend.latent_shape[0])
        if channels != self.config.in_channels:
            shape = tuple(int(s) for s in backend.latent_shape)
            built = (self.config.in_channels, "F", "H", "W")
            raise InputError(
                f"backend {backend.name!r} has {channels} latent channels (latents of shape "
                f"{shape}), but the latent reward model was built for in_channels="
                f"{self.config.in_channels} (latents of shape ({', '.join(map(str, built))})); "
                f"build the backend with {self.config.in_channels} channels or train a model "
                "for this one"
            )
        self.backend = backend
        self._text_cache.clear()

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> LatentRewardModel:
        """Move the network (e.g. to the backend's GPU); scores come back on that device."""
        self.net.to(device=device, dtype=dtype)
        return self

    @property
    def is_differentiable(self) -> bool:
        return True

    @property
    def latent_shape(self) -> tuple[int | None, ...]:
        """``(in_channels, any, any, any)``: the position tables resample to any latent size."""
        return (self.config.in_channels, None, None, None)

    # -- scoring -----------------------------------------------------------------------------
    def text_embedding(self, cond: Conditioning) -> torch.Tensor:
        """The backend's prompt embedding ``[text_dim]`` (cached per prompt)."""
        cached = self._text_cache.get(cond.prompt)
        if cached is not None:
            return cached
        if self.backend is None:
            raise ValueError(
                "the latent reward model has no backend; pass backend= or call attach()"
            )
        emb = self.backend.prompt_embedding(cond).detach().float().reshape(-1).cpu()
        if emb.numel() != self.config.text_dim:
            raise ValueError(
                f"backend {self.backend.name!r} gives prompt embeddings of length {emb.numel()}, "
                f"but the model was built for text_dim={self.config.text_dim}"
            )
        self._text_cache[cond.prompt] = emb
        return emb

    def predict(
        self,
        latents: torch.Tensor,
        sigma: torch.Tensor,
        text: torch.Tensor,
        *,
        normalized: bool = False,
    ) -> torch.Tensor:
        """Scores ``[n, dims]`` of ``latents [n, C, F, H, W]`` at noise levels ``sigma [n]``.

        ``text`` is ``[text_dim]`` or ``[n, text_dim]``. ``normalized=True`` returns the
        network's raw outputs (training units).
        """
        if latents.dim() != 5 or latents.shape[1] != self.config.in_channels:
            raise ValueError(
                f"latents must have shape [n, {self.config.in_channels}, F, H, W], got {list(latents.shape)}"
            )
        n = latents.shape[0]
        param = next(self.net.parameters())
        latents = latents.to(device=param.device, dtype=param.dtype)
        sigma = torch.as_tensor(sigma, dtype=param.dtype, device=param.device).reshape(-1)
        if sigma.numel() == 1 and n > 1:
            sigma = sigma.expand(n)
        if sigma.numel() != n:
            raise ValueError(f"sigma must hold 1 or {n} values, got {sigma.numel()}")
        text = text.to(device=param.device, dtype=param.dtype)
        if text.dim() == 1:
            text = text[None].expand(n, -1)
        if text.shape != (n, self.config.text_dim):
            raise ValueError(
                f"text must have shape [{n}, {self.config.text_dim}], got {list(text.shape)}"
            )
        out = self.net(latents, sigma, text)
        if normalized:
            return out
        return out * self.net.target_std + self.net.target_mean

    def score(self, batch: RewardBatch) -> torch.Tensor:
        text = self.text_embedding(batch.conditioning)
        was_training = self.net.training
        self.net.eval()
        try:
            return self.predict(batch.data, batch.sigma, text).float()
        finally:
            self.net.train(was_training)

    def flops(self, batch: RewardBatch) -> float | None:
        """FLOPs of scoring ``batch``: the network counted on the meta device, once per shape."""
        shape = tuple(batch.data.shape)
        return self._flops.get(shape, lambda: self._count_flops(shape))

    def _count_flops(self, shape: tuple[int, ...]) -> int:
        net = meta_copy(self.net).eval()
        dtype = next(net.parameters()).dtype
        n = shape[0]
        latents, sigma = meta_empty(shape, dtype), meta_empty((n,), dtype)
        text = meta_empty((n, self.config.text_dim), dtype)
        return count_flops(lambda: net(latents, sigma, text))

    def config_dict(self) -> dict:
        return {**super().config_dict(), "config": self.config.to_dict()}

    # -- checkpoints ---------------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``folder``; returns the folder.

        ``extra`` (JSON-able) is stored beside the config, e.g. the training split.
        """
        return checkpoint.save_checkpoint(folder, self.net, extra)

    @staticmethod
    def read_config(folder: str | Path) -> tuple[LatentRewardConfig, dict[str, Any]]:
        """The config and ``extra`` of a saved model; clear errors for a bad or missing file."""
        return checkpoint.read_config(folder)

    @classmethod
    def from_pretrained(
        cls,
        folder: str | Path,
        backend: Backend | None = None,
        *,
        input: str | None = None,
        expect: dict[str, Any] | None = None,
    ) -> LatentRewardModel:
        """Load a model saved by :meth:`save_pretrained`.

        ``input`` and ``expect`` (config field -> value) are checked against the saved
        config: a trained model's input and architecture cannot be changed at load time.
        Every tensor of the weights file must exist with the shape the config implies.
        """
        wanted = dict(expect or {})
        if input is not None:
            wanted["input"] = input
        net, extra = checkpoint.load_checkpoint(folder, wanted)
        model = cls(net.config, backend, net=net)
        model.extra = extra
        return model
