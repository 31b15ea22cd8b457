"""VBench-2.0 output: its prompt file, the video folders its evaluation reads, and a check.

VBench-2.0 (Zheng et al., 2025, "VBench-2.0: Advancing Video Generation Benchmark Suite for
Intrinsic Faithfulness"; code in the ``VBench-2.0`` folder of github.com/Vchitect/VBench)
grades one folder of videos per dimension. Its standard mode (``evaluate.py``, run per
dimension on ``{videos}/{dimension}`` by ``evaluate.sh``) reads its prompt file
``vbench2/VBench2_full_info.json`` and, for each record whose ``dimension`` list holds the
evaluated dimension, looks up these exact names in the folder::

    f"{prompt_en[:180]}-{i}{ext}"    for i in range(20 if dimension[0] == "Diversity" else 3)

where ``ext`` is the suffix of the *first* entry ``os.listdir`` returns. One missing name stops
the run, and any stray entry may come first and change ``ext`` for every lookup. Hence:

* one folder per dimension, named as the dimension;
* the name is the original ``prompt_en`` cut at 180 characters (Python slicing, so code
  points), nothing else changed (no stripping, no escaping), then ``-{index}.mp4``;
* 3 videos per prompt, 20 when the record's *first* dimension is ``Diversity`` (the count
  follows the record, as in the reference, in every folder the record belongs to);
* the frame rate is the model's own (VBench-2.0: "the fps depends on your model"; its
  dimensions read the rate from each file): 16 for Wan2.1;
* the dimension folders hold nothing but finished videos: :func:`save_vbench_video` writes in
  a staging folder, ``{root}/.searchkit/``, and renames the file into place.

The prompt file is a JSON list of records ``{"prompt_en": str, "dimension": [str, ...]}``, the
format of ``VBench2_full_info.json`` (where ``dimension`` is a list; the ``prompts/meta_info``
files of VBench-2.0 give a bare string, also accepted). Other keys (``auxiliary_info``) are
ignored. VBench-2.0 ships augmented prompts as separate text files (``prompts/prompt_aug``)
and asks that videos still be named by the original prompt; here a record may carry its
augmented prompt as ``"prompt_aug"`` (our extension; :mod:`searchkit.bench.augmented` attaches
VBench-2.0's own from its text files): the model receives ``prompt_aug`` (unless
``augmented=False``) and the file is named from ``prompt_en``.

Refused with an error naming the file and record, before any compute: a dimension outside
VBench-2.0's eighteen, a name containing ``/`` or NUL (VBench-2.0 does no escaping, so its
lookup in one folder could never match such a name), a name over 255 bytes (no filesystem
stores it). VBench-2.0's own prompts have none of these.

Seeds: VBench-2.0 asks for a different, reproducible seed for every video. The video
``{dimension}/{name}`` gets ``seed`` plus the first 7 bytes of the SHA-256 of that path, so its
seed does not depend on the file's order: resuming or extending a prompt file reseeds nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs
import torch

from searchkit.bench.augmented import AugmentedPrompts, attach_augmented
from searchkit.errors import FileFormatError, InputError, OutputFolderError
from searchkit.files import atomic_write, atomic_write_json, read_json

#: VBench-2.0's dimensions, in the order of its ``evaluate.sh``; each names a video folder.
DIMENSIONS: tuple[str, ...] = (
    "Human_Anatomy",
    "Human_Identity",
    "Human_Clothes",
    "Diversity",
    "Composition",
    "Dynamic_Spatial_Relationship",
    "Dynamic_Attribute",
    "Motion_Order_Understanding",
    "Human_Interaction",
    "Complex_Landscape",
    "Complex_Plot",
    "Camera_Motion",
    "Motion_Rationality",
    "Instance_Preservation",
    "Mechanics",
    "Thermotics",
    "Material",
    "Multi-View_Consistency",
)
#: Videos per prompt, and per prompt of a record whose first dimension is Diversity.
SAMPLES_PER_PROMPT: int = 3
DIVERSITY_SAMPLES: int = 20
#: Characters of ``prompt_en`` kept in a file name.
NAME_CHARS: int = 180
VIDEO_SUFFIX: str = ".mp4"
#: The frame rate written by default: Wan2.1's.
DEFAULT_FPS: int = 16
#: searchkit's own folder inside the output root (staging, run description); never a video folder.
STATE_DIR: str = ".searchkit"


@attrs.frozen
class VBenchRecord:
    """One record of a VBench-2.0 prompt file."""

    prompt_en: str
    dimensions: tuple[str, ...]
    prompt_aug: str | None = None


@attrs.frozen
class VideoSlot:
    """One video a run must produce: where it goes, what the model is asked, with which seed."""

    dimension: str
    file_name: str
    index: int
    prompt: str
    prompt_en: str
    seed: int

    def path(self, root: str | os.PathLike) -> Path:
        return Path(root) / self.dimension / self.file_name


def video_file_name(prompt_en: str, index: int) -> str:
    """VBench-2.0's name for video ``index`` of ``prompt_en``: ``prompt_en[:180]-{index}.mp4``."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"index must be a non-negative integer, got {index!r}")
    name = f"{prompt_en[:NAME_CHARS]}-{index}{VIDEO_SUFFIX}"
    if "/" in name or "\0" in name:
        raise ValueError(
            f"prompt_en {prompt_en[:NAME_CHARS]!r} holds '/' or NUL in its first {NAME_CHARS} "
            "characters, which no file name can hold; VBench-2.0 could never find its videos"
        )
    if len(name.encode("utf-8")) > 255:
        raise ValueError(f"file name {name!r} is longer than 255 bytes")
    return name


def samples_per_prompt(dimensions: Sequence[str]) -> int:
    """Videos per prompt of a record: 20 if its first dimension is Diversity, else 3."""
    return DIVERSITY_SAMPLES if dimensions and dimensions[0] == "Diversity" else SAMPLES_PER_PROMPT


def load_vbench_prompts(
    path: str | os.PathLike, augmented: AugmentedPrompts | None = None
) -> tuple[VBenchRecord, ...]:
    """The records of a VBench-2.0 prompt file, validated (see the module docstring).

    ``augmented`` gives every record its ``prompt_aug`` from VBench-2.0's text files
    (:mod:`searchkit.bench.augmented`).
    """
    path = Path(path)
    records = read_json(path, "prompts file")
    if augmented is not None:
        records = attach_augmented(records, augmented, f"prompts file {str(path)!r}")
    if not isinstance(records, list) or not records:
        raise FileFormatError(
            f"prompts file {str(path)!r} must hold a non-empty JSON list of records"
        )
    return tuple(
        _record(record, f"prompts file {str(path)!r}, record {i}")
        for i, record in enumerate(records)
    )


def _record(record: object, where: str) -> VBenchRecord:
    if not isinstance(record, dict):
        raise FileFormatError(f"{where}: must be an object with 'prompt_en', got {record!r}")
    text = record.get("prompt_en")
    if not isinstance(text, str) or not text.strip():
        raise FileFormatError(f"{where}: lacks a non-empty string 'prompt_en' (got {text!r})")
    dims = record.get("dimension")
    dims = [dims] if isinstance(dims, str) else dims
    if not isinstance(dims, list) or not dims or not all(isinstance(d, str) for d in dims):
        raise FileFormatError(
            f"{where}: 'dimension' must be a non-empty list of strings, got {dims!r}"
        )
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        raise FileFormatError(
            f"{where}: unknown dimension {unknown[0]!r}; VBench-2.0 has {', '.join(DIMENSIONS)}"
        )
    aug = record.get("prompt_aug")
    if aug is not None and (not isinstance(aug, str) or not aug.strip()):
        raise FileFormatError(f"{where}: 'prompt_aug' must be a non-empty string, got {aug!r}")
    try:
        video_file_name(text, 0)
    except ValueError as error:
        raise FileFormatError(f"{where}: {error}") from None
    return VBenchRecord(text, tuple(dims), aug)


def slot_seed(seed: int, dimension: str, file_name: str) -> int:
    """The seed of one video: ``seed`` plus 7 bytes of SHA-256 of ``{dimension}/{file_name}``."""
    digest = hashlib.sha256(f"{dimension}/{file_name}".encode()).digest()
    return seed + int.from_bytes(digest[:7], "big")


def plan_videos(
    records: Iterable[VBenchRecord], seed: int = 0, augmented: bool = True
) -> tuple[VideoSlot, ...]:
    """Every video a run over ``records`` must produce, in file order.

    A record goes into each of its dimension folders with :func:`samples_per_prompt` videos.
    Two records that give the same name in the same folder share its videos (VBench-2.0 looks
    them up once per record, finding the same files); the first record sets the prompt sent.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    slots: dict[tuple[str, str], VideoSlot] = {}
    for record in records:
        prompt = record.prompt_aug if augmented and record.prompt_aug else record.prompt_en
        for dimension in record.dimensions:
            for index in range(samples_per_prompt(record.dimensions)):
                name = video_file_name(record.prompt_en, index)
                slots.setdefault(
                    (dimension, name),
                    VideoSlot(
                        dimension,
                        name,
                        index,
                        prompt,
                        record.prompt_en,
                        slot_seed(seed, dimension, name),
                    ),
                )
    return tuple(slots.values())


def is_complete(path: str | os.PathLike) -> bool:
    """Whether a finished video is at ``path`` (a non-empty regular file)."""
    path = Path(path)
    return path.is_file() and path.stat().st_size > 0


def save_vbench_video(
    video: torch.Tensor, slot: VideoSlot, root: str | os.PathLike, fps: int = DEFAULT_FPS
) -> Path:
    """Write ``video`` (frames ``[F, H, W, 3]`` in ``[0, 1]``) as ``slot``'s mp4 under ``root``.

    The mp4 is encoded in ``{root}/.searchkit/`` and renamed into its dimension folder, so that
    folder never holds a partial file, nor any file but the finished video.
    """
    from searchkit.video_io import write_video

    if video is None:
        raise InputError(
            f"no video to save for {slot.dimension}/{slot.file_name}: the result has none"
        )
    if isinstance(fps, bool) or not isinstance(fps, int) or fps <= 0:
        raise InputError(f"fps must be a positive integer, got {fps!r}")
    path = slot.path(root)
    staging = Path(root) / STATE_DIR / "partial"
    staging.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: write_video(video, tmp, fps=fps), tmp_dir=staging)


@attrs.frozen
class LayoutReport:
    """What stands between a video folder and a VBench-2.0 run: missing videos and strays."""

    root: Path
    expected: int
    missing: tuple[Path, ...]
    stray: tuple[Path, ...]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.stray

    def describe(self, limit: int | None = None) -> str:
        """A readable report: one line of counts, then the missing and stray paths (``limit`` of each)."""
        lines = [
            f"{self.root}: {self.expected - len(self.missing)}/{self.expected} videos, "
            f"{len(self.missing)} missing, {len(self.stray)} stray"
        ]
        for label, paths in (
            ("missing", self.missing),
            ("stray (remove it before running VBench-2.0)", self.stray),
        ):
            lines += [f"{label}: {p}" for p in paths[:limit]]
            if limit is not None and len(paths) > limit:
                lines.append(f"... and {len(paths) - limit} more {label.split()[0]}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "root": str(self.root),
            "expected": self.expected,
            "missing": [str(p) for p in self.missing],
            "stray": [str(p) for p in self.stray],
        }


def check_layout(plan: Sequence[VideoSlot], root: str | os.PathLike) -> LayoutReport:
    """Every planned video that is not finished, and every other entry in the planned folders.

    Only the dimension folders of the plan are read; ``root`` itself may hold other things
    (VBench-2.0 is pointed at the dimension folders).
    """
    root = Path(root)
    expected: dict[str, set[str]] = {}
    for slot in plan:
        expected.setdefault(slot.dimension, set()).add(slot.file_name)
    missing = tuple(slot.path(root) for slot in plan if not is_complete(slot.path(root)))
    stray = []
    for dimension, names in expected.items():
        folder = root / dimension
        if folder.is_dir():
            stray += [folder / n for n in sorted(os.listdir(folder)) if n not in names]
    return LayoutReport(root, len(plan), missing, tuple(stray))


def claim_output(root: str | os.PathLike, description: dict) -> None:
    """Record which run fills ``root``; refuse a folder filled by a run described otherwise.

    A resumed run must be the same run: videos of two strategies in one folder would be graded
    as one model. The description lives in ``{root}/.searchkit/run.json``.
    """
    path = Path(root) / STATE_DIR / "run.json"
    description = json.loads(json.dumps(description))
    if path.is_file():
        previous = read_json(path, "run description")
        if previous != description:
            changed = sorted(
                k
                for k in previous.keys() | description.keys()
                if previous.get(k) != description.get(k)
            )
            raise OutputFolderError(
                f"output folder {str(root)!r} holds videos of another run (differs in "
                f"{', '.join(changed)}); use a new folder or the same settings"
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, description)
