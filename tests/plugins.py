"""The example plugin package of ``tests/plugin_example``, for tests that use its classes.

The folder holds the package and the ``*.dist-info`` an installation would write, so a
process with the folder on ``sys.path`` sees its entry points. :func:`plugin_example`
imports the package with the folder on the path only while importing: its classes can be
used and tested directly, and the registries of this process still find no entry points
(tests that need discovery put the folder on the path themselves).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

PLUGIN = Path(__file__).parent / "plugin_example"
PACKAGE = "searchkit_plugin_example"


def plugin_example() -> ModuleType:
    """The imported example package ``searchkit_plugin_example``."""
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    sys.path.insert(0, str(PLUGIN))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(PLUGIN))
