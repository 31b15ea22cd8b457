"""Training data for the latent reward model: collect trajectories, read them back.

Layout (the LatSearch paper's public metadata schema, so data from either side loads)::

    out/metadata/all_latent_metadata_seed_0200.json   one JSON list per seed, prompt order
    out/seed_200/0000/latent_step_t10_tensor.pt        x_t after step 10 ([C, F, H, W])
    out/seed_200/0000/x0_step_t10_tensor.pt            predicted x0 at that step (extra)
    out/seed_200/0000/z0_tensor.pt                     the final clean latent (extra)

One record per (seed, prompt)::

    {"prompt": ..., "video_path": ... or null,
     "output_reward": [{"VQ": .., "MQ": .., "TA": .., "Overall": ..}],
     "latent_tensor_path": [{"t10": "../seed_200/0000/latent_step_t10_tensor.pt", ...}],
     "latent_z0_similarity": [{"t10": s_t, ...}],
     # extras written by searchkit, optional when reading:
     "x0_tensor_path": [{"t10": ...}], "latent_sigma": [{"t10": ..}], "x0_sigma": [{"t10": ..}],
     "z0_tensor_path": ..., "seed": .., "sample_seed": .., "prompt_index": ..}

``t{j}`` is the latent *after* denoising step ``j`` (0-based), as in the paper's scripts:
``j + 1`` steps taken, noise level ``sigmas[j + 1]``; the prediction ``x0`` stored with it
was made from the step's input, at ``sigmas[j]``. ``s_t = (1 + cos(x_t, x_0)) / 2`` with
``x_0`` the final clean latent. Paths are relative to the metadata folder; tensors are
saved with ``torch.save`` and read with ``torch.load(weights_only=True)``.

Collection runs every (seed, prompt) trajectory through a
:class:`~searchkit.context.SearchContext` step by step (``ctx.advance``); the teacher
reward scores the final clean output through ``ctx.score``. It is resumable: each
record is appended (atomically) as soon as it is complete, and a rerun continues after
the last complete record of each seed file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from attrs import validators as v

from searchkit.backend import Backend
from searchkit.context import SearchContext
from searchkit.errors import LatentDataError  # noqa: F401  (re-exported)
from searchkit.reward import Reward

METADATA_DIR = "metadata"
MANIFEST_NAME = "collect.json"
REQUIRED_FIELDS: tuple[str, ...] = (
    "prompt",
    "output_reward",
    "latent_tensor_path",
    "latent_z0_similarity",
)


def metadata_name(seed: int) -> str:
    return f"all_latent_metadata_seed_{seed:04d}.json"


def step_key(step: int) -> str:
    return f"t{step}"


def parse_step_key(key: str) -> int:
    if not isinstance(key, str) or not key.startswith("t") or not key[1:].isdigit():
        raise ValueError(f"step key must look like 't10', got {key!r}")
    return int(key[1:])


def sample_seed(seed: int, prompt_index: int) -> int:
    """The generator seed of one trajectory (distinct across seeds and prompts)."""
    return seed * 1_000_003 + prompt_index


def similarity(latent: torch.Tensor, z0: torch.Tensor) -> float:
    """``s_t = (1 + cos(x_t, x_0)) / 2`` (the paper's Eq. 7)."""
    cos = torch.nn.functional.cosine_similarity(latent.flatten().double(), z0.flatten().double(), dim=0)
    return min(max(float(0.5 * (1.0 + cos)), 0.0), 1.0)


def _check_steps(_inst: Any, attribute: attrs.Attribute, value: tuple) -> None:
    if not value or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in value):
        raise ValueError(f"{attribute.name} must be non-negative step indices, got {value!r}")
    if list(value) != sorted(set(value)):
        raise ValueError(f"{attribute.name} must be unique and increasing, got {value!r}")


def _check_seeds(_inst: Any, attribute: attrs.Attribute, value: tuple) -> None:
    if not value or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in value):
        raise ValueError(f"{attribute.name} must be non-negative integers, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"{attribute.name} must be distinct, got {value!r}")


@attrs.frozen
class CollectConfig:
    """What to collect.

    Args:
        steps: step indices ``j`` (0-based) after which ``x_t`` and ``x0`` are stored.
        seeds: one metadata file per seed; trajectory seeds are :func:`sample_seed`.
        save_video: also decode and write each final video (mp4).
    """

    steps: tuple[int, ...] = attrs.field(
        default=(10, 15, 20, 25, 30), converter=tuple, validator=_check_steps
    )
    seeds: tuple[int, ...] = attrs.field(
        default=(200, 300, 400, 500, 600), converter=tuple, validator=_check_seeds
    )
    save_video: bool = attrs.field(default=False, validator=v.instance_of(bool))


@attrs.define
class CollectSummary:
    written: int
    skipped: int
    folder: Path


def _atomic_json(path: Path, payload: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def _save_tensor(tensor: torch.Tensor, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(tensor.detach().cpu().contiguous().clone(), tmp)
    os.replace(tmp, path)


def _rel(path: Path, metadata_dir: Path) -> str:
    return os.path.relpath(path, metadata_dir).replace(os.sep, "/")


def collect(
    backend: Backend,
    teacher: Reward,
    prompts: Sequence[str],
    out: str | Path,
    config: CollectConfig | None = None,
    *,
    limit: int | None = None,
    progress: bool = False,
    on_record: Callable[[dict], None] | None = None,
) -> CollectSummary:
    """Collect trajectories of ``prompts`` for every seed of ``config`` into ``out``.

    Resumable: records already present are skipped (the folder's ``collect.json`` must
    describe the same backend, teacher, steps and prompts). ``limit`` stops after that
    many new records (for staged runs and tests).
    """
    from tqdm.auto import tqdm

    config = config or CollectConfig()
    if not isinstance(config, CollectConfig):
        raise TypeError(f"config must be a CollectConfig, got {type(config).__name__}")
    prompts = list(prompts)
    if not prompts or not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"prompts must be a non-empty list of strings, got {prompts[:3]!r}...")
    if config.steps[-1] >= backend.num_steps:
        raise ValueError(
            f"steps must be below the backend's num_steps={backend.num_steps}, got {list(config.steps)}"
        )
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    out = Path(out)
    metadata_dir = out / METADATA_DIR
    metadata_dir.mkdir(parents=True, exist_ok=True)
    manifest = {
        "backend": backend.config_dict(),
        "teacher": teacher.config_dict() if hasattr(teacher, "config_dict") else teacher.name,
        "steps": list(config.steps),
        "prompts": prompts,
    }
    manifest = json.loads(json.dumps(manifest, default=str))
    manifest_path = out / MANIFEST_NAME
    if manifest_path.exists():
        previous = json.loads(manifest_path.read_text(encoding="utf-8"))
        for key in ("backend", "teacher", "steps"):
            if previous.get(key) != manifest[key]:
                raise ValueError(
                    f"{manifest_path} was collected with a different {key} "
                    f"({previous.get(key)!r} vs {manifest[key]!r}); use a fresh folder"
                )
        old = previous.get("prompts", [])
        if old[: len(prompts)] != prompts[: len(old)]:
            raise ValueError(f"{manifest_path} was collected with a different prompt list; use a fresh folder")
        if len(old) > len(prompts):
            manifest["prompts"] = old
    _atomic_json(manifest_path, manifest)

    todo: list[tuple[int, int]] = []
    existing: dict[int, list[dict]] = {}
    skipped = 0
    for seed in config.seeds:
        path = metadata_dir / metadata_name(seed)
        records = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
        if not isinstance(records, list):
            raise ValueError(f"{path} must hold a JSON list of records")
        for i, record in enumerate(records[: len(prompts)]):
            if not isinstance(record, dict) or record.get("prompt") != prompts[i]:
                raise ValueError(
                    f"{path} record {i} has prompt {record.get('prompt') if isinstance(record, dict) else record!r}, "
                    f"but prompt {i} is {prompts[i]!r}; use a fresh folder"
                )
        existing[seed] = records
        skipped += min(len(records), len(prompts))
        todo.extend((seed, i) for i in range(len(records), len(prompts)))
    if limit is not None:
        todo = todo[:limit]

    written = 0
    for seed, index in tqdm(todo, desc="collect", disable=not progress):
        record = _collect_one(backend, teacher, prompts[index], seed, index, config, out, metadata_dir)
        existing[seed].append(record)
        _atomic_json(metadata_dir / metadata_name(seed), existing[seed])
        written += 1
        if on_record is not None:
            on_record(record)
    return CollectSummary(written=written, skipped=skipped, folder=out)


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
        sigmas = particles.solver.scheduler.sigmas
        stored[step] = (
            particles.latents[0].detach().clone(),
            particles.x0[0].detach().clone(),
            float(sigmas[step + 1]),
            float(sigmas[step]),
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


# -- reading ---------------------------------------------------------------------------------


@attrs.frozen
class LatentSample:
    """One (record, step) pair: the unit of training and evaluation."""

    record: str
    prompt: str
    step: int
    latent_path: Path
    x0_path: Path | None
    sigma: float
    x0_sigma: float | None
    similarity: float
    reward: torch.Tensor = attrs.field(eq=False)
    group: int  # index of the record (same trajectory) in the dataset


class LatentDataset(torch.utils.data.Dataset):
    """Samples of a latent dataset; tensors load lazily and are checked on load.

    ``dataset[i]`` is a dict with ``latent`` (and ``x0`` when the data has it), ``sigma``,
    ``x0_sigma``, ``similarity``, ``reward`` (``[dims]``, unscaled final reward),
    ``target`` (``reward * similarity``), ``prompt``, ``step`` and ``record``.
    """

    def __init__(
        self,
        samples: list[LatentSample],
        dimensions: tuple[str, ...],
        latent_shape: tuple[int, ...] | None = None,
        cache: bool = True,
    ) -> None:
        self.samples = samples
        self.dimensions = tuple(dimensions)
        self.latent_shape = tuple(latent_shape) if latent_shape is not None else None
        self.cache = cache
        self._cache: dict[Path, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def prompts(self) -> list[str]:
        return sorted({s.prompt for s in self.samples})

    @property
    def steps(self) -> list[int]:
        return sorted({s.step for s in self.samples})

    @property
    def has_x0(self) -> bool:
        return all(s.x0_path is not None for s in self.samples)

    def subset(self, prompts: Iterable[str]) -> LatentDataset:
        keep = set(prompts)
        out = LatentDataset(
            [s for s in self.samples if s.prompt in keep], self.dimensions, self.latent_shape, self.cache
        )
        out._cache = self._cache
        return out

    def load(self, sample: LatentSample, kind: str = "latent") -> torch.Tensor:
        path = sample.latent_path if kind == "latent" else sample.x0_path
        if path is None:
            raise LatentDataError(f"{sample.record}: no {kind} tensor for step {step_key(sample.step)}")
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        what = f"{sample.record}: {kind} {step_key(sample.step)!r} at {path}"
        if not path.is_file():
            raise LatentDataError(f"{what}: file not found")
        try:
            tensor = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any unpickling failure is a bad file
            raise LatentDataError(f"{what}: cannot load ({type(error).__name__}: {error})") from None
        if not isinstance(tensor, torch.Tensor):
            raise LatentDataError(f"{what}: holds a {type(tensor).__name__}, not a tensor")
        if tensor.dim() == 5 and tensor.shape[0] == 1:
            tensor = tensor[0]  # a saved batch of one
        tensor = tensor.float()
        if self.latent_shape is None:
            if tensor.dim() != 4:
                raise LatentDataError(f"{what}: has shape {list(tensor.shape)}, expected [C, F, H, W]")
            self.latent_shape = tuple(tensor.shape)
        if tuple(tensor.shape) != self.latent_shape:
            raise LatentDataError(
                f"{what}: has shape {list(tensor.shape)}, expected {list(self.latent_shape)}"
            )
        if not torch.isfinite(tensor).all():
            raise LatentDataError(f"{what}: holds non-finite values")
        if self.cache:
            self._cache[path] = tensor
        return tensor

    def __getitem__(self, i: int) -> dict[str, Any]:
        s = self.samples[i]
        item = {
            "latent": self.load(s, "latent"),
            "sigma": s.sigma,
            "x0_sigma": s.x0_sigma if s.x0_sigma is not None else float("nan"),
            "similarity": s.similarity,
            "reward": s.reward,
            "target": s.reward * s.similarity,
            "prompt": s.prompt,
            "step": s.step,
            "record": s.record,
            "group": s.group,
        }
        if s.x0_path is not None:
            item["x0"] = self.load(s, "x0")
        return item

    def check(self) -> None:
        """Load every tensor once (raises :class:`LatentDataError` naming the first bad record)."""
        for i in range(len(self)):
            self[i]


def _schedule_sigmas(backend: Backend | None, scheduler: Any | None) -> torch.Tensor | None:
    if scheduler is None and backend is not None:
        scheduler = backend.make_scheduler()
    return None if scheduler is None else torch.as_tensor(scheduler.sigmas).float()


def _one_dict(record: dict, field: str, where: str) -> dict:
    value = record.get(field)
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return value[0]
    if isinstance(value, dict):
        return value
    raise LatentDataError(f"{where}: field {field!r} must be a list holding one object, got {value!r}")


def read_latent_dataset(
    source: str | Path | Sequence[str | Path],
    *,
    dimensions: Sequence[str] = ("VQ", "MQ", "TA"),
    backend: Backend | None = None,
    scheduler: Any | None = None,
    latent_shape: Sequence[int] | None = None,
    steps: Sequence[int] | None = None,
    cache: bool = True,
) -> LatentDataset:
    """Read a dataset in the paper's metadata schema.

    ``source`` is the metadata folder (every ``*.json`` in it), a collection folder (its
    ``metadata/``) or a list of metadata files. Records need ``prompt``,
    ``output_reward``, ``latent_tensor_path`` and ``latent_z0_similarity``; extra fields
    are optional. Noise levels come from each record's ``latent_sigma``, else from the
    schedule of ``scheduler`` or ``backend`` (``sigmas[j + 1]`` for ``t{j}``).
    ``latent_shape`` (default: the backend's, else the first latent's) is checked on load.
    Every referenced file must exist. Errors name the file, the record and the field.
    """
    files = _metadata_files(source)
    dims = tuple(dimensions)
    sigmas = _schedule_sigmas(backend, scheduler)
    if latent_shape is None and backend is not None:
        latent_shape = backend.latent_shape
    wanted = None if steps is None else {int(s) for s in steps}
    samples: list[LatentSample] = []
    group = 0
    for path in files:
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise LatentDataError(f"{path}: not valid JSON: {error}") from None
        if not isinstance(records, list):
            raise LatentDataError(f"{path}: must hold a JSON list of records, got {type(records).__name__}")
        base = path.parent
        for index, record in enumerate(records):
            prompt = record.get("prompt") if isinstance(record, dict) else None
            where = f"{path.name} record {index}" + (f" (prompt {prompt!r})" if prompt else "")
            samples.extend(
                _read_record(record, where, base, dims, sigmas, wanted, group)
            )
            group += 1
    if not samples:
        raise LatentDataError(f"no samples in {', '.join(str(f) for f in files)}")
    return LatentDataset(samples, dims, tuple(latent_shape) if latent_shape else None, cache)


def _metadata_files(source: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(source, str | Path):
        path = Path(source)
        if path.is_dir() and (path / METADATA_DIR).is_dir():
            path = path / METADATA_DIR
        if path.is_dir():
            files = sorted(p for p in path.glob("*.json") if p.name != MANIFEST_NAME)
            if not files:
                raise FileNotFoundError(f"no metadata *.json files in {path}")
            return files
        sources: list[Path] = [path]
    else:
        sources = [Path(p) for p in source]
    for p in sources:
        if not p.is_file():
            raise FileNotFoundError(f"metadata file not found: {p}")
    return sources


def _read_record(
    record: Any,
    where: str,
    base: Path,
    dims: tuple[str, ...],
    sigmas: torch.Tensor | None,
    wanted: set[int] | None,
    group: int,
) -> list[LatentSample]:
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
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
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
    out = []
    for key in sorted(paths, key=lambda k: (len(k), k)):
        try:
            step = parse_step_key(key)
        except ValueError as error:
            raise LatentDataError(f"{where}: latent_tensor_path: {error}") from None
        if wanted is not None and step not in wanted:
            continue
        rel = paths[key]
        if not isinstance(rel, str) or not rel:
            raise LatentDataError(f"{where}: latent_tensor_path[{key!r}] must be a path, got {rel!r}")
        latent_path = (base / rel).resolve()
        if not latent_path.is_file():
            raise LatentDataError(f"{where}: latent_tensor_path[{key!r}] file not found: {latent_path}")
        sim = sims[key]
        if isinstance(sim, bool) or not isinstance(sim, int | float) or not -1e-6 <= sim <= 1.0 + 1e-6:
            raise LatentDataError(f"{where}: latent_z0_similarity[{key!r}] must lie in [0, 1], got {sim!r}")
        sim = min(max(float(sim), 0.0), 1.0)  # rounding of (1 + cos) / 2
        x0_path = None
        if key in x0_paths:
            x0_path = (base / str(x0_paths[key])).resolve()
            if not x0_path.is_file():
                raise LatentDataError(f"{where}: x0_tensor_path[{key!r}] file not found: {x0_path}")
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
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or not 0.0 <= value <= 1.0):
                raise LatentDataError(f"{where}: {name}[{key!r}] must lie in [0, 1], got {value!r}")
        out.append(
            LatentSample(
                record=where,
                prompt=prompt,
                step=step,
                latent_path=latent_path,
                x0_path=x0_path,
                sigma=float(sigma),
                x0_sigma=None if x0_sigma is None else float(x0_sigma),
                similarity=float(sim),
                reward=reward,
                group=group,
            )
        )
    return out
