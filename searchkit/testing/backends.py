"""Conformance tests that every denoising backend must pass.

A backend joins the suite by subclassing :class:`BackendConformance` in a test module and
naming its class and the (small) options it is built with; the suite builds it the way
the command line and the benchmarks do (``cls.build(**options)`` when the class has that
classmethod, else ``cls(**options)``), once per test class::

    from searchkit.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        backend_class = MyBackend
        backend_options = {"num_steps": 4}

A class that builds its backend another way overrides the ``backend`` fixture (a
``scope="class"`` fixture on a ``classmethod``); ``backend_class`` and ``backend_options`` must still say what
:meth:`~searchkit.backend.Backend.compute_profile` is asked. The contract, from the
:class:`~searchkit.backend.Backend` docstrings:

* ``latent_shape`` is ``(C, F, H, W)`` of positive integers; ``num_steps`` and
  ``forwards_per_step`` are positive integers; the flags are booleans;
* ``initial_noise(n, generator)`` is ``[n, *latent_shape]`` in the backend's dtype and on
  its device, standard normal, the same for the same generator state and different for
  another;
* ``make_scheduler()`` returns a fresh scheduler, timesteps set for ``num_steps`` steps,
  that shares no state with any other it returned;
* ``velocity`` keeps the latents' shape, is finite, and a batch of ``n`` equals ``n``
  single calls within ``rtol``/``atol`` (batching must never mix particles);
* ``decode`` returns frames ``[n, F, H, W, 3]`` in ``[0, 1]``, batch equal to single calls;
* ``encode`` is deterministic (the same prompt drives the model identically);
* ``compute_profile(**backend_options)`` agrees with the built backend, ``config_dict`` is
  JSON-able and names the backend;
* ``has_oracle`` and ``oracle`` agree: with an oracle, ``[n]`` finite values, the same for
  the same input; without, ``NotImplementedError``;
* when ``is_differentiable``, gradients reach the input latents through ``velocity``;
* ``prompt_embedding`` returns a finite vector or raises ``NotImplementedError``;
* a whole trajectory of :func:`~searchkit.testing.reference.reference_loop` stays finite.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

import pytest
import torch

from searchkit.backend import Backend, ComputeProfile
from searchkit.testing.reference import reference_loop
from searchkit.testing.worlds import PROMPT

__all__ = ["BackendConformance", "construct_backend"]


def construct_backend(cls: type[Backend], options: dict[str, Any]) -> Backend:
    """``cls.build(**options)`` when ``cls`` defines it, else ``cls(**options)``."""
    builder = getattr(cls, "build", None)
    return builder(**options) if builder is not None else cls(**options)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class BackendConformance:
    """The contract of a backend; subclass it and set ``backend_class`` (and options)."""

    #: The backend class under test; every subclass sets it.
    backend_class: ClassVar[type[Backend] | None] = None
    #: Options it is built with: keep the model small and ``num_steps`` low.
    backend_options: ClassVar[dict[str, Any]] = {}
    prompt: ClassVar[str] = PROMPT
    #: Particles per batch in the batch-versus-single checks.
    batch_size: ClassVar[int] = 3
    #: Tolerance of batch-versus-single and repeated calls: float32 summation order inside
    #: batched kernels moves results by ~1e-6 relative; mixing particles moves them by O(1).
    rtol: ClassVar[float] = 1e-4
    atol: ClassVar[float] = 1e-5

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls) -> Backend:
        if cls.backend_class is None:
            raise NotImplementedError(f"{cls.__name__} must set backend_class")
        with torch.no_grad():
            return construct_backend(cls.backend_class, dict(cls.backend_options))

    @pytest.fixture(autouse=True)
    def _no_grad(self):
        """Model calls outside a search run without autograd, as the context runs them."""
        with torch.no_grad():
            yield

    def _latents(self, backend: Backend, n: int, seed: int = 0) -> torch.Tensor:
        return backend.initial_noise(n, _generator(seed))

    def _close(self, actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
        torch.testing.assert_close(
            actual.float(),
            expected.float(),
            rtol=self.rtol,
            atol=self.atol,
            msg=lambda detail: f"{what}: {detail}",
        )

    # -- declarations ------------------------------------------------------------------
    def test_declares_its_shape_steps_and_flags(self, backend: Backend) -> None:
        shape = backend.latent_shape
        assert isinstance(shape, tuple) and len(shape) == 4, (
            f"latent_shape must be (C, F, H, W), got {shape!r}"
        )
        assert all(isinstance(s, int) and s > 0 for s in shape), f"latent_shape {shape!r}"
        for name in ("num_steps", "forwards_per_step"):
            value = getattr(backend, name)
            assert isinstance(value, int) and not isinstance(value, bool) and value >= 1, (
                f"{name}={value!r}"
            )
        assert isinstance(backend.is_stochastic, bool) and isinstance(
            backend.is_differentiable, bool
        )
        assert isinstance(backend.device, torch.device)
        assert backend.dtype.is_floating_point
        assert isinstance(backend.name, str) and backend.name

    def test_compute_profile_agrees_with_the_built_backend(self, backend: Backend) -> None:
        profile = type(backend).compute_profile(**dict(self.backend_options))
        assert profile == ComputeProfile(backend.num_steps, backend.forwards_per_step)

    def test_config_dict_is_json(self, backend: Backend) -> None:
        config = backend.config_dict()
        assert json.loads(json.dumps(config)) == config
        assert config["name"] == backend.name

    # -- noise and schedulers ----------------------------------------------------------
    def test_initial_noise(self, backend: Backend) -> None:
        n = self.batch_size
        noise = backend.initial_noise(n, _generator(1))
        assert noise.shape == (n, *backend.latent_shape)
        assert noise.dtype == backend.dtype and noise.device == backend.device
        assert torch.equal(noise, backend.initial_noise(n, _generator(1))), (
            "same generator, different noise"
        )
        assert not torch.equal(noise, backend.initial_noise(n, _generator(2))), (
            "another seed, same noise"
        )
        # N(0, 1) entries: the sample mean has sd 1/sqrt(N) and the sample variance
        # sd sqrt(2/N); six of those bound a correct draw (a fixed seed, no flakiness).
        x = noise.double().flatten()
        bound = 6.0 / math.sqrt(x.numel())
        assert abs(float(x.mean())) < bound, "initial noise is not centred"
        assert abs(float(x.var()) - 1.0) < bound * math.sqrt(2.0), (
            "initial noise is not of unit variance"
        )

    def test_scheduler_is_fresh_with_timesteps_set(self, backend: Backend) -> None:
        first, second = backend.make_scheduler(), backend.make_scheduler()
        assert first is not second, "make_scheduler returned the same object twice"
        assert len(first.timesteps) == backend.num_steps
        assert len(first.sigmas) >= backend.num_steps
        sigmas = torch.as_tensor(first.sigmas[: backend.num_steps]).double()
        assert torch.isfinite(sigmas).all() and (sigmas[1:] < sigmas[:-1]).all(), (
            "sigmas must decrease"
        )
        # stepping one scheduler must leave the next one untouched
        cond, x = backend.encode(self.prompt), self._latents(backend, 1)
        steps = min(2, backend.num_steps)

        def run(scheduler):  # a stochastic solver draws the same step noise every time
            return reference_loop(backend, cond, x, scheduler, 0, steps, generator=_generator(9))

        expected = run(first)
        run(backend.make_scheduler())
        self._close(run(second), expected, "a fresh scheduler")

    # -- the model ---------------------------------------------------------------------
    def test_velocity_keeps_the_shape_and_is_finite(self, backend: Backend) -> None:
        scheduler, cond = backend.make_scheduler(), backend.encode(self.prompt)
        x = self._latents(backend, self.batch_size)
        for k in (0, backend.num_steps - 1):
            v = backend.velocity(x, scheduler.timesteps[k], float(scheduler.sigmas[k]), cond)
            assert v.shape == x.shape, f"velocity shape {tuple(v.shape)} at step {k}"
            assert torch.isfinite(v).all(), f"velocity not finite at step {k}"

    def test_a_batch_equals_single_calls(self, backend: Backend) -> None:
        scheduler, cond = backend.make_scheduler(), backend.encode(self.prompt)
        k = backend.num_steps // 2
        t, sigma = scheduler.timesteps[k], float(scheduler.sigmas[k])
        x = self._latents(backend, self.batch_size, seed=3)
        batched = backend.velocity(x, t, sigma, cond)
        single = torch.cat([backend.velocity(x[i : i + 1], t, sigma, cond) for i in range(len(x))])
        self._close(batched, single, "velocity of a batch against single calls")
        video = backend.decode(x)
        frames = torch.cat([backend.decode(x[i : i + 1]) for i in range(len(x))])
        self._close(video, frames, "decode of a batch against single calls")

    def test_decodes_to_frames_in_the_unit_interval(self, backend: Backend) -> None:
        n = self.batch_size
        video = backend.decode(self._latents(backend, n, seed=4))
        assert video.dim() == 5 and video.shape[0] == n and video.shape[-1] == 3, (
            f"decode must return [n, F, H, W, 3], got {tuple(video.shape)}"
        )
        assert torch.isfinite(video).all()
        assert float(video.min()) >= 0.0 and float(video.max()) <= 1.0, "frames must lie in [0, 1]"

    def test_encode_is_deterministic(self, backend: Backend) -> None:
        first, again = backend.encode(self.prompt), backend.encode(self.prompt)
        assert first.prompt == again.prompt == self.prompt
        scheduler, x = backend.make_scheduler(), self._latents(backend, 2, seed=5)
        t, sigma = scheduler.timesteps[0], float(scheduler.sigmas[0])
        self._close(
            backend.velocity(x, t, sigma, again),
            backend.velocity(x, t, sigma, first),
            "velocity under two encodings of one prompt",
        )

    def test_a_trajectory_stays_finite(self, backend: Backend) -> None:
        cond, x = backend.encode(self.prompt), self._latents(backend, 1, seed=6)
        out = reference_loop(backend, cond, x, backend.make_scheduler(), 0, backend.num_steps)
        assert out.shape == x.shape and torch.isfinite(out).all()

    # -- optional surface --------------------------------------------------------------
    def test_oracle_agrees_with_has_oracle(self, backend: Backend) -> None:
        x = self._latents(backend, self.batch_size, seed=7)
        if not backend.has_oracle:
            with pytest.raises(NotImplementedError):
                backend.oracle(x, self.prompt)
            return
        truth = backend.oracle(x, self.prompt)
        assert truth.shape == (len(x),) and torch.isfinite(truth).all()
        self._close(backend.oracle(x, self.prompt), truth, "oracle of the same latents")
        self._close(backend.oracle(x[:1], self.prompt), truth[:1], "oracle of one latent")

    def test_prompt_embedding_is_a_vector_or_not_provided(self, backend: Backend) -> None:
        cond = backend.encode(self.prompt)
        try:
            embedding = backend.prompt_embedding(cond)
        except NotImplementedError:
            return
        assert embedding.dim() == 1 and embedding.numel() > 0 and torch.isfinite(embedding).all()

    def test_gradients_reach_the_latents_when_differentiable(self, backend: Backend) -> None:
        if not backend.is_differentiable:
            return  # nothing promised
        scheduler, cond = backend.make_scheduler(), backend.encode(self.prompt)
        t, sigma = scheduler.timesteps[0], float(scheduler.sigmas[0])
        with torch.enable_grad():
            x = self._latents(backend, 1, seed=8).requires_grad_(True)
            backend.velocity(x, t, sigma, cond).float().square().sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all(), (
            "no finite gradient reached the latents"
        )
        assert float(x.grad.abs().sum()) > 0, "the gradient through velocity is zero"
