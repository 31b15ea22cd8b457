"""Every ```python block of the docs and the README runs: the blocks of one page in order, in
one namespace.

Each page runs in a fresh temporary working folder, with one torch thread (the examples
use small models), and with the registries restored afterwards, so an example that
registers a plugin leaves no trace for other tests.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from searchkit.bench.runner import torch_threads
from searchkit.registry import BACKENDS, REWARDS, STRATEGIES

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
PAGES = sorted(DOCS.rglob("*.md"))
README = DOCS.parent / "README.md"


def python_blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text(encoding="utf-8"))


PAGES_WITH_CODE = [p for p in [*PAGES, README] if python_blocks(p)]


def test_docs_have_pages_with_examples():
    names = {p.relative_to(DOCS).as_posix() for p in PAGES}
    assert {
        "index.md",
        "getting-started.md",
        "concepts.md",
        "plugins.md",
        "benchmarks.md",
        "wan.md",
        "ray.md",
    } <= names
    strategies = {p.stem for p in (DOCS / "strategies").glob("*.md")}
    documented = " ".join((DOCS / "strategies" / f"{s}.md").read_text() for s in strategies)
    for name in STRATEGIES.names():  # every registered strategy has its page
        assert f"`{name}`" in documented, name
    assert sum(len(python_blocks(p)) for p in PAGES) >= 10


@pytest.mark.parametrize(
    "page", PAGES_WITH_CODE, ids=lambda p: p.relative_to(DOCS.parent).as_posix()
)
def test_docs_examples_run(page, tmp_path, monkeypatch):
    blocks = python_blocks(page)
    monkeypatch.chdir(tmp_path)
    saved = {r: dict(r._entries) for r in (STRATEGIES, REWARDS, BACKENDS)}
    namespace: dict = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    try:
        with torch_threads(1):
            for i, code in enumerate(blocks):
                exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
    finally:
        for registry, entries in saved.items():
            registry._entries.clear()
            registry._entries.update(entries)
