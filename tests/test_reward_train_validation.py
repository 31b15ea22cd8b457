"""``searchkit reward train`` checks everything before the first step and writes nothing on a
bad input: the LatSearch architecture's dataset (every record and latent file, before the
backbone loads) and the latent reward model's configuration sizes."""

from __future__ import annotations

import json
import math

import pytest
import torch

from searchkit.errors import LatentDataError
from searchkit.rewards.latent.network import MAX_PARAMETERS, LatentRewardConfig, LatentRewardNet
from searchkit.rewards.video_reward.train import check_latents, read_samples

PROMPTS = ["a cat", "a dog on a boat", "a red fox in snow"]


def _dataset(root, *, steps=(10, 15), shape=(16, 3, 4, 6)):
    """A dataset in the paper's schema: metadata/ with one seed file, latents under seed_200/."""
    g = torch.Generator().manual_seed(0)
    (root / "metadata").mkdir(parents=True)
    records = []
    for i, prompt in enumerate(PROMPTS):
        paths, sims = {}, {}
        for j in steps:
            path = root / "seed_200" / f"{i:04d}" / f"latent_t{j}.pt"
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(torch.randn(*shape, generator=g), path)
            paths[f"t{j}"] = f"../seed_200/{i:04d}/{path.name}"
            sims[f"t{j}"] = 0.5
        records.append(
            {
                "prompt": prompt,
                "output_reward": [{"VQ": 0.1 * i, "MQ": 0.2, "TA": -0.3}],
                "latent_tensor_path": [paths],
                "latent_z0_similarity": [sims],
            }
        )
    _write(root, records)
    return root


def _write(root, records) -> None:
    (root / "metadata" / "all_latent_metadata_seed_200.json").write_text(json.dumps(records))


def _records(root) -> list[dict]:
    return json.loads((root / "metadata" / "all_latent_metadata_seed_200.json").read_text())


def _edit(root, change) -> None:
    records = _records(root)
    change(records)
    _write(root, records)


@pytest.fixture
def data(tmp_path):
    return _dataset(tmp_path / "data")


def test_a_good_dataset_reads_and_its_latents_check(data):
    samples = read_samples(data)
    assert [s.prompt for s in samples] == PROMPTS
    assert all(sorted(s.latents) == [10, 15] for s in samples)
    assert check_latents(samples) == (16, 3, 4, 6)


def _tensor(root, i=1, j=15):
    return root / "seed_200" / f"{i:04d}" / f"latent_t{j}.pt"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: _write(r, []), r"all_latent_metadata_seed_200.json: holds no records"),
        (
            lambda r: (r / "metadata" / "all_latent_metadata_seed_200.json").write_text("[{"),
            r"all_latent_metadata_seed_200.json: not valid JSON: .*line 1 column 3",
        ),
        (
            lambda r: (r / "metadata" / "all_latent_metadata_seed_200.json").write_bytes(
                b"\xff\xfe["
            ),
            r"all_latent_metadata_seed_200.json: not valid JSON",
        ),
        (lambda r: _write(r, {"a": 1}), r"must hold a JSON list of records"),
        (
            lambda r: _edit(r, lambda rs: rs.__setitem__(1, "x")),
            r"record 1: lacks a valid field .*must be a JSON object",
        ),
        (
            lambda r: _edit(r, lambda rs: rs[0].pop("output_reward")),
            r"record 0: lacks a valid field \(KeyError",
        ),
        (
            lambda r: _edit(r, lambda rs: rs[2].__setitem__("prompt", "")),
            r"record 2: prompt must be a non-empty string",
        ),
        (
            lambda r: _edit(r, lambda rs: rs[0]["output_reward"][0].__setitem__("VQ", "high")),
            r"record 0: lacks a valid field \(ValueError",
        ),
        (
            lambda r: _edit(r, lambda rs: rs[0]["output_reward"][0].__setitem__("MQ", math.inf)),
            r"record 0: output_reward holds a non-finite score",
        ),
        (
            lambda r: _edit(r, lambda rs: rs[1]["latent_z0_similarity"][0].pop("t15")),
            r"record 1: latents for steps \[10, 15\] but similarities for \[10\]",
        ),
        (
            lambda r: _edit(r, lambda rs: rs[1]["latent_z0_similarity"][0].__setitem__("t10", 1.5)),
            r"record 1: latent_z0_similarity\['t10'\] must lie in \[0, 1\], got 1.5",
        ),
        (
            lambda r: _edit(
                r, lambda rs: rs[1]["latent_tensor_path"][0].__setitem__("t10", "../../outside.pt")
            ),
            r"record 1: latent_tensor_path\['t10'\] '../../outside.pt' leaves the dataset folder",
        ),
        (
            lambda r: _edit(
                r, lambda rs: rs[1]["latent_tensor_path"][0].__setitem__("t10", "/etc/passwd")
            ),
            r"record 1: latent_tensor_path\['t10'\] '/etc/passwd' leaves the dataset folder",
        ),
        (lambda r: _tensor(r).unlink(), r"record 1: latent_tensor_path\['t15'\] file not found"),
    ],
)
def test_a_bad_record_or_file_is_named(data, damage, message):
    damage(data)
    with pytest.raises(LatentDataError, match=message):
        read_samples(data)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            lambda p: p.write_bytes(b"not a tensor"),
            r"latent t15 of prompt 'a dog on a boat' at .*latent_t15.pt: cannot load",
        ),
        (lambda p: torch.save({"x": torch.zeros(1)}, p), r"holds a dict, not a tensor"),
        (
            lambda p: torch.save(torch.zeros(4, 3, 4, 6), p),
            r"has shape \[4, 3, 4, 6\], expected \[16, F, H, W\]",
        ),
        (
            lambda p: torch.save(torch.zeros(16, 3, 4), p),
            r"has shape \[16, 3, 4\], expected \[16, F, H, W\]",
        ),
        (
            lambda p: torch.save(torch.zeros(16, 3, 4, 8), p),
            r"has shape \[16, 3, 4, 8\], but earlier latents have \[16, 3, 4, 6\]",
        ),
        (lambda p: torch.save(torch.full((16, 3, 4, 6), math.nan), p), r"holds non-finite values"),
    ],
)
def test_every_latent_is_loaded_and_checked(data, content, message):
    content(_tensor(data))
    with pytest.raises(LatentDataError, match=message):
        check_latents(read_samples(data))


def _cli_train(data, out, *extra) -> int:
    from searchkit.cli import main

    return main(
        [
            "reward", "train", "--arch", "latsearch", "--backbone-path", str(out.parent / "no-backbone"),
            "--data", str(data), "--out", str(out), "--epochs", "1", *extra,
        ]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: _write(r, []), "holds no records"),
        (lambda r: torch.save(torch.zeros(16, 3, 4, 8), _tensor(r)), "but earlier latents have"),
        (
            lambda r: _edit(r, lambda rs: [x.__setitem__("prompt", "a cat") for x in rs]),
            "at least 2 prompts",
        ),
        (
            lambda r: _edit(
                r, lambda rs: rs[0]["latent_tensor_path"][0].__setitem__("t10", "../../x.pt")
            ),
            "leaves the dataset folder",
        ),
    ],
)
def test_cli_latsearch_train_checks_the_data_before_the_backbone_and_writes_nothing(
    data, tmp_path, capsys, damage, message
):
    """The backbone folder does not exist: the data is refused before it would be read."""
    damage(data)
    out = tmp_path / "out"
    assert _cli_train(data, out) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


# -- configuration sizes ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "sizes",
    [
        {"width": 10**12},
        {"width": 4096, "depth": 64},
        {"depth": 10**9},
        {"readouts": 10**7},
        {"position_grid": (1000, 1000, 1000)},
        {"patch_size": (64, 64, 64), "position_grid": (64, 64, 64)},
        {"mixing_kernel": 10**5 + 1},
        {"noise_features": 2 * 10**9},
    ],
)
def test_a_config_of_more_than_a_billion_parameters_is_refused(sizes):
    # each size beyond its own range names the field; sizes within their ranges whose network
    # is too big together are refused by the parameter count
    message = r"would have .* parameters; at most 1e\+09 are allowed|must lie in \[\d+, \d+\], got"
    with pytest.raises(ValueError, match=message):
        LatentRewardConfig(in_channels=16, text_dim=32, **sizes)


def test_the_parameter_count_is_the_network_s_own():
    for sizes in (
        {},
        {"width": 24, "depth": 3, "readouts": 5, "patch_size": (1, 3, 2), "mixing_kernel": 5},
    ):
        config = LatentRewardConfig(in_channels=16, text_dim=32, **sizes)
        with torch.device("meta"):
            net = LatentRewardNet(config)
        assert config.num_parameters() == sum(p.numel() for p in net.parameters())
    assert LatentRewardConfig(in_channels=16, text_dim=32).num_parameters() < MAX_PARAMETERS


def test_cli_refuses_a_huge_width_before_building_anything(tmp_path, capsys):
    from searchkit.cli import main

    out = tmp_path / "out"
    code = main(
        [
            "reward",
            "train",
            "--data",
            str(tmp_path / "missing"),
            "--out",
            str(out),
            "--width",
            str(10**12),
        ]
    )
    assert code == 2
    assert "--width must lie in [1, 65536], got 1000000000000" in capsys.readouterr().err
    assert not out.exists()
    # within its range but too big with the default depth: the parameter count refuses it
    code = main(
        [
            "reward",
            "train",
            "--data",
            str(tmp_path / "missing"),
            "--out",
            str(out),
            "--width",
            "65536",
        ]
    )
    assert code == 2
    assert "parameters; at most 1e+09 are allowed" in capsys.readouterr().err
    assert not out.exists()
