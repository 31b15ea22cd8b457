"""The options every diffusers family shares: one base class, a family declares what differs."""

from __future__ import annotations

from typing import ClassVar

import attrs
import pytest

from searchkit.backends.common.options import DiffusersOptions, family_default, family_options
from searchkit.backends.sd3 import SD3Options
from searchkit.backends.wan import WanOptions
from searchkit.fielddoc import field_docs

SHARED = ("max_batch", "cfg_batched", "vae_tiling", "cpu_offload")


@pytest.mark.parametrize("cls", [WanOptions, SD3Options])
def test_every_option_has_its_own_help(cls) -> None:
    docs = field_docs(cls)
    for field in attrs.fields(cls):
        assert docs.get(field.name), f"{cls.__name__}.{field.name} has no entry in Args:"
    # an entry names one option: no other option's name inside it
    assert "vae_tiling" not in docs["vae_slicing"] and "num_frames" not in docs.get("height", "")


def test_shared_options_read_the_same_in_both_families() -> None:
    wan, sd3 = field_docs(WanOptions), field_docs(SD3Options)
    for name in SHARED:
        assert wan[name] == sd3[name] == field_docs(DiffusersOptions)[name]
        assert attrs.fields_dict(WanOptions)[name].default == (
            attrs.fields_dict(SD3Options)[name].default
        )


def test_family_defaults_stay_the_pipelines() -> None:
    wan, sd3 = WanOptions(), SD3Options()
    assert (wan.solver, wan.flow_shift, wan.guidance_scale, wan.num_steps) == (
        "unipc",
        5.0,
        5.0,
        50,
    )
    assert (sd3.solver, sd3.flow_shift, sd3.guidance_scale, sd3.num_steps) == (
        "euler",
        3.0,
        7.0,
        28,
    )
    assert (wan.max_sequence_length, sd3.max_sequence_length) == (512, 256)
    assert (sd3.height, sd3.width, sd3.negative_prompt) == (1024, 1024, "")


def test_sampling_options_are_listed_first() -> None:
    assert [f.name for f in attrs.fields(SD3Options)] == [
        "solver", "flow_shift", "guidance_scale", "height", "width", "num_steps",
        "negative_prompt", "max_sequence_length", "max_batch", "cfg_batched", "vae_slicing",
        "vae_tiling", "offload_text_encoder", "cpu_offload",
    ]  # fmt: skip
    names = [f.name for f in attrs.fields(WanOptions)]
    assert names.index("num_frames") < names.index("max_batch")


def _third_family():
    @family_options
    class ToyOptions(DiffusersOptions):
        """Toy options.

        Args:
            num_steps: steps.
        """

        family: ClassVar[str] = "Toy"
        solver: str = family_default("solver", "euler")
        flow_shift: float = family_default("flow_shift", 1.0)
        guidance_scale: float = family_default("guidance_scale", 4.0)
        height: int = family_default("height", 64)
        width: int = family_default("width", 64)
        num_steps: int = family_default("num_steps", 20)
        negative_prompt: str = family_default("negative_prompt", "")
        max_sequence_length: int = family_default("max_sequence_length", 77)

    return ToyOptions


def test_a_new_family_declares_only_its_defaults() -> None:
    toy = _third_family()
    options = toy.from_options(guidance_scale=1, max_batch=3)
    assert options.guidance_scale == 1.0 and not options.guided
    assert options.forwards_per_step == 1 and options.max_batch == 3
    assert toy().forwards_per_step == 2 and toy().cfg_batched is True
    with pytest.raises(ValueError, match="flow_shift must be a finite number > 0.0, got 0.0"):
        toy(flow_shift=0)
    with pytest.raises(ValueError, match="cpu_offload and offload_text_encoder are both true"):
        toy(cpu_offload=True, offload_text_encoder=True)
    with pytest.raises(TypeError, match=r"unknown Toy backend option\(s\) \['num_frames'\]"):
        toy.from_options(num_frames=5)
    assert field_docs(toy)["num_steps"] == "steps."
    assert field_docs(toy)["max_batch"] == field_docs(DiffusersOptions)["max_batch"]


def test_a_family_without_a_sampling_default_is_named_when_defined() -> None:
    with pytest.raises(TypeError, match="HalfOptions must give its own default for .*num_steps"):

        @family_options
        class HalfOptions(DiffusersOptions):
            solver: str = family_default("solver", "euler")


def test_family_default_names_an_unknown_option() -> None:
    with pytest.raises(ValueError, match="'num_frame' is not an option of DiffusersOptions"):
        family_default("num_frame", 5)
    with pytest.raises(TypeError, match="Plain must derive from DiffusersOptions"):
        family_options(type("Plain", (), {}))
