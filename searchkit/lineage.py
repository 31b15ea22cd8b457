"""The genealogy of one search as drawable data, read from its trace alone.

:func:`trace_lineage` turns a :class:`~searchkit.result.Trace` (or the ``trace`` object of a
``result.json``) into points, segments and end markers; :mod:`searchkit.show` draws exactly
these, so what the figure shows can be checked against the trace without looking at pixels.

The rules, walking the scoring events in the order the search made them:

* every scored particle is a **point** ``(id, step)`` carrying its aggregate score;
* a particle that appears again (scored later, or listed among the survivors of a later
  decision) is joined to its previous appearance by a **path** segment; a particle drawn
  from noise is joined to step 0;
* a particle that appears for the first time while its parent (``trace.parents``) has
  appeared is joined to the parent's latest appearance by a **branch** segment: a resampled
  duplicate, a beam's child, a mutation. A particle born at a decision (among its survivors
  but not scored there) appears at that decision's step, so its branch is a vertical tick;
* a particle whose last appearance is a decision that did not keep it is **pruned** there;
* the returned particle (``trace.output``) is carried to the last step and marked; files
  written before the output was recorded fall back to the last event's single survivor or
  single scored particle.

A particle that is not pruned and not returned simply ends at its last appearance (the
finished candidates of best-of-N that were not picked).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from searchkit.result import Trace


@attrs.frozen
class LineagePoint:
    """Particle ``id`` scored at ``step`` (``score``: its aggregate) in event ``event``."""

    id: int
    step: int
    score: float
    event: int


@attrs.frozen
class LineageSegment:
    """A line from ``(source, start)`` to ``(target, stop)``; ``kind`` is ``"path"`` or ``"branch"``."""

    kind: str
    source: int
    start: int
    target: int
    stop: int


@attrs.frozen
class TraceLineage:
    """Everything a figure of one search draws (see the module docstring for the rules).

    ``lanes`` maps every particle id to its row: roots in id order, each particle's
    children right after it (depth first), so branches stay short.
    """

    num_steps: int
    points: tuple[LineagePoint, ...]
    segments: tuple[LineageSegment, ...]
    pruned: tuple[tuple[int, int], ...]
    output: tuple[int, int] | None
    lanes: Mapping[int, int]

    def segments_from(self, step: int) -> list[LineageSegment]:
        """Segments that leave step ``step`` towards a later step (what a decision carried on)."""
        return [s for s in self.segments if s.start == step and s.stop > step]


def trace_lineage(trace: Trace | Mapping[str, Any], num_steps: int | None = None) -> TraceLineage:
    """The drawable lineage of ``trace`` (a :class:`Trace` or its :meth:`Trace.to_dict`).

    ``num_steps`` is the trajectory length; by default the furthest step the trace advanced
    to (or scored at).
    """
    if not isinstance(trace, Trace):
        if not isinstance(trace, Mapping) or "scored" not in trace:
            raise ValueError(
                "trace must be a searchkit Trace or its dict with a 'scored' list, "
                f"got {type(trace).__name__}"
            )
        trace = Trace.from_dict(trace)
    parents = list(trace.parents)
    furthest = max(
        [a.stop for a in trace.advances] + [r.step for r in trace.scored] + [0],
    )
    if num_steps is None:
        num_steps = furthest
    if not isinstance(num_steps, int) or num_steps < furthest:
        raise ValueError(
            f"num_steps must be an integer >= {furthest} (the trace reaches step {furthest}), "
            f"got {num_steps!r}"
        )

    last: dict[int, int] = {}  # id -> step of its latest appearance
    last_event: dict[int, int] = {}  # id -> event of its latest appearance
    segments: list[LineageSegment] = []
    points: list[LineagePoint] = []

    def appear(pid: int, step: int, event: int) -> None:
        if pid in last:
            if last[pid] != step:
                segments.append(LineageSegment("path", pid, last[pid], pid, step))
        else:
            parent = parents[pid] if 0 <= pid < len(parents) else -1
            if parent >= 0 and parent in last:
                segments.append(LineageSegment("branch", parent, last[parent], pid, step))
            elif step > 0:
                segments.append(LineageSegment("path", pid, 0, pid, step))
        last[pid], last_event[pid] = step, event

    kept_at: dict[int, set[int] | None] = {}
    for event, record in enumerate(trace.scored):
        ids = [int(i) for i in record.ids.tolist()]
        for pid, score in zip(ids, record.total.tolist(), strict=True):
            appear(pid, record.step, event)
            points.append(LineagePoint(pid, record.step, float(score), event))
        if record.survivors is not None:
            survivors = [int(i) for i in record.survivors.tolist()]
            for pid in survivors:
                if pid not in ids:
                    appear(pid, record.step, event)
            kept_at[event] = set(survivors)

    output_id = trace.output if trace.output is not None else _inferred_output(trace)
    output = None
    if output_id is not None:
        appear(output_id, num_steps, len(trace.scored))
        output = (output_id, num_steps)
    pruned = tuple(
        (pid, last[pid])
        for pid in sorted(last)
        if pid != output_id
        and kept_at.get(last_event[pid]) is not None
        and pid not in kept_at[last_event[pid]]
    )
    return TraceLineage(
        num_steps=num_steps,
        points=tuple(points),
        segments=tuple(segments),
        pruned=pruned,
        output=output,
        lanes=_lanes(sorted(last), parents),
    )


def _inferred_output(trace: Trace) -> int | None:
    """The returned particle of a trace written before ``output`` was recorded, if certain."""
    if not trace.scored:
        return None
    record = trace.scored[-1]
    if record.survivors is not None and record.survivors.numel() == 1:
        return int(record.survivors[0])
    if record.ids.numel() == 1:
        return int(record.ids[0])
    return None


def _lanes(ids: list[int], parents: list[int]) -> dict[int, int]:
    """Rows in depth-first order of the genealogy: each particle's children right after it."""
    present = set(ids)
    children: dict[int, list[int]] = {}
    roots = []
    for pid in ids:
        parent = parents[pid] if 0 <= pid < len(parents) else -1
        if parent in present:
            children.setdefault(parent, []).append(pid)
        else:
            roots.append(pid)
    lanes: dict[int, int] = {}
    stack = list(reversed(roots))
    while stack:
        pid = stack.pop()
        lanes[pid] = len(lanes)
        stack.extend(reversed(children.get(pid, [])))
    return lanes
