"""Prompts for a sweep: an inline list, or a VBench-style JSON file filtered by dimension.

A VBench-style file is a JSON list of records such as::

    [{"prompt_en": "Garden, zoom in.", "dimension": ["Camera_Motion"]}, ...]

``prompt_en`` is the prompt; ``dimension`` is a string or a list of strings (the VBench
dimensions the prompt tests). Every error names the file and, for a bad record, its index.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from searchkit.errors import FileFormatError
from searchkit.files import read_json


@attrs.frozen
class Prompt:
    """One prompt of a sweep: its text and, from a VBench-style file, its dimensions."""

    text: str
    dimensions: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"text": self.text, "dimensions": list(self.dimensions)}


def load_prompt_file(
    path: str | Path, dimension: str | None = None, limit: int | None = None
) -> tuple[Prompt, ...]:
    """The prompts of a VBench-style JSON file, those testing ``dimension`` if given.

    ``limit`` keeps the first ``limit`` matching prompts (file order).
    """
    path = Path(path)
    records = read_json(path, "prompts file")
    if not isinstance(records, list):
        raise FileFormatError(
            f"prompts file {str(path)!r} must hold a JSON list of records, got {type(records).__name__}"
        )
    prompts = []
    for i, record in enumerate(records):
        where = f"prompts file {str(path)!r}, record {i}"
        if not isinstance(record, dict):
            raise FileFormatError(f"{where}: must be an object with 'prompt_en', got {record!r}")
        text = record.get("prompt_en")
        if not isinstance(text, str) or not text.strip():
            raise FileFormatError(f"{where}: lacks a non-empty string 'prompt_en' (got {record!r})")
        dims = record.get("dimension", ())
        dims = (dims,) if isinstance(dims, str) else dims
        if not isinstance(dims, list | tuple) or not all(isinstance(d, str) for d in dims):
            raise FileFormatError(
                f"{where}: 'dimension' must be a string or a list of strings, got {dims!r}"
            )
        if dimension is None or dimension in dims:
            prompts.append(Prompt(text, tuple(dims)))
    if not prompts:
        known = sorted({d for r in records for d in _dims(r)})
        raise FileFormatError(
            f"prompts file {str(path)!r} has no prompt with dimension {dimension!r}; "
            f"dimensions in the file: {', '.join(known) or '(none)'}"
        )
    return tuple(prompts[:limit] if limit is not None else prompts)


def _dims(record: dict) -> tuple[str, ...]:
    dims = record.get("dimension", ())
    return (dims,) if isinstance(dims, str) else tuple(dims)
