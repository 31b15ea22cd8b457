"""Parsing the metadata files of a latent dataset into per-step sample fields.

The reading half of :mod:`.schema`: which files make a dataset, and one record's fields
checked one by one (types, ranges, matching step keys, files present and inside the
dataset folder). Errors are :class:`~searchkit.errors.LatentDataError` naming the record
(``all_latent_metadata_seed_0200.json record 3 (prompt '...')``) and the field.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from searchkit.errors import LatentDataError, MissingFileError
from searchkit.rewards.latent.schema import (
    MANIFEST_NAME,
    METADATA_DIR,
    REQUIRED_FIELDS,
    parse_step_key,
)


def metadata_files(source: str | Path | Sequence[str | Path]) -> list[Path]:
    """The metadata files of ``source``: a collection folder, its ``metadata/``, or files."""
    if isinstance(source, str | Path):
        path = Path(source)
        if path.is_dir() and (path / METADATA_DIR).is_dir():
            path = path / METADATA_DIR
        if path.is_dir():
            files = sorted(p for p in path.glob("*.json") if p.name != MANIFEST_NAME)
            if not files:
                raise MissingFileError(f"no metadata *.json files in {path}")
            return files
        sources: list[Path] = [path]
    else:
        sources = [Path(p) for p in source]
    for p in sources:
        if not p.is_file():
            raise MissingFileError(f"metadata file not found: {p}")
    return sources


def _one_dict(record: dict, field: str, where: str) -> dict:
    value = record.get(field)
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return value[0]
    if isinstance(value, dict):
        return value
    raise LatentDataError(
        f"{where}: field {field!r} must be a list holding one object, got {value!r}"
    )


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and value == value


def tensor_path(rel: object, base: Path, inside: Path, where: str, field: str) -> Path:
    """The file ``rel`` (relative to ``base``) names; it must exist and stay inside ``inside``.

    The containment check is on the path as written (``..`` and absolute paths resolved
    lexically), so a dataset cannot point at files outside its folder; links inside the
    folder are the owner's choice.
    """
    if not isinstance(rel, str) or not rel:
        raise LatentDataError(f"{where}: {field} must be a path, got {rel!r}")
    path = Path(os.path.normpath(os.path.join(os.path.abspath(base), rel)))
    if path != inside and inside not in path.parents:
        raise LatentDataError(f"{where}: {field} {rel!r} leaves the dataset folder {inside}")
    if not path.is_file():
        raise LatentDataError(f"{where}: {field} file not found: {path}")
    return path.resolve()


def read_record(
    record: Any,
    where: str,
    base: Path,
    inside: Path,
    dims: tuple[str, ...],
    sigmas: torch.Tensor | None,
    wanted: set[int] | None,
) -> Iterator[dict[str, Any]]:
    """The fields of each stored step of one record (a ``LatentSample`` without its group).

    ``base`` is the folder paths are relative to, ``inside`` the folder they must stay in,
    ``sigmas`` the schedule's noise levels for records without ``latent_sigma``, ``wanted``
    the steps to keep (``None``: all).
    """
    if not isinstance(record, dict):
        raise LatentDataError(f"{where}: must be a JSON object, got {type(record).__name__}")
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise LatentDataError(f"{where}: missing field(s) {missing}")
    prompt = record["prompt"]
    if not isinstance(prompt, str):
        raise LatentDataError(f"{where}: field 'prompt' must be a string, got {prompt!r}")
    reward_dict = _one_dict(record, "output_reward", where)
    values = []
    for d in dims:
        value = reward_dict.get(d)
        if not _is_number(value):
            raise LatentDataError(f"{where}: output_reward[{d!r}] must be a number, got {value!r}")
        values.append(float(value))
    reward = torch.tensor(values)
    paths = _one_dict(record, "latent_tensor_path", where)
    sims = _one_dict(record, "latent_z0_similarity", where)
    x0_paths = _one_dict(record, "x0_tensor_path", where) if "x0_tensor_path" in record else {}
    latent_sigmas = _one_dict(record, "latent_sigma", where) if "latent_sigma" in record else {}
    x0_sigmas = _one_dict(record, "x0_sigma", where) if "x0_sigma" in record else {}
    if set(paths) != set(sims):
        raise LatentDataError(
            f"{where}: latent_tensor_path steps {sorted(paths)} differ from "
            f"latent_z0_similarity steps {sorted(sims)}"
        )
    for key in sorted(paths, key=lambda k: (len(k), k)):
        try:
            step = parse_step_key(key)
        except ValueError as error:
            raise LatentDataError(f"{where}: latent_tensor_path: {error}") from None
        if wanted is not None and step not in wanted:
            continue
        latent_path = tensor_path(paths[key], base, inside, where, f"latent_tensor_path[{key!r}]")
        sim = sims[key]
        if not _is_number(sim) or not -1e-6 <= sim <= 1.0 + 1e-6:
            raise LatentDataError(
                f"{where}: latent_z0_similarity[{key!r}] must lie in [0, 1], got {sim!r}"
            )
        sim = min(max(float(sim), 0.0), 1.0)  # rounding of (1 + cos) / 2
        x0_path = None
        if key in x0_paths:
            x0_path = tensor_path(x0_paths[key], base, inside, where, f"x0_tensor_path[{key!r}]")
        sigma = latent_sigmas.get(key)
        x0_sigma = x0_sigmas.get(key)
        if sigma is None or (x0_sigma is None and x0_path is not None):
            if sigmas is None:
                raise LatentDataError(
                    f"{where}: no 'latent_sigma' for {key!r}; pass backend= or scheduler= to take "
                    "the noise level from its schedule"
                )
            if step + 1 >= len(sigmas):
                raise LatentDataError(
                    f"{where}: step {key!r} is beyond the schedule's {len(sigmas) - 1} steps"
                )
            sigma = float(sigmas[step + 1]) if sigma is None else sigma
            x0_sigma = float(sigmas[step]) if x0_sigma is None else x0_sigma
        for name, value in (("latent_sigma", sigma), ("x0_sigma", x0_sigma)):
            if value is not None and (not _is_number(value) or not 0.0 <= value <= 1.0):
                raise LatentDataError(f"{where}: {name}[{key!r}] must lie in [0, 1], got {value!r}")
        yield {
            "record": where,
            "prompt": prompt,
            "step": step,
            "latent_path": latent_path,
            "x0_path": x0_path,
            "sigma": float(sigma),
            "x0_sigma": None if x0_sigma is None else float(x0_sigma),
            "similarity": float(sim),
            "reward": reward,
        }


def read_manifest(source: str | Path) -> dict[str, Any] | None:
    """The ``collect.json`` of a collection folder (or of its ``metadata/``), if it has one.

    It names the teacher that labelled the data (``manifest["teacher"]``: ``name``,
    ``options`` and its ``config``, with its ``dimensions``). Datasets from the paper's own
    scripts have none.
    """
    import json

    folder = Path(source)
    if folder.is_dir() and folder.name == METADATA_DIR and not (folder / METADATA_DIR).is_dir():
        folder = folder.parent
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise LatentDataError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(manifest, dict):
        raise LatentDataError(f"{path}: must hold a JSON object, got {type(manifest).__name__}")
    return manifest


def recorded_teacher(source: str | Path) -> dict[str, Any] | None:
    """The teacher ``{"name", "options", "config"}`` recorded with a dataset, if any."""
    manifest = read_manifest(source)
    teacher = None if manifest is None else manifest.get("teacher")
    if teacher is None:
        return None
    if not isinstance(teacher, dict) or not isinstance(teacher.get("options", {}), dict):
        raise LatentDataError(
            f"{source}: the recorded teacher must be an object with 'name' and 'options'"
        )
    return teacher
