"""The latent reward pipeline's edges: any registered teacher, a dataset checked whole before
training, clean errors for a broken resume state, metered evaluation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from searchkit.backends import AnalyticBackend
from searchkit.cli import main as cli_main
from searchkit.errors import LatentDataError, OutputFolderError
from searchkit.reward import RewardBatch
from searchkit.rewards import AnalyticReward, LatentRewardModel, PixelReward
from searchkit.rewards.latent import (
    CollectConfig,
    TrainConfig,
    collect,
    evaluate,
    metadata_name,
    read_latent_dataset,
    train,
)
from searchkit.rewards.latent.records import recorded_teacher
from searchkit.solver import SolverState, noise_levels

WORLD = {"frames": 3, "height": 4, "width": 4, "num_steps": 12}
PROMPTS = ["prompt 0", "prompt 1", "prompt 2", "prompt 3"]
FAST = TrainConfig(epochs=1, batch_size=4, group_size=2, lr=3e-3)


@pytest.fixture(scope="module")
def world() -> AnalyticBackend:
    return AnalyticBackend(**WORLD)


@pytest.fixture(scope="module")
def collected(tmp_path_factory, world) -> Path:
    """Four prompts, two seeds, two stored steps, labelled by the analytic reward."""
    folder = tmp_path_factory.mktemp("collected")
    collect(
        world, AnalyticReward(world), PROMPTS, folder, CollectConfig(steps=(4, 9), seeds=(0, 1))
    )
    return folder


@pytest.fixture
def data(tmp_path, collected) -> Path:
    """A private copy of the collection, free to break."""
    return Path(shutil.copytree(collected, tmp_path / "data"))


def _fresh(world) -> LatentRewardModel:
    return LatentRewardModel.for_backend(
        world, width=8, depth=1, generator=torch.Generator().manual_seed(0)
    )


def _world_options() -> list[str]:
    return [f"--backend-opt={k}={v}" for k, v in WORLD.items()]


# -- the solver's public noise levels -------------------------------------------------------


def test_noise_levels_are_the_schedule(world):
    scheduler = world.make_scheduler()
    levels = noise_levels(scheduler)
    assert levels.shape == (world.num_steps + 1,) and levels[-1] == 0.0
    assert torch.all(levels[1:] < levels[:-1])  # denoising lowers the noise level
    state = SolverState(scheduler, batch=1, rank=5)
    assert [state.noise_level(k) for k in range(world.num_steps + 1)] == levels.tolist()
    with pytest.raises(ValueError, match=r"step must be an integer in \[0, 12\], got 13"):
        state.noise_level(13)


# -- any registered reward as the teacher ----------------------------------------------------


def test_collect_cli_labels_with_a_named_teacher_and_records_it(tmp_path, world):
    out = tmp_path / "pixel"
    assert (
        cli_main(
            [
                "reward",
                "collect",
                *_world_options(),
                "--out",
                str(out),
                "--prompt",
                "a fox",
                "--prompt",
                "a boat",
                "--seeds",
                "3",
                "--steps",
                "2",
                "7",
                "--teacher",
                "pixel",
            ]
        )
        == 0
    )
    teacher = recorded_teacher(out)
    assert teacher["name"] == "pixel" and teacher["options"] == {}
    assert teacher["config"] == PixelReward(world).config_dict()
    record = json.loads((out / "metadata" / metadata_name(3)).read_text())[1]
    z0 = torch.load(out / "metadata" / record["z0_tensor_path"], weights_only=True)
    # The labels are the pixel reward of the decoded output, not the backend's own reward.
    frames = world.decode(z0[None])
    expected = PixelReward(world).score(
        RewardBatch(data=frames, sigma=torch.zeros(1), conditioning=world.encode("a boat"), step=12)
    )[0]
    labels = record["output_reward"][0]
    assert [labels[d] for d in ("VQ", "MQ", "TA")] == pytest.approx(expected.tolist(), rel=1e-6)
    analytic = world.reward_dimensions(z0[None], "a boat")[0]
    assert [labels[d] for d in ("VQ", "MQ", "TA")] != pytest.approx(analytic.tolist(), rel=1e-3)


def test_teacher_options_are_recorded_and_a_changed_teacher_is_refused(tmp_path, world):
    out = tmp_path / "latent-teacher"
    args = [
        "reward",
        "collect",
        *_world_options(),
        "--out",
        str(out),
        "--prompt",
        "a fox",
        "--seeds",
        "1",
        "--steps",
        "2",
    ]
    assert (
        cli_main([*args, "--teacher", "analytic", "--teacher-opt", "input=latent", "--limit", "0"])
        == 0
    )
    assert recorded_teacher(out)["options"] == {"input": "latent"}
    assert recorded_teacher(out)["config"]["input"] == "latent"
    # Resuming with the default teacher (another input) is refused before any compute.
    assert cli_main(args) == 2
    assert not (out / "seed_1").exists()
    # The Python API takes a name and options too, and a built reward.
    summary = collect(
        world,
        "analytic",
        ["a fox"],
        out,
        CollectConfig(steps=(2,), seeds=(1,)),
        teacher_options={"input": "latent"},
    )
    assert summary.written == 1
    with pytest.raises(ValueError, match="different teacher"):
        collect(world, AnalyticReward(world), ["a fox"], out, CollectConfig(steps=(2,), seeds=(1,)))
    with pytest.raises(TypeError, match="teacher must be a Reward"):
        collect(world, 3, ["a fox"], out, CollectConfig(steps=(2,), seeds=(1,)))


# -- the dataset, checked whole ----------------------------------------------------------------


def _edit_records(data: Path, seed: int, edit) -> None:
    path = data / "metadata" / metadata_name(seed)
    records = json.loads(path.read_text())
    edit(records)
    path.write_text(json.dumps(records))


def test_a_seed_file_without_records_is_an_error(data, world):
    _edit_records(data, 1, lambda records: records.clear())
    with pytest.raises(
        LatentDataError, match=r"all_latent_metadata_seed_0001.json: holds no records"
    ):
        read_latent_dataset(data, backend=world)


@pytest.mark.parametrize("escape", ["relative", "absolute"])
def test_paths_that_leave_the_dataset_folder_are_refused(data, world, tmp_path, escape):
    outside = tmp_path / "outside.pt"
    torch.save(torch.zeros(world.latent_shape), outside)  # a valid tensor: only its place is wrong
    target = "../../outside.pt" if escape == "relative" else str(outside)
    _edit_records(
        data, 0, lambda records: records[1]["latent_tensor_path"][0].__setitem__("t9", target)
    )
    with pytest.raises(
        LatentDataError, match=r"seed_0000.json record 1 .*\['t9'\] .* leaves the dataset folder"
    ):
        read_latent_dataset(data, backend=world)
    _edit_records(
        data,
        0,
        lambda records: records[1]["latent_tensor_path"][0].__setitem__(
            "t9", "../seed_0/0001/latent_step_t9_tensor.pt"
        ),
    )
    _edit_records(
        data, 0, lambda records: records[2]["x0_tensor_path"][0].__setitem__("t4", target)
    )
    with pytest.raises(
        LatentDataError, match=r"record 2 .*x0_tensor_path\['t4'\] .* leaves the dataset folder"
    ):
        read_latent_dataset(data, backend=world)


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda p: p.write_bytes(b"not a tensor file"), "cannot load"),
        (
            lambda p: torch.save(torch.zeros(4, 3, 4, 5), p),
            r"shape \[4, 3, 4, 5\], expected \[4, 3, 4, 4\]",
        ),
        (
            lambda p: torch.save({"latent": torch.zeros(4, 3, 4, 4)}, p),
            "holds a dict, not a tensor",
        ),
        (lambda p: torch.save(torch.full((4, 3, 4, 4), float("nan")), p), "non-finite"),
    ],
)
def test_train_checks_every_tensor_before_the_first_step(data, world, tmp_path, damage, message):
    # The last record's x0 of the last step: reading the metadata does not open it.
    damage(data / "seed_1" / "0003" / "x0_step_t9_tensor.pt")
    dataset = read_latent_dataset(data)
    out = tmp_path / "run"
    with pytest.raises(LatentDataError, match=rf"seed_0001.json record 3 .*x0 't9'.*{message}"):
        train(_fresh(world), dataset, world, out, FAST, progress=False)
    assert not out.exists()  # no partial output folder


def test_train_refuses_latents_of_another_shape_than_the_backend(data, world, tmp_path):
    dataset = read_latent_dataset(data)
    other = AnalyticBackend(**{**WORLD, "width": 6})
    model = LatentRewardModel.for_backend(other, width=8, depth=1)
    with pytest.raises(LatentDataError, match=r"shape \[4, 3, 4, 4\], expected \[4, 3, 4, 6\]"):
        train(model, dataset, other, tmp_path / "run", FAST, progress=False)
    assert not (tmp_path / "run").exists()


def test_train_needs_pairs_to_learn_from_and_to_validate_on(data, world, tmp_path):
    one_seed = read_latent_dataset(data / "metadata" / metadata_name(0))
    with pytest.raises(LatentDataError, match="no two trajectories of one prompt and step"):
        train(_fresh(world), one_seed, world, tmp_path / "run", FAST, progress=False)
    assert not (tmp_path / "run").exists()


def test_cli_train_on_a_broken_dataset_exits_2_and_writes_nothing(data, tmp_path, capsys):
    (data / "seed_0" / "0002" / "latent_step_t4_tensor.pt").write_bytes(b"garbage")
    out = tmp_path / "run"
    assert (
        cli_main(
            [
                "reward",
                "train",
                *_world_options(),
                "--data",
                str(data),
                "--out",
                str(out),
                "--width",
                "8",
                "--depth",
                "1",
                "--epochs",
                "1",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "seed_0000.json record 2" in err and "latent_step_t4_tensor.pt" in err
    assert "Traceback" not in err
    assert not out.exists()


# -- a resume state that cannot be loaded -------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, collected, world) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    train(_fresh(world), read_latent_dataset(collected), world, out, FAST, progress=False)
    return out


@pytest.mark.parametrize(
    "damage,named",
    [
        (lambda run: (run / "train_state.json").write_text("{not json"), "train_state.json"),
        (lambda run: (run / "train_state.json").write_text("[1, 2]"), "train_state.json"),
        (
            lambda run: (run / "checkpoints" / "epoch_001" / "trainer.pt").write_bytes(b"torn"),
            "trainer.pt",
        ),
        (
            lambda run: torch.save(
                {"optimizer": {}}, run / "checkpoints" / "epoch_001" / "trainer.pt"
            ),
            "trainer.pt",
        ),
        (lambda run: shutil.rmtree(run / "checkpoints" / "epoch_001"), "epoch_001"),
    ],
)
def test_a_resume_state_that_fails_to_load_is_a_clean_error(
    tmp_path, finished_run, collected, world, damage, named
):
    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    damage(run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    more = TrainConfig(epochs=2, batch_size=4, group_size=2, lr=3e-3)
    with pytest.raises(LatentDataError, match=rf"{named}.*(cannot|must)") as info:
        train(_fresh(world), read_latent_dataset(collected), world, run, more, progress=False)
    assert str(run) in str(info.value)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # nothing touched


def test_a_folder_of_another_run_is_an_output_folder_error(
    tmp_path, finished_run, collected, world
):
    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    other = TrainConfig(epochs=1, batch_size=4, group_size=2, lr=1e-2)
    with pytest.raises(OutputFolderError, match="different training config"):
        train(_fresh(world), read_latent_dataset(collected), world, run, other, progress=False)
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputFolderError, match="is a file"):
        train(
            _fresh(world),
            read_latent_dataset(collected),
            world,
            tmp_path / "file",
            FAST,
            progress=False,
        )


# -- evaluation decodes through the meter -----------------------------------------------------------


def test_evaluation_meters_the_teacher(collected, world):
    dataset = read_latent_dataset(collected)
    model = _fresh(world)
    video = evaluate(model, dataset, world, teacher=PixelReward(world))
    n = len(dataset)
    assert video.teacher_cost["decodes"] == n and video.teacher_cost["reward_calls"] == n
    assert video.teacher_cost["seconds"]["decode"] > 0
    latent = evaluate(model, dataset, world, teacher=AnalyticReward(world))
    assert latent.teacher_cost["decodes"] == 0 and latent.teacher_cost["reward_calls"] == n
    assert evaluate(model, dataset, world).teacher_cost is None
    # The learned model's numbers do not depend on the teacher.
    assert [r.learned_accuracy for r in video.rows] == [r.learned_accuracy for r in latent.rows]
