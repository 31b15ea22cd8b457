"""Writing files so that a reader never sees half of one.

Every file searchkit writes in place of an older one (configs, checkpoints, sweep
descriptions, training state) goes through :func:`atomic_write`: the content is written to
a temporary file in the same folder, flushed to disk, then renamed over the target, which
POSIX and Windows make atomic. A crash leaves the old file or the new one, never a torn
one. Append-only logs (benchmark rows) have their own discipline in ``bench/store.py``.

Every file it writes gets one permission mode, :func:`file_mode`: ``0o666`` less the
process umask (``0o644`` under the usual umask 022), what ``open()`` gives a new file.
Writers that choose their own (safetensors creates ``0o600`` files) are brought to it.

Reading: :func:`read_text` and :func:`read_json` name the file and the position of the
first bad byte or character in every error (a :class:`~searchkit.errors.FileFormatError`);
:func:`check_output_folder` refuses, before any compute, an output folder that is a file,
lies inside a file or cannot be created or written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from searchkit.errors import FileFormatError, MissingFileError, OutputFolderError


def file_mode() -> int:
    """The permission mode of every file searchkit writes: ``0o666`` less the umask."""
    return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux states it; reading it changes nothing (no race with other threads)
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def settle_mode(path: str | os.PathLike) -> Path:
    """Give the written file ``path`` the common mode (:func:`file_mode`)."""
    os.chmod(path, file_mode())
    return Path(path)


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
        settle_mode(tmp)
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


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """The UTF-8 text of ``path``; an error names ``what``, the file and the bad byte."""
    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise FileFormatError(f"{what} {str(path)!r} is a folder, not a file")
        raise MissingFileError(f"{what} {str(path)!r} does not exist")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise FileFormatError(
            f"{what} {str(path)!r} is not UTF-8 text: byte 0x{data[error.start]:02x} at "
            f"line {line}, column {column} (byte offset {error.start})"
        ) from None


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """The parsed JSON of ``path``; an error names ``what``, the file, the line and column."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise FileFormatError(
            f"{what} {str(path)!r} is not valid JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}"
        ) from None


def check_output_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """``path`` if it is, or can become, a writable folder; else an :class:`OutputFolderError`.

    The error names ``what``, the path and the reason. Changes nothing in the end: the
    folders that do not exist yet are created to learn whether they can be (a path under
    ``/proc``, on a read-only disk, too long a name), a file is created in the folder and
    removed to learn whether it can be written, and the folders made are removed again.
    """
    path = Path(path)
    try:
        return _check_output_folder(path, what)
    except OSError as error:  # the path itself cannot be looked at (a name too long)
        reason = error.strerror or type(error).__name__
        raise OutputFolderError(f"{what} {str(path)!r} cannot be used: {reason}") from None


def _check_output_folder(path: Path, what: str) -> Path:
    if path.exists() and not path.is_dir():
        raise OutputFolderError(f"{what} {str(path)!r} is a file, not a folder")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise OutputFolderError(f"{what} {str(path)!r} cannot be created: {str(probe)!r} is a file")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        detail = "is not writable" if probe == path else f"lies in {str(probe)!r}, not writable"
        raise OutputFolderError(f"{what} {str(path)!r} {detail}")
    made: list[Path] = []
    try:
        missing = [path, *path.parents]
        missing = missing[: missing.index(probe)] if probe in missing else missing
        action = "cannot be created"
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:  # made meanwhile by another process: it is not ours
                if not folder.is_dir():
                    raise
                continue
            made.append(folder)
        action = "cannot be written"
        handle, name = tempfile.mkstemp(prefix=".searchkit-write-check-", dir=path)
        os.close(handle)
        os.unlink(name)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise OutputFolderError(f"{what} {str(path)!r} {action}: {reason}") from None
    finally:
        for folder in reversed(made):
            with contextlib.suppress(OSError):  # written into meanwhile: leave it
                folder.rmdir()
    return path
