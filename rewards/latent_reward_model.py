"""A small latent reward model: scores a (noisy) latent at any noise level, for any prompt.

The LatSearch paper scores partially denoised latents with a 2.3-billion-parameter
vision-language model conditioned on five discrete step labels. This is a network of our
own, small enough to cost a negligible share of one denoising step, conditioned on the
*continuous* noise level so that any step of any schedule can be scored::

    x [n, C, F, H, W] ─► Conv3d patch embedding (kernel = stride = patch) ─► tokens [n, T, W]
                          + learned position table (resampled to the token grid)
    c = MLP(sinusoidal(1000 * sigma)) + MLP(prompt embedding)          conditioning [n, W]
    depth x { h += DepthwiseConv3d(film(h, c)) ; h += MLP(film(h, c)) }   film: h * (1 + a) + b
    r = sum_t <R_t, patch_t> / T          linear readouts of the raw patches (R: a learned table)
    pooled = [r * (1 + A c), mean_t(film(h_t, c)), c]
    one MLP head per dimension (VQ, MQ, TA) ─► [n, dims]  (in reward units: * std + mean)

The linear readouts let the model read position-dependent linear functionals of the latent
(a fixed "quality direction", a prompt's target layout) while staying defined for any
latent size: the position and readout tables live on a reference token grid (the backend's
own when built with :meth:`LatentRewardModel.for_backend`) and are resampled
trilinearly for other sizes.

The model is a :class:`~searchkit.reward.Reward` whose input (``"latent"``: the noisy
``x_t`` with its own ``sigma``; ``"x0"``: the one-step prediction with the ``sigma`` it was
predicted at) is fixed at construction and recorded in its config. Prompts are embedded
with :meth:`Backend.prompt_embedding`. Checkpoints are a folder with ``config.json`` and
``model.safetensors`` (:meth:`LatentRewardModel.save_pretrained` /
:meth:`LatentRewardModel.from_pretrained`); loading checks the config, every tensor's
name and shape, and the backend's channel count, and names what does not match.

Deviation from the paper: continuous noise-level conditioning instead of step labels, a
compact convolutional network instead of a VLM backbone, prompt conditioning through the
backend's prompt embedding rather than the VLM's own text encoder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import attrs
import torch
from attrs import validators as v
from torch import nn

from searchkit.backend import Backend, Conditioning
from searchkit.reward import Reward, RewardBatch

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "searchkit-latent-reward-model"
FORMAT_VERSION = 1
MODEL_INPUTS: tuple[str, ...] = ("latent", "x0")


def _positive_int():
    return [v.instance_of(int), v.gt(0)]


def _to_tuple(value: Any) -> tuple:
    return tuple(value) if isinstance(value, list | tuple) else value


def _check_patch(_inst: Any, attribute: attrs.Attribute, value: tuple) -> None:
    if (
        not isinstance(value, tuple)
        or len(value) != 3
        or not all(isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in value)
    ):
        raise ValueError(f"{attribute.name} must be three positive integers (f, h, w), got {value!r}")


def _check_dimensions(_inst: Any, attribute: attrs.Attribute, value: tuple) -> None:
    if (
        not isinstance(value, tuple)
        or not value
        or not all(isinstance(d, str) and d for d in value)
        or len(set(value)) != len(value)
    ):
        raise ValueError(f"{attribute.name} must be distinct non-empty names, got {value!r}")


def _check_even(_inst: Any, attribute: attrs.Attribute, value: int) -> None:
    if value % 2:
        raise ValueError(f"{attribute.name} must be even, got {value!r}")


@attrs.frozen
class LatentRewardConfig:
    """Architecture and interface of a :class:`LatentRewardModel` (saved as ``config.json``).

    Args:
        in_channels: latent channels ``C`` (16 for Wan2.1).
        text_dim: length of the backend's prompt embedding.
        input: ``"latent"`` (score ``x_t``) or ``"x0"`` (score the predicted clean latent).
        dimensions: output heads, in column order (the paper's ``VQ``, ``MQ``, ``TA``).
        patch_size: 3-D patch ``(f, h, w)`` of the embedding.
        width: token width.
        depth: number of conditioned blocks.
        noise_features: sinusoidal features of the noise level (even).
        readouts: number of linear readouts (position-dependent linear functionals of the
            raw latent, read before any normalisation).
        position_grid: token grid of the learned position and readout tables (for_backend sets
            the backend's own); other grids are resampled trilinearly.
        mixing_kernel: kernel of the depthwise spatio-temporal convolution (odd).
    """

    in_channels: int = attrs.field(validator=_positive_int())
    text_dim: int = attrs.field(validator=_positive_int())
    input: str = attrs.field(default="latent", validator=v.in_(MODEL_INPUTS))
    dimensions: tuple[str, ...] = attrs.field(
        default=("VQ", "MQ", "TA"), converter=_to_tuple, validator=_check_dimensions
    )
    patch_size: tuple[int, int, int] = attrs.field(
        default=(1, 2, 2), converter=_to_tuple, validator=_check_patch
    )
    width: int = attrs.field(default=64, validator=_positive_int())
    depth: int = attrs.field(default=2, validator=[v.instance_of(int), v.ge(0)])
    noise_features: int = attrs.field(default=32, validator=[*_positive_int(), _check_even])
    readouts: int = attrs.field(default=16, validator=_positive_int())
    position_grid: tuple[int, int, int] = attrs.field(
        default=(8, 16, 16), converter=_to_tuple, validator=_check_patch
    )
    mixing_kernel: int = attrs.field(default=3, validator=_positive_int())

    def __attrs_post_init__(self) -> None:
        if self.mixing_kernel % 2 != 1:
            raise ValueError(f"mixing_kernel must be odd, got {self.mixing_kernel!r}")

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, value_serializer=lambda _i, _f, x: list(x) if isinstance(x, tuple) else x)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatentRewardConfig:
        if not isinstance(data, dict):
            raise ValueError(f"config must be a JSON object, got {type(data).__name__}")
        known = {a.name for a in attrs.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


def sinusoidal_features(values: torch.Tensor, size: int, scale: float = 1000.0) -> torch.Tensor:
    """``[n] -> [n, size]``: sin/cos of ``scale * values`` at geometric frequencies."""
    half = size // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    angles = scale * values.float()[:, None] * freqs.to(values.device)[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.SiLU(), nn.Linear(d_hidden, d_out))


class _Block(nn.Module):
    """Depthwise spatio-temporal mixing and a token MLP, each behind a FiLM modulation.

    No normalisation: rewards depend on magnitudes (energies, projections) that a per-token
    LayerNorm would erase.
    """

    def __init__(self, width: int, kernel: int) -> None:
        super().__init__()
        self.mix = nn.Conv3d(width, width, kernel, padding=kernel // 2, groups=width)
        self.mlp = _mlp(width, 2 * width, width)
        self.modulation = nn.Linear(width, 4 * width)

    def forward(self, h: torch.Tensor, c: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        # h: [n, T, W]; c: [n, W]
        scale1, shift1, scale2, shift2 = self.modulation(c)[:, None].chunk(4, dim=-1)
        n, t, w = h.shape
        x = h * (1 + scale1) + shift1
        x = self.mix(x.transpose(1, 2).reshape(n, w, *grid)).reshape(n, w, t).transpose(1, 2)
        h = h + x
        return h + self.mlp(h * (1 + scale2) + shift2)


class LatentRewardNet(nn.Module):
    """The network behind :class:`LatentRewardModel`; outputs are in normalised units."""

    def __init__(self, config: LatentRewardConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.patch = nn.Conv3d(config.in_channels, w, config.patch_size, stride=config.patch_size)
        # Learned tables over a reference token grid, resampled (trilinear) to other grids.
        self.position = nn.Parameter(torch.zeros(w, *config.position_grid))
        patch_dim = config.in_channels * math.prod(config.patch_size)
        self.readout = nn.Parameter(torch.zeros(config.readouts * patch_dim, *config.position_grid))
        self.noise = _mlp(config.noise_features, w, w)
        self.text = _mlp(config.text_dim, w, w)
        self.blocks = nn.ModuleList(_Block(w, config.mixing_kernel) for _ in range(config.depth))
        self.out_modulation = nn.Linear(w, 2 * w)
        self.readout_modulation = nn.Linear(w, config.readouts)
        self.heads = nn.ModuleList(_mlp(2 * w + config.readouts, w, 1) for _ in config.dimensions)
        # Reward units: prediction = output * target_std + target_mean (set by training).
        dims = len(config.dimensions)
        self.register_buffer("target_mean", torch.zeros(dims))
        self.register_buffer("target_std", torch.ones(dims))

    def forward(self, latents: torch.Tensor, sigma: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Normalised scores ``[n, dims]`` of ``latents [n, C, F, H, W]`` at ``sigma [n]``."""
        cfg = self.config
        pads = [(-s) % p for s, p in zip(latents.shape[2:], cfg.patch_size, strict=True)]
        if any(pads):
            latents = nn.functional.pad(latents, (0, pads[2], 0, pads[1], 0, pads[0]))
        tokens = self.patch(latents)  # [n, W, f, h, w]
        grid = tuple(int(s) for s in tokens.shape[2:])
        h = tokens.flatten(2).transpose(1, 2)  # [n, T, W]
        h = h + self._table(self.position, grid)[None]
        # Linear readouts: a position-dependent linear functional of the raw patches.
        n, c_in = latents.shape[:2]
        pf, ph, pw = cfg.patch_size
        patches = latents.reshape(n, c_in, grid[0], pf, grid[1], ph, grid[2], pw)
        patches = patches.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(n, math.prod(grid), -1)  # [n, T, P]
        weights = self._table(self.readout, grid).reshape(patches.shape[1], cfg.readouts, -1)
        readouts = torch.einsum("ntp,tkp->nk", patches, weights) / patches.shape[1]
        c = self.noise(sinusoidal_features(sigma, cfg.noise_features).to(h.dtype)) + self.text(text)
        for block in self.blocks:
            h = block(h, c, grid)
        readouts = readouts * (1 + self.readout_modulation(c))  # prompt-dependent selection
        scale, shift = self.out_modulation(c)[:, None].chunk(2, dim=-1)
        plain = (h * (1 + scale) + shift).mean(dim=1)
        pooled = torch.cat([readouts, plain, c], dim=1)
        return torch.cat([head(pooled) for head in self.heads], dim=1)

    @staticmethod
    def _table(table: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        if tuple(table.shape[1:]) != grid:
            table = nn.functional.interpolate(table[None], size=grid, mode="trilinear", align_corners=False)[0]
        return table.flatten(1).transpose(0, 1)

    def init_weights(self, generator: torch.Generator) -> None:
        """Deterministic initialisation from ``generator`` (no global random state)."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Conv3d):
                fan_in = module.weight[0].numel()
                with torch.no_grad():
                    module.weight.copy_(
                        torch.randn(module.weight.shape, generator=generator) / math.sqrt(fan_in)
                    )
                    if module.bias is not None:
                        module.bias.zero_()
        # Modulations start as identity (adaLN-zero style).
        with torch.no_grad():
            self.position.copy_(0.02 * torch.randn(self.position.shape, generator=generator))
            self.readout.copy_(torch.randn(self.readout.shape, generator=generator)
                               / math.sqrt(self.readout.shape[0]))
            for block in self.blocks:
                block.modulation.weight.zero_()
            self.out_modulation.weight.zero_()
            self.readout_modulation.weight.zero_()


def _build_net(config: LatentRewardConfig, generator: torch.Generator | None) -> LatentRewardNet:
    with torch.device("meta"):
        net = LatentRewardNet(config)
    net = net.to_empty(device="cpu")
    net.target_mean.zero_()
    net.target_std.fill_(1.0)
    net.init_weights(generator if generator is not None else torch.Generator().manual_seed(0))
    return net


class LatentRewardModel(Reward):
    """A trainable latent reward in the paper's dimensions, conditioned on noise level and prompt.

    Build a fresh (untrained) model with :meth:`for_backend` or ``LatentRewardModel(config,
    backend)``, train it with :func:`searchkit.rewards.latent_train.train`, load a trained
    one with :meth:`from_pretrained`. As a reward it reads ``config.input`` and returns
    ``[n, dims]`` scores in reward units (the final reward scaled by ``s_t``, the
    training target).
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
        self.net = net if net is not None else _build_net(config, generator)
        self.net.eval()
        self.backend = None
        self._text_cache: dict[str, torch.Tensor] = {}
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
        """A fresh model sized for ``backend`` (channels and prompt-embedding length)."""
        text_dim = int(backend.prompt_embedding(backend.encode("")).numel())
        if "position_grid" not in options:
            patch = tuple(options.get("patch_size", LatentRewardConfig.__attrs_attrs__.patch_size.default))
            shape = backend.latent_shape[1:]
            options["position_grid"] = tuple(-(-int(s) // int(p)) for s, p in zip(shape, patch, strict=True))
        config = LatentRewardConfig(
            in_channels=int(backend.latent_shape[0]), text_dim=text_dim, input=input, **options
        )
        return cls(config, backend, generator=generator)

    @classmethod
    def build(cls, backend: Backend, path: str | None = None, **options: Any) -> LatentRewardModel:
        """For the CLI and builders: ``--reward latent-reward-model --reward-opt path=FOLDER``."""
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
            raise ValueError(
                f"backend {backend.name!r} has {channels} latent channels, but the latent reward "
                f"model was built for in_channels={self.config.in_channels}"
            )
        self.backend = backend
        self._text_cache.clear()

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> LatentRewardModel:
        """Move the network (e.g. to the backend's GPU); scores come back on that device."""
        self.net.to(device=device, dtype=dtype)
        return self

    @property
    def is_differentiable(self) -> bool:
        return True

    # -- scoring -----------------------------------------------------------------------------
    def text_embedding(self, cond: Conditioning) -> torch.Tensor:
        """The backend's prompt embedding ``[text_dim]`` (cached per prompt)."""
        cached = self._text_cache.get(cond.prompt)
        if cached is not None:
            return cached
        if self.backend is None:
            raise ValueError("the latent reward model has no backend; pass backend= or call attach()")
        emb = self.backend.prompt_embedding(cond).detach().float().reshape(-1).cpu()
        if emb.numel() != self.config.text_dim:
            raise ValueError(
                f"backend {self.backend.name!r} gives prompt embeddings of length {emb.numel()}, "
                f"but the model was built for text_dim={self.config.text_dim}"
            )
        self._text_cache[cond.prompt] = emb
        return emb

    def predict(
        self, latents: torch.Tensor, sigma: torch.Tensor, text: torch.Tensor, *, normalized: bool = False
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
            raise ValueError(f"text must have shape [{n}, {self.config.text_dim}], got {list(text.shape)}")
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

    def config_dict(self) -> dict:
        return {**super().config_dict(), "config": self.config.to_dict()}

    # -- checkpoints ---------------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``folder``; returns the folder.

        ``extra`` (JSON-able) is stored beside the config, e.g. the training split.
        """
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: t.detach().cpu().contiguous() for k, t in self.net.state_dict().items()}
        tmp = folder / (WEIGHTS_NAME + ".tmp")
        save_file(state, str(tmp), metadata={"format": FORMAT})
        tmp.replace(folder / WEIGHTS_NAME)
        payload = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "extra": extra or {},
        }
        tmp = folder / (CONFIG_NAME + ".tmp")
        tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        tmp.replace(folder / CONFIG_NAME)
        return folder

    @staticmethod
    def read_config(folder: str | Path) -> tuple[LatentRewardConfig, dict[str, Any]]:
        """The config and ``extra`` of a saved model; clear errors for a bad or missing file."""
        path = Path(folder) / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no latent reward model config at {path}")
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not valid JSON (corrupt file?): {error}") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} config (format field {payload.get('format')!r})"
                             if isinstance(payload, dict) else f"{path} must hold a JSON object")
        if payload.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path} has version {payload.get('version')!r}; this code reads {FORMAT_VERSION}")
        try:
            config = LatentRewardConfig.from_dict(payload.get("config"))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: invalid config: {error}") from None
        return config, payload.get("extra") or {}

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
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder)
        config, extra = cls.read_config(folder)
        wanted = dict(expect or {})
        if input is not None:
            wanted["input"] = input
        for key, value in wanted.items():
            if not hasattr(config, key):
                raise ValueError(f"expect names unknown config field {key!r}")
            saved = getattr(config, key)
            if _to_tuple(value) != saved:
                raise ValueError(
                    f"config mismatch in {folder / CONFIG_NAME}: {key} is {saved!r}, expected {value!r}"
                )
        path = folder / WEIGHTS_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no latent reward model weights at {path}")
        try:
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as error:
            raise ValueError(f"cannot read {path} (corrupt or truncated safetensors file): {error}") from None
        net = _build_net(config, torch.Generator().manual_seed(0))
        reference = net.state_dict()
        missing = sorted(set(reference) - set(state))
        unexpected = sorted(set(state) - set(reference))
        if missing or unexpected:
            raise ValueError(
                f"{path} does not match its config: missing tensors {missing[:5]}"
                f"{'...' if len(missing) > 5 else ''}, unexpected tensors {unexpected[:5]}"
                f"{'...' if len(unexpected) > 5 else ''}"
            )
        for key, tensor in reference.items():
            if tuple(state[key].shape) != tuple(tensor.shape):
                raise ValueError(
                    f"{path} does not match its config: tensor {key!r} has shape "
                    f"{list(state[key].shape)}, the config implies {list(tensor.shape)}"
                )
            if not torch.isfinite(state[key]).all():
                raise ValueError(f"{path}: tensor {key!r} holds non-finite values")
        net.load_state_dict(state)
        model = cls(config, backend, net=net)
        model.extra = extra
        return model
