"""The Wan2.1 backend on tiny random components: parity with diffusers' WanPipeline,
batched particles, resampling with solver history, bad input, loading, and the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from searchkit import Baseline, Conditioning, SearchContext
from searchkit.backend import ComputeProfile
from searchkit.backends import WanBackend
from searchkit.backends.wan import (
    TINY_VOCABULARY,
    WAN_NEGATIVE_PROMPT,
    WAN_NEGATIVE_PROMPT_ZH,
    WanOptions,
    tiny_pipeline,
)
from searchkit.builders import build_backend, build_reward
from searchkit.reward import RewardBatch
from searchkit.rewards.pixel import PixelReward, prompt_colour
from searchkit.testing.reference import fork, reference_loop

PROMPT = "a red fox running through fresh snow"
# Small pipeline-call settings, as in diffusers' own Wan tests.
SIZE = {"height": 16, "width": 16, "num_frames": 9}
SEQ = 16
# Batching particles (or cond with uncond) changes float32 summation order inside the
# transformer: observed differences after 10 steps are about 2e-6 on latents of magnitude ~4.
# 1e-4 is a documented bound 50x above that which still catches any mixing of particles
# (differences of order 1).
BATCH_TOL = 1e-4


@pytest.fixture(scope="module")
def pipe():
    pipe = tiny_pipeline(seed=0)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _backend(pipe, **options) -> WanBackend:
    settings = {**SIZE, "num_steps": 10, "max_sequence_length": SEQ, **options}
    return WanBackend.from_pipeline(pipe, **settings)


# -- parity with diffusers ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("solver", "negative"),
    [
        ("unipc", None),  # the backend's default: Wan's standard negative prompt
        ("euler", None),
        ("pipeline", None),
        ("unipc", ""),  # opted out: the pipeline's own default
    ],
)
def test_baseline_reproduces_the_pipeline_bit_for_bit(pipe, solver, negative) -> None:
    options = {} if negative is None else {"negative_prompt": negative}
    backend = _backend(
        pipe,
        solver=solver,
        flow_shift=3.0,
        num_steps=4,
        guidance_scale=6.0,
        cfg_batched=False,
        **options,
    )
    original = pipe.scheduler
    if solver == "pipeline":
        pipe.scheduler = FlowMatchEulerDiscreteScheduler(shift=7.0)  # diffusers' test scheduler
    else:
        pipe.scheduler = backend.make_scheduler()  # the same solver inside the pipeline
    call = {
        **SIZE,
        "num_inference_steps": 4,
        "guidance_scale": 6.0,
        "max_sequence_length": SEQ,
        "negative_prompt": backend.options.negative_prompt,  # the same one to both
    }
    try:
        latents = pipe(
            PROMPT, generator=torch.Generator().manual_seed(7), output_type="latent", **call
        ).frames
        frames = pipe(
            PROMPT, generator=torch.Generator().manual_seed(7), output_type="np", **call
        ).frames
        result = Baseline().run(backend, PixelReward(backend), PROMPT, seed=7)
        together = backend.with_options(cfg_batched=True)
        batched = Baseline().run(together, PixelReward(together), PROMPT, seed=7).latents
    finally:
        pipe.scheduler = original

    assert torch.equal(result.latents, latents[0])
    assert torch.equal(result.video, torch.from_numpy(frames[0]))
    assert result.video.shape == (9, 16, 16, 3)
    assert result.cost.particle_steps == 4 and result.cost.nfe == 8
    # guidance batched (cond and uncond in one forward): float rounding only, observed 1.3e-6
    # to 2.9e-6 over these cases, within the 1e-5 that parity asks of batched guidance
    assert 0 < (batched - latents[0]).abs().max() < 1e-5


def test_the_default_negative_prompt_is_wans_standard_one_and_empty_opts_out(pipe) -> None:
    assert WanOptions().negative_prompt == WAN_NEGATIVE_PROMPT
    assert WAN_NEGATIVE_PROMPT.startswith("Bright tones, overexposed, static, blurred details")
    assert WAN_NEGATIVE_PROMPT.endswith("many people in the background, walking backwards")
    assert WAN_NEGATIVE_PROMPT_ZH.startswith(
        "色调艳丽，过曝，静态"
    ) and WAN_NEGATIVE_PROMPT_ZH.endswith("倒着走")
    standard, empty = _backend(pipe), _backend(pipe, negative_prompt="")
    assert standard.options.negative_prompt == WAN_NEGATIVE_PROMPT
    assert standard.config_dict()["negative_prompt"] == WAN_NEGATIVE_PROMPT
    assert empty.options.negative_prompt == "" and empty.config_dict()["negative_prompt"] == ""
    # the unconditional branch sees a different text, so guidance (and the output) changes
    with_standard, with_empty = standard.encode(PROMPT).data, empty.encode(PROMPT).data
    assert torch.equal(with_standard.prompt_embeds, with_empty.prompt_embeds)
    assert (with_standard.negative_embeds - with_empty.negative_embeds).abs().max() > 1e-3
    reward = PixelReward(standard)
    a = Baseline().run(_backend(pipe, num_steps=3), reward, PROMPT, seed=0).latents
    b = Baseline().run(_backend(pipe, num_steps=3, negative_prompt=""), reward, PROMPT, seed=0)
    assert (a - b.latents).abs().max() > 1e-3
    explicit = _backend(pipe, negative_prompt=WAN_NEGATIVE_PROMPT)
    assert torch.equal(explicit.encode(PROMPT).data.negative_embeds, with_standard.negative_embeds)


def test_pipeline_parity_is_sensitive_to_the_seed(pipe) -> None:
    backend = _backend(pipe, solver="unipc", num_steps=3, cfg_batched=False)
    reward = PixelReward(backend)
    a = Baseline().run(backend, reward, PROMPT, seed=1).latents
    b = Baseline().run(backend, reward, PROMPT, seed=2).latents
    assert torch.equal(a, Baseline().run(backend, reward, PROMPT, seed=1).latents)
    assert (a - b).abs().max() > 0.1


# -- batched particles ------------------------------------------------------------------------
def _run(backend, noise, to=None, seed=0):
    ctx = SearchContext(
        backend, PixelReward(backend), PROMPT, generator=torch.Generator().manual_seed(seed)
    )
    return ctx.advance(ctx.start(noise.shape[0], noise=noise), to=to or backend.num_steps).latents


@pytest.mark.parametrize(
    ("max_batch", "cfg_batched", "exact"),
    [(None, True, False), (2, False, False), (1, False, True), (1, True, True), (2, True, False)],
)
def test_many_particles_equal_single_runs(pipe, max_batch, cfg_batched, exact) -> None:
    backend = _backend(pipe, solver="unipc", max_batch=max_batch, cfg_batched=cfg_batched)
    noise = torch.randn(3, *backend.latent_shape, generator=torch.Generator().manual_seed(1))
    batched = _run(backend, noise)
    for i in range(3):
        single = _run(backend, noise[i : i + 1])[0]
        if exact:  # each forward sees the same rows as a single run: identical bits
            assert torch.equal(batched[i], single)
        else:
            assert (batched[i] - single).abs().max() < BATCH_TOL


def test_chunking_counts_forwards(pipe) -> None:
    calls: list[int] = []
    backend = _backend(pipe, max_batch=2, cfg_batched=True)
    hook = backend.transformer.register_forward_hook(
        lambda m, a, kw, out: calls.append(kw["hidden_states"].shape[0]), with_kwargs=True
    )
    try:
        backend.velocity(
            torch.zeros(5, *backend.latent_shape), torch.tensor(900.0), 0.9, backend.encode(PROMPT)
        )
        assert calls == [4, 4, 2]  # max_batch counts particles: 2 (cond + uncond rows), then 1
        calls.clear()
        separate = _backend(pipe, max_batch=3, cfg_batched=False)
        separate.velocity(
            torch.zeros(5, *backend.latent_shape), torch.tensor(900.0), 0.9, backend.encode(PROMPT)
        )
        assert calls == [3, 3, 2, 2]  # 3 particles per forward, conditional then unconditional
    finally:
        hook.remove()


@pytest.mark.parametrize("cfg_batched", [False, True])
def test_resample_midway_equals_deepcopied_scheduler_reference(pipe, cfg_batched) -> None:
    backend = _backend(
        pipe, solver="unipc", max_batch=None if cfg_batched else 1, cfg_batched=cfg_batched
    )
    noise = torch.randn(3, *backend.latent_shape, generator=torch.Generator().manual_seed(5))
    ctx = SearchContext(backend, PixelReward(backend), PROMPT, generator=torch.Generator())
    particles = ctx.advance(ctx.start(3, noise=noise), to=4)
    chosen = [2, 0, 2, 1]
    out = ctx.advance(particles.select(chosen), to=10).latents

    cond = backend.encode(PROMPT)
    states = []
    with torch.no_grad():
        for i in range(3):
            scheduler = backend.make_scheduler()
            states.append(
                (reference_loop(backend, cond, noise[i : i + 1], scheduler, 0, 4), scheduler)
            )
        for slot, i in enumerate(chosen):
            x, scheduler = states[i]
            expected = reference_loop(backend, cond, x.clone(), fork(scheduler), 4, 10)[0]
            assert (out[slot] - expected).abs().max() < BATCH_TOL
            if not cfg_batched:  # one row per forward, as in the reference: same bits
                assert torch.equal(out[slot], expected)
        # sensitivity: particle 2 continued with particle 0's history lands elsewhere
        wrong = reference_loop(backend, cond, states[2][0].clone(), fork(states[0][1]), 4, 10)[0]
    assert (out[0] - wrong).abs().max() > 100 * BATCH_TOL


def test_stochastic_solver_draws_from_the_generator(pipe) -> None:
    backend = _backend(pipe, solver="sde-dpmsolver++", num_steps=4)
    assert backend.is_stochastic and not _backend(pipe, solver="unipc").is_stochastic
    noise = torch.randn(1, *backend.latent_shape, generator=torch.Generator().manual_seed(2))
    a, b, c = (_run(backend, noise, seed=s) for s in (0, 0, 1))
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 0.01


# -- encoding, decoding, shapes ----------------------------------------------------------------
def test_encode_runs_the_text_encoder_once_per_prompt(pipe) -> None:
    backend = _backend(pipe)
    calls: list[int] = []
    hook = pipe.text_encoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        first = backend.encode(PROMPT)
        second = backend.encode(PROMPT)
        assert len(calls) == 2  # the prompt and the negative prompt, once
        assert first.data is second.data
    finally:
        hook.remove()
    data = first.data
    assert data.prompt_embeds.shape == (1, SEQ, 32) and data.negative_embeds.shape == (1, SEQ, 32)
    words = PROMPT.split()
    assert data.num_tokens == len(words) + 1  # words and the end-of-sequence token
    assert torch.all(data.prompt_embeds[0, data.num_tokens :] == 0)
    embedding = backend.prompt_embedding(first)
    assert embedding.shape == (32,)
    assert torch.allclose(embedding, data.prompt_embeds[0, : data.num_tokens].float().mean(0))
    other = backend.prompt_embedding(backend.encode("a blue whale swimming in the ocean"))
    assert (embedding - other).abs().max() > 1e-3
    assert all(word in TINY_VOCABULARY for word in words)


def test_no_guidance_is_one_forward_and_no_negative_prompt(pipe) -> None:
    backend = _backend(pipe, guidance_scale=1.0, num_steps=3)
    assert backend.forwards_per_step == 1
    assert backend.encode(PROMPT).data.negative_embeds is None
    result = Baseline().run(backend, PixelReward(backend), PROMPT, seed=0)
    assert result.cost.nfe == 3


def test_latent_shape_and_decode(pipe) -> None:
    backend = _backend(pipe, height=32, width=48, num_frames=13)
    assert backend.latent_shape == (16, 4, 4, 6)
    z = torch.randn(2, *backend.latent_shape, generator=torch.Generator().manual_seed(0))
    video = backend.decode(z)
    assert video.shape == (2, 13, 32, 48, 3)
    assert video.min() >= 0 and video.max() <= 1 and video.std() > 0.01
    sliced = _backend(pipe, height=32, width=48, num_frames=13, vae_slicing=True).decode(z)
    assert (sliced - video).abs().max() < 1e-5
    # the pipeline's de-normalisation: decoding mean-valued latents equals decoding raw zeros
    vae = pipe.vae
    mean = torch.tensor(vae.config.latents_mean).view(1, 16, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, 16, 1, 1, 1)
    raw = vae.decode(z[:1] * std + mean, return_dict=False)[0]
    assert torch.allclose(
        video[:1], (raw * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 4, 1), atol=1e-5
    )


def test_config_dict_is_json(pipe) -> None:
    config = _backend(pipe, solver="pipeline").config_dict()
    assert config["name"] == "wan" and config["scheduler"]["class"] == type(pipe.scheduler).__name__
    json.dumps(config)


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"height": 100}, "height must be a positive multiple of 16 pixels .*got 100"),
        ({"width": 8}, "width must be a positive multiple of 16 pixels .*got 8"),
        ({"num_frames": 10}, r"num_frames must be 4k\+1 .*got 10"),
        ({"num_frames": 0}, r"num_frames must be 4k\+1 .*got 0"),
        ({"solver": "ddim"}, "solver must be one of .*'ddim'"),
        ({"guidance_scale": 0.5}, "guidance_scale must be .*0.5"),
        ({"num_steps": 0}, "num_steps must be >= 1, got 0"),
        ({"max_batch": 0}, "max_batch must be >= 1, got 0"),
    ],
)
def test_bad_options_name_the_field_and_value(pipe, options, message) -> None:
    with pytest.raises(ValueError, match=message):
        WanBackend.from_pipeline(pipe, **options)


def test_non_numbers_are_named(pipe) -> None:
    with pytest.raises(TypeError, match="guidance_scale must be a number, got 'high'"):
        WanBackend.from_pipeline(pipe, guidance_scale="high")
    with pytest.raises(TypeError, match="cfg_batched must be true or false, got 1"):
        WanBackend.from_pipeline(pipe, cfg_batched=1)


def test_unknown_option_is_named(pipe) -> None:
    with pytest.raises(TypeError, match="unknown Wan backend option.*'frames'"):
        WanBackend.from_pipeline(pipe, frames=9)


def test_bad_options_fail_before_loading(tmp_path) -> None:
    # the folder does not even exist: the option error comes first, before any file access
    with pytest.raises(ValueError, match="height must be .*got 50"):
        WanBackend.from_pretrained(tmp_path / "missing", height=50)


@pytest.fixture(scope="module")
def checkpoint(pipe, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-wan")
    pipe.save_pretrained(folder)
    return folder


def test_from_pretrained_loads_a_saved_checkpoint(pipe, checkpoint) -> None:
    loaded = WanBackend.from_pretrained(
        checkpoint, dtype="float32", device="cpu", **SIZE, max_sequence_length=SEQ, num_steps=3
    )
    reference = _backend(pipe, num_steps=3)
    x = torch.randn(2, *loaded.latent_shape, generator=torch.Generator().manual_seed(0))
    t = torch.tensor(800.0)
    assert torch.equal(
        loaded.velocity(x, t, 0.8, loaded.encode(PROMPT)),
        reference.velocity(x, t, 0.8, reference.encode(PROMPT)),
    )
    assert loaded.config_dict()["source"]["kind"] == "checkpoint"


def test_missing_path_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="model_path .*nowhere.* does not exist"):
        WanBackend.from_pretrained(tmp_path / "nowhere")


def test_a_folder_that_is_not_a_checkpoint(tmp_path) -> None:
    with pytest.raises(
        ValueError, match="not a diffusers Wan checkpoint: it has no model_index.json"
    ):
        WanBackend.from_pretrained(tmp_path)
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    with pytest.raises(ValueError, match="not a Wan2.1 text-to-video checkpoint.*'FluxPipeline'"):
        WanBackend.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "component", ["transformer", "vae", "text_encoder", "tokenizer", "scheduler"]
)
def test_a_checkpoint_missing_a_component(checkpoint, tmp_path, component) -> None:
    import shutil

    copy = tmp_path / "ckpt"
    shutil.copytree(checkpoint, copy, ignore=shutil.ignore_patterns(component))
    with pytest.raises(ValueError, match=f"missing component '{component}'"):
        WanBackend.from_pretrained(copy)


def test_a_component_without_weights(checkpoint, tmp_path) -> None:
    import shutil

    copy = tmp_path / "ckpt"
    shutil.copytree(checkpoint, copy, ignore=shutil.ignore_patterns("*.safetensors"))
    with pytest.raises(ValueError, match="component 'transformer' has no weight files"):
        WanBackend.from_pretrained(copy)


def test_build_needs_a_path_or_tiny() -> None:
    with pytest.raises(ValueError, match="needs model_path=PATH"):
        build_backend("wan")
    with pytest.raises(ValueError, match="either model_path .* or tiny=true"):
        build_backend("wan", model_path="x", tiny=True)
    with pytest.raises(ValueError, match="weights_seed applies to tiny=true only"):
        build_backend("wan", model_path="x", weights_seed=3)
    with pytest.raises(ValueError, match="dtype must be one of .*'float8'"):
        build_backend("wan", tiny=True, dtype="float8")


# -- compute planning without weights --------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, (50, 2)),
        ({"guidance_scale": 1.0, "num_steps": 7}, (7, 1)),
        ({"num_steps": 3, "cfg_batched": False, "max_batch": 1}, (3, 2)),
        (
            {"guidance_scale": 2, "max_batch": 2, "solver": "sde-dpmsolver++", "num_steps": 12},
            (12, 2),
        ),
    ],
)
def test_compute_profile_matches_the_built_backend(options, expected) -> None:
    settings = {"tiny": True, "height": 16, "width": 16, "num_frames": 5, **options}
    built = WanBackend.build(**settings)
    assert WanBackend.compute_profile(**settings) == ComputeProfile(*expected)
    assert ComputeProfile(built.num_steps, built.forwards_per_step) == ComputeProfile(*expected)


def test_compute_profile_reads_no_checkpoint(tmp_path) -> None:
    absent = tmp_path / "not-downloaded-yet"
    profile = WanBackend.compute_profile(
        model_path=str(absent), dtype="bf16", num_steps=20, guidance_scale=1.0
    )
    assert profile == ComputeProfile(20, 1)
    assert not absent.exists()
    # bad settings are still named, as building would name them
    with pytest.raises(ValueError, match="num_steps must be >= 1, got 0"):
        WanBackend.compute_profile(model_path=str(absent), num_steps=0)
    with pytest.raises(ValueError, match="dtype must be one of .*'float8'"):
        WanBackend.compute_profile(model_path=str(absent), dtype="float8")
    with pytest.raises(ValueError, match="either model_path .* or tiny=true"):
        WanBackend.compute_profile(model_path=str(absent), tiny=True)
    with pytest.raises(ValueError, match="needs model_path=PATH"):
        WanBackend.compute_profile()
    with pytest.raises(TypeError, match="unknown Wan backend option.*'frames'"):
        WanBackend.compute_profile(tiny=True, frames=9)


def test_steps_read_the_transformer_placement_only_when_built(pipe, monkeypatch) -> None:
    # diffusers' ModelMixin.dtype/.device walk every submodule: the backend reads them once
    reads: list[str] = []
    model = type(pipe.transformer)
    for name in ("dtype", "device"):
        read = getattr(model, name).fget
        monkeypatch.setattr(
            model, name, property(lambda self, n=name, f=read: reads.append(n) or f(self))
        )
    backend = _backend(pipe, num_steps=3)
    assert sorted(reads) == ["device", "dtype"]
    reads.clear()
    result = Baseline().run(backend, PixelReward(backend), PROMPT, seed=0)
    assert result.cost.particle_steps == 3 and reads == []
    backend.refresh_placement()
    assert sorted(reads) == ["device", "dtype"]


# -- the command line ----------------------------------------------------------------------------
def test_cli_generate_writes_an_mp4(tmp_path, capsys) -> None:
    from searchkit.cli import main

    out = tmp_path / "run"
    code = main(
        [
            "generate",
            "--backend",
            "wan",
            "--backend-opt",
            "tiny=true",
            "--backend-opt",
            "num_steps=3",
            "--backend-opt",
            "max_sequence_length=16",
            "--strategy",
            "best-of-n",
            "--n",
            "2",
            "--prompt",
            PROMPT,
            "--seed",
            "1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["particle_steps"] == 6 and set(summary["scores"]) == {"VQ", "MQ", "TA"}
    video = out / "video.mp4"
    assert video.stat().st_size > 0
    import imageio.v3 as iio

    frames = iio.imread(video)
    assert frames.shape == (9, 32, 32, 3)  # tiny's default size
    report = json.loads((out / "result.json").read_text())
    assert report["strategy"] == "best-of-n"


def test_cli_generate_from_a_checkpoint_folder(checkpoint, tmp_path, capsys) -> None:
    from searchkit.cli import main

    out = tmp_path / "run"
    code = main(
        [
            "generate",
            "--backend",
            "wan",
            "--model-path",
            str(checkpoint),
            "--backend-opt",
            "height=16",
            "--backend-opt",
            "width=16",
            "--backend-opt",
            "num_frames=5",
            "--backend-opt",
            "num_steps=4",
            "--backend-opt",
            "max_sequence_length=16",
            "--backend-opt",
            "dtype=float32",
            "--backend-opt",
            "device=cpu",
            "--strategy",
            "rgrp",
            "--num-particles",
            "3",
            "--schedule",
            "1,2",
            "--format",
            "frames",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    # P = 2 N + K1 + 1 for S = (1, 2) of 4 steps, K1 in [1, N]
    assert summary["strategy"] == "rgrp" and 8 <= summary["particle_steps"] <= 10
    assert len(list((out / "frames").glob("frame_*.png"))) == 5


def test_cli_reports_a_bad_model_path(tmp_path, capsys) -> None:
    from searchkit.cli import main

    code = main(
        [
            "generate",
            "--backend",
            "wan",
            "--model-path",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_offloaded_text_encoder_encodes_the_same(pipe) -> None:
    plain = _backend(pipe).encode(PROMPT).data
    offloaded = _backend(pipe, offload_text_encoder=True)
    data = offloaded.encode(PROMPT).data
    assert pipe.text_encoder.device.type == "cpu"
    assert torch.equal(plain.prompt_embeds, data.prompt_embeds)
    assert torch.equal(plain.negative_embeds, data.negative_embeds)


def test_vae_tiling_switches_tiling_on(pipe) -> None:
    try:
        _backend(pipe, vae_tiling=True)
        assert pipe.vae.use_tiling
    finally:
        pipe.vae.disable_tiling()


def test_default_reward_of_the_backend(pipe) -> None:
    backend = _backend(pipe)
    reward = build_reward(None, backend)
    assert isinstance(reward, PixelReward) and WanBackend.default_reward == "pixel"
    assert WanOptions().max_sequence_length == 512


def test_gradients_flow_from_the_pixel_reward_to_the_noise(pipe) -> None:
    backend = _backend(pipe, num_steps=2)
    reward = PixelReward(backend)
    assert backend.is_differentiable and reward.is_differentiable
    ctx = SearchContext(backend, reward, PROMPT, generator=torch.Generator().manual_seed(0))
    noise = ctx.noise(1).requires_grad_(True)
    finished = ctx.advance(ctx.start(1, noise=noise), to=2, grad=True)
    batch = RewardBatch(
        data=backend.decode(finished.latents),
        sigma=torch.zeros(1),
        conditioning=ctx.conditioning,
        step=2,
    )
    reward(batch).sum().backward()
    assert noise.grad is not None and noise.grad.abs().sum() > 0


# -- the pixel reward --------------------------------------------------------------------------
def _pixel(video, prompt=PROMPT):
    cond = Conditioning(prompt=prompt, data=None)
    return PixelReward()(
        RewardBatch(data=video, sigma=torch.zeros(video.shape[0]), conditioning=cond, step=0)
    )


def test_pixel_reward_closed_forms() -> None:
    target = prompt_colour(PROMPT)
    flat = target.view(1, 1, 1, 1, 3).expand(1, 5, 8, 8, 3).clone()
    vq, mq, ta = _pixel(flat)[0].tolist()
    assert vq == pytest.approx(-1.0) and mq == pytest.approx(1.0) and ta == pytest.approx(1.0)
    # a checkerboard has contrast and sharpness; flickering it costs motion quality
    board = ((torch.arange(8)[:, None] + torch.arange(8)[None]) % 2).float()
    still = board.view(1, 1, 8, 8, 1).expand(1, 5, 8, 8, 3).clone()
    flicker = still.clone()
    flicker[:, 1::2] = 1 - flicker[:, 1::2]
    s_still, s_flicker = _pixel(still)[0], _pixel(flicker)[0]
    assert s_still[0] > 3.0 and s_still[1] == pytest.approx(1.0)
    assert s_flicker[1] == pytest.approx(1.0 - 10.0)
    # text alignment depends on the prompt, deterministically
    assert not torch.equal(prompt_colour("a cat"), prompt_colour("a dog"))
    assert torch.equal(prompt_colour("a cat"), prompt_colour("a cat"))
    assert _pixel(flat, "a completely different prompt")[0, 2] < 1.0 - 1e-3


def test_pixel_reward_rejects_non_video() -> None:
    with pytest.raises(
        ValueError, match=r"pixel reward needs video \[n, F, H, W, 3\], got \[2, 16, 3, 2, 2\]"
    ):
        _pixel(torch.zeros(2, 16, 3, 2, 2))
