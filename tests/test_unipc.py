"""The table-driven UniPC step (searchkit.unipc) gives diffusers' own step, bit for bit."""

from __future__ import annotations

import copy

import pytest
import torch
from diffusers import UniPCMultistepScheduler

from searchkit import unipc
from searchkit.solver import SolverState, make_scheduler


def _scheduler(steps: int = 12, **config) -> UniPCMultistepScheduler:
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, **{"flow_shift": 5.0, **config}
    )
    scheduler.set_timesteps(steps)
    return scheduler


def _trajectory(scheduler, outputs, x, *, table: bool, perturb_at: int | None = None):
    """Step ``x`` through the schedule; with ``table`` every step after the first replays it."""
    scheduler = copy.deepcopy(scheduler)
    states = []
    for k, timestep in enumerate(scheduler.timesteps):
        if k == perturb_at:  # what SearchContext.perturb does to the solver: drop UniC's input
            scheduler.last_sample = None
        found = unipc.table_for(scheduler) if table and k else None
        if found is not None:
            x = found.step(scheduler, outputs[k], timestep, x)
        else:
            x = scheduler.step(outputs[k], timestep, x, return_dict=False)[0]
        states.append(x)
    return states


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"solver_order": 1},
        {"solver_order": 3},
        {"solver_order": 2, "lower_order_final": False},
        {"flow_shift": 1.0, "solver_order": 2},
        {"disable_corrector": [2, 5]},
    ],
)
@pytest.mark.parametrize("perturb_at", [None, 4])
def test_every_step_equals_diffusers_bit_for_bit(config, perturb_at):
    scheduler = _scheduler(**config)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 2, 3, 3, generator=g)
    outputs = [torch.randn(x.shape, generator=g) for _ in scheduler.timesteps]
    assert unipc.table_for(copy.deepcopy(scheduler)) is not None
    expected = _trajectory(scheduler, outputs, x, table=False, perturb_at=perturb_at)
    got = _trajectory(scheduler, outputs, x, table=True, perturb_at=perturb_at)
    for k, (a, b) in enumerate(zip(expected, got, strict=True)):
        assert torch.equal(a, b), f"step {k} differs"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_samples_and_gradients_are_diffusers_own(dtype):
    """Under autograd the table keeps diffusers' operations and their order, so that the
    backward pass accumulates into each model output in the same order: equal gradients."""
    scheduler = _scheduler(steps=6)
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(2, 4, 2, 3, 3, generator=g, dtype=dtype)
    weights = torch.randn(x0.shape, generator=g, dtype=dtype)

    def run(table: bool):
        x = x0.clone().requires_grad_(True)
        states = _trajectory(scheduler, [weights * x.tanh() for _ in range(6)], x, table=table)
        (grad,) = torch.autograd.grad(states[-1].square().sum(), x)
        return states[-1].detach(), grad

    (a, grad_a), (b, grad_b) = run(False), run(True)
    assert a.dtype == dtype and torch.equal(a, b) and torch.equal(grad_a, grad_b)


def test_solver_state_uses_the_table_and_shares_it_with_copies_and_selections():
    state = SolverState(make_scheduler("unipc", flow_shift=5.0), batch=3, rank=5)
    state.scheduler.set_timesteps(8)
    x = torch.randn(3, 4, 2, 3, 3, generator=torch.Generator().manual_seed(3))
    for k in range(2):
        x = state.step(torch.zeros_like(x), state.scheduler.timesteps[k], x, None)
    table = state.scheduler.__dict__.get(unipc._ATTRIBUTE)
    assert isinstance(table, unipc.UniPCTable)
    assert state.copy().scheduler.__dict__[unipc._ATTRIBUTE] is table
    assert state.select(torch.tensor([2, 0])).scheduler.__dict__[unipc._ATTRIBUTE] is table


@pytest.mark.parametrize(
    "make",
    [
        lambda: make_scheduler("euler", flow_shift=3.0),
        lambda: make_scheduler("sde-dpmsolver++", flow_shift=3.0),
        lambda: UniPCMultistepScheduler(),  # epsilon prediction, not flow
        lambda: UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, solver_type="bh1"
        ),
    ],
)
def test_other_schedulers_keep_their_own_step(make):
    scheduler = make()
    scheduler.set_timesteps(5)
    assert unipc.table_for(scheduler) is None


def test_a_schedule_diffusers_cannot_step_keeps_diffusers_step():
    """Order 3 without lower-order final steps solves a singular system at the last step in
    diffusers; the table is not used, so the error comes where diffusers raises it."""
    scheduler = _scheduler(steps=6, solver_order=3, lower_order_final=False)
    assert unipc.table_for(scheduler) is None


def test_a_table_that_disagrees_with_diffusers_is_never_used(monkeypatch):
    """The probe is what keeps a changed diffusers release correct: a wrong coefficient
    (here: the predictor's ratio scaled by 1 + 1e-7) makes the schedule fall back."""
    original = unipc.UniPCTable.coefficients

    def off_by_a_little(self, kind, index, order, x):
        c_x, *rest = original(self, kind, index, order, x)
        return (c_x * (1 + 1e-7), *rest)

    monkeypatch.setattr(unipc.UniPCTable, "coefficients", off_by_a_little)
    monkeypatch.setattr(unipc, "_TABLES", {})
    assert unipc.table_for(_scheduler(steps=9)) is None
