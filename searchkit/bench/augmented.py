"""VBench-2.0's augmented prompts, read from its text files and matched to prompt records.

VBench-2.0 ships, in the ``prompts`` folder of its code, one text file of prompts per
dimension and, per prompt extender, a file of rewritten prompts line-aligned with it::

    prompts/prompt/{dimension}.txt                      # one original prompt a line
    prompts/prompt_aug/{extender}/{dimension}.txt       # line i rewrites line i above

(``wanx_aug_prompt``: the rewrites VBench-2.0 used for Wan2.1; ``VBench2_aug_prompt``: those
of its other models.) Its own sampling code strips each line and names every video by the
original prompt; a record of a JSON prompt file here gets the rewrite as ``prompt_aug``
(:mod:`searchkit.bench.vbench`), so the model receives the rewrite and the video keeps the
original's name.

A record is matched by its ``prompt_en`` against the stripped lines of the file of its first
dimension that holds it; the rewrite is the same line of the extender's file. A missing file,
two files of one dimension with different line counts (not aligned), or a record no file of
its dimensions holds is an error naming the files: an augmented run that quietly sent some
originals would be graded as if it had not.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from searchkit.errors import FileFormatError, MissingFileError

#: The extender VBench-2.0 used for Wan2.1, the paper's model.
DEFAULT_EXTENDER = "wanx_aug_prompt"


def _lines(path: Path) -> list[str]:
    """The stripped lines of a text file, trailing blank lines dropped (as VBench-2.0 reads it)."""
    if not path.is_file():
        raise MissingFileError(f"augmented prompts: no file {str(path)!r}")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


class AugmentedPrompts:
    """The rewrites of one extender in a VBench-2.0 ``prompts`` folder, read on first use.

    ``folder`` is VBench-2.0's ``prompts`` folder (holding ``prompt/`` and ``prompt_aug/``);
    ``extender`` names a folder of ``prompt_aug/``.
    """

    def __init__(self, folder: str | os.PathLike, extender: str = DEFAULT_EXTENDER) -> None:
        self.folder = Path(folder)
        self.extender = extender
        if not isinstance(extender, str) or not extender or "/" in extender:
            raise FileFormatError(
                f"extender must be a folder name of prompt_aug/ (no '/'), got {extender!r}"
            )
        if not (self.folder / "prompt").is_dir():
            raise MissingFileError(
                f"augmented prompts: {str(self.folder)!r} has no 'prompt' folder; give "
                "VBench-2.0's 'prompts' folder"
            )
        aug = self.folder / "prompt_aug" / extender
        if not aug.is_dir():
            found = (
                sorted(p.name for p in (self.folder / "prompt_aug").glob("*") if p.is_dir())
                if (self.folder / "prompt_aug").is_dir()
                else []
            )
            raise MissingFileError(
                f"augmented prompts: no extender folder {str(aug)!r}; extenders there: "
                f"{', '.join(found) or '(none)'}"
            )
        self._tables: dict[str, dict[str, str]] = {}

    def files(self, dimension: str) -> tuple[Path, Path]:
        """The original and the augmented prompt file of ``dimension``."""
        return (
            self.folder / "prompt" / f"{dimension}.txt",
            self.folder / "prompt_aug" / self.extender / f"{dimension}.txt",
        )

    def table(self, dimension: str) -> dict[str, str]:
        """Original prompt to its rewrite, for one dimension (the first line of a repeated one)."""
        if dimension not in self._tables:
            original, augmented = self.files(dimension)
            short, long = _lines(original), _lines(augmented)
            if len(short) != len(long):
                raise FileFormatError(
                    f"augmented prompts: {str(augmented)!r} has {len(long)} lines but "
                    f"{str(original)!r} has {len(short)}; the files must be line-aligned"
                )
            for i, (s, a) in enumerate(zip(short, long, strict=True)):
                if bool(s) != bool(a):
                    empty = original if not s else augmented
                    raise FileFormatError(
                        f"augmented prompts: line {i + 1} of {str(empty)!r} is blank but not in "
                        "its partner file; the files must be line-aligned"
                    )
            table: dict[str, str] = {}
            for s, a in zip(short, long, strict=True):
                if s:
                    table.setdefault(s, a)
            self._tables[dimension] = table
        return self._tables[dimension]

    def rewrite(self, prompt_en: str, dimensions: Sequence[str], where: str) -> str:
        """The rewrite of ``prompt_en``, from the first of ``dimensions`` whose file holds it.

        ``where`` names the record in the error raised when none does.
        """
        for dimension in dimensions:
            found = self.table(dimension).get(prompt_en.strip())
            if found is not None:
                return found
        searched = ", ".join(repr(str(self.files(d)[0])) for d in dimensions) or "(no dimension)"
        raise FileFormatError(
            f"{where}: prompt_en {prompt_en[:80]!r} is on no line of {searched}; its "
            f"augmented prompt ({self.extender}) is unknown"
        )


def attach_augmented(records: list, augmented: AugmentedPrompts, source: str) -> list:
    """The records of a JSON prompt file (parsed), each with its ``prompt_aug`` from the files.

    ``records`` are left as they are; records that are not objects, lack ``prompt_en`` or
    ``dimension``, are returned unchanged for the prompt file's own checks to name. A record
    that already carries a different ``prompt_aug`` is an error (two sources disagree).
    """
    if not isinstance(records, list):
        return records
    out = []
    for i, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("prompt_en"), str):
            out.append(record)
            continue
        dims = record.get("dimension", ())
        dims = [dims] if isinstance(dims, str) else dims
        if not isinstance(dims, list | tuple) or not all(isinstance(d, str) for d in dims):
            out.append(record)
            continue
        where = f"{source}, record {i}"
        text = augmented.rewrite(record["prompt_en"], dims, where)
        own = record.get("prompt_aug")
        if own is not None and own != text:
            raise FileFormatError(
                f"{where}: has prompt_aug {own[:60]!r} but {augmented.extender} gives "
                f"{text[:60]!r}; drop one of them"
            )
        out.append({**record, "prompt_aug": text})
    return out
