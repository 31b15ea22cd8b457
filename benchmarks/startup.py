"""Start-up benchmark: ``import searchkit`` against ``import torch``, and ``searchkit --help``.

Each figure is the wall time of a fresh interpreter (``python -c ...``) running the
statement, so it includes the interpreter's own start; the best of ``--repeats`` runs is
reported beside the median (the best is the least disturbed by other work on the machine).
Targets: ``import searchkit`` at most 1.5x ``import torch``; ``searchkit --help`` under 3 s.
It also lists which heavy optional libraries each statement loaded (none should be).

Run ``python benchmarks/startup.py``; ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

HEAVY = ("diffusers", "transformers", "matplotlib", "scipy", "peft")

STATEMENTS = {
    "import torch": "import torch",
    "import searchkit": "import searchkit",
    "searchkit --help": (
        "import sys\nfrom searchkit.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    ),
}


def _time(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - started


def _loaded(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="fresh interpreters per figure")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be positive, got {args.repeats}")
    for code in STATEMENTS.values():  # warm the file cache once
        _time(code)
    times: dict[str, list[float]] = {label: [] for label in STATEMENTS}
    for _ in range(args.repeats):  # interleaved, so a busy moment hits every figure alike
        for label, code in STATEMENTS.items():
            times[label].append(_time(code))
    for label, runs in times.items():
        print(
            f"  {label:<18} best {min(runs):6.2f} s   median {statistics.median(runs):6.2f} s   "
            f"heavy modules loaded: {', '.join(_loaded(STATEMENTS[label])) or 'none'}"
        )
    ratio = min(times["import searchkit"]) / min(times["import torch"])
    ratio_median = statistics.median(times["import searchkit"]) / statistics.median(
        times["import torch"]
    )
    print(
        f"import searchkit / import torch: {ratio:.2f}x best, {ratio_median:.2f}x median "
        "(target <= 1.5x)"
    )
    print(f"searchkit --help: {min(times['searchkit --help']):.2f} s best (target < 3 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
