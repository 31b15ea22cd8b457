"""FLOP accounting: counts equal torch's FLOP counter, totals add up, budgets in FLOPs hold."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import searchkit.rewards  # noqa: F401  (registers the rewards)
from searchkit.backends.analytic import AnalyticBackend
from searchkit.backends.analytic_cost import DECODE_FORWARDS, PIXEL_REWARD_FORWARDS
from searchkit.bench.config import SweepConfig
from searchkit.bench.flop_budget import flop_rates, match_flops_budget
from searchkit.bench.plan import plan_sweep
from searchkit.errors import ConfigError
from searchkit.registry import get_strategy
from searchkit.reward import RewardBatch
from searchkit.rewards import AnalyticReward, LatentRewardModel, ProxyVerifier

PROMPT = "a red fox running through fresh snow"


def counted(fn) -> int:
    """FLOPs of a real call. CPU attention kernels are not in torch's FLOP registry, so the
    math kernel (plain matrix products, which are) runs instead; the meta device takes it too."""
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), FlopCounterMode(display=False) as c:
        fn()
    return c.get_total_flops()


@pytest.fixture(scope="module")
def wan():
    from searchkit.backends.wan import WanBackend

    return WanBackend.tiny(num_steps=4)


@pytest.mark.parametrize("options", [{}, {"max_batch": 2}, {"cfg_batched": False}])
def test_a_wan_step_is_charged_what_the_flop_counter_counts(options):
    from searchkit.backends.wan import WanBackend

    backend = WanBackend.tiny(num_steps=4, **options)
    cond = backend.encode(PROMPT)
    scheduler = backend.make_scheduler()
    x = torch.randn(3, *backend.latent_shape, generator=torch.Generator().manual_seed(0))
    real = counted(lambda: backend.velocity(x, scheduler.timesteps[0], 0.9, cond))
    assert real > 0
    assert backend.forwards_per_step * backend.forward_flops(3) == real


def test_a_wan_decode_is_charged_what_the_flop_counter_counts(wan):
    x = torch.randn(2, *wan.latent_shape, generator=torch.Generator().manual_seed(0))
    assert wan.decode_flops(2) == counted(lambda: wan.decode(x))


def test_the_latent_reward_model_is_charged_what_the_flop_counter_counts(wan):
    reward = LatentRewardModel.for_backend(wan, generator=torch.Generator().manual_seed(0))
    x = torch.randn(3, *wan.latent_shape, generator=torch.Generator().manual_seed(1))
    batch = RewardBatch(x, torch.full((3,), 0.5), wan.encode(PROMPT), step=1)
    assert reward.flops(batch) == counted(lambda: reward(batch))


def test_one_sample_is_counted_once_and_batches_scale_it(wan):
    from searchkit.backends.wan import WanBackend

    backend = WanBackend.tiny(num_steps=4)
    cache = backend._flops.cache
    one = backend.forward_flops(1)
    assert cache.computed == 1
    # FLOPs are linear in the batch: no count per batch size (a search's population varies)
    assert backend.forward_flops(2) == 2 * one and backend.forward_flops(5) == 5 * one
    assert cache.computed == 1
    assert backend.decode_flops(3) == 3 * backend.decode_flops(1)
    assert cache.computed == 2


def test_a_search_on_wan_adds_up_its_phases(wan):
    """Best-of-2 with the latent reward model: 2 x 4 guided steps, 2 reward calls, 1 decode."""
    reward = LatentRewardModel.for_backend(wan, generator=torch.Generator().manual_seed(0))
    result = get_strategy("best-of-n")(n=2).run(wan, reward, PROMPT, seed=0)
    cost = result.cost
    x = torch.zeros(2, *wan.latent_shape)
    batch = RewardBatch(x, torch.zeros(2), wan.encode(PROMPT), step=4)
    want = {
        "forward": 4 * 2 * wan.forward_flops(2),
        "decode": wan.decode_flops(1),
        "reward:latent-reward-model": reward.flops(batch),
    }
    assert cost.flops_split == pytest.approx(want, rel=1e-12)
    assert cost.flops == pytest.approx(sum(want.values()), rel=1e-12)


def test_the_analytic_cost_model_charges_each_part():
    backend = AnalyticBackend(frames=3, height=4, width=4, num_steps=6)
    f = backend.flops_per_forward
    pixel = ProxyVerifier(backend)  # on x0: a pixel verifier, decode included
    latent = AnalyticReward(backend, input="latent")  # on x_t: a latent reward model
    assert (pixel.stands_for, latent.stands_for) == ("pixel", "latent")
    best = get_strategy("best-of-n")(n=3)
    cost = best.run(backend, pixel, PROMPT, seed=0).cost
    assert cost.flops_split == pytest.approx(
        {
            "forward": 6 * 3 * 2 * f,
            "reward:analytic-proxy": 3 * (PIXEL_REWARD_FORWARDS + DECODE_FORWARDS) * f,
            "decode": DECODE_FORWARDS * f,
        }
    )
    assert cost.flops == pytest.approx(sum(cost.flops_split.values()))
    free = AnalyticReward(backend, stands_for="none")
    assert best.run(backend, free, PROMPT, seed=0).cost.flops_split["reward:analytic"] == 0.0


def test_noise_optimization_charges_its_backward_passes():
    backend = AnalyticBackend(frames=3, height=4, width=4, num_steps=4)
    reward = AnalyticReward(backend, stands_for="none")
    cost = (
        get_strategy("noise-optimization")(num_iterations=2)
        .run(backend, reward, PROMPT, seed=0)
        .cost
    )
    split = cost.flops_split
    assert split["backward"] == pytest.approx(cost.backward_nfe * backend.flops_per_forward)
    forwards = (cost.nfe - cost.backward_nfe) * backend.flops_per_forward
    assert split["forward"] == pytest.approx(forwards)


def test_an_unknown_figure_makes_the_total_unknown():
    from searchkit.cost import Meter

    meter = Meter()
    meter.charge_model(2, 2, 10.0)
    meter.charge_flops("reward:x", None)
    meter.charge_model(2, 2, 10.0)
    cost = meter.snapshot()
    assert cost.flops is None
    assert cost.flops_split == {"forward": 20.0, "reward:x": None}


#: Strategies whose reward calls and decodes do not depend on the scores: their spent FLOPs
#: equal the expected FLOPs the budget was matched with.
DETERMINISTIC = ("best-of-n", "beam-search", "zero-order", "smc", "free-init")


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_a_flop_budget_sizes_strategies_within_one_step(name):
    backend = AnalyticBackend(frames=3, height=4, width=4, num_steps=10)
    reward = ProxyVerifier(backend)
    rates = flop_rates(backend, reward)
    budget = 300 * rates.forward
    cls = get_strategy(name)
    options = {"schedule": (3, 6)} if name == "smc" else {}
    strategy, expected = match_flops_budget(cls, options, budget, rates)
    knob = cls.size_knob
    spent = strategy.run(backend, reward, PROMPT, seed=0).cost.flops
    assert spent == pytest.approx(expected, rel=1e-12)
    assert spent <= budget
    bigger = cls(**options, **{knob: getattr(strategy, knob) + 1})
    assert bigger.run(backend, reward, PROMPT, seed=0).cost.flops > budget


def test_a_flop_sweep_plans_runs_sized_in_flops_and_nfe_sweeps_keep_their_keys():
    base = {
        "backend": {"name": "analytic", "options": {"frames": 3, "height": 4, "width": 4}},
        "reward": {"name": "analytic-proxy"},
        "num_steps": 10,
        "strategies": [{"name": "baseline"}, {"name": "best-of-n"}],
        "prompts": [PROMPT],
        "seeds": 1,
    }
    nfe = SweepConfig.from_dict({**base, "budgets_nfe": [100]})
    flops = SweepConfig.from_dict({**base, "budget_unit": "flops", "budgets_flops": [2.5e16]})
    nfe_runs, flop_runs = plan_sweep(nfe), plan_sweep(flops)
    assert "budget_unit" not in nfe.to_dict()
    assert all(r.budget_flops is None for r in nfe_runs)
    sized = [r for r in flop_runs if r.label == "best-of-n"]
    assert [r.budget_flops for r in sized] == [2.5e16]
    assert sized[0].expected_flops <= 2.5e16
    assert {r.key for r in flop_runs}.isdisjoint(r.key for r in nfe_runs if r.budget_nfe)
    with pytest.raises(ConfigError, match="budgets_flops"):
        SweepConfig.from_dict({**base, "budget_unit": "flops"})
    with pytest.raises(ConfigError, match="budget_unit"):
        SweepConfig.from_dict({**base, "budgets_nfe": [100], "budget_unit": "watts"})


def test_counting_ignores_hooks_and_methods_patched_on_the_model():
    # a profiler's wrapper around vae.decode and a forward hook close over the real model:
    # the meta copy that is counted must run neither (they would see meta tensors)
    from searchkit.backends.wan import WanBackend

    backend = WanBackend.tiny(num_steps=4)
    vae, calls = backend.pipe.vae, []
    original = vae.decode

    def timed_decode(*args, **kwargs):
        calls.append("decode")
        return original(*args, **kwargs)

    vae.decode = timed_decode
    hook = backend.pipe.transformer.register_forward_hook(lambda *_: calls.append("forward"))
    try:
        assert backend.decode_flops(1) > 0 and backend.forward_flops(1) > 0
    finally:
        hook.remove()
        del vae.decode
    assert calls == []


def test_a_flop_sweep_is_summarised_by_flop_budget(tmp_path):
    # cells of a FLOP sweep group by their FLOP budget: the strategies at one budget compare
    # with each other, and the baseline stays a fixed configuration
    from searchkit.bench import run_sweep
    from searchkit.bench.tables import format_table

    config = SweepConfig.from_dict(
        {
            "backend": {"name": "analytic", "options": {"frames": 3, "height": 4, "width": 4}},
            "reward": {"name": "analytic-proxy"},
            "num_steps": 10,
            "strategies": [{"name": "baseline"}, {"name": "best-of-n"}, {"name": "beam-search"}],
            "budget_unit": "flops",
            "budgets_flops": [2.5e16, 5e16],
            "prompts": [PROMPT],
            "seeds": 3,
        }
    )
    cells = run_sweep(config, tmp_path / "out", progress=False).cells
    assert {(c.label, c.budget_nfe, c.budget_flops) for c in cells} == {
        ("baseline", None, None),
        *((label, None, b) for label in ("best-of-n", "beam-search") for b in (2.5e16, 5e16)),
    }
    for budget in (2.5e16, 5e16):
        group = [c for c in cells if c.budget_flops == budget]
        assert sum(c.best for c in group) == 1  # one best per FLOP budget
        assert all(c.flops_mean <= budget for c in group)
    table = format_table(cells)
    assert "budget FLOPs" in table and "2.5e+16" in table and "5e+16" in table
