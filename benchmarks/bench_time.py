"""How long the default ``searchkit bench`` takes: wall and CPU time of the whole command.

Runs ``searchkit bench`` (the analytic default sweep: 1120 searches, one torch thread
each, in one worker process per core) into a fresh temporary folder and reports its wall
time and the CPU time of its processes (user + system, workers included). Target: under 60 s on two idle cores. On a shared
machine the wall time counts other work; the CPU time is the work the sweep itself did.
``--seeds N`` runs a smaller sweep (the default has 8 seeds) and scales the per-run time
to the full one; ``--workers N`` passes its value on (``1``: every search in one process).

Run ``python benchmarks/bench_time.py``; ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=None, help="run N seeds instead of 8")
    parser.add_argument("--workers", default=None, help="bench's --workers (default: its own)")
    args = parser.parse_args(argv)
    command = [sys.executable, "-m", "searchkit.cli", "bench", "--no-progress"]
    if args.seeds is not None:
        command += ["--seeds", str(args.seeds)]
    if args.workers is not None:
        command += ["--workers", args.workers]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "bench"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([*command, "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        runs = sum(1 for line in (out / "results.jsonl").read_text().splitlines() if line)
        searches = sum(
            json.loads(line)["seconds"]["run"]
            for line in (out / "results.jsonl").read_text().splitlines()
            if line
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"{' '.join(['searchkit', *command[3:]])}: {runs} runs")
    print(f"  wall {wall:6.1f} s   CPU {cpu:6.1f} s   inside the searches {searches:6.1f} s")
    if args.seeds is not None:
        print(
            f"  per run {1000 * cpu / runs:.1f} ms CPU: about {1120 * cpu / runs:.0f} s for 1120 runs"
        )
    print("target: the default sweep under 60 s on two idle cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
