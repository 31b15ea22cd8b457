"""Planning a sweep: sized from the backend's compute profile without building it; knob ranges
read from the strategies' validators; compatibility checked where the world is built."""

from __future__ import annotations

import attrs
import pytest
from attrs import validators as v
from bench_helpers import tiny_sweep, write_config

from searchkit import Strategy
from searchkit.backend import ComputeProfile
from searchkit.backends import AnalyticBackend
from searchkit.bench import (
    BudgetError,
    ConfigError,
    SweepConfig,
    load_config,
    match_budget,
    read_results,
    run_sweep,
)
from searchkit.bench.budget import knob_minimum
from searchkit.bench.plan import plan_sweep
from searchkit.bench.store import RESULTS_FILE
from searchkit.cli import main
from searchkit.errors import SearchkitError
from searchkit.registry import BACKENDS, STRATEGIES, get_strategy


class Unloadable(AnalyticBackend):
    """A backend whose weights are not here: building it fails, its profile needs none."""

    name = "unloadable"

    def __init__(self, **options):
        raise RuntimeError("the weights of this backend are not on this machine")

    @classmethod
    def compute_profile(cls, num_steps: int = 50, guidance_scale: float = 5.0, **options):
        return ComputeProfile(num_steps, 1 if guidance_scale == 1.0 else 2)


@attrs.frozen
class Capped(Strategy):
    """Best-of-N that refuses more than ``cap`` samples after construction (a cross-field check
    that is not about the knob's range: every n above the cap is an error, not "over budget")."""

    name = "capped"
    size_knob = "n"

    n: int = attrs.field(default=2, validator=[v.instance_of(int), v.ge(1)])
    cap: int = attrs.field(default=100, validator=v.instance_of(int))

    def __attrs_post_init__(self) -> None:
        if self.n > self.cap:
            raise ValueError(f"n must not exceed cap={self.cap}, got {self.n}")

    def search(self, ctx):  # pragma: no cover  (only planned here)
        raise NotImplementedError

    def expected_particle_steps(self, num_steps: int) -> float:
        return float(self.n * num_steps)


@attrs.frozen
class Floored(Capped):
    """A knob whose field validator compares it with another field."""

    name = "floored"
    floor: int = attrs.field(default=3, validator=v.instance_of(int))
    n: int = attrs.field(default=5)

    @n.validator
    def _at_least_floor(self, attribute, value):
        if value < self.floor:
            raise ValueError(f"n must be >= floor={self.floor}, got {value}")


@pytest.fixture
def unloadable():
    BACKENDS.register("unloadable", Unloadable)
    yield
    del BACKENDS._entries["unloadable"]


# -- planning never builds the world ------------------------------------------------------------
def test_planning_sizes_from_the_compute_profile_without_building_the_backend(unloadable, tmp_path):
    config = SweepConfig.from_dict(tiny_sweep(backend={"name": "unloadable"}))
    runs = plan_sweep(config)  # would raise if it built the backend
    analytic = plan_sweep(SweepConfig.from_dict(tiny_sweep()))
    assert [(r.label, r.budget_nfe, r.size, r.expected_nfe) for r in runs] == [
        (r.label, r.budget_nfe, r.size, r.expected_nfe) for r in analytic
    ]
    # 8 steps x 2 forwards: best-of-n gets n = budget // 16
    assert {(r.budget_nfe, r.size) for r in runs if r.label == "best-of-n"} == {(32, 2), (64, 4)}
    # the world is built by the executor, where the searches run, and only there
    with pytest.raises(RuntimeError, match="weights of this backend"):
        run_sweep(config, tmp_path / "out", progress=False)
    assert read_results(tmp_path / "out" / RESULTS_FILE)[0] == []


def test_bad_backend_options_fail_in_planning_naming_the_backend():
    config = SweepConfig.from_dict(
        tiny_sweep(backend={"name": "analytic", "options": {"frames": 0}})
    )
    with pytest.raises(ConfigError, match="backend 'analytic'.*frames"):
        plan_sweep(config)


def test_match_budget_takes_a_profile_or_a_backend():
    cls = get_strategy("rgrp")
    from_profile = match_budget(cls, {}, 800, ComputeProfile(50, 2))
    from_backend = match_budget(cls, {}, 800, AnalyticBackend())
    assert from_profile == from_backend and from_profile[0].num_particles > 2


# -- the knob's range -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "options", "minimum"),
    [
        ("best-of-n", {}, 1),  # field validator: n >= 1
        ("rgrp", {}, 2),  # field validator: num_particles >= 2
        ("evo-search", {}, 2),  # after construction: later populations hold the 2 elites
        ("evo-search", {"num_elites": 3}, 3),
        ("floored", {"floor": 4}, 4),  # a field validator that reads another field
    ],
)
def test_knob_minimum_comes_from_the_validators(name, options, minimum):
    cls = Floored if name == "floored" else get_strategy(name)
    assert knob_minimum(cls, options) == minimum
    knob = cls.size_knob
    cls(**options, **{knob: minimum})
    with pytest.raises(ValueError):
        cls(**options, **{knob: minimum - 1})


def test_a_construction_error_inside_the_knob_range_is_named_not_skipped():
    # n=3 fits the budget of 200 NFE at 50 NFE a sample (1 forward x 50 steps), but n=4 does
    # not build: sizing must say so rather than treat n=4 as "over budget" and return n=3.
    with pytest.raises(BudgetError, match=r"'capped'.*cap.*n=4.*n must not exceed cap=3"):
        match_budget(Capped, {"cap": 3}, 200, ComputeProfile(50, 1))
    strategy, expected = match_budget(Capped, {"cap": 10}, 200, ComputeProfile(50, 1))
    assert (strategy.n, expected) == (4, 200.0)


def test_invalid_strategy_options_are_a_config_error_naming_strategy_and_option():
    with pytest.raises(ConfigError, match=r"'rgrp'.*beta"):
        match_budget(get_strategy("rgrp"), {"beta": 2.0}, 400, ComputeProfile(50, 2))
    with pytest.raises(ConfigError, match=r"'evo-search'.*num_elites"):
        match_budget(get_strategy("evo-search"), {"num_elites": 9}, 4000, ComputeProfile(50, 2))


def test_an_invalid_option_of_a_registered_strategy_fails_the_sweep_before_compute(
    tmp_path, capsys
):
    STRATEGIES.register("capped", Capped)
    try:
        sweep = tiny_sweep(
            strategies=[{"name": "baseline"}, {"name": "capped", "options": {"cap": 2}}]
        )
        assert (
            main(
                [
                    "bench",
                    "--config",
                    str(write_config(tmp_path, sweep)),
                    "--out",
                    str(tmp_path / "out"),
                    "--no-progress",
                ]
            )
            == 2
        )
    finally:
        del STRATEGIES._entries["capped"]
    err = capsys.readouterr().err
    assert "'capped'" in err and "n=4" in err and "cap=2" in err
    assert not (tmp_path / "out" / RESULTS_FILE).exists()  # refused while planning


# -- compatibility is checked where the world is built, before any search ---------------------------
@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        ({"name": "rgrp", "options": {"schedule": [2, 9]}}, r"'rgrp'.*\[0, 8\)"),
        ({"name": "beam-search", "label": "beams", "options": {"beta": 0.0}}, r"'beams'.*beta=0"),
    ],
)
def test_an_incompatible_strategy_fails_before_the_first_search(
    tmp_path, capsys, strategy, message
):
    sweep = tiny_sweep(strategies=[{"name": "baseline"}, strategy], budgets_nfe=[64])
    with pytest.raises(ConfigError, match=message) as error:
        run_sweep(SweepConfig.from_dict(sweep), tmp_path / "api", progress=False)
    assert "backend 'analytic'" in str(error.value) and "reward 'analytic'" in str(error.value)
    assert not (tmp_path / "api").exists()  # not even the baseline ran; no folder is left
    path = write_config(tmp_path, sweep)
    assert (
        main(["bench", "--config", str(path), "--out", str(tmp_path / "cli"), "--no-progress"]) == 2
    )
    assert "cannot run on backend 'analytic'" in capsys.readouterr().err
    assert not (tmp_path / "cli").exists()


def _snapshot(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "rgrp", "options": {"schedule": [2, 9]}},  # a schedule past the last step
        {"name": "best-of-n", "reward": "latent-reward-model"},  # a reward that cannot be built
    ],
)
@pytest.mark.parametrize("again", [{"resume": True}, {"force": True}])
def test_a_failed_check_leaves_an_existing_output_folder_as_it_was(tmp_path, bad, again):
    out = tmp_path / "out"
    good = tiny_sweep(strategies=[{"name": "baseline"}], seeds=1, budgets_nfe=[64])
    run_sweep(SweepConfig.from_dict(good), out, progress=False)
    (out / RESULTS_FILE).write_bytes((out / RESULTS_FILE).read_bytes() + b'{"key": "cut')
    before = _snapshot(out)
    assert RESULTS_FILE in before and "sweep.json" in before
    changed = SweepConfig.from_dict({**good, "strategies": [{"name": "baseline"}, bad]})
    with pytest.raises(SearchkitError):
        run_sweep(changed, out, progress=False, **again)
    assert _snapshot(out) == before


def test_the_shipped_wan_sweep_plans_without_weights(tmp_path) -> None:
    """Sizing the paper-sized Wan sweep reads only options: a checkpoint path that does not
    exist is never opened, and the plan matches budgets at 2 forwards a step (CFG 5)."""
    prompts = tmp_path / "prompts.json"
    prompts.write_text('[{"prompt_en": "a cat surfing", "dimension": ["Human_Anatomy"]}]')
    config = load_config(
        "wan2.1", prompts_file=prompts, backend_options={"model_path": str(tmp_path / "absent")}
    )
    runs = plan_sweep(config)
    assert not (tmp_path / "absent").exists()
    by_label = {(r.label, r.budget_nfe): r for r in runs}
    assert by_label[("baseline", None)].expected_nfe == 50 * 2
    for (label, budget), run in by_label.items():
        if budget is not None:
            assert run.expected_nfe <= budget, (label, budget)


def test_the_shipped_paper_sweep_plans_each_method_at_its_own_compute(tmp_path) -> None:
    """The LatSearch table's compute, from options alone: P = 50, 250, 110, 200, 525 and
    RGRP's 105 to 155 particle-steps (mean about 129), two forwards a step."""
    prompts = tmp_path / "prompts.json"
    prompts.write_text(
        '[{"prompt_en": "a cat surfing", "dimension": ["Mechanics"]},'
        ' {"prompt_en": "a man playing basketball", "dimension": ["Diversity"]}]'
    )
    config = load_config(
        "latsearch-paper",
        prompts_file=prompts,
        backend_options={"model_path": str(tmp_path / "absent")},
    )
    runs = plan_sweep(config)
    first = {r.label: r for r in runs if r.seed == 0 and r.prompt == "a cat surfing"}
    assert {
        label: run.expected_nfe / 2 for label, run in first.items() if run.strategy.name != "rgrp"
    } == {
        "baseline": 50,
        "freeinit": 250,
        "freqprior": 110,
        "best-of-4-videoreward": 200,
        "evosearch": 525,
    }
    for label in ("rgrp-unipc", "rgrp-sde-dpmsolver++"):
        assert 105 < first[label].expected_nfe / 2 < 155 and first[label].budget_nfe is None
    assert [
        (r.solver, r.reward.name) for r in (first["rgrp-unipc"], first["rgrp-sde-dpmsolver++"])
    ] == [
        ("unipc", "latsearch-latent-reward"),
        ("sde-dpmsolver++", "latsearch-latent-reward"),
    ]
    assert first["evosearch"].solver == "sde-dpmsolver++"
    assert first["best-of-4-videoreward"].reward.to_dict() == {
        "name": "video-reward",
        "options": {"normalize": True},
    }
    # VBench-2.0's samples: 3 seeds of the Mechanics prompt, 20 of the Diversity one
    per_prompt = {p: len({r.seed for r in runs if r.prompt == p}) for p in {r.prompt for r in runs}}
    assert per_prompt == {"a cat surfing": 3, "a man playing basketball": 20}
    assert len(runs) == 7 * (3 + 20) and not (tmp_path / "absent").exists()
