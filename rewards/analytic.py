"""The analytic world's reward as a plugin: the closed-form VQ, MQ and TA dimensions.

With ``input="x0"`` (default) the reward sees the predicted clean latent, so on a finished
output it equals :meth:`AnalyticBackend.oracle`; during the search it scores the model's
one-step prediction. With ``input="latent"`` it applies the same formulas to the noisy
latent ``x_t`` (a deliberately weak baseline for latent-space scoring).

Both rewards are charged in FLOPs by the analytic world's cost model
(:mod:`searchkit.backends.analytic_cost`) as the kind of verifier they stand for,
``stands_for``: ``"latent"`` (a latent reward model; the default on ``x_t``), ``"pixel"``
(a video verifier on the decoded output, decode included; the default on ``x0``) or
``"none"``.
"""

from __future__ import annotations

import math

import torch

from searchkit.backends.analytic import DIMENSIONS, AnalyticBackend
from searchkit.backends.analytic_cost import check_kind, default_kind
from searchkit.errors import InputError, InputTypeError
from searchkit.reward import REWARD_INPUTS, Reward, RewardBatch


class _AnalyticWorldReward(Reward):
    """What the analytic world's rewards share: built for one world (its latent shape), exact
    gradients, and the world's cost model for their FLOPs (the kind they stand for)."""

    dimensions = DIMENSIONS
    backend: AnalyticBackend | None = None
    #: The kind of verifier it stands for, for its FLOPs (``analytic_cost.REWARD_KINDS``).
    stands_for: str | None = None

    @property
    def is_differentiable(self) -> bool:
        return True

    def flops(self, batch: RewardBatch) -> float | None:
        """The cost model's charge for the kind of verifier this reward stands for (``None``
        for a subclass that sets neither a backend nor a kind)."""
        if self.backend is None or self.stands_for is None:
            return None
        return self.backend.reward_flops(self.stands_for, int(batch.data.shape[0]))

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """The latent shape of the world it was built for (its closed forms are that world's)."""
        return tuple(self.backend.latent_shape)


class AnalyticReward(_AnalyticWorldReward):
    """Closed-form rewards of the analytic world, on ``x0`` or on ``x_t``.

    Args:
        input: ``"x0"`` scores the predicted clean latent (on a finished output: the exact
            oracle) or ``"latent"`` the noisy latent ``x_t`` (a weak latent-space baseline).
        stands_for: the verifier it is charged as in FLOPs: ``"pixel"`` (a video verifier,
            decode included; the default on ``x0``), ``"latent"`` (a latent reward model; the
            default on ``x_t``) or ``"none"``.
    """

    name = "analytic"

    def __init__(
        self, backend: AnalyticBackend, input: str = "x0", stands_for: str | None = None
    ) -> None:
        if not isinstance(backend, AnalyticBackend):
            raise InputTypeError(
                f"backend must be an AnalyticBackend, got {type(backend).__name__}"
            )
        if input not in ("x0", "latent"):
            raise InputError(
                f"input must be 'x0' or 'latent' for the analytic reward (of {REWARD_INPUTS}), got {input!r}"
            )
        self.backend = backend
        self.input = input
        self.stands_for = default_kind(input) if stands_for is None else check_kind(stands_for)

    def score(self, batch: RewardBatch) -> torch.Tensor:
        return self.backend.reward_dimensions(batch.data, batch.prompt)

    def config_dict(self) -> dict:
        return {**super().config_dict(), "stands_for": self.stands_for}

    def __call__(self, batch: RewardBatch) -> torch.Tensor:
        return self.score(batch)


class ProxyVerifier(_AnalyticWorldReward):
    """An imperfect verifier of the analytic world: the exact dimensions seen through a
    misaligned quality direction and an error that does not vanish on clean outputs.

    Real verifiers (VideoReward, VLM judges, learned latent rewards) agree with human
    judgement only partly, and a search that optimises them exploits their errors. This
    verifier gives the analytic world the same property, while the exact oracle stays
    available to grade the outputs::

        VQ' = (x . d') / s,   d' = cos(theta) d + sin(theta) u      (u a fixed unit vector, u ⟂ d)
        MQ' = MQ(x) + e_MQ(x),  TA' = TA(x) + e_TA(x),  VQ' += e_VQ(x)
        e(x) = noise sqrt(2 / M) sum_m cos(w_m . x / (l sqrt(D)) + b_m)   (w_m ~ N(0, I), b_m ~ U[0, 2 pi))

    ``theta = misalignment`` (degrees) turns the quality direction away from the true one;
    ``e`` is a fixed random-feature function of the latent (``M`` features, length scale
    ``l`` in units of the latent's per-element spread): deterministic, so the same output
    always gets the same score, of standard deviation ``noise`` over outputs. At the
    default ``l = 0.1`` it varies over about a tenth of a sample's spread, so two different
    outputs get nearly independent errors and the error has steep gradients: a search that
    climbs the verifier (noise optimisation above all) climbs its error too.

    The defaults (``misalignment = 30``, ``noise = 0.7``, ``l = 0.1``) make the verifier
    rank two base-model outputs of one prompt as the oracle does 73% of the time (0.727 over
    4 prompts x 128 outputs; Kendall tau 0.45): the
    pairwise accuracy (ties excluded) that VideoAlign reports for VideoReward against human
    preference on its VideoGen-RewardBench (Liu et al. 2025, "Improving Video Generation
    with Human Feedback"). ``benchmarks/proxy_verifier.py`` measures it. ``misalignment = 0``
    and ``noise = 0`` give back :class:`AnalyticReward`.

    Args:
        input: ``"x0"`` (the predicted clean latent) or ``"latent"`` (the noisy ``x_t``).
        misalignment: ``theta``, degrees between its quality direction and the true one.
        noise: standard deviation of its error over outputs (0: no error).
        length_scale: ``l``, how fast the error varies, in units of the latent's spread.
        num_features: ``M``, random features of the error function.
        verifier_seed: seed of the turned direction and the error function.
        stands_for: the verifier it is charged as in FLOPs (as :class:`AnalyticReward`).
    """

    name = "analytic-proxy"

    def __init__(
        self,
        backend: AnalyticBackend,
        input: str = "x0",
        misalignment: float = 30.0,
        noise: float = 0.7,
        length_scale: float = 0.1,
        num_features: int = 64,
        verifier_seed: int = 1,
        stands_for: str | None = None,
    ) -> None:
        if not isinstance(backend, AnalyticBackend):
            raise InputTypeError(
                f"backend must be an AnalyticBackend, got {type(backend).__name__}"
            )
        if input not in ("x0", "latent"):
            raise InputError(
                f"input must be 'x0' or 'latent' for the analytic proxy verifier, got {input!r}"
            )
        for field, value, low, high in (
            ("misalignment", misalignment, 0.0, 90.0),
            ("noise", noise, 0.0, 1e3),
            ("length_scale", length_scale, 1e-6, 1e6),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not low <= value <= high
            ):
                raise InputError(f"{field} must be a number in [{low:g}, {high:g}], got {value!r}")
        if (
            isinstance(num_features, bool)
            or not isinstance(num_features, int)
            or not 1 <= num_features <= 4096
        ):
            raise InputError(f"num_features must be an integer in [1, 4096], got {num_features!r}")
        if isinstance(verifier_seed, bool) or not isinstance(verifier_seed, int):
            raise InputError(f"verifier_seed must be an integer, got {verifier_seed!r}")
        self.backend, self.input = backend, input
        self.misalignment, self.noise, self.length_scale = (
            float(misalignment),
            float(noise),
            float(length_scale),
        )
        self.num_features, self.verifier_seed = num_features, verifier_seed
        self.stands_for = default_kind(input) if stands_for is None else check_kind(stands_for)
        g = torch.Generator().manual_seed(verifier_seed)
        d = backend.quality_direction.reshape(-1)
        u = torch.randn(d.numel(), generator=g)
        u = u - (u @ d) * d
        u = u / u.norm()
        theta = math.radians(self.misalignment)
        self._direction = math.cos(theta) * d + math.sin(theta) * u
        dims, size = len(DIMENSIONS), d.numel()
        spread = math.sqrt(backend.component_scale**2 + backend.component_std**2)
        self._frequencies = torch.randn(dims, num_features, size, generator=g) / (
            self.length_scale * spread * math.sqrt(size)
        )
        self._phases = 2 * math.pi * torch.rand(dims, num_features, generator=g)

    def score(self, batch: RewardBatch) -> torch.Tensor:
        x = batch.data.reshape(batch.data.shape[0], -1).float()
        exact = self.backend.reward_dimensions(batch.data, batch.prompt)
        vq = (x @ self._direction.to(x)) / self.backend.component_std
        features = torch.cos(
            torch.einsum("nd,kmd->nkm", x, self._frequencies.to(x)) + self._phases.to(x)
        )
        error = self.noise * math.sqrt(2.0 / self.num_features) * features.sum(dim=2)  # [n, 3]
        return torch.stack([vq, exact[:, 1], exact[:, 2]], dim=1) + error

    def config_dict(self) -> dict:
        return {
            **super().config_dict(),
            "misalignment": self.misalignment,
            "noise": self.noise,
            "length_scale": self.length_scale,
            "num_features": self.num_features,
            "verifier_seed": self.verifier_seed,
            "stands_for": self.stands_for,
        }
