"""Golden results of every strategy on the analytic world; a refactor must not change them.

Regenerate (only when a change of numbers is intended, and say so in the commit)::

    python tests/golden/make_golden.py

It writes ``strategies.safetensors`` (the output latents) and ``strategies.json`` (reward,
scores, trace and cost counters of every case) beside this file, and ``sweep_rows.json``: the
rows of a small benchmark sweep of every strategy with the analytic world's exact reward,
which later changes to the benchmark must keep (wall times and versions left out).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
PROMPTS = ("a red fox running through fresh snow", "a paper boat drifting down a gutter")
SEEDS = (0, 7)
SOLVERS = ("unipc", "sde-dpmsolver++")

#: (case name, registered strategy, options): every registered strategy at its defaults, plus
#: the options that take other code paths.
CASES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("baseline", "baseline", {}),
    ("best-of-n", "best-of-n", {"n": 3}),
    ("rgrp", "rgrp", {}),
    ("rgrp-dup-systematic", "rgrp", {"keep_duplicates": True, "resampler": "systematic"}),
    ("rgrp-x0", "rgrp", {"num_particles": 4, "score_input": "x0", "temperature": 0.5}),
    ("beam-search", "beam-search", {"beam_width": 2, "candidates": 2}),
    ("beam-search-lookahead", "beam-search", {"beam_width": 2, "candidates": 2, "lookahead": 2}),
    ("zero-order", "zero-order", {}),
    ("noise-optimization", "noise-optimization", {"num_iterations": 2}),
    ("free-init", "free-init", {"num_passes": 2}),
    ("freqprior", "freqprior", {}),
    ("freqprior-full-passes", "freqprior", {"num_passes": 2, "ratio": 0.5, "mid_fraction": 1.0}),
    ("fk-steering", "fk-steering", {}),
    (
        "fk-steering-sample-always",
        "fk-steering",
        {
            "selection": "sample",
            "ess_threshold": None,
            "potential": "diff",
            "resampler": "residual",
        },
    ),
    ("evo-search", "evo-search", {"initial_population": 4, "population": 3, "num_elites": 1}),
    ("smc", "smc", {}),
    ("smc-always", "smc", {"num_particles": 4, "ess_threshold": 1.0, "resampler": "stratified"}),
)


def run_case(solver: str, name: str, options: dict[str, Any], prompt: str, seed: int):
    from searchkit import get_strategy
    from searchkit.backends import AnalyticBackend
    from searchkit.rewards import AnalyticReward

    backend = AnalyticBackend(num_steps=50, solver=solver)
    return get_strategy(name)(**options).run(backend, AnalyticReward(backend), prompt, seed=seed)


def case_key(solver: str, case: str, prompt_index: int, seed: int) -> str:
    return f"{solver}/{case}/p{prompt_index}/s{seed}"


def summary(result) -> dict[str, Any]:
    """Everything of a result that must not change, as JSON (wall times left out)."""
    cost = result.cost.to_dict()
    cost.pop("seconds", None)
    return {
        "reward": result.reward,
        "scores": result.scores.tolist(),
        "cost": cost,
        "trace": result.trace.to_dict(),
    }


def all_cases():
    for solver in SOLVERS:
        for case, name, options in CASES:
            for p, prompt in enumerate(PROMPTS):
                for seed in SEEDS:
                    yield case_key(solver, case, p, seed), (solver, name, options, prompt, seed)


#: A small sweep of every strategy on the analytic world with its exact ("perfect") reward.
SWEEP: dict[str, Any] = {
    "name": "golden",
    "backend": {"name": "analytic", "options": {"frames": 3, "height": 4, "width": 4}},
    "reward": {"name": "analytic"},
    "num_steps": 8,
    "strategies": [
        {"name": "baseline"},
        {"name": "best-of-n"},
        {"name": "rgrp", "options": {"schedule": [2, 4, 6]}},
        {"name": "beam-search", "options": {"candidates": 2}},
        {"name": "zero-order", "options": {"num_neighbors": 2}},
        {"name": "noise-optimization"},
        {"name": "free-init"},
        {"name": "freqprior", "budgets_nfe": [48]},
        {"name": "fk-steering", "options": {"schedule": [2, 4, 6]}},
        {
            "name": "evo-search",
            "options": {"evolution_steps": [2, 5], "initial_population": 4, "num_elites": 1},
            "budgets_nfe": [160],
        },
        {"name": "smc", "options": {"schedule": [2, 4, 6]}},
    ],
    "budgets_nfe": [64],
    "prompts": list(PROMPTS),
    "seeds": 2,
    "torch_threads": 1,
}


def sweep_rows(folder: Path) -> list[dict[str, Any]]:
    """The rows of :data:`SWEEP` run into ``folder``, without wall times and versions."""
    from searchkit.bench import SweepConfig, run_sweep

    outcome = run_sweep(SweepConfig.from_dict(SWEEP), folder, progress=False)
    return [
        {k: v for k, v in row.items() if k not in ("seconds", "versions")} for row in outcome.rows
    ]


def main() -> int:
    torch.set_num_threads(1)
    latents, summaries = {}, {}
    for key, args in all_cases():
        result = run_case(*args)
        latents[key] = result.latents.contiguous()
        summaries[key] = summary(result)
    save_file(latents, str(HERE / "strategies.safetensors"))
    (HERE / "strategies.json").write_text(
        json.dumps(summaries, sort_keys=True, separators=(",", ":")) + "\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        rows = sweep_rows(Path(folder))
    (HERE / "sweep_rows.json").write_text(json.dumps(rows, sort_keys=True, indent=0) + "\n")
    print(f"wrote {len(summaries)} golden results to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
