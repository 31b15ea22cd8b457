"""Seeing one search: the figure of its trace, a contact sheet of frames, a notebook view.

* :func:`trace_figure`: particles along the denoising steps (one row each, ordered by
  lineage), every scoring event a dot coloured by the particle's aggregate score (the
  colour scale spans the events before the last step, where there are any, so that a far
  final score does not squash it), grey paths between a particle's appearances, blue
  branches from parent to child at each resampling, red crosses where a decision pruned a
  particle, and a star beside the output's last dot with its score written out. The legend
  lists only what is drawn.
  It draws :func:`searchkit.lineage.trace_lineage` of the trace and nothing else.
* :func:`contact_sheet`: frames of one or more videos in a grid (rows: videos, columns:
  evenly spaced frames).
* :func:`candidate_sheet`: the thumbnails a search kept of the candidates it decoded (a
  video reward; :mod:`searchkit.candidates`), one row per candidate with its particle id,
  step and score (the trace's), the output's row marked.
* :func:`result_html`: a short summary and the video as an inline animated GIF, the HTML a
  notebook shows for a :class:`~searchkit.result.SearchResult`.
* :func:`show_result_file`: all of it for a ``result.json`` written by ``searchkit
  generate`` (the command ``searchkit show``), with the candidates from ``candidates.npz``
  beside it.

Figures are drawn on matplotlib's Agg canvas (no display, no pyplot state).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from searchkit.candidates import CandidateFrames
from searchkit.errors import InputError, MissingFileError
from searchkit.files import check_output_folder, read_json
from searchkit.lineage import TraceLineage, trace_lineage
from searchkit.result import SearchResult, Trace
from searchkit.video_io import to_uint8

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Rows above which the figure stops labelling each particle.
_LABELLED_LANES = 40


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(fig)
    return fig


def trace_figure(
    result: SearchResult | Trace | Mapping[str, Any],
    path: str | Path | None = None,
    *,
    title: str | None = None,
    num_steps: int | None = None,
) -> Figure:
    """The figure of one search; written as a PNG to ``path`` when given.

    ``result`` is a :class:`SearchResult`, its :class:`Trace`, or a ``result.json`` payload
    (a dict with a ``trace``) or a trace dict. The title defaults to the strategy, prompt,
    seed, reward and NFE when the result carries them.
    """
    info: Mapping[str, Any] = {}
    if isinstance(result, SearchResult):
        info = {**result.to_dict(), "trace": result.trace}
        trace: Trace | Mapping[str, Any] = result.trace
    elif isinstance(result, Mapping) and "trace" in result:
        info, trace = result, result["trace"]
    else:
        trace = result  # a Trace or a trace dict; trace_lineage checks it
    lineage = trace_lineage(trace, num_steps)
    fig = draw_lineage(lineage, title=_title(info) if title is None else title)
    if path is not None:
        fig.savefig(Path(path))
    return fig


def draw_lineage(lineage: TraceLineage, *, title: str = "") -> Figure:
    """Draw a :class:`~searchkit.lineage.TraceLineage` (see :func:`trace_figure`)."""
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    rows = max(len(lineage.lanes), 1)
    fig = _new_figure(9.0, min(2.2 + 0.22 * rows, 14.0))
    ax = fig.subplots()
    lane = lineage.lanes

    def lines(kind: str) -> list[list[tuple[float, float]]]:
        return [
            [(s.start, lane[s.source]), (s.stop, lane[s.target])]
            for s in lineage.segments
            if s.kind == kind
        ]

    paths, branches = lines("path"), lines("branch")
    ax.add_collection(LineCollection(paths, colors="0.6", linewidths=1.0, zorder=1))
    ax.add_collection(LineCollection(branches, colors="tab:blue", linewidths=1.3, zorder=2))
    # the legend lists only what is drawn
    handles = [Line2D([], [], color="0.6", label="particle")] if paths else []
    if branches:
        handles.append(Line2D([], [], color="tab:blue", label="resampled / branched"))
    # markers after a particle's last dot (pruned, output) sit this far to its right
    offset = 0.012 * lineage.num_steps + 0.2
    if lineage.points:
        scores = np.array([p.score for p in lineage.points])
        steps = np.array([p.step for p in lineage.points])
        # the colours span the events before the last step where there are any: the output's
        # score (and the finished candidates') can lie far from the intermediate ones, and
        # would squash their colours; values outside are drawn in the end colours
        scale = scores[steps < lineage.num_steps] if (steps < lineage.num_steps).any() else scores
        low, high = float(scale.min()), float(scale.max())
        dots = ax.scatter(
            steps,
            [lane[p.id] for p in lineage.points],
            c=scores,
            cmap="viridis",
            vmin=low,
            vmax=high if high > low else low + 1e-9,
            s=28 if rows <= _LABELLED_LANES else 12,
            edgecolors="black",
            linewidths=0.3,
            zorder=3,
        )
        extend = {
            (False, False): "neither",
            (True, False): "min",
            (False, True): "max",
            (True, True): "both",
        }[(bool(scores.min() < low), bool(scores.max() > high))]
        label = "search reward (aggregate)"
        if scale.size < scores.size:
            label += "\nscaled on events before the last step"
        fig.colorbar(dots, ax=ax, label=label, pad=0.02, extend=extend)
    if lineage.pruned:
        ax.scatter(
            [step + offset for _, step in lineage.pruned],
            [lane[pid] for pid, _ in lineage.pruned],
            marker="x",
            color="tab:red",
            s=26,
            linewidths=1.4,
            zorder=4,
        )
        handles.append(
            Line2D([], [], color="tab:red", marker="x", linestyle="none", label="pruned")
        )
    if lineage.output is not None:
        pid, step = lineage.output
        # beside the output's last dot, not over it, with its score written out
        ax.scatter(
            [step + 2 * offset],
            [lane[pid]],
            marker="*",
            s=200,
            color="gold",
            edgecolors="black",
            zorder=5,
        )
        final = [p.score for p in lineage.points if p.id == pid and p.step == step]
        if final:
            ax.annotate(
                f"{final[-1]:.3f}",
                (step + 2 * offset, lane[pid]),
                xytext=(8, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
        handles.append(
            Line2D(
                [],
                [],
                color="gold",
                marker="*",
                markersize=12,
                markeredgecolor="black",
                linestyle="none",
                label=f"output (particle {pid}, its score written beside)",
            )
        )
    # room right of the last step for the output's star and its score
    ax.set_xlim(-0.5, lineage.num_steps + 2 * offset + 0.08 * (lineage.num_steps + 1) + 0.3)
    ax.set_ylim(rows - 0.4, -0.6)  # first lane on top
    ax.set_xlabel("denoising step (events scored after the step)")
    if rows <= _LABELLED_LANES:
        order = sorted(lane, key=lane.get)
        ax.set_yticks([lane[pid] for pid in order], [str(pid) for pid in order], fontsize=7)
        ax.set_ylabel("particle id\n(children below their parent)", fontsize="small")
    else:
        ax.set_yticks([])
        ax.set_ylabel(f"{rows} particles (children below their parent)")
    ax.grid(True, axis="x", alpha=0.3)
    fig.legend(
        handles=handles, fontsize="small", loc="lower center", ncol=len(handles), frameon=False
    )
    if title:
        ax.set_title(title, fontsize="medium")
    fig.tight_layout(rect=(0.0, 0.45 / fig.get_figheight(), 1.0, 1.0))
    return fig


def _title(info: Mapping[str, Any]) -> str:
    parts = []
    if info.get("strategy"):
        parts.append(str(info["strategy"]))
    if info.get("prompt"):
        prompt = str(info["prompt"])
        parts.append(repr(prompt if len(prompt) <= 60 else prompt[:57] + "..."))
    if info.get("seed") is not None:
        parts.append(f"seed {info['seed']}")
    if isinstance(info.get("reward"), int | float):
        parts.append(f"reward {info['reward']:.3f}")
    nfe = (info.get("cost") or {}).get("nfe") if isinstance(info.get("cost"), Mapping) else None
    if nfe is not None:
        parts.append(f"{nfe} NFE")
    return " · ".join(parts)


def contact_sheet(
    videos: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray],
    path: str | Path | None = None,
    *,
    labels: Sequence[str] | None = None,
    max_frames: int = 8,
    title: str = "",
) -> Figure:
    """Frames of ``videos`` in a grid: one row per video, ``max_frames`` evenly spaced columns.

    A video is ``[F, H, W, 3]`` (float in ``[0, 1]`` or ``uint8``); one video or a sequence
    of them (a ``[n, F, H, W, 3]`` tensor is ``n`` videos).
    """
    _check_max_frames(max_frames)
    items = _as_video_list(videos)
    if labels is not None and len(labels) != len(items):
        raise InputError(f"labels must name the {len(items)} videos, got {len(labels)}")
    columns = min(max_frames, max(v.shape[0] for v in items))
    height, width = items[0].shape[1:3]
    cell = 1.6
    fig = _new_figure(
        cell * columns * max(width / height, 0.5) + 0.8, cell * len(items) + (0.5 if title else 0.2)
    )
    axes = np.atleast_2d(fig.subplots(len(items), columns, squeeze=False))
    for row, video in enumerate(items):
        picks = np.unique(np.linspace(0, video.shape[0] - 1, columns).round().astype(int))
        for col in range(columns):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(picks):
                ax.imshow(video[picks[col]], interpolation="nearest")
                if row == 0:
                    ax.set_title(f"frame {picks[col]}", fontsize="small")
            else:
                ax.set_axis_off()
        if labels is not None:
            axes[row, 0].set_ylabel(labels[row], fontsize="small")
    if title:
        fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    if path is not None:
        fig.savefig(Path(path))
    return fig


def _check_max_frames(max_frames: Any) -> None:
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
        raise InputError(f"max_frames must be a positive integer, got {max_frames!r}")


def _as_video_list(videos: Any) -> list[np.ndarray]:
    if isinstance(videos, torch.Tensor | np.ndarray) and videos.ndim == 5:
        videos = list(videos)
    elif isinstance(videos, torch.Tensor | np.ndarray):
        videos = [videos]
    items = []
    for i, video in enumerate(videos):
        if isinstance(video, np.ndarray) and video.dtype == np.uint8:
            array = video
        else:
            array = to_uint8(torch.as_tensor(video))
        if array.ndim != 4 or array.shape[-1] != 3:
            raise InputError(f"video {i} must have shape [F, H, W, 3], got {list(array.shape)}")
        items.append(array)
    if not items:
        raise InputError("videos must hold at least one video")
    return items


def video_gif(video: torch.Tensor | np.ndarray, *, fps: int = 8, max_frames: int = 24) -> bytes:
    """An animated GIF of ``[F, H, W, 3]`` frames, at most ``max_frames`` of them (evenly
    spaced) and at most 256 pixels on a side (every k-th pixel), to keep notebooks small."""
    import imageio.v3 as iio

    frames = _as_video_list(video)[0]
    picks = np.unique(np.linspace(0, frames.shape[0] - 1, min(max_frames, frames.shape[0])))
    frames = frames[picks.round().astype(int)]
    stride = max(1, -(-max(frames.shape[1:3]) // 256))
    frames = np.ascontiguousarray(frames[:, ::stride, ::stride])
    return iio.imwrite("<bytes>", frames, extension=".gif", duration=1000 / fps, loop=0)


def result_html(result: SearchResult, *, with_video: bool = True) -> str:
    """A short HTML summary of ``result`` and its video as an inline GIF (when it has one).

    The summary gives the compute as counts (NFE, particle-steps, reward calls, decodes)
    and, where the backend and reward report them, FLOPs: the total and its split by part
    (``forward``, ``backward``, ``decode``, ``reward:<name>``), which is what makes a search
    that scores with a costly verifier comparable with one that does not.
    """
    cost = result.cost
    rows = [
        ("strategy", result.strategy or "-"),
        ("prompt", result.prompt),
        ("seed", "-" if result.seed is None else str(result.seed)),
        ("reward", f"{result.reward:.4f}"),
        (
            "scores",
            ", ".join(
                f"{d} {v:.3f}"
                for d, v in zip(result.dimensions, result.scores.tolist(), strict=True)
            ),
        ),
        (
            "compute",
            f"{cost.nfe} NFE, {cost.particle_steps} particle-steps, "
            f"{cost.reward_calls} reward calls, {cost.decodes} decodes",
        ),
        ("time", f"{cost.seconds.get('total', sum(cost.seconds.values())):.2f} s"),
        ("events", f"{len(result.trace)} scoring events"),
    ]
    flops = _flops_text(cost)
    if flops:
        rows.insert(6, ("FLOPs", flops))
    table = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
        f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    video = ""
    if with_video and result.video is not None and result.video.dim() == 4:
        try:
            encoded = base64.b64encode(video_gif(result.video)).decode("ascii")
        except (ImportError, ValueError, OSError):  # no GIF writer: the summary alone
            encoded = ""
        if encoded:
            video = (
                f"<img src='data:image/gif;base64,{encoded}' alt='output video' "
                "style='width:256px;image-rendering:pixelated;margin-left:1em'/>"
            )
    return (
        "<div style='display:flex;align-items:flex-start'>"
        f"<table><caption style='text-align:left'><b>SearchResult</b></caption>{table}</table>"
        f"{video}</div>"
    )


def _flops_text(cost: Any) -> str:
    """``"1.23e+15 (forward 1.1e+15, decode ...)"``: the total and its split where known;
    empty when neither is known. A part of unknown FLOPs reads ``?``."""
    parts = ", ".join(
        f"{part} {'?' if value is None else f'{value:.3g}'}"
        for part, value in cost.flops_split.items()
    )
    if cost.flops is None and not parts:
        return ""
    total = "unknown" if cost.flops is None else f"{cost.flops:.3g}"
    return f"{total} ({parts})" if parts else total


def read_video(path: str | Path) -> np.ndarray:
    """Frames ``[F, H, W, 3]`` (uint8) of an mp4 or of a folder of ``frame_*.png``."""
    import imageio.v3 as iio

    path = Path(path)
    if path.is_dir():
        frames = sorted(path.glob("frame_*.png"))
        if not frames:
            raise MissingFileError(f"no frame_*.png in {path}")
        return np.stack([iio.imread(f)[..., :3] for f in frames])
    if not path.is_file():
        raise MissingFileError(f"video not found: {path}")
    return np.asarray(iio.imread(path, plugin="FFMPEG"))[..., :3]


#: What ``show`` says where a result kept no candidate frames.
NO_CANDIDATES = (
    "no candidate frames: the search decoded no candidates to score them (its reward reads "
    "latents), so only the output's frames are drawn"
)


def show_result_file(
    path: str | Path, out: str | Path | None = None, *, max_frames: int = 8
) -> dict[str, str]:
    """Write ``trace.png``, ``frames.png`` where the result has a video, and
    ``candidates.png`` where it kept candidate frames (``candidates.npz``), for a
    ``result.json``; returns the files written, by name. ``out`` defaults to its folder.
    Everything is read and checked before the first file is written."""
    _check_max_frames(max_frames)
    path = Path(path)
    if path.is_dir():
        path = path / "result.json"
    if not path.is_file():
        raise MissingFileError(f"result file not found: {path}")
    payload = read_json(path, "result file")
    if not isinstance(payload, dict) or not isinstance(payload.get("trace"), dict):
        raise InputError(f"{path} holds no search trace (expected a result.json with 'trace')")
    names = payload.get("files") or {}
    frames = read_video(path.parent / names["video"]) if names.get("video") else None
    candidates = None
    if names.get("candidates"):
        candidates = CandidateFrames.load(path.parent / names["candidates"])
    out = check_output_folder(path.parent if out is None else out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"trace": str(out / "trace.png")}
    trace_figure(payload, files["trace"])
    if frames is not None:
        files["frames"] = str(out / "frames.png")
        contact_sheet(
            frames, files["frames"], max_frames=max_frames, title=f"output: {_title(payload)}"
        )
    if candidates is not None:
        files["candidates"] = str(out / "candidates.png")
        candidate_sheet(payload, files["candidates"], candidates=candidates)
    return files


def candidate_sheet(
    result: SearchResult | Mapping[str, Any],
    path: str | Path | None = None,
    *,
    candidates: CandidateFrames | None = None,
    max_rows: int = 24,
) -> Figure:
    """The kept frames of the candidates a search decoded, one row per candidate.

    Each row reads the candidate's particle id, the step it was scored after and its
    aggregate score, taken from the trace's scoring event (so it is the score the search
    acted on); the output's row is framed in gold. ``result`` is a :class:`SearchResult`
    (its ``candidate_frames``) or a ``result.json`` payload with ``candidates`` read from
    its ``candidates.npz``. At most ``max_rows`` rows are drawn: the latest candidates
    scored, and the output's row wherever it is. Raises :class:`InputError` when there are
    no candidate frames (a search whose reward reads latents decodes none).
    """
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise InputError(f"max_rows must be a positive integer, got {max_rows!r}")
    if isinstance(result, SearchResult):
        info: Mapping[str, Any] = result.to_dict()
        trace = result.trace
        candidates = result.candidate_frames if candidates is None else candidates
    elif isinstance(result, Mapping) and isinstance(result.get("trace"), Mapping):
        info, trace = result, Trace.from_dict(dict(result["trace"]))
    else:
        raise InputError(
            f"result must be a SearchResult or a result.json payload, got {type(result).__name__}"
        )
    if candidates is None or len(candidates) == 0:
        raise InputError(NO_CANDIDATES)
    scores = candidates.scores(trace).tolist()
    output_row = _output_row(candidates, trace)
    shown = list(range(max(0, len(candidates) - max_rows), len(candidates)))
    if output_row is not None and output_row not in shown:
        shown = sorted([output_row, *shown[1:]])
    frames = candidates.frames.numpy()
    _, k, height, width, _ = frames.shape
    gap = max(1, width // 24)
    strip_width = k * width + (k - 1) * gap
    row_height = 1.0
    label_width = 1.5
    fig = _new_figure(
        label_width + row_height * strip_width / height + 0.3, row_height * len(shown) + 0.9
    )
    axes = fig.subplots(len(shown), 1, squeeze=False)[:, 0]
    for ax, i in zip(axes, shown, strict=True):
        strip = np.full((height, strip_width, 3), 255, dtype=np.uint8)
        for col in range(k):
            strip[:, col * (width + gap) : col * (width + gap) + width] = frames[i, col]
        ax.imshow(strip, interpolation="nearest")
        if ax is axes[-1]:  # every row keeps the same frames: named once, under the last
            ax.set_xticks(
                [col * (width + gap) + width / 2 - 0.5 for col in range(k)],
                [f"frame {f}" for f in candidates.frame_index[i].tolist()],
                fontsize=7,
            )
            ax.tick_params(length=0, pad=2)
        else:
            ax.set_xticks([])
        ax.set_yticks([])
        label = f"id {int(candidates.ids[i])} · step {int(candidates.steps[i])}\n{scores[i]:.3f}"
        if i == output_row:
            label = f"output\n{label}"
            for spine in ax.spines.values():
                spine.set_edgecolor("goldenrod")
                spine.set_linewidth(3.0)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8, labelpad=6)
    dropped = len(candidates) - len(shown) + candidates.dropped
    heading = f"candidates: {len(candidates) + candidates.dropped} decoded"
    if dropped:
        heading += f", latest {len(shown)} shown"
    heading += " · score: the search reward's aggregate at the event"
    title = _title(info)
    fig.suptitle(f"{title}\n{heading}" if title else heading, fontsize="small")
    fig.tight_layout()
    if path is not None:
        fig.savefig(Path(path))
    return fig


def _output_row(candidates: CandidateFrames, trace: Trace) -> int | None:
    """The row of the output: the last kept strip of the output particle at the last step."""
    if trace.output is None:
        return None
    last = int(candidates.steps.max())
    rows = [
        i
        for i, (pid, step) in enumerate(
            zip(candidates.ids.tolist(), candidates.steps.tolist(), strict=True)
        )
        if pid == trace.output and step == last
    ]
    return rows[-1] if rows else None
