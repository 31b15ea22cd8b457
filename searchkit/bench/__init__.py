"""Equal-compute benchmarks: sweeps of strategies x NFE budgets x prompts x seeds.

    from searchkit.bench import format_table, load_config, run_sweep

    outcome = run_sweep(load_config("analytic"), "bench-results/analytic")
    print(format_table(outcome.cells))

Modules: :mod:`~searchkit.bench.config` (the validated sweep), :mod:`~searchkit.bench.entries`
(its strategy entries and components), :mod:`~searchkit.bench.load` (shipped sweep files,
reading one), :mod:`~searchkit.bench.prompts` (VBench-style prompt files),
:mod:`~searchkit.bench.budget` (size knob for an NFE budget, from the backend's
compute profile), :mod:`~searchkit.bench.plan` (the runs and their keys, planned without
building the world), :mod:`~searchkit.bench.runner` (building the world, checking the
strategies against it, one run), :mod:`~searchkit.bench.store` (append-only, resumable
results), :mod:`~searchkit.bench.executors` (local and Ray),
:mod:`~searchkit.bench.summary` (cells, each compared with the best at its budget by
:mod:`~searchkit.bench.paired`), :mod:`~searchkit.bench.tables` (quality and cost tables:
terminal, markdown, CSV), :mod:`~searchkit.bench.plot` (the Pareto fronts),
:mod:`~searchkit.bench.videos` (``--save-videos``: outputs in VBench-2.0's layout) and
:mod:`~searchkit.bench.paper_table` (compute beside VBench-2.0's scores).
"""

from searchkit.bench.budget import BudgetError, match_budget
from searchkit.bench.config import (
    ComponentSpec,
    ConfigError,
    StrategySpec,
    SweepConfig,
)
from searchkit.bench.executors import Failure
from searchkit.bench.load import load_config, resolve_config_path, shipped_configs
from searchkit.bench.plan import Run, plan_sweep
from searchkit.bench.prompts import Prompt, load_prompt_file
from searchkit.bench.store import OutputFolderError, ResultsStore, read_results
from searchkit.bench.summary import Cell, summarize
from searchkit.bench.sweep import SweepOutcome, run_sweep
from searchkit.bench.tables import format_table

__all__ = [
    "BudgetError",
    "Cell",
    "ComponentSpec",
    "ConfigError",
    "Failure",
    "OutputFolderError",
    "Prompt",
    "ResultsStore",
    "Run",
    "StrategySpec",
    "SweepConfig",
    "SweepOutcome",
    "format_table",
    "load_config",
    "load_prompt_file",
    "match_budget",
    "plan_sweep",
    "read_results",
    "resolve_config_path",
    "run_sweep",
    "shipped_configs",
    "summarize",
]
