"""A table-driven UniPC step, bit-identical to diffusers' ``UniPCMultistepScheduler.step``.

Why: diffusers' UniPC step recomputes its coefficients on every call, about two hundred
operations on 0-d tensors (log-SNRs, ``expm1``, the ``R`` matrix and ``torch.linalg.solve``)
around a handful of operations on the sample. On small models, or the analytic world, that
bookkeeping costs more than the model: about 0.4 ms a step on the CPU. The coefficients
depend only on the schedule, the step index and the solver order, so this module computes
each once per schedule (with diffusers' own sequence of 0-d tensor operations, so every
coefficient is the same bits) and replays only the sample arithmetic, again operation for
operation as diffusers writes it (UniPC, Zhao et al. 2023, the B(h) = e^h - 1 variant):

    x0     = x - sigma_k * v                                    (flow prediction -> data)
    UniC:  x  <- (s_t / s_0) x_prev - a_t (e^-h - 1) m0
                  - a_t B(h) (sum_i rho_i D_i + rho_last (x0 - m0))   (corrector, order p)
    UniP:  x' =  (s_t / s_0) x - a_t (e^-h - 1) m0 - a_t B(h) sum_i rho_i D_i    (predictor)

with ``D_i = (m_i - m0) / r_i`` the scaled differences of earlier data predictions.

Scope: the flow-matching configuration searchkit builds (``prediction_type=
"flow_prediction"``, ``use_flow_sigmas``, ``predict_x0``, ``solver_type="bh2"``, no
thresholding, no ``solver_p``). Any other scheduler, or the first step of a trajectory
(which sets the step index), goes to diffusers' own ``step``. Each schedule is verified
once per process before the table is used: a probe trajectory of random model outputs is
stepped by diffusers and by the table, and the table is used only if every step agrees
bit for bit (so a diffusers release that changes its arithmetic falls back by itself).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

_SUPPORTED = {
    "prediction_type": "flow_prediction",
    "use_flow_sigmas": True,
    "solver_type": "bh2",
    "thresholding": False,
}
#: Verified tables by schedule (``None``: the probe disagreed, use diffusers' step).
_TABLES: dict[tuple, UniPCTable | None] = {}
_ATTRIBUTE = "_searchkit_unipc_table"


class UniPCTable:
    """The coefficients of one schedule, computed on first use per (step, order, kind)."""

    def __init__(self, sigmas: torch.Tensor, solver_order: int, lower_order_final: bool) -> None:
        self.sigmas = sigmas
        self.solver_order = solver_order
        self.lower_order_final = lower_order_final
        self._coefficients: dict[tuple[str, int, int, torch.device, torch.dtype], tuple] = {}

    def _lambda(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        alpha, sigma_t = 1 - sigma, sigma  # flow sigmas
        return alpha, sigma_t, torch.log(alpha) - torch.log(sigma_t)

    def coefficients(self, kind: str, index: int, order: int, x: torch.Tensor) -> tuple:
        """``(c_x, c_m, ratios, weights, first, last, c_b)`` of the predictor (``"p"``) or
        corrector (``"c"``), in diffusers' operation order (``multistep_uni_p_bh_update`` and
        ``multistep_uni_c_bh_update``): ``weights`` are the ``rho`` of the differences
        (``first`` the first of them), ``last`` the corrector's ``rho`` of the new output."""
        key = (kind, index, order, x.device, x.dtype)
        found = self._coefficients.get(key)
        if found is not None:
            return found
        device = x.device
        # predictor: from s0 = index to t = index + 1; corrector: from index - 1 to index
        t, s0 = (index + 1, index) if kind == "p" else (index, index - 1)
        alpha_t, sigma_t, lambda_t = self._lambda(self.sigmas[t].to(device))
        _, sigma_s0, lambda_s0 = self._lambda(self.sigmas[s0].to(device))
        h = lambda_t - lambda_s0
        rks = []
        for i in range(1, order):
            si = index - i if kind == "p" else index - (i + 1)
            lambda_si = self._lambda(self.sigmas[si].to(device))[2]
            rks.append((lambda_si - lambda_s0) / h)
        ratios = list(rks)
        rks.append(torch.ones((), device=device))
        rks = torch.stack(rks)
        hh = -h
        h_phi_1 = torch.expm1(hh)
        h_phi_k = h_phi_1 / hh - 1
        factorial_i = 1
        b_h = torch.expm1(hh)
        rows, b = [], []
        for i in range(1, order + 1):
            rows.append(torch.pow(rks, i - 1))
            b.append(h_phi_k * factorial_i / b_h)
            factorial_i *= i + 1
            h_phi_k = h_phi_k / hh - 1 / factorial_i
        r_matrix, b = torch.stack(rows), torch.stack(b)
        if kind == "p":
            if order == 1:
                rhos = None
            elif order == 2:
                rhos = torch.ones(1, dtype=x.dtype, device=device) * 0.5
            else:
                rhos = torch.linalg.solve(r_matrix[:-1, :-1], b[:-1]).to(device).to(x.dtype)
        elif order == 1:
            rhos = torch.ones(1, dtype=x.dtype, device=device) * 0.5
        else:
            rhos = torch.linalg.solve(r_matrix, b).to(device).to(x.dtype)
        # the weights of the differences (the corrector's last weight is the new output's)
        weights = rhos if kind == "p" else rhos[:-1]
        first = weights[0] if weights is not None and len(weights) else None
        last = rhos[-1] if kind == "c" else None
        found = (sigma_t / sigma_s0, alpha_t * h_phi_1, ratios, weights, first, last, alpha_t * b_h)
        self._coefficients[key] = found
        return found

    def step(self, scheduler: Any, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor):
        """``scheduler.step(model_output, timestep, sample)`` with the coefficients of the table."""
        index = scheduler._step_index
        use_corrector = (
            index > 0
            and index - 1 not in scheduler.disable_corrector
            and scheduler.last_sample is not None
        )
        converted = sample - self.sigmas[index] * model_output
        outputs = scheduler.model_outputs
        if use_corrector:
            sample = self._corrector(scheduler, converted, sample, index)
        order = self.solver_order
        for i in range(order - 1):
            outputs[i] = outputs[i + 1]
            scheduler.timestep_list[i] = scheduler.timestep_list[i + 1]
        outputs[-1] = converted
        scheduler.timestep_list[-1] = timestep
        this_order = (
            min(order, len(scheduler.timesteps) - index) if self.lower_order_final else order
        )
        scheduler.this_order = min(this_order, scheduler.lower_order_nums + 1)
        scheduler.last_sample = sample
        prev = self._predictor(scheduler, sample, index, scheduler.this_order)
        if scheduler.lower_order_nums < order:
            scheduler.lower_order_nums += 1
        scheduler._step_index += 1
        return prev

    def _differences(self, outputs: list, m0: torch.Tensor, ratios: list) -> list[torch.Tensor]:
        """``D_i = (m_i - m0) / r_i``, made before the other uses of ``m0`` as diffusers makes
        them (so that a backward pass accumulates into ``m0`` in the same order)."""
        return [(outputs[-(i + 2)] - m0) / rk for i, rk in enumerate(ratios)]

    def _contract(
        self, weights: torch.Tensor | None, first: torch.Tensor | None, d1s: list[torch.Tensor]
    ) -> torch.Tensor | int:
        """``sum_i weights[i] D_i``; 0 when there are none.

        diffusers stacks the ``D_i`` and contracts with ``einsum``; with one difference
        (order 2, the default) and no graph kept, that sum of one product is written as the
        product itself, which skips the stack and the einsum (the probe checks it gives the
        same bits; under autograd the einsum stays, so that gradients are diffusers' too).
        """
        if not d1s:
            return 0
        if len(d1s) == 1 and not torch.is_grad_enabled():
            return first * d1s[0]
        return torch.einsum("k,bkc...->bc...", weights, torch.stack(d1s, dim=1))

    def _predictor(self, scheduler: Any, x: torch.Tensor, index: int, order: int) -> torch.Tensor:
        outputs = scheduler.model_outputs
        m0 = outputs[-1]
        c_x, c_m, ratios, weights, first, _, c_b = self.coefficients("p", index, order, x)
        d1s = self._differences(outputs, m0, ratios)
        x_t_ = c_x * x - c_m * m0
        return (x_t_ - c_b * self._contract(weights, first, d1s)).to(x.dtype)

    def _corrector(
        self, scheduler: Any, model_t: torch.Tensor, this_sample: torch.Tensor, index: int
    ) -> torch.Tensor:
        outputs = scheduler.model_outputs
        m0 = outputs[-1]
        x = scheduler.last_sample
        order = scheduler.this_order
        c_x, c_m, ratios, weights, first, last, c_b = self.coefficients(
            "c", index, order, this_sample
        )
        d1s = self._differences(outputs, m0, ratios)
        x_t_ = c_x * x - c_m * m0
        corr_res = self._contract(weights, first, d1s)
        d1_t = model_t - m0
        return (x_t_ - c_b * (corr_res + last * d1_t)).to(x.dtype)


def table_for(scheduler: Any) -> UniPCTable | None:
    """The verified table of ``scheduler``'s schedule, or ``None`` (use its own ``step``)."""
    cached = scheduler.__dict__.get(_ATTRIBUTE, False)
    if cached is not False:
        return cached
    table = _build(scheduler)
    setattr(scheduler, _ATTRIBUTE, table)  # copies of the scheduler share it
    return table


def _build(scheduler: Any) -> UniPCTable | None:
    from diffusers import UniPCMultistepScheduler

    if type(scheduler) is not UniPCMultistepScheduler or scheduler.solver_p is not None:
        return None
    config = scheduler.config
    if not scheduler.predict_x0 or any(config.get(k) != v for k, v in _SUPPORTED.items()):
        return None
    sigmas = scheduler.sigmas
    if not isinstance(sigmas, torch.Tensor) or sigmas.device.type != "cpu":
        return None
    key = (
        sigmas.dtype,
        sigmas.numpy().tobytes(),
        int(config.solver_order),
        bool(config.lower_order_final),
        tuple(scheduler.disable_corrector),
        len(scheduler.timesteps),
    )
    if key not in _TABLES:
        table = UniPCTable(sigmas.clone(), int(config.solver_order), bool(config.lower_order_final))
        _TABLES[key] = table if _agrees(scheduler, table) else None
    return _TABLES[key]


def _agrees(scheduler: Any, table: UniPCTable) -> bool:
    """Step a probe trajectory with diffusers and with ``table``; True if every step is equal."""
    reference, replay = copy.copy(scheduler), copy.copy(scheduler)  # the schedule is shared
    for fresh in (reference, replay):  # a fresh trajectory's state, its own lists
        fresh.__dict__.pop(_ATTRIBUTE, None)
        fresh.model_outputs = [None] * int(fresh.config.solver_order)
        fresh.timestep_list = [None] * int(fresh.config.solver_order)
        fresh.lower_order_nums, fresh.last_sample, fresh._step_index = 0, None, None
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 2, 2, 2, generator=generator)
    expected, got = x, x
    with torch.no_grad():
        for k, timestep in enumerate(reference.timesteps):
            v = torch.randn(x.shape, generator=generator)
            try:
                expected = reference.step(v, timestep, expected, return_dict=False)[0]
            except Exception:  # noqa: BLE001 - a schedule diffusers cannot step keeps its own step
                return False  # (which then raises where it would have raised anyway)
            if k == 0:
                got = replay.step(v, timestep, got, return_dict=False)[0]
            else:
                got = table.step(replay, v, timestep, got)
            if not torch.equal(expected, got):
                return False
    return True
