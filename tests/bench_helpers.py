"""Tiny sweeps for the benchmark tests: the analytic world at a few steps, small latents."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

PROMPTS = ["a red fox running through fresh snow", "a lighthouse in a storm at night"]


def tiny_sweep(**changes: Any) -> dict[str, Any]:
    """A sweep of baseline and best-of-n at 16 NFE per sample (8 steps under CFG)."""
    config = {
        "name": "tiny",
        "backend": {"name": "analytic", "options": {"frames": 3, "height": 4, "width": 4}},
        "reward": {"name": "analytic"},
        "num_steps": 8,
        "strategies": [{"name": "baseline"}, {"name": "best-of-n"}],
        "budgets_nfe": [32, 64],
        "prompts": PROMPTS,
        "seeds": 3,
        "torch_threads": 1,
    }
    config.update(changes)
    return config


def write_config(folder: Path, config: dict[str, Any], name: str = "sweep.json") -> Path:
    path = Path(folder) / name
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def without_timing(row: dict[str, Any]) -> dict[str, Any]:
    """A results row without its wall times (the only fields that differ between runs)."""
    return {k: v for k, v in row.items() if k != "seconds"}


#: The summary's wall-time fields (cells and CSV columns): they differ between two runs.
TIMING = ("seconds_mean", "seconds_split", "time_ratio")


def cells_without_timing(cells) -> list[dict[str, Any]]:
    return [{k: v for k, v in c.to_dict().items() if k not in TIMING} for c in cells]


def csv_without_timing(path: Path) -> list[dict[str, str]]:
    """The records of a summary CSV without its wall-time columns."""
    with open(path, newline="", encoding="utf-8") as f:
        return [
            {k: v for k, v in r.items() if not k.startswith(("seconds_", "time_ratio"))}
            for r in csv.DictReader(f)
        ]
