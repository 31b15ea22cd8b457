"""Reading a latent reward dataset (layout: :mod:`.schema`), with every check before training.

:func:`read_latent_dataset` parses every metadata file into :class:`LatentSample` s, one per
(record, stored step), checking each record's fields and that every referenced tensor file
exists inside the dataset folder; :class:`LatentDataset` loads the tensors lazily and
checks each on load (a tensor, the expected shape, finite). :meth:`LatentDataset.check`
loads every tensor once, so that training can refuse a bad dataset before its first step.
Every error is a :class:`~searchkit.errors.LatentDataError` naming the file, the record and
the field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch

from searchkit.backend import Backend
from searchkit.errors import LatentDataError
from searchkit.rewards.latent.records import metadata_files, read_record
from searchkit.rewards.latent.schema import step_key
from searchkit.solver import noise_levels


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
        """The samples of ``prompts`` (sharing this dataset's tensor cache)."""
        keep = set(prompts)
        out = LatentDataset(
            [s for s in self.samples if s.prompt in keep],
            self.dimensions,
            self.latent_shape,
            self.cache,
        )
        out._cache = self._cache
        return out

    def load(self, sample: LatentSample, kind: str = "latent") -> torch.Tensor:
        """The ``"latent"`` or ``"x0"`` tensor ``[C, F, H, W]`` of ``sample``, checked."""
        path = sample.latent_path if kind == "latent" else sample.x0_path
        if path is None:
            raise LatentDataError(
                f"{sample.record}: no {kind} tensor for step {step_key(sample.step)}"
            )
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        what = f"{sample.record}: {kind} {step_key(sample.step)!r} at {path}"
        if not path.is_file():
            raise LatentDataError(f"{what}: file not found")
        try:
            tensor = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any unpickling failure is a bad file
            raise LatentDataError(
                f"{what}: cannot load ({type(error).__name__}: {error})"
            ) from None
        if not isinstance(tensor, torch.Tensor):
            raise LatentDataError(f"{what}: holds a {type(tensor).__name__}, not a tensor")
        if tensor.dim() == 5 and tensor.shape[0] == 1:
            tensor = tensor[0]  # a saved batch of one
        tensor = tensor.float()
        if self.latent_shape is None:
            if tensor.dim() != 4:
                raise LatentDataError(
                    f"{what}: has shape {list(tensor.shape)}, expected [C, F, H, W]"
                )
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

    def check(self, latent_shape: Sequence[int] | None = None) -> None:
        """Load every tensor once; raises :class:`LatentDataError` naming the first bad one.

        ``latent_shape`` (e.g. the backend's) must agree with the shape the dataset expects.
        """
        if latent_shape is not None:
            wanted = tuple(int(s) for s in latent_shape)
            if self.latent_shape is not None and self.latent_shape != wanted:
                raise LatentDataError(
                    f"the dataset's latents have shape {list(self.latent_shape)}, "
                    f"expected {list(wanted)}"
                )
            self.latent_shape = wanted
        for i in range(len(self)):
            self[i]


def read_latent_dataset(
    source: str | Path | Sequence[str | Path],
    *,
    dimensions: Sequence[str] = ("VQ", "MQ", "TA"),
    backend: Backend | None = None,
    scheduler: Any | None = None,
    latent_shape: Sequence[int] | None = None,
    steps: Sequence[int] | None = None,
    root: str | Path | None = None,
    cache: bool = True,
) -> LatentDataset:
    """Read a dataset in the paper's metadata schema.

    ``source`` is the metadata folder (every ``*.json`` in it), a collection folder (its
    ``metadata/``) or a list of metadata files. Records need ``prompt``,
    ``output_reward``, ``latent_tensor_path`` and ``latent_z0_similarity``; extra fields
    are optional. Noise levels come from each record's ``latent_sigma``, else from the
    schedule of ``scheduler`` or ``backend`` (``sigmas[j + 1]`` for ``t{j}``).
    ``latent_shape`` (default: the backend's, else the first latent's) is checked on load.
    Every referenced file must exist inside ``root`` (default: the parent of each metadata
    file's folder, the dataset folder of the paper's layout); a metadata file without
    records is an error. Errors name the file, the record and the field.
    """
    files = metadata_files(source)
    dims = tuple(dimensions)
    if scheduler is None and backend is not None:
        scheduler = backend.make_scheduler()
    sigmas = None if scheduler is None else noise_levels(scheduler)
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
            raise LatentDataError(
                f"{path}: must hold a JSON list of records, got {type(records).__name__}"
            )
        if not records:
            raise LatentDataError(f"{path}: holds no records")
        base = path.parent
        inside = Path(os.path.abspath(root if root is not None else base.parent))
        for index, record in enumerate(records):
            prompt = record.get("prompt") if isinstance(record, dict) else None
            where = f"{path.name} record {index}" + (f" (prompt {prompt!r})" if prompt else "")
            for fields in read_record(record, where, base, inside, dims, sigmas, wanted):
                samples.append(LatentSample(**fields, group=group))
            group += 1
    if not samples:
        raise LatentDataError(f"no samples in {', '.join(str(f) for f in files)}")
    return LatentDataset(samples, dims, tuple(latent_shape) if latent_shape else None, cache)
