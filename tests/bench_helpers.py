"""Tiny sweeps for the benchmark tests: the analytic world at a few steps, small latents."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


def one_vbench_prompt_sweep(folder: Path, **changes: Any) -> dict[str, Any]:
    """:func:`tiny_sweep` on a prompts file (written into ``folder``) of one VBench-2.0 record."""
    prompts = Path(folder) / "prompts.json"
    prompts.write_text('[{"prompt_en": "Garden, zoom in.", "dimension": ["Camera_Motion"]}]')
    sweep = tiny_sweep(prompts_file=str(prompts), **changes)
    del sweep["prompts"]
    return sweep


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


@contextmanager
def sweep_in_flight(
    config: Path, out: Path, *flags: str, rows: int = 5, **popen: Any
) -> Iterator[subprocess.Popen]:
    """``searchkit bench`` in a child process, handed over once it has written ``rows`` rows
    and still runs; killed on the way out if it still runs then."""
    command = [sys.executable, "-m", "searchkit.cli", "bench", "--config", str(config)]
    command += ["--out", str(out), "--no-progress", *flags]
    results = Path(out) / "results.jsonl"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if results.exists() and results.read_bytes().count(b"\n") >= rows:
                break
            time.sleep(0.002)
        assert process.poll() is None, "the sweep ended before it could be stopped"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def assert_same_videos(expected: Path, got: Path) -> int:
    """Every video under ``expected`` is under ``got`` too, byte for byte; their count."""
    files = sorted(
        p.relative_to(expected)
        for p in Path(expected).rglob("*.mp4")
        if ".searchkit" not in p.parts
    )
    for path in files:
        assert (Path(got) / path).read_bytes() == (Path(expected) / path).read_bytes(), path
    return len(files)
