"""Thumbnails of the candidates a search decoded, so that its candidates can be looked at.

A search whose reward reads video decodes every candidate it scores (best-of-N with a
video verifier, EvoSearch's generations, beam search with a pixel reward). Those frames
exist anyway, so the :class:`~searchkit.context.SearchContext` keeps a small strip of each:
:data:`THUMB_FRAMES` evenly spaced frames, shrunk (never enlarged) so that their longer side
is at most :data:`THUMB_SIDE` pixels (``torch.nn.functional.interpolate``, bicubic with
antialiasing), as ``uint8``. This runs no model and no reward; it is a resize of frames
already in memory. At most :data:`MAX_CANDIDATES` strips are kept, the most recent ones
(older ones are dropped first and counted in :attr:`CandidateFrames.dropped`), so a search
that scores thousands of candidates keeps at most ``128 x 4 x 96 x 96 x 3`` bytes (14 MB).
A search whose reward reads latents decodes no candidate and keeps none.

Each strip is tied to its scoring event (``events``: its index in ``trace.scored``;
``rows``: its row in that event), so its score is the trace's own
(:meth:`CandidateFrames.scores`), never a copy. :func:`searchkit.show.candidate_sheet`
draws them; :func:`searchkit.video_io.save_result` writes them as ``candidates.npz``.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from searchkit.errors import InputError

if TYPE_CHECKING:
    from searchkit.result import Trace

#: Frames kept per candidate (evenly spaced over the video; repeated for shorter videos).
THUMB_FRAMES = 4
#: Longest side of a kept frame, in pixels (smaller frames are kept at their size).
THUMB_SIDE = 96
#: Candidates kept per search; the oldest are dropped first beyond it.
MAX_CANDIDATES = 128

_FIELDS = ("events", "rows", "ids", "steps", "frame_index", "frames")


@attrs.frozen(eq=False)
class CandidateFrames:
    """Thumbnail strips of ``m`` decoded candidates, in the order they were scored.

    ``events[i]`` is the index in ``trace.scored`` of the scoring event that saw candidate
    ``i`` and ``rows[i]`` its row there; ``ids`` and ``steps`` are its particle id and step
    (``[m]``, copies of the trace's for reading); ``frame_index`` ``[m, k]`` the video frames
    kept; ``frames`` ``[m, k, h, w, 3]`` ``uint8``. ``dropped`` counts older strips left
    out to keep the memory bound.
    """

    events: torch.Tensor
    rows: torch.Tensor
    ids: torch.Tensor
    steps: torch.Tensor
    frame_index: torch.Tensor
    frames: torch.Tensor
    dropped: int = 0

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def scores(self, trace: Trace) -> torch.Tensor:
        """Each candidate's aggregate score ``[m]``, read from the scoring events of ``trace``."""
        totals = []
        for event, row in zip(self.events.tolist(), self.rows.tolist(), strict=True):
            if not 0 <= event < len(trace):
                raise InputError(
                    f"candidate frames name scoring event {event}, but the trace has "
                    f"{len(trace)} events"
                )
            totals.append(float(trace[event].total[row]))
        return torch.tensor(totals, dtype=torch.float32)

    def save(self, path: str | Path) -> Path:
        """Write the strips as an ``.npz`` (one array per field, ``dropped`` a scalar)."""
        from searchkit.files import atomic_write

        arrays = {name: getattr(self, name).numpy() for name in _FIELDS}
        arrays["dropped"] = np.array(self.dropped)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object: numpy adds no suffix to it
                np.savez_compressed(f, **arrays)

        return atomic_write(path, write)

    @classmethod
    def load(cls, path: str | Path) -> CandidateFrames:
        """The strips :meth:`save` wrote."""
        with np.load(Path(path)) as data:
            missing = [name for name in (*_FIELDS, "dropped") if name not in data]
            if missing:
                raise InputError(f"{path} holds no candidate frames (missing {missing})")
            fields: dict[str, Any] = {name: torch.from_numpy(data[name]) for name in _FIELDS}
            return cls(**fields, dropped=int(data["dropped"]))


def thumbnails(video: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Strips ``[n, k, h, w, 3]`` ``uint8`` of videos ``[n, F, H, W, 3]`` in ``[0, 1]``.

    ``k = THUMB_FRAMES`` evenly spaced frames; ``(h, w)`` is ``size`` when given, else the
    frame size shrunk so that the longer side is at most ``THUMB_SIDE``.
    """
    with torch.no_grad():
        video = video.detach()
        n, frames, height, width = video.shape[:4]
        index = frame_picks(frames)
        picked = video[:, index].float()  # [n, k, H, W, 3]
        if size is None:
            scale = min(1.0, THUMB_SIDE / max(height, width))
            size = (max(1, round(height * scale)), max(1, round(width * scale)))
        if tuple(size) != (height, width):
            planes = picked.reshape(-1, height, width, 3).permute(0, 3, 1, 2)
            planes = F.interpolate(planes, size=size, mode="bicubic", antialias=True)
            picked = planes.permute(0, 2, 3, 1).reshape(n, len(index), *size, 3)
        return (picked.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu()


def frame_picks(frames: int) -> torch.Tensor:
    """``THUMB_FRAMES`` evenly spaced frame indices of a video of ``frames`` frames."""
    return torch.linspace(0, frames - 1, THUMB_FRAMES).round().long()


class CandidateKeeper:
    """The context's bounded store of strips (:data:`MAX_CANDIDATES`, oldest dropped first)."""

    def __init__(self, limit: int = MAX_CANDIDATES) -> None:
        self._strips: deque[tuple[int, int, int, int, torch.Tensor, torch.Tensor]] = deque(
            maxlen=limit
        )
        self._size: tuple[int, int] | None = None
        self._seen = 0

    def keep(self, event: int, ids: torch.Tensor, step: int, video: torch.Tensor) -> None:
        """Keep strips of the decoded ``video`` ``[n, F, H, W, 3]`` of particles ``ids``
        scored as event ``event`` at ``step``."""
        strips = thumbnails(video, self._size)
        self._size = tuple(strips.shape[2:4])
        index = frame_picks(int(video.shape[1]))
        for row, (pid, strip) in enumerate(zip(ids.tolist(), strips, strict=True)):
            self._strips.append((event, row, int(pid), step, index, strip))
        self._seen += len(strips)

    def snapshot(self) -> CandidateFrames | None:
        """The strips kept so far; ``None`` when no candidate was decoded."""
        if not self._strips:
            return None
        events, rows, ids, steps, index, strips = zip(*self._strips, strict=True)
        as_long = lambda values: torch.tensor(values, dtype=torch.long)  # noqa: E731
        return CandidateFrames(
            events=as_long(events),
            rows=as_long(rows),
            ids=as_long(ids),
            steps=as_long(steps),
            frame_index=torch.stack(index),
            frames=torch.stack(strips),
            dropped=self._seen - len(self._strips),
        )
