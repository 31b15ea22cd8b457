"""Conformance tests that every reward must pass.

A reward joins the suite by subclassing :class:`RewardConformance` in a test module and
naming its class, its options, and the backend whose outputs it scores (by default the
analytic world at a small size, which needs no weights); the suite builds both the way the
command line does (``cls.build(backend, **options)`` when the reward class has that
classmethod, else ``cls(backend, **options)``), once per test class (a class that builds
them another way overrides the ``backend`` or ``reward`` fixture: a ``scope="class"``
fixture on a ``classmethod``)::

    from searchkit.testing import RewardConformance

    class TestMyReward(RewardConformance):
        reward_class = MyReward
        backend_class = MyBackend            # whose latents or videos it reads
        backend_options = {"num_steps": 4}

The suite feeds the reward batches of the kind it declares (:meth:`make_batch`): noisy
latents ``x_t = (1 - sigma) x0 + sigma eps`` with their ``sigma`` for ``"latent"``, latents
for ``"x0"``, and the backend's decoded frames for ``"video"``, drawn from the backend's
``initial_noise`` (a reward must give finite scores on any latent of its backend, not only
on good ones). A class overrides :meth:`make_batch` to feed realistic inputs instead. The
contract:

* ``dimensions`` is a non-empty tuple of distinct names, ``input`` one of
  :data:`~searchkit.reward.REWARD_INPUTS`, ``weights`` one finite number per dimension;
* scoring a batch of ``n`` returns finite ``[n, dims]`` scores, the same as scoring its
  particles one by one (within ``rtol``/``atol``) and the same when repeated, through
  ``score`` and through calling the reward, without modifying the input;
* ``aggregate`` gives ``[n]``, the weighted sum of the dimensions;
* ``config_dict`` is JSON-able and names the reward;
* when ``is_differentiable``, gradients of the aggregate reach the input.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
import torch

from searchkit.backend import Backend
from searchkit.backends import AnalyticBackend
from searchkit.reward import REWARD_INPUTS, Reward, RewardBatch
from searchkit.testing.backends import construct_backend
from searchkit.testing.worlds import PROMPT

__all__ = ["RewardConformance", "construct_reward"]


def construct_reward(cls: type[Reward], backend: Backend, options: dict[str, Any]) -> Reward:
    """``cls.build(backend, **options)`` when ``cls`` defines it, else ``cls(backend, **options)``."""
    builder = getattr(cls, "build", None)
    return builder(backend, **options) if builder is not None else cls(backend, **options)


def _rows(batch: RewardBatch, index: slice) -> RewardBatch:
    return RewardBatch(
        data=batch.data[index],
        sigma=batch.sigma[index],
        conditioning=batch.conditioning,
        step=batch.step,
    )


class RewardConformance:
    """The contract of a reward; subclass it and set ``reward_class`` (and its backend)."""

    #: The reward class under test; every subclass sets it.
    reward_class: ClassVar[type[Reward] | None] = None
    reward_options: ClassVar[dict[str, Any]] = {}
    #: The backend the reward is built for and whose latents or frames it scores.
    backend_class: ClassVar[type[Backend]] = AnalyticBackend
    backend_options: ClassVar[dict[str, Any]] = {
        "channels": 2,
        "frames": 3,
        "height": 4,
        "width": 4,
        "num_steps": 4,
    }
    prompt: ClassVar[str] = PROMPT
    batch_size: ClassVar[int] = 3
    #: Tolerance of batch-versus-single and repeated scoring: float32 summation order in
    #: batched reductions moves scores by ~1e-6 relative; mixing rows moves them by O(1).
    rtol: ClassVar[float] = 1e-4
    atol: ClassVar[float] = 1e-5

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls) -> Backend:
        with torch.no_grad():
            return construct_backend(cls.backend_class, dict(cls.backend_options))

    @pytest.fixture(scope="class")
    @classmethod
    def reward(cls, backend: Backend) -> Reward:
        if cls.reward_class is None:
            raise NotImplementedError(f"{cls.__name__} must set reward_class")
        return construct_reward(cls.reward_class, backend, dict(cls.reward_options))

    @pytest.fixture(autouse=True)
    def _no_grad(self):
        """Scoring runs without autograd, as the context runs it outside gradient searches."""
        with torch.no_grad():
            yield

    def make_batch(self, reward: Reward, backend: Backend, n: int, seed: int = 0) -> RewardBatch:
        """``n`` inputs of the kind ``reward.input`` declares, scored mid-way through a run."""
        generator = torch.Generator().manual_seed(seed)
        latents = backend.initial_noise(n, generator)
        scheduler = backend.make_scheduler()
        step = backend.num_steps // 2
        sigma = torch.full((n,), float(scheduler.sigmas[step]))
        if reward.input == "latent":
            eps = backend.initial_noise(n, generator)
            s = sigma.to(latents).view(n, *([1] * (latents.dim() - 1)))
            data = (1.0 - s) * latents + s * eps
        elif reward.input == "video":
            data = backend.decode(latents)
        else:
            data = latents
        return RewardBatch(
            data=data, sigma=sigma, conditioning=backend.encode(self.prompt), step=step
        )

    def _close(self, actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
        torch.testing.assert_close(
            actual.float(),
            expected.float(),
            rtol=self.rtol,
            atol=self.atol,
            msg=lambda detail: f"{what}: {detail}",
        )

    # -- declarations ------------------------------------------------------------------
    def test_declares_dimensions_input_and_weights(self, reward: Reward) -> None:
        dims = reward.dimensions
        assert isinstance(dims, tuple) and dims, (
            f"dimensions must be a non-empty tuple, got {dims!r}"
        )
        assert all(isinstance(d, str) and d for d in dims) and len(set(dims)) == len(dims), dims
        assert reward.input in REWARD_INPUTS, (
            f"input must be one of {REWARD_INPUTS}, got {reward.input!r}"
        )
        assert reward.weights.shape == (len(dims),) and torch.isfinite(reward.weights).all()
        assert isinstance(reward.is_differentiable, bool)
        assert isinstance(reward.name, str) and reward.name

    def test_config_dict_is_json(self, reward: Reward) -> None:
        config = reward.config_dict()
        assert json.loads(json.dumps(config)) == config
        assert config["name"] == reward.name

    # -- scoring -----------------------------------------------------------------------
    def test_scores_its_input_kind(self, reward: Reward, backend: Backend) -> None:
        n = self.batch_size
        batch = self.make_batch(reward, backend, n)
        before = batch.data.clone()
        scores = reward.score(batch)
        assert scores.shape == (n, len(reward.dimensions)), f"scores {tuple(scores.shape)}"
        assert scores.dtype.is_floating_point and torch.isfinite(scores).all()
        assert torch.equal(batch.data, before), "scoring modified its input"
        self._close(reward(batch), scores, "calling the reward against score()")

    def test_a_batch_equals_one_by_one(self, reward: Reward, backend: Backend) -> None:
        batch = self.make_batch(reward, backend, self.batch_size, seed=1)
        single = torch.cat([reward(_rows(batch, slice(i, i + 1))) for i in range(self.batch_size)])
        self._close(reward(batch), single, "scores of a batch against one by one")

    def test_deterministic(self, reward: Reward, backend: Backend) -> None:
        first = reward(self.make_batch(reward, backend, self.batch_size, seed=2))
        again = reward(self.make_batch(reward, backend, self.batch_size, seed=2))
        self._close(again, first, "scores of the same batch")

    def test_aggregates_to_one_score_each(self, reward: Reward, backend: Backend) -> None:
        scores = reward(self.make_batch(reward, backend, self.batch_size, seed=3))
        total = reward.aggregate(scores)
        assert total.shape == (self.batch_size,)
        self._close(total, scores.float() @ reward.weights.float().to(scores.device), "aggregate")

    def test_gradients_reach_the_input_when_differentiable(
        self, reward: Reward, backend: Backend
    ) -> None:
        if not reward.is_differentiable:
            return  # nothing promised
        batch = self.make_batch(reward, backend, self.batch_size, seed=4)
        with torch.enable_grad():
            data = batch.data.detach().clone().requires_grad_(True)
            scores = reward(
                RewardBatch(
                    data=data, sigma=batch.sigma, conditioning=batch.conditioning, step=batch.step
                )
            )
            reward.aggregate(scores).sum().backward()
        assert data.grad is not None and torch.isfinite(data.grad).all(), (
            "no finite gradient reached the input"
        )
        assert float(data.grad.abs().sum()) > 0, "the gradient of the reward is zero"
