"""``searchkit bench --save-videos``: every output of a sweep in VBench-2.0's layout.

VBench-2.0 grades one folder of videos per model and dimension (:mod:`searchkit.bench.vbench`
gives its exact file names). A sweep compares several configurations, so its videos go to
one folder per configuration, then the dimension folders VBench-2.0 reads::

    {root}/{configuration}/{dimension}/{prompt_en[:180]}-{index}.mp4

* ``configuration`` is the entry's label, or ``{label}-{budget}nfe`` for an entry matched to
  a budget (one curve point, one model to VBench-2.0);
* ``index`` is the position of the run's seed in the sweep's seeds (seeds ``0 .. n-1``:
  index = seed), so video ``i`` of every prompt and configuration comes from the same seed;
* VBench-2.0 looks for 3 videos per prompt (20 when the prompt's first dimension is
  Diversity): only those indices are saved; a run with a later seed keeps its row but no
  video. ``"seeds": "vbench"`` (``--seeds vbench``) runs exactly that many seeds per prompt;
  with a count of seeds, fewer seeds than VBench-2.0's count leave gaps, reported at the end;
* a prompt goes into each of its dimension folders (a copy per folder, as VBench-2.0 looks it
  up once per dimension), or only into the ``dimension`` the sweep filters its prompts file on.

Nothing but finished videos is written into a dimension folder (:func:`~searchkit.bench.
vbench.save_vbench_video` encodes in ``{configuration}/.searchkit/`` and renames into place).
A video is saved before its run's row is written, so a killed sweep never leaves a row
without its video; ``--resume`` runs again any finished run whose video is missing (the
same seed gives the same video) and never writes a row twice.

Before any compute, :meth:`SweepVideos.prepare` refuses prompts that VBench-2.0 could not
grade (no dimension, an unknown one, a name no file system stores), a label that is not a
folder name, and a configuration folder that holds videos of another configuration (its
``.searchkit/run.json`` differs in anything but the seeds; seeds may be added). Videos made
from rewritten prompts (``prompt_aug``) are another configuration than those of the
originals, though named alike.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import torch

from searchkit.bench.config import SweepConfig
from searchkit.bench.plan import Run
from searchkit.bench.vbench import (
    DIMENSIONS,
    STATE_DIR,
    LayoutReport,
    VBenchRecord,
    VideoSlot,
    check_layout,
    is_complete,
    plan_videos,
    save_vbench_video,
    video_file_name,
)
from searchkit.errors import ConfigError, OutputFolderError
from searchkit.files import atomic_write_json
from searchkit.validation import MAX_FPS

#: The default folder of ``--save-videos``, inside the sweep's output folder.
VIDEOS_DIR = "videos"


def check_sweep_fps(fps: object) -> int:
    """The frame rate of a sweep's videos: an integer in ``[1, MAX_FPS]``, else a ConfigError."""
    if isinstance(fps, bool) or not isinstance(fps, int) or not 1 <= fps <= MAX_FPS:
        raise ConfigError(f"fps must be an integer in [1, {MAX_FPS}], got {fps!r}")
    return fps


def configuration_folder(label: str, budget_nfe: int | None) -> str:
    """The folder of one configuration: its label, with ``-{budget}nfe`` at a budget."""
    return label if budget_nfe is None else f"{label}-{budget_nfe}nfe"


def _check_folder_name(name: str) -> None:
    if not name or "/" in name or "\0" in name or name.startswith(".") or name in DIMENSIONS:
        raise ConfigError(
            f"label {name!r} cannot name a video folder (no '/', no leading '.', not a "
            "VBench-2.0 dimension); give the entry another 'label'"
        )
    if len(name.encode("utf-8")) > 255:
        raise ConfigError(f"label {name!r} is longer than 255 bytes, too long for a folder name")


def _records(config: SweepConfig) -> tuple[VBenchRecord, ...]:
    """The sweep's prompts as VBench-2.0 records, checked (error names the prompt)."""
    records = []
    for i, prompt in enumerate(config.prompts):
        where = f"save_videos: prompt {i} ({prompt.text[:60]!r})"
        if not prompt.dimensions:
            raise ConfigError(
                f"{where} has no VBench-2.0 dimension; take the prompts from a VBench-2.0 "
                "prompts_file (records with prompt_en and dimension)"
            )
        unknown = [d for d in prompt.dimensions if d not in DIMENSIONS]
        if unknown:
            raise ConfigError(
                f"{where}: unknown dimension {unknown[0]!r}; VBench-2.0 has {', '.join(DIMENSIONS)}"
            )
        try:
            video_file_name(prompt.text, 0)
        except ValueError as error:
            raise ConfigError(f"{where}: {error}") from None
        records.append(VBenchRecord(prompt.text, prompt.dimensions))
    return tuple(records)


def _claim(folder: Path, description: dict[str, Any], force: bool) -> None:
    """Record what fills ``folder``; refuse another configuration (seeds may grow or shrink)."""
    path = folder / STATE_DIR / "run.json"
    description = json.loads(json.dumps(description))
    if path.is_file() and not force:
        previous = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(
            k
            for k in previous.keys() | description.keys()
            if k != "seeds" and previous.get(k) != description.get(k)
        )
        old, new = previous.get("seeds", []), description["seeds"]
        if old[: len(new)] != new[: len(old)]:
            changed.append("seeds (index i must keep its seed)")
        if changed:
            raise OutputFolderError(
                f"video folder {str(folder)!r} holds videos of another configuration (differs "
                f"in {', '.join(changed)}); use another save_videos folder, or force=True"
            )
        if len(old) > len(new):
            description["seeds"] = old
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, description)


@attrs.frozen
class SweepVideos:
    """Where each run of a sweep saves its video, and what VBench-2.0 will look for."""

    root: Path
    fps: int
    #: The slots VBench-2.0 reads in every configuration folder.
    plan: tuple[VideoSlot, ...]
    #: ``(prompt, index)`` to that video's slots (one per dimension folder).
    slots: dict[tuple[str, int], tuple[VideoSlot, ...]]
    seeds: tuple[int, ...]
    folders: tuple[str, ...]

    @classmethod
    def prepare(
        cls,
        config: SweepConfig,
        runs: Sequence[Run],
        root: str | os.PathLike,
        *,
        fps: int = 16,
        force: bool = False,
    ) -> SweepVideos:
        """Check the prompts, labels and folders, and claim the configuration folders.

        Raises :class:`ConfigError` or :class:`OutputFolderError` before any compute.
        """
        check_sweep_fps(fps)
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise OutputFolderError(f"save_videos folder {str(root)!r} is a file")
        dimension = (config.prompts_source or {}).get("dimension")
        plan = tuple(
            attrs.evolve(s, seed=config.seeds[s.index]) if s.index < len(config.seeds) else s
            for s in plan_videos(_records(config))
            if dimension is None or s.dimension == dimension
        )
        slots: dict[tuple[str, int], list[VideoSlot]] = {}
        for slot in plan:
            slots.setdefault((slot.prompt_en, slot.index), []).append(slot)
        described: dict[str, dict[str, Any]] = {}
        specs = {spec.label: spec for spec in config.strategies}
        # videos of rewritten prompts and of the originals share names: never one folder
        sent = any(run.sent_prompt is not None for run in runs)
        for run in runs:
            folder = configuration_folder(run.label, run.budget_nfe)
            if folder not in described:
                _check_folder_name(run.label)
                described[folder] = {
                    "label": run.label,
                    "strategy": run.strategy.name,
                    "config": run.strategy.config_dict(),
                    "budget_nfe": run.budget_nfe,
                    "backend": config.backend.to_dict(),
                    "num_steps": config.num_steps,
                    "reward": None if config.reward is None else config.reward.to_dict(),
                    **specs[run.label].overrides,
                    # only where rewrites are sent, so earlier folders keep their claims
                    **({"prompt_aug": True} if sent else {}),
                    "fps": fps,
                    "seeds": list(config.seeds),
                }
        for folder, description in described.items():
            _claim(root / folder, description, force)
        return cls(
            root,
            fps,
            plan,
            {key: tuple(value) for key, value in slots.items()},
            tuple(config.seeds),
            tuple(described),
        )

    def slots_of(self, run: Run) -> tuple[VideoSlot, ...]:
        """The video slots ``run`` fills (none when its seed's index is past VBench-2.0's count)."""
        return self.slots.get((run.prompt, self.seeds.index(run.seed)), ())

    def folder(self, run: Run) -> Path:
        return self.root / configuration_folder(run.label, run.budget_nfe)

    def missing(self, run: Run) -> bool:
        """Whether a video ``run`` should have saved is not there."""
        return any(not is_complete(slot.path(self.folder(run))) for slot in self.slots_of(run))

    def save(self, run: Run, video: torch.Tensor) -> None:
        """Write ``run``'s output into each of its slots (nothing when it has none)."""
        for slot in self.slots_of(run):
            save_vbench_video(video, slot, self.folder(run), fps=self.fps)

    def reports(self) -> dict[str, LayoutReport]:
        """Per configuration folder: the videos VBench-2.0 will miss, and stray files."""
        return {name: check_layout(self.plan, self.root / name) for name in self.folders}


def describe_reports(reports: dict[str, LayoutReport], limit: int = 5) -> str:
    """A few lines: per folder, videos present, missing and stray, with the first paths."""
    lines = []
    for report in reports.values():
        lines.append(report.describe(limit=limit if not report.ok else 0))
    gaps = [r for r in reports.values() if not r.ok]
    if gaps:
        lines.append(
            "VBench-2.0 stops at the first missing video of a dimension: run the missing seeds "
            "(--seeds vbench runs VBench-2.0's count per prompt) and remove the stray files"
        )
    return "\n".join(lines)
