"""Writing files so that a reader never sees half of one.

Every file searchkit writes in place of an older one (configs, checkpoints, sweep
descriptions, training state) goes through :func:`atomic_write`: the content is written to
a temporary file in the same folder, flushed to disk, then renamed over the target, which
POSIX and Windows make atomic. A crash leaves the old file or the new one, never a torn
one. Append-only logs (benchmark rows) have their own discipline in ``bench/store.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[Path], None],
    *,
    tmp_dir: str | os.PathLike | None = None,
) -> Path:
    """Call ``write(tmp)`` to fill a temporary file beside ``path``, then rename it over ``path``.

    ``write`` receives the temporary path and may use any writer (``save_file``,
    ``torch.save``, ``Path.write_text``). The temporary file is removed if ``write`` fails.
    ``tmp_dir`` puts the temporary file in that folder instead (it must be on the same
    filesystem as ``path``), for folders that must never hold anything but finished files;
    there it keeps ``path``'s suffix, for writers that choose the format by extension.
    """
    path = Path(path)
    if tmp_dir is None:
        tmp = path.with_name(f".{path.name}.tmp")
    else:
        digest = hashlib.sha256(str(path).encode("utf-8")).hexdigest()[:16]
        tmp = Path(tmp_dir) / f"{digest}-{os.getpid()}{path.suffix}"
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike, payload: Any, *, indent: int | None = 2) -> Path:
    """Write ``payload`` as JSON (with a final newline) to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(payload, indent=indent) + "\n")
