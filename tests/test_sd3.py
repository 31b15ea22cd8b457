"""The SD3 image backend on tiny random components: parity with diffusers'
StableDiffusion3Pipeline, images as one-frame videos, checkpoints, the conformance suites
(every registered strategy runs unchanged), and the shipped image benchmark, run tiny."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from searchkit import Baseline
from searchkit.backend import ComputeProfile
from searchkit.backends import SD3Backend
from searchkit.backends.sd3 import tiny_pipeline
from searchkit.bench.load import load_config, resolve_config_path
from searchkit.bench.plan import plan_sweep
from searchkit.bench.store import RESULTS_FILE, read_results
from searchkit.bench.sweep import run_sweep
from searchkit.builders import build_backend
from searchkit.registry import STRATEGIES, get_strategy
from searchkit.rewards.pixel import PixelReward
from searchkit.strategy import Strategy
from searchkit.testing import NUM_STEPS, BackendConformance, StrategyConformance, World, small
from tests.bench_helpers import write_config

PROMPT = "a red fox running through fresh snow"
SIZE = {"height": 64, "width": 64}
SEQ = 16
# Separate cond and uncond forwards against the pipeline's batched one: float32 summation
# order in the transformer moves the latents by about 2e-6 after 4 steps.
BATCH_TOL = 1e-5


@pytest.fixture(scope="module")
def pipe():
    pipe = tiny_pipeline(seed=0)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _backend(pipe, **options) -> SD3Backend:
    return SD3Backend.from_pipeline(
        pipe, **{**SIZE, "num_steps": 4, "max_sequence_length": SEQ, **options}
    )


def _pipeline_images(pipe, scheduler, **call):
    original, pipe.scheduler = pipe.scheduler, scheduler
    arguments = {**SIZE, "num_inference_steps": 4, "max_sequence_length": SEQ, **call}
    try:
        latents = pipe(
            PROMPT, generator=torch.Generator().manual_seed(7), output_type="latent", **arguments
        ).images
        images = pipe(
            PROMPT, generator=torch.Generator().manual_seed(7), output_type="np", **arguments
        ).images
    finally:
        pipe.scheduler = original
    return latents[0], torch.from_numpy(images[0])


# -- parity with StableDiffusion3Pipeline -------------------------------------------------------------
@pytest.mark.parametrize("solver", ["pipeline", "euler", "unipc"])
def test_baseline_reproduces_the_pipeline_bit_for_bit(pipe, solver) -> None:
    backend = _backend(pipe, solver=solver, guidance_scale=5.0)
    latents, image = _pipeline_images(pipe, backend.make_scheduler(), guidance_scale=5.0)
    result = Baseline().run(backend, PixelReward(backend), PROMPT, seed=7)
    assert result.latents.shape == (16, 1, 8, 8) and result.video.shape == (1, 64, 64, 3)
    assert torch.equal(result.latents[:, 0], latents)
    assert torch.equal(result.video[0], image)
    assert result.cost.nfe == 8 == backend.forwards["transformer"]
    separate = _backend(pipe, solver=solver, guidance_scale=5.0, cfg_batched=False)
    apart = Baseline().run(separate, PixelReward(separate), PROMPT, seed=7).latents[:, 0]
    assert 0 < (apart - latents).abs().max() < BATCH_TOL


def test_a_dynamically_shifted_scheduler_gets_the_pipelines_shift(pipe) -> None:
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    original, pipe.scheduler = pipe.scheduler, scheduler
    try:
        backend = _backend(pipe, solver="pipeline", guidance_scale=1.0)
        latents, _ = _pipeline_images(pipe, scheduler, guidance_scale=1.0)
        result = Baseline().run(backend, PixelReward(backend), PROMPT, seed=7)
        shifted = backend.make_scheduler().sigmas
    finally:
        pipe.scheduler = original
    assert torch.equal(result.latents[:, 0], latents) and result.cost.nfe == 4
    plain = _backend(pipe, solver="euler", guidance_scale=1.0).make_scheduler().sigmas
    assert (shifted - plain).abs().max() > 1e-3  # the dynamic shift mattered


def test_sizes_follow_the_model_and_decode_is_an_image(pipe) -> None:
    with pytest.raises(ValueError, match="multiples of 16 for this model .*height=72"):
        _backend(pipe, height=72)
    backend = _backend(pipe, height=32, width=96, vae_slicing=True)
    assert backend.latent_shape == (16, 1, 4, 12)
    z = torch.randn(2, *backend.latent_shape, generator=torch.Generator().manual_seed(0))
    images = backend.decode(z)
    assert images.shape == (2, 1, 32, 96, 3) and images.min() >= 0 and images.max() <= 1
    # the pipeline's de-normalisation, then [-1, 1] to [0, 1]
    vae = pipe.vae
    raw = vae.decode(z[:1, :, 0] / vae.config.scaling_factor + vae.config.shift_factor).sample
    assert torch.allclose(
        images[0, 0], (raw[0] * 0.5 + 0.5).clamp(0, 1).permute(1, 2, 0), atol=1e-6
    )
    assert backend.prompt_embedding(backend.encode(PROMPT)).shape == (64,)  # pooled CLIP L + G


# -- checkpoints and options ---------------------------------------------------------------------------
def test_from_pretrained_loads_a_saved_checkpoint(pipe, tmp_path) -> None:
    pipe.save_pretrained(tmp_path)
    loaded = SD3Backend.from_pretrained(
        tmp_path, dtype="float32", device="cpu", **SIZE, max_sequence_length=SEQ
    )
    reference = _backend(pipe)
    x = torch.randn(2, *loaded.latent_shape, generator=torch.Generator().manual_seed(0))
    t = torch.tensor(700.0)
    with torch.no_grad():
        expected = reference.velocity(x, t, 0.7, reference.encode(PROMPT))
        got = loaded.velocity(x, t, 0.7, loaded.encode(PROMPT))
    # the weights load bit-equal, but the CLIP projections of the loaded encoders come out one
    # float32 ulp apart (about 1e-7: memory-mapped weights take another kernel path); a
    # wrong or missing component moves the velocity by O(1)
    assert (got - expected).abs().max() < 1e-5
    assert loaded.config_dict()["source"]["kind"] == "checkpoint"
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline"}))
    with pytest.raises(ValueError, match="not a Stable Diffusion 3 .*'WanPipeline'"):
        SD3Backend.from_pretrained(tmp_path)


def test_bad_input_is_named_before_loading(tmp_path) -> None:
    with pytest.raises(ValueError, match="guidance_scale must be .*0.5"):
        SD3Backend.from_pretrained(tmp_path / "missing", guidance_scale=0.5)
    with pytest.raises(TypeError, match="unknown SD3 backend option.*'num_frames'"):
        SD3Backend.compute_profile(tiny=True, num_frames=9)
    with pytest.raises(ValueError, match="backend 'sd3' needs model_path=PATH"):
        build_backend("sd3")
    absent = tmp_path / "not-downloaded"
    assert SD3Backend.compute_profile(model_path=str(absent), num_steps=40) == ComputeProfile(40, 2)
    assert not absent.exists()


def test_offloaded_text_encoders_encode_the_same(pipe) -> None:
    plain = _backend(pipe).encode(PROMPT).data
    data = _backend(pipe, offload_text_encoder=True).encode(PROMPT).data
    assert all(getattr(pipe, n).device.type == "cpu" for n in SD3Backend.text_encoders)
    assert torch.equal(plain.prompt_embeds, data.prompt_embeds)
    assert torch.equal(plain.negative_pooled_embeds, data.negative_pooled_embeds)


# -- conformance: the backend contract, and every registered strategy on images ---------------------
class TestTinySD3Backend(BackendConformance):
    backend_class = SD3Backend
    backend_options = {"tiny": True, "num_steps": 4, "height": 32, "width": 32}


def _sd3_world() -> World:
    return World.of("sd3-tiny", SD3Backend.tiny(num_steps=NUM_STEPS, height=32, width=32))


class TestEveryStrategyOnImages(StrategyConformance):
    worlds = {"sd3-tiny": _sd3_world}

    @pytest.fixture(params=STRATEGIES.names())
    def strategy(self, request: pytest.FixtureRequest) -> Strategy:
        return small(get_strategy(request.param)())


# -- the image benchmark ------------------------------------------------------------------------------------
def test_the_shipped_image_sweep_plans_without_weights(tmp_path) -> None:
    config = load_config("sd3.5", backend_options={"model_path": str(tmp_path / "absent")})
    assert config.backend.name == "sd3" and config.reward.name == "clip-score"
    by_label = {(r.label, r.budget_nfe): r for r in plan_sweep(config)}
    assert by_label[("baseline", None)].expected_nfe == 40 * 2
    for (label, budget), run in by_label.items():
        if budget is not None:
            assert run.expected_nfe <= budget, (label, budget)


def test_the_image_sweep_runs_tiny(tmp_path) -> None:
    shipped = json.loads(resolve_config_path("sd3.5").read_text())
    tiny = {
        **shipped,
        "backend": {
            "name": "sd3",
            "options": {**shipped["backend"]["options"], "tiny": True, "height": 32, "width": 32},
        },
        "reward": {"name": "pixel"},  # the shipped CLIP score needs weights
        "num_steps": 4,
        "strategies": [
            {"name": "baseline"},
            {"name": "best-of-n"},
            {"name": "rgrp", "options": {"schedule": [1, 2]}},
        ],
        "budgets_nfe": [16],
        "prompts": shipped["prompts"][:1],
        "seeds": 1,
    }
    outcome = run_sweep(load_config(write_config(tmp_path, tiny)), tmp_path / "out", progress=False)
    assert outcome.failures == []
    rows = read_results(outcome.folder / RESULTS_FILE)[0]
    assert rows == outcome.rows
    assert sorted(row["label"] for row in rows) == ["baseline", "best-of-n", "rgrp"]
    assert all(row["nfe"] <= 16 for row in rows)
