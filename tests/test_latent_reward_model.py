"""The latent reward model: shapes, conditioning, the reward interface, checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from searchkit import Baseline, SearchContext
from searchkit.backends import AnalyticBackend
from searchkit.builders import build_reward
from searchkit.registry import get_reward
from searchkit.rewards import LatentRewardModel
from searchkit.rewards.latent import LatentRewardConfig

PROMPT = "a red fox running through fresh snow"


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def world() -> AnalyticBackend:
    return AnalyticBackend(num_steps=12)


@pytest.fixture(scope="module")
def model(world) -> LatentRewardModel:
    return LatentRewardModel.for_backend(world, input="latent", generator=_gen(0))


def test_public_import_and_registry(world):
    assert get_reward("latent-reward-model") is LatentRewardModel
    m = LatentRewardModel.for_backend(world, generator=_gen(1))
    assert m.dimensions == ("VQ", "MQ", "TA")
    assert m.config.in_channels == world.latent_shape[0]
    assert m.config.text_dim == world.num_components  # the analytic prompt embedding


@pytest.mark.parametrize("channels,size", [(1, (3, 5, 7)), (4, (5, 8, 8)), (16, (2, 6, 10))])
def test_any_channel_count_and_size(channels, size):
    config = LatentRewardConfig(in_channels=channels, text_dim=5, width=16, depth=1)
    m = LatentRewardModel(config, generator=_gen(0))
    x = torch.randn(3, channels, *size, generator=_gen(1))
    out = m.predict(x, torch.tensor([0.9, 0.5, 0.1]), torch.randn(5, generator=_gen(2)))
    assert out.shape == (3, 3)
    assert torch.isfinite(out).all()
    # Rows are scored independently: a batch equals its rows scored alone.
    alone = m.predict(x[1:2], torch.tensor([0.5]), torch.randn(5, generator=_gen(2)))
    torch.testing.assert_close(out[1:2], alone, rtol=1e-4, atol=1e-5)


def test_noise_level_and_prompt_change_the_output(model):
    x = torch.randn(1, 4, 5, 8, 8, generator=_gen(3)).expand(4, -1, -1, -1, -1)
    text = torch.rand(8, generator=_gen(4))
    by_sigma = model.predict(x, torch.tensor([1.0, 0.7, 0.3, 0.05]), text)
    assert (by_sigma[1:] - by_sigma[:-1]).abs().amax(dim=1).min() > 1e-4
    other_text = torch.rand(8, generator=_gen(5))
    a = model.predict(x[:1], torch.tensor([0.5]), text)
    b = model.predict(x[:1], torch.tensor([0.5]), other_text)
    assert (a - b).abs().max() > 1e-4
    # Continuous conditioning: a tiny change of sigma changes the score a little, not wildly.
    c = model.predict(x[:1], torch.tensor([0.5001]), text)
    assert 0 < (a - c).abs().max() < (a - b).abs().max() + 1.0


def test_initialisation_is_deterministic_per_generator(world):
    a = LatentRewardModel.for_backend(world, generator=_gen(7)).net.state_dict()
    b = LatentRewardModel.for_backend(world, generator=_gen(7)).net.state_dict()
    c = LatentRewardModel.for_backend(world, generator=_gen(8)).net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="patch_size"):
        LatentRewardConfig(in_channels=4, text_dim=8, patch_size=(0, 2, 2))
    with pytest.raises(ValueError, match="input"):
        LatentRewardConfig(in_channels=4, text_dim=8, input="video")
    with pytest.raises(ValueError, match="noise_features"):
        LatentRewardConfig(in_channels=4, text_dim=8, noise_features=7)
    with pytest.raises(ValueError, match="dimensions"):
        LatentRewardConfig(in_channels=4, text_dim=8, dimensions=("VQ", "VQ"))


@pytest.mark.parametrize("kind", ["latent", "x0"])
def test_scores_through_the_context(world, kind):
    m = LatentRewardModel.for_backend(world, input=kind, generator=_gen(0))
    ctx = SearchContext(world, m, PROMPT, generator=_gen(11))
    particles = ctx.advance(ctx.start(3), to=5)
    record = ctx.score(particles)
    assert record.scores.shape == (3, 3) and record.input == kind
    # The context gives the real noise level of what the reward sees.
    sigmas = particles.solver.scheduler.sigmas
    expected_sigma = float(sigmas[5]) if kind == "latent" else float(sigmas[4])
    assert record.sigma == pytest.approx(expected_sigma)
    data = particles.latents if kind == "latent" else particles.x0
    text = world.prompt_embedding(world.encode(PROMPT))
    direct = m.predict(data, torch.full((3,), expected_sigma), text)
    torch.testing.assert_close(record.scores, direct.detach())
    # And a strategy can run with it.
    result = Baseline().run(world, m, PROMPT, seed=0)
    assert result.scores.shape == (3,)


def test_save_load_round_trip(tmp_path, world, model):
    model.net.target_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
    model.net.target_std.copy_(torch.tensor([2.0, 0.5, 1.5]))
    folder = model.save_pretrained(tmp_path / "m", extra={"note": "hello"})
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    loaded = LatentRewardModel.from_pretrained(folder, world)
    assert loaded.config == model.config and loaded.extra == {"note": "hello"}
    x = torch.randn(2, 4, 5, 8, 8, generator=_gen(12))
    text = torch.rand(8, generator=_gen(13))
    sigma = torch.tensor([0.8, 0.2])
    torch.testing.assert_close(
        loaded.predict(x, sigma, text), model.predict(x, sigma, text), rtol=0, atol=0
    )
    # Through the builder, as the CLI does.
    built = build_reward("latent-reward-model", world, path=str(folder))
    torch.testing.assert_close(
        built.predict(x, sigma, text), model.predict(x, sigma, text), rtol=0, atol=0
    )
    model.net.target_mean.zero_()
    model.net.target_std.fill_(1.0)


def test_load_errors_are_clear(tmp_path, world, model):
    folder = model.save_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match="config mismatch.*width is 64, expected 32"):
        LatentRewardModel.from_pretrained(folder, expect={"width": 32})
    with pytest.raises(ValueError, match="input is 'latent', expected 'x0'"):
        LatentRewardModel.from_pretrained(folder, input="x0")
    with pytest.raises(ValueError, match="3 latent channels.*in_channels=4"):
        LatentRewardModel.from_pretrained(folder, AnalyticBackend(channels=3))

    # A config that no longer matches the weights: tensor shapes are checked.
    edited = tmp_path / "edited"
    model.save_pretrained(edited)
    payload = json.loads((edited / "config.json").read_text())
    payload["config"]["width"] = 32
    (edited / "config.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="does not match its config: tensor .* has shape"):
        LatentRewardModel.from_pretrained(edited)
    payload["config"]["depth"] = 3
    payload["config"]["width"] = 64
    (edited / "config.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="missing tensors"):
        LatentRewardModel.from_pretrained(edited)
    payload["config"]["colour"] = "red"
    (edited / "config.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="unknown config field"):
        LatentRewardModel.from_pretrained(edited)

    # Corrupt files.
    corrupt = tmp_path / "corrupt"
    model.save_pretrained(corrupt)
    data = (corrupt / "model.safetensors").read_bytes()
    (corrupt / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        LatentRewardModel.from_pretrained(corrupt)
    (corrupt / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        LatentRewardModel.from_pretrained(corrupt)
    with pytest.raises(FileNotFoundError, match="config"):
        LatentRewardModel.from_pretrained(tmp_path / "nowhere")


def test_build_without_a_path_explains(world):
    with pytest.raises(ValueError, match="path=FOLDER"):
        build_reward("latent-reward-model", world)
