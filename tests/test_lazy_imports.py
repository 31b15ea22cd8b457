"""``import searchkit`` leaves the heavy optional libraries unloaded until they are used.

Each check runs in a fresh interpreter, since this test process has long imported them.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("diffusers", "transformers", "matplotlib", "scipy", "peft")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_searchkit_loads_no_heavy_library():
    assert _loaded_after("import searchkit") == []


def test_building_the_command_line_loads_no_heavy_library():
    assert _loaded_after("from searchkit.cli import build_parser\nbuild_parser([])") == []


def test_registry_resolves_every_builtin_without_loading_heavy_libraries():
    code = (
        "import searchkit\n"
        "for name in searchkit.registry.BACKENDS.names(): searchkit.get_backend(name)\n"
        "for name in searchkit.registry.REWARDS.names(): searchkit.get_reward(name)\n"
        "for name in searchkit.registry.STRATEGIES.names(): searchkit.get_strategy(name)"
    )
    assert _loaded_after(code) == []


def test_diffusers_loads_when_a_scheduler_is_made():
    code = (
        "from searchkit.backends import AnalyticBackend\n"
        "AnalyticBackend(num_steps=4).make_scheduler()"
    )
    assert "diffusers" in _loaded_after(code)
