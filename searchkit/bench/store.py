"""The results store: one JSON line per finished run, append-only, flushed per row.

An output folder holds

* ``sweep.json``: the effective sweep configuration and its fingerprint, replaced
  atomically (:func:`searchkit.files.atomic_write_json`);
* ``results.jsonl``: one line per finished run, written in one ``write`` call, flushed and
  synced before the next run starts, so a killed sweep loses at most the runs in flight;
* the summary (``summary.md``, ``summary.csv``) and the figure (``reward_vs_nfe.png``).

Reading tolerates exactly one kind of damage: a last line cut short by a crash (no newline,
or not valid JSON). It is discarded (and cut from the file before new rows are appended);
a damaged line anywhere else is an error naming the file and the line. Rows are never
rewritten, and a run whose key is already present is never written again.

A folder that already holds results is opened only with ``resume`` (finished runs are
kept and skipped; rows of runs that are not in the current sweep stay in the file but
are left out of the summary) or ``force`` (the old results are deleted).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from searchkit.errors import OutputFolderError  # noqa: F401  (re-exported)
from searchkit.files import atomic_write_json, check_output_folder

try:  # advisory lock against two sweeps writing one folder (POSIX)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

RESULTS_FILE = "results.jsonl"
SWEEP_FILE = "sweep.json"
OUTPUT_FILES = ("summary.md", "summary.csv", "reward_vs_nfe.png")


def read_results(path: str | Path) -> tuple[list[dict[str, Any]], int, str | None]:
    """Rows of a results file, the byte length of its intact part, and a discarded tail.

    The tail is the text of a last line cut short by a crash (``None`` when there is none).
    """
    path = Path(path)
    if not path.exists():
        return [], 0, None
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete, partial = lines[:-1], lines[-1]
    rows: list[dict[str, Any]] = []
    offset = 0
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            offset += len(line) + 1
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or "key" not in row:
                raise ValueError("not a result row")
        except ValueError:
            if number == len(complete) and not partial:
                return rows, offset, line.decode("utf-8", "replace")
            raise OutputFolderError(
                f"results file {str(path)!r} is damaged at line {number} (not a result row); "
                "only a cut-short last line is repaired automatically"
            ) from None
        rows.append(row)
        offset += len(line) + 1
    tail = partial.decode("utf-8", "replace") if partial else None
    return rows, offset, tail


class ResultsStore:
    """The results of one output folder; the only writer of its ``results.jsonl``."""

    def __init__(self, folder: Path, rows: list[dict[str, Any]], discarded: str | None) -> None:
        self.folder = folder
        self.rows = rows
        self.discarded = discarded
        self._keys = {row["key"] for row in rows}
        self._file = None

    @property
    def results_path(self) -> Path:
        return self.folder / RESULTS_FILE

    # -- opening ----------------------------------------------------------------------------
    @staticmethod
    def check(
        folder: str | Path,
        config: dict[str, Any],
        fingerprint: str,
        *,
        resume: bool = False,
        force: bool = False,
    ) -> None:
        """Raise :class:`OutputFolderError` if ``folder`` cannot take this sweep as asked.

        Changes nothing, so it can run before any compute.
        """
        if resume and force:
            raise OutputFolderError("resume=True and force=True contradict each other; pass one")
        folder = check_output_folder(folder)
        results = folder / RESULTS_FILE
        if resume or force or not results.exists() or results.stat().st_size == 0:
            return
        old = _read_sweep(folder)
        count = sum(1 for line in results.read_bytes().split(b"\n") if line.strip())
        if old is not None and old.get("fingerprint") == fingerprint:
            raise OutputFolderError(
                f"output folder {str(folder)!r} already holds {count} results of this sweep; "
                "pass resume=True to keep them and run what is missing, or force=True to start over"
            )
        changed = _changed_fields(old.get("config", {}) if old else {}, config)
        raise OutputFolderError(
            f"output folder {str(folder)!r} holds {count} results of a different sweep "
            f"configuration (differs in: {', '.join(changed) or 'unknown'}); pass resume=True to "
            "keep them (runs of this sweep already done are reused) or force=True to discard "
            "them, or choose another output folder"
        )

    @classmethod
    def open(
        cls,
        folder: str | Path,
        config: dict[str, Any],
        fingerprint: str,
        *,
        resume: bool = False,
        force: bool = False,
    ) -> ResultsStore:
        """Open ``folder`` for this sweep (see :meth:`check`), repairing a cut-short last line."""
        cls.check(folder, config, fingerprint, resume=resume, force=force)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        results = folder / RESULTS_FILE
        handle = open(results, "ab")  # noqa: SIM115  (held until close)
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                raise OutputFolderError(
                    f"another searchkit bench is writing to {str(folder)!r}"
                ) from None
        if force:
            handle.truncate(0)
            for name in OUTPUT_FILES:
                (folder / name).unlink(missing_ok=True)
        rows, intact, tail = read_results(results)
        if tail is not None:
            handle.truncate(intact)
        rows = _unique(rows)
        _write_sweep(folder, config, fingerprint)
        store = cls(folder, rows, tail)
        store._file = handle
        return store

    # -- writing ------------------------------------------------------------------------------
    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def append(self, row: dict[str, Any]) -> None:
        """Write one row as one line, then flush and sync; a known key is refused."""
        if self._file is None:
            raise RuntimeError("the results store is closed")
        if row["key"] in self._keys:
            raise ValueError(f"run {row['key']} is already in {str(self.results_path)!r}")
        line = json.dumps(row, separators=(",", ":"), allow_nan=True) + "\n"
        self._file.write(line.encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())
        self.rows.append(row)
        self._keys.add(row["key"])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen, unique = set(), []
    for row in rows:
        if row["key"] not in seen:
            seen.add(row["key"])
            unique.append(row)
    return unique


def _read_sweep(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / SWEEP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_sweep(folder: Path, config: dict[str, Any], fingerprint: str) -> None:
    from searchkit import __version__

    atomic_write_json(
        folder / SWEEP_FILE,
        {"fingerprint": fingerprint, "searchkit": __version__, "config": config},
    )


def _changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
