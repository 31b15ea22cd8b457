"""Latent reward data: the paper's metadata schema, clear errors, resumable collection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from searchkit import Baseline
from searchkit.backends import AnalyticBackend
from searchkit.errors import LatentDataError
from searchkit.rewards import AnalyticReward
from searchkit.rewards.latent import (
    CollectConfig,
    collect,
    metadata_name,
    read_latent_dataset,
    sample_seed,
)

SHAPE = (4, 3, 4, 4)


@pytest.fixture(scope="module")
def world() -> AnalyticBackend:
    return AnalyticBackend(frames=3, height=4, width=4, num_steps=12)


def _paper_dataset(root: Path, *, n: int = 3, shape=SHAPE, with_batch_dim: bool = False) -> Path:
    """A dataset laid out as the paper's collection script writes it (no searchkit extras)."""
    meta = root / "metadata"
    meta.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    records = []
    for i in range(n):
        sample = root / "seed_200" / f"{i:04d}"
        sample.mkdir(parents=True)
        paths, sims = {}, {}
        for step in (2, 5):
            t = torch.randn((1, *shape) if with_batch_dim else shape, generator=g)
            torch.save(t, sample / f"latent_step_t{step}_tensor.pt")
            paths[f"t{step}"] = f"../seed_200/{i:04d}/latent_step_t{step}_tensor.pt"
            sims[f"t{step}"] = 0.5 + 0.1 * step / 5
        records.append(
            {
                "prompt": f"prompt {i % 2}",
                "video_path": f"../seed_200/{i:04d}/video.mp4",
                "output_reward": [
                    {"VQ": 1.0 + i, "MQ": -0.5, "TA": 0.25 * i, "Overall": 0.5 + 1.25 * i}
                ],
                "latent_tensor_path": [paths],
                "latent_z0_similarity": [sims],
            }
        )
    (meta / metadata_name(200)).write_text(json.dumps(records, indent=2))
    return meta


def test_reads_the_papers_schema(tmp_path, world):
    meta = _paper_dataset(tmp_path)
    ds = read_latent_dataset(meta, backend=world)
    assert len(ds) == 6 and ds.steps == [2, 5] and ds.prompts == ["prompt 0", "prompt 1"]
    sigmas = world.make_scheduler().sigmas
    item = ds[1]  # record 0, step 5
    assert item["step"] == 5
    assert item["sigma"] == pytest.approx(float(sigmas[6]))  # t5: after step 5
    assert item["x0_sigma"] == pytest.approx(float(sigmas[5]))
    torch.testing.assert_close(item["reward"], torch.tensor([1.0, -0.5, 0.0]))
    torch.testing.assert_close(item["target"], item["reward"] * 0.6)
    assert item["latent"].shape == SHAPE and "x0" not in item
    assert not ds.has_x0
    ds.check()
    # The collection folder itself is accepted too, and a scheduler instead of a backend.
    again = read_latent_dataset(tmp_path, scheduler=world.make_scheduler())
    assert [s.sigma for s in again.samples] == [s.sigma for s in ds.samples]


def test_batch_of_one_latents_load(tmp_path, world):
    ds = read_latent_dataset(_paper_dataset(tmp_path, with_batch_dim=True), backend=world)
    assert ds[0]["latent"].shape == SHAPE


def test_without_sigma_or_schedule_the_error_says_what_to_pass(tmp_path):
    meta = _paper_dataset(tmp_path)
    with pytest.raises(
        LatentDataError, match=r"record 0 \(prompt 'prompt 0'\).*latent_sigma.*backend="
    ):
        read_latent_dataset(meta)


def test_missing_file_names_the_record(tmp_path, world):
    meta = _paper_dataset(tmp_path)
    (tmp_path / "seed_200" / "0001" / "latent_step_t5_tensor.pt").unlink()
    with pytest.raises(
        LatentDataError, match=r"seed_0200.json record 1 \(prompt 'prompt 1'\).*'t5'.*not found"
    ):
        read_latent_dataset(meta, backend=world)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda r: r.pop("output_reward"), r"missing field\(s\) \['output_reward'\]"),
        (lambda r: r["output_reward"][0].pop("TA"), r"output_reward\['TA'\] must be a number"),
        (
            lambda r: r.__setitem__("latent_tensor_path", "oops"),
            "latent_tensor_path' must be a list",
        ),
        (lambda r: r["latent_z0_similarity"][0].pop("t2"), "steps .* differ"),
        (
            lambda r: r["latent_z0_similarity"][0].__setitem__("t2", 1.7),
            r"latent_z0_similarity\['t2'\] must lie in \[0, 1\]",
        ),
        (lambda r: r.__setitem__("prompt", 3), "'prompt' must be a string"),
    ],
)
def test_malformed_record_names_the_record(tmp_path, world, edit, message):
    meta = _paper_dataset(tmp_path)
    path = meta / metadata_name(200)
    records = json.loads(path.read_text())
    edit(records[2])
    path.write_text(json.dumps(records))
    with pytest.raises(LatentDataError, match="record 2") as info:
        read_latent_dataset(meta, backend=world)
    assert info.match(message)


def test_wrong_shape_latent_names_the_record(tmp_path, world):
    meta = _paper_dataset(tmp_path)
    torch.save(torch.zeros(4, 3, 4, 5), tmp_path / "seed_200" / "0002" / "latent_step_t2_tensor.pt")
    ds = read_latent_dataset(meta, backend=world)
    with pytest.raises(
        LatentDataError, match=r"record 2 .*'t2'.*shape \[4, 3, 4, 5\], expected \[4, 3, 4, 4\]"
    ):
        ds.check()
    # Without a backend the first latent sets the expected shape.
    ds = read_latent_dataset(meta, scheduler=world.make_scheduler())
    with pytest.raises(LatentDataError, match="record 2"):
        ds.check()


def test_non_tensor_file_is_an_error(tmp_path, world):
    meta = _paper_dataset(tmp_path)
    (tmp_path / "seed_200" / "0000" / "latent_step_t2_tensor.pt").write_bytes(b"garbage")
    with pytest.raises(LatentDataError, match="record 0 .*cannot load"):
        read_latent_dataset(meta, backend=world).check()


PROMPTS = ["a fox", "a boat", "a city at night"]


def _tree(folder: Path) -> dict[str, bytes | dict]:
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix == ".json" and path.parent.name == "metadata":
            out[str(path.relative_to(folder))] = json.loads(path.read_text())
        elif path.suffix == ".pt":
            out[str(path.relative_to(folder))] = torch.load(path, weights_only=True)
    return out


def test_collect_writes_the_schema_and_matches_the_context(tmp_path, world):
    teacher = AnalyticReward(world)
    config = CollectConfig(steps=(2, 6, 10), seeds=(200, 300))
    summary = collect(world, teacher, PROMPTS[:2], tmp_path, config)
    assert summary.written == 4
    records = json.loads((tmp_path / "metadata" / metadata_name(300)).read_text())
    assert [r["prompt"] for r in records] == PROMPTS[:2]
    r = records[1]
    assert set(r["latent_tensor_path"][0]) == {"t2", "t6", "t10"}
    assert set(r["output_reward"][0]) == {"VQ", "MQ", "TA", "Overall"}
    assert r["latent_tensor_path"][0]["t6"] == "../seed_300/0001/latent_step_t6_tensor.pt"
    z0 = torch.load(tmp_path / "metadata" / r["z0_tensor_path"], weights_only=True)
    # The stored trajectory is exactly the baseline's with the same generator seed.
    base = Baseline().run(
        world, teacher, PROMPTS[1], generator=torch.Generator().manual_seed(sample_seed(300, 1))
    )
    torch.testing.assert_close(z0, base.latents, rtol=0, atol=0)
    dims = world.reward_dimensions(z0[None], PROMPTS[1])[0]
    assert [r["output_reward"][0][k] for k in ("VQ", "MQ", "TA")] == pytest.approx(
        dims.tolist(), rel=1e-5
    )
    assert r["output_reward"][0]["Overall"] == pytest.approx(float(dims.sum()), rel=1e-5)
    sigmas = world.make_scheduler().sigmas
    assert r["latent_sigma"][0]["t6"] == pytest.approx(float(sigmas[7]))
    latent = torch.load(
        tmp_path / "metadata" / r["latent_tensor_path"][0]["t10"], weights_only=True
    )
    cos = torch.nn.functional.cosine_similarity(latent.flatten(), z0.flatten(), dim=0)
    assert r["latent_z0_similarity"][0]["t10"] == pytest.approx(float((1 + cos) / 2), abs=1e-6)
    sims = [r["latent_z0_similarity"][0][k] for k in ("t2", "t6", "t10")]
    assert sims == sorted(sims)  # closer to the output as denoising progresses
    # Our own data reads back with x0 and sigma from the records (no backend needed).
    ds = read_latent_dataset(tmp_path)
    assert len(ds) == 12 and ds.has_x0
    assert ds[0]["x0"].shape == world.latent_shape


def test_collect_resumes_without_duplicates(tmp_path, world):
    teacher = AnalyticReward(world)
    config = CollectConfig(steps=(3, 8), seeds=(1, 2))
    full = collect(world, teacher, PROMPTS, tmp_path / "full", config)
    assert full.written == 6
    first = collect(world, teacher, PROMPTS, tmp_path / "staged", config, limit=4)
    assert first.written == 4
    second = collect(world, teacher, PROMPTS, tmp_path / "staged", config)
    assert (second.written, second.skipped) == (2, 4)
    third = collect(world, teacher, PROMPTS, tmp_path / "staged", config)
    assert third.written == 0
    a, b = _tree(tmp_path / "full"), _tree(tmp_path / "staged")
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key
    for seed in (1, 2):
        records = json.loads((tmp_path / "staged" / "metadata" / metadata_name(seed)).read_text())
        assert [r["prompt"] for r in records] == PROMPTS


def test_collect_rejects_a_changed_configuration(tmp_path, world):
    teacher = AnalyticReward(world)
    collect(world, teacher, PROMPTS[:1], tmp_path, CollectConfig(steps=(3,), seeds=(1,)))
    with pytest.raises(ValueError, match="different steps"):
        collect(world, teacher, PROMPTS[:1], tmp_path, CollectConfig(steps=(4,), seeds=(1,)))
    with pytest.raises(ValueError, match="different prompt list"):
        collect(world, teacher, ["another"], tmp_path, CollectConfig(steps=(3,), seeds=(1,)))
    with pytest.raises(ValueError, match="below the backend's num_steps=12"):
        collect(world, teacher, PROMPTS, tmp_path / "x", CollectConfig(steps=(12,), seeds=(1,)))
    # The shared step-schedule validator (searchkit.validation.step_schedule) names the field.
    with pytest.raises(ValueError, match="steps must be sorted in increasing order"):
        CollectConfig(steps=(5, 3))
    with pytest.raises(ValueError, match="steps must not repeat a step"):
        CollectConfig(steps=(3, 3))
