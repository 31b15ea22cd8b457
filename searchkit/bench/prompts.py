"""Prompts for a sweep: an inline list, or a VBench-style JSON file filtered by dimension.

A VBench-style file is a JSON list of records such as::

    [{"prompt_en": "Garden, zoom in.", "dimension": ["Camera_Motion"]}, ...]

``prompt_en`` is the prompt; ``dimension`` is a string or a list of strings (the VBench
dimensions the prompt tests); an optional ``prompt_aug`` is a rewrite of the prompt (by a
prompt extender, as VBench-2.0 reports Wan2.1) that the model receives in its place, while
the prompt stays ``prompt_en`` everywhere else (run keys, video names, summaries).
VBench-2.0's own rewrites, kept in text files, are attached with ``augmented``
(:mod:`searchkit.bench.augmented`). Every error names the file and, for a bad record, its
index.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from searchkit.errors import FileFormatError
from searchkit.files import read_json

if TYPE_CHECKING:
    from searchkit.bench.augmented import AugmentedPrompts


@attrs.frozen
class Prompt:
    """One prompt of a sweep: its text and, from a VBench-style file, its dimensions and the
    rewrite the model may receive instead (``prompt_aug``)."""

    text: str
    dimensions: tuple[str, ...] = ()
    prompt_aug: str | None = None

    def model_text(self, augmented: bool = True) -> str:
        """What the model receives: ``prompt_aug`` when there is one and ``augmented``."""
        return self.prompt_aug if augmented and self.prompt_aug is not None else self.text

    def to_dict(self) -> dict:
        # ``prompt_aug`` only where set, so that earlier sweeps keep their fingerprints
        extra = {} if self.prompt_aug is None else {"prompt_aug": self.prompt_aug}
        return {"text": self.text, "dimensions": list(self.dimensions), **extra}


def load_prompt_file(
    path: str | Path,
    dimension: str | None = None,
    limit: int | None = None,
    augmented: AugmentedPrompts | None = None,
) -> tuple[Prompt, ...]:
    """The prompts of a VBench-style JSON file, those testing ``dimension`` if given.

    ``limit`` keeps the first ``limit`` matching prompts (file order); ``augmented`` gives
    every record its ``prompt_aug`` from VBench-2.0's text files.
    """
    path = Path(path)
    records = read_json(path, "prompts file")
    if augmented is not None:
        from searchkit.bench.augmented import attach_augmented

        records = attach_augmented(records, augmented, f"prompts file {str(path)!r}")
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
        aug = record.get("prompt_aug")
        if aug is not None and (not isinstance(aug, str) or not aug.strip()):
            raise FileFormatError(f"{where}: 'prompt_aug' must be a non-empty string, got {aug!r}")
        if dimension is None or dimension in dims:
            prompts.append(Prompt(text, tuple(dims), aug))
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
