"""Plugin contracts, checked at first use: a backend or reward that breaks its interface is
named, with what it gave and what was expected, before its output goes any further.

A search checks its plugins in two places:

* when the :class:`~searchkit.context.SearchContext` is made, before any compute: the
  reward's declarations (``input`` one of :data:`~searchkit.reward.REWARD_INPUTS`,
  ``dimensions`` a non-empty tuple of distinct names, aggregate ``weights`` one per
  dimension), the backend's (``latent_shape`` four positive integers ``(C, F, H, W)``),
  the latent shape the reward was built for against the backend's
  (:attr:`Reward.latent_shape <searchkit.reward.Reward.latent_shape>`), and noise the
  caller gave (its shape, and finite values: non-finite noise is the caller's input
  problem, reported as such before the first step);
* at the first call of each backend method in the search (:class:`PluginChecks`): the
  initial noise is ``[n, *latent_shape]``, the velocity a finite tensor of the input's
  shape, the decoded video a finite ``[n, F, H, W, 3]`` tensor. Later calls are not checked
  again, so the cost is one pass over one output per method per search.

Reward scores are small (``[n, dims]``) and are checked on every call by the context
(:func:`check_scores`): a tensor of that shape, finite. A non-finite score whose input was
itself non-finite names the input, not the reward.
"""

from __future__ import annotations

import torch

from searchkit.backend import Backend
from searchkit.errors import ContractError, NonFiniteRewardError
from searchkit.reward import REWARD_INPUTS, Reward


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {list(value.shape)}"
    if value is None:
        return "None"
    return f"a {type(value).__name__}"


# -- declarations, checked when a search starts ---------------------------------------------
def check_backend(backend: Backend) -> tuple[int, ...]:
    """The backend's ``latent_shape`` as a tuple, checked: four positive integers."""
    shape = backend.latent_shape
    if (
        not isinstance(shape, tuple | list)
        or len(shape) != 4
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)
    ):
        raise ContractError(
            f"backend {backend.name!r} must declare latent_shape as four positive integers "
            f"(C, F, H, W), got {shape!r}"
        )
    return tuple(shape)


def check_reward(reward: Reward) -> None:
    """The reward's ``input``, ``dimensions`` and ``weights`` declarations."""
    if reward.input not in REWARD_INPUTS:
        raise ContractError(
            f"reward {reward.name!r} must declare input as one of {', '.join(REWARD_INPUTS)}, "
            f"got {reward.input!r}"
        )
    dims = reward.dimensions
    if (
        not isinstance(dims, tuple | list)
        or not dims
        or not all(isinstance(d, str) and d for d in dims)
        or len(set(dims)) != len(dims)
    ):
        raise ContractError(
            f"reward {reward.name!r} must declare dimensions as a non-empty tuple of distinct "
            f"names, got {dims!r}"
        )
    weights = reward.weights
    if not isinstance(weights, torch.Tensor) or tuple(weights.shape) != (len(dims),):
        raise ContractError(
            f"reward {reward.name!r} must give one aggregate weight per dimension "
            f"({len(dims)}), got {_describe(weights)}"
        )


def check_pairing(backend: Backend, reward: Reward) -> None:
    """Refuse a reward built for latents of another shape than the backend makes.

    :attr:`Reward.latent_shape <searchkit.reward.Reward.latent_shape>` is ``None`` (any
    shape) or one entry per latent axis, each a size or ``None`` (any size on that axis).
    Video rewards see frames, not latents, and are not compared.
    """
    if reward.input == "video":
        return
    built_for = reward.latent_shape
    if built_for is None:
        return
    if not isinstance(built_for, tuple | list) or not all(
        s is None or (isinstance(s, int) and not isinstance(s, bool) and s > 0) for s in built_for
    ):
        raise ContractError(
            f"reward {reward.name!r} must declare latent_shape as None or a tuple of positive "
            f"sizes or None, got {built_for!r}"
        )
    shape = tuple(backend.latent_shape)
    if len(built_for) != len(shape) or any(
        want is not None and want != have for want, have in zip(built_for, shape, strict=True)
    ):
        wanted = ", ".join("any" if s is None else str(s) for s in built_for)
        raise ContractError(
            f"reward {reward.name!r} was built for latents of shape ({wanted}), but backend "
            f"{backend.name!r} makes latents of shape {shape}; build the reward for this backend"
        )


def check_noise(noise: torch.Tensor, field: str = "noise") -> torch.Tensor:
    """Noise given by the caller must be floating point and finite (an input problem, reported
    before the first step rather than as a non-finite reward at the end)."""
    if not noise.is_floating_point():
        raise TypeError(f"{field} must hold floating-point values, got dtype {noise.dtype}")
    finite = torch.isfinite(noise)
    if not bool(finite.all()):
        index = [int(i) for i in (~finite).nonzero()[0]]
        raise ValueError(
            f"{field} holds non-finite values ({float(noise[tuple(index)])} at index {index}); "
            "give finite starting noise"
        )
    return noise


# -- outputs, checked at the first call of a search -------------------------------------------
class PluginChecks:
    """First-use checks of one search's backend outputs; each runs once per search."""

    def __init__(self, backend: Backend, latent_shape: tuple[int, ...]) -> None:
        self.backend = backend
        self.latent_shape = latent_shape
        self.pending = {"initial_noise", "velocity", "decode"}

    def initial_noise(self, noise: object, n: int) -> None:
        if "initial_noise" not in self.pending:
            return
        self.pending.discard("initial_noise")
        expected = (n, *self.latent_shape)
        if not isinstance(noise, torch.Tensor) or tuple(noise.shape) != expected:
            raise ContractError(
                f"backend {self.backend.name!r}: initial_noise({n}) must return a tensor of shape "
                f"{list(expected)}, got {_describe(noise)}"
            )

    def velocity(self, velocity: object, latents: torch.Tensor, step: int) -> None:
        if "velocity" not in self.pending:
            return
        self.pending.discard("velocity")
        if not isinstance(velocity, torch.Tensor) or velocity.shape != latents.shape:
            raise ContractError(
                f"backend {self.backend.name!r}: velocity must return a tensor of the latents' "
                f"shape {list(latents.shape)}, got {_describe(velocity)}"
            )
        if not bool(torch.isfinite(velocity).all()):
            raise ContractError(
                f"backend {self.backend.name!r}: velocity returned non-finite values at step "
                f"{step} for finite latents"
                if bool(torch.isfinite(latents).all())
                else f"backend {self.backend.name!r}: the latents at step {step} are non-finite"
            )

    def decode(self, video: object, n: int) -> None:
        if "decode" not in self.pending:
            return
        self.pending.discard("decode")
        if (
            not isinstance(video, torch.Tensor)
            or video.dim() != 5
            or video.shape[0] != n
            or video.shape[-1] != 3
        ):
            raise ContractError(
                f"backend {self.backend.name!r}: decode of {n} latents must return frames "
                f"[{n}, F, H, W, 3], got {_describe(video)}"
            )
        if not bool(torch.isfinite(video).all()):
            raise ContractError(f"backend {self.backend.name!r}: decode returned non-finite frames")


# -- scores, checked on every call -----------------------------------------------------------
def check_scores(
    reward: Reward, scores: object, n: int, step: int, ids: torch.Tensor, data: torch.Tensor
) -> torch.Tensor:
    """``scores`` as a detached float CPU tensor, checked: ``[n, dims]`` and finite.

    A non-finite score for a particle whose reward input (``data``) was itself non-finite
    is reported as bad input at that step, not as the reward's fault.
    """
    dims = len(reward.dimensions)
    if not isinstance(scores, torch.Tensor):
        raise ContractError(
            f"reward {reward.name!r} must return a tensor of shape [{n}, {dims}], "
            f"got {_describe(scores)}"
        )
    if scores.shape != (n, dims):
        raise ContractError(
            f"reward {reward.name!r} must return [{n}, {dims}] scores, got {list(scores.shape)}"
        )
    detached = scores.detach().float().cpu()
    bad = ~torch.isfinite(detached)
    if bad.any():
        row, col = (int(i) for i in bad.nonzero()[0])
        if not bool(torch.isfinite(data[row]).all()):
            raise NonFiniteRewardError(
                f"the input of reward {reward.name!r} at step {step} is non-finite for particle "
                f"{int(ids[row])} (batch index {row}): the backend's output or the given noise "
                "is at fault, not the reward"
            )
        raise NonFiniteRewardError(
            f"reward {reward.name!r} returned {float(detached[row, col])} at step {step} "
            f"for particle {int(ids[row])} (batch index {row}), "
            f"dimension {reward.dimensions[col]!r}"
        )
    return detached
