"""Collecting training data for the latent reward model (layout: :mod:`.schema`).

Every (seed, prompt) trajectory runs through a :class:`~searchkit.context.SearchContext`
step by step (``ctx.advance``), exactly as a search would run it: after each stored step
``j`` the latent ``x_t`` (at noise level ``particles.sigma``) and the one-step prediction
``x0`` (made at ``particles.solver.noise_level(j)``) are kept; after the last step the
teacher scores the clean output through ``ctx.score`` (decoded and metered when it reads
video). The teacher is any registered reward, by name and options
(:func:`searchkit.builders.build_reward`), or a built one; its name and options are recorded
in ``collect.json``. The paper labels with VideoReward; the default is the backend's own
reward.

Collection is resumable: each record is appended (atomically) as soon as it is complete, and
a rerun continues after the last complete record of each seed file. A folder collected with
another backend, teacher, teacher options or steps is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch

from searchkit.backend import Backend
from searchkit.builders import build_reward
from searchkit.context import SearchContext
from searchkit.errors import InputError, LatentDataError, OutputFolderError
from searchkit.files import atomic_write, atomic_write_json
from searchkit.reward import Reward
from searchkit.rewards.latent.schema import (
    MANIFEST_NAME,
    METADATA_DIR,
    metadata_name,
    sample_seed,
    similarity,
    step_key,
)
from searchkit.validation import as_tuple, boolean, non_negative_int, step_schedule


def _distinct_seeds(_inst: Any, attribute: attrs.Attribute, value: object) -> None:
    if not isinstance(value, tuple) or not value:
        raise InputError(f"{attribute.name} must be a non-empty tuple of seeds, got {value!r}")
    for seed in value:
        non_negative_int(_inst, attribute, seed)
    if len(set(value)) != len(value):
        raise InputError(f"{attribute.name} must be distinct, got {value!r}")


@attrs.frozen
class CollectConfig:
    """What to collect.

    Args:
        steps: step indices ``j`` (0-based) after which ``x_t`` and ``x0`` are stored.
        seeds: one metadata file per seed; trajectory seeds are :func:`.schema.sample_seed`.
        save_video: also decode and write each final video (mp4).
    """

    steps: tuple[int, ...] = attrs.field(
        default=(10, 15, 20, 25, 30), converter=as_tuple, validator=step_schedule
    )
    seeds: tuple[int, ...] = attrs.field(
        default=(200, 300, 400, 500, 600), converter=as_tuple, validator=_distinct_seeds
    )
    save_video: bool = attrs.field(default=False, validator=boolean)


@attrs.define
class CollectSummary:
    """What one :func:`collect` call did: records written, records already present, the folder."""

    written: int
    skipped: int
    folder: Path


def resolve_teacher(
    backend: Backend, teacher: Reward | str | None, options: Mapping[str, Any] | None = None
) -> tuple[Reward, dict[str, Any]]:
    """The teacher reward and its description for ``collect.json``.

    ``teacher`` is a built reward (``options`` then records how it was built) or a registry
    name built with ``options`` for ``backend``; ``None`` names the backend's default reward.
    """
    options = dict(options or {})
    if isinstance(teacher, Reward):
        reward, name = teacher, teacher.name
    elif teacher is None or isinstance(teacher, str):
        name = teacher if teacher is not None else getattr(backend, "default_reward", None)
        reward = build_reward(name, backend, **options)
    else:
        raise TypeError(
            f"teacher must be a Reward, a registered reward name or None, got {teacher!r}"
        )
    config = reward.config_dict() if hasattr(reward, "config_dict") else {"name": reward.name}
    description = {"name": name, "options": options, "config": config}
    return reward, json.loads(json.dumps(description, default=str))


def collect(
    backend: Backend,
    teacher: Reward | str | None,
    prompts: Sequence[str],
    out: str | Path,
    config: CollectConfig | None = None,
    *,
    teacher_options: Mapping[str, Any] | None = None,
    limit: int | None = None,
    progress: bool = False,
    on_record: Callable[[dict], None] | None = None,
) -> CollectSummary:
    """Collect trajectories of ``prompts`` for every seed of ``config`` into ``out``.

    ``teacher`` and ``teacher_options``: see :func:`resolve_teacher`. Resumable: records
    already present are skipped (the folder's ``collect.json`` must describe the same
    backend, teacher, steps and prompts). ``limit`` stops after that many new records (for
    staged runs and tests).
    """
    from tqdm.auto import tqdm

    config = config or CollectConfig()
    if not isinstance(config, CollectConfig):
        raise TypeError(f"config must be a CollectConfig, got {type(config).__name__}")
    prompts = list(prompts)
    if not prompts or not all(isinstance(p, str) and p for p in prompts):
        raise InputError(
            f"prompts must be a non-empty list of non-empty strings, got {prompts[:3]!r}..."
        )
    if config.steps[-1] >= backend.num_steps:
        raise InputError(
            f"steps must be below the backend's num_steps={backend.num_steps}, got {list(config.steps)}"
        )
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InputError(f"limit must be a non-negative integer or None, got {limit!r}")
    teacher, description = resolve_teacher(backend, teacher, teacher_options)
    out = Path(out)
    metadata_dir = out / METADATA_DIR
    manifest = {
        "backend": backend.config_dict(),
        "teacher": description,
        "steps": list(config.steps),
        "prompts": prompts,
    }
    manifest = json.loads(json.dumps(manifest, default=str))
    manifest = _merge_manifest(out / MANIFEST_NAME, manifest)
    existing = {
        seed: _read_records(metadata_dir / metadata_name(seed), prompts) for seed in config.seeds
    }
    metadata_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / MANIFEST_NAME, manifest)

    skipped = sum(min(len(records), len(prompts)) for records in existing.values())
    todo = [(seed, i) for seed in config.seeds for i in range(len(existing[seed]), len(prompts))]
    if limit is not None:
        todo = todo[:limit]
    written = 0
    for seed, index in tqdm(todo, desc="collect", disable=not progress):
        record = _collect_one(
            backend, teacher, prompts[index], seed, index, config, out, metadata_dir
        )
        existing[seed].append(record)
        atomic_write_json(metadata_dir / metadata_name(seed), existing[seed])
        written += 1
        if on_record is not None:
            on_record(record)
    return CollectSummary(written=written, skipped=skipped, folder=out)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise LatentDataError(f"{path}: not valid JSON: {error}") from None


def _merge_manifest(path: Path, manifest: dict) -> dict:
    """``manifest``, checked against the one already in the folder (longer prompt lists kept)."""
    if not path.exists():
        return manifest
    previous = _read_json(path)
    if not isinstance(previous, dict):
        raise LatentDataError(f"{path}: must hold a JSON object, got {type(previous).__name__}")
    for key in ("backend", "teacher", "steps"):
        if previous.get(key) != manifest[key]:
            raise OutputFolderError(
                f"{path} was collected with a different {key} "
                f"({previous.get(key)!r} vs {manifest[key]!r}); use a fresh folder"
            )
    old, prompts = previous.get("prompts", []), manifest["prompts"]
    if old[: len(prompts)] != prompts[: len(old)]:
        raise OutputFolderError(
            f"{path} was collected with a different prompt list; use a fresh folder"
        )
    return {**manifest, "prompts": old} if len(old) > len(prompts) else manifest


def _read_records(path: Path, prompts: list[str]) -> list[dict]:
    """The records of one seed file so far; each must be for the prompt at its position."""
    records = _read_json(path) if path.exists() else []
    if not isinstance(records, list):
        raise LatentDataError(f"{path} must hold a JSON list of records")
    for i, record in enumerate(records[: len(prompts)]):
        if not isinstance(record, dict) or record.get("prompt") != prompts[i]:
            found = record.get("prompt") if isinstance(record, dict) else record
            raise OutputFolderError(
                f"{path} record {i} has prompt {found!r}, but prompt {i} is {prompts[i]!r}; "
                "use a fresh folder"
            )
    return records


def _save_tensor(tensor: torch.Tensor, path: Path) -> None:
    data = tensor.detach().cpu().contiguous().clone()
    atomic_write(path, lambda tmp: torch.save(data, tmp))


def _rel(path: Path, metadata_dir: Path) -> str:
    return os.path.relpath(path, metadata_dir).replace(os.sep, "/")


def _collect_one(
    backend: Backend,
    teacher: Reward,
    prompt: str,
    seed: int,
    index: int,
    config: CollectConfig,
    out: Path,
    metadata_dir: Path,
) -> dict:
    generator = torch.Generator().manual_seed(sample_seed(seed, index))
    ctx = SearchContext(backend, teacher, prompt, generator=generator)
    particles = ctx.start(1)
    stored: dict[int, tuple[torch.Tensor, torch.Tensor, float, float]] = {}
    for step in config.steps:
        particles = ctx.advance(particles, to=step + 1)
        stored[step] = (
            particles.latents[0].detach().clone(),
            particles.x0[0].detach().clone(),
            particles.sigma,  # the latents' noise level, after step `step`
            particles.solver.noise_level(step),  # the level x0 was predicted at
        )
    particles = ctx.advance(particles, to=ctx.num_steps)
    z0 = particles.latents[0].detach().clone()
    scores = ctx.score(particles, label="final").scores[0]
    folder = out / f"seed_{seed}" / f"{index:04d}"
    folder.mkdir(parents=True, exist_ok=True)
    latent_paths, x0_paths, sims, sigmas_t, sigmas_x0 = {}, {}, {}, {}, {}
    for step, (latent, x0, sigma, sigma_x0) in stored.items():
        key = step_key(step)
        latent_path = folder / f"latent_step_{key}_tensor.pt"
        x0_path = folder / f"x0_step_{key}_tensor.pt"
        _save_tensor(latent, latent_path)
        _save_tensor(x0, x0_path)
        latent_paths[key] = _rel(latent_path, metadata_dir)
        x0_paths[key] = _rel(x0_path, metadata_dir)
        sims[key] = similarity(latent, z0)
        sigmas_t[key] = sigma
        sigmas_x0[key] = sigma_x0
    z0_path = folder / "z0_tensor.pt"
    _save_tensor(z0, z0_path)
    video_path = None
    if config.save_video:
        from searchkit.video_io import write_video

        video = ctx.decode(particles.latents)[0]
        video_path = _rel(write_video(video, folder / "video.mp4"), metadata_dir)
    reward = {d: float(s) for d, s in zip(teacher.dimensions, scores.tolist(), strict=True)}
    reward["Overall"] = float(teacher.aggregate(scores[None])[0])
    return {
        "prompt": prompt,
        "video_path": video_path,
        "output_reward": [reward],
        "latent_tensor_path": [latent_paths],
        "latent_z0_similarity": [sims],
        "x0_tensor_path": [x0_paths],
        "latent_sigma": [sigmas_t],
        "x0_sigma": [sigmas_x0],
        "z0_tensor_path": _rel(z0_path, metadata_dir),
        "seed": seed,
        "sample_seed": sample_seed(seed, index),
        "prompt_index": index,
    }
