"""Writing search outputs: video (mp4 through imageio's ffmpeg plugin, or PNG frames),
the result as JSON, and the latent as safetensors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from searchkit.errors import InputError, InputTypeError
from searchkit.files import atomic_write, atomic_write_json
from searchkit.result import SearchResult
from searchkit.validation import MAX_FPS

VIDEO_FORMATS: tuple[str, ...] = ("mp4", "frames")


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """Frames ``[F, H, W, 3]`` in ``[0, 1]`` to ``uint8``."""
    if video.dim() != 4 or video.shape[-1] != 3:
        raise ValueError(f"video must have shape [F, H, W, 3], got {list(video.shape)}")
    return (video.detach().float().clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def check_fps(fps: object) -> None:
    """Frames per second: a number in ``(0, MAX_FPS]`` (booleans, NaN and infinities refused)."""
    if isinstance(fps, bool) or not isinstance(fps, int | float):
        raise InputTypeError(f"fps must be a number, got {fps!r}")
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise InputError(f"fps must be a finite number in (0, {MAX_FPS}], got {fps!r}")


def write_video(video: torch.Tensor, path: str | Path, fps: int = 16) -> Path:
    """Write frames ``[F, H, W, 3]`` in ``[0, 1]`` as an H.264 mp4."""
    import imageio.v2 as imageio

    check_fps(fps)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(
        path, fps=fps, codec="libx264", quality=8, macro_block_size=1, ffmpeg_log_level="error"
    ) as writer:
        for frame in to_uint8(video):
            writer.append_data(frame)
    return path


def write_frames(video: torch.Tensor, folder: str | Path) -> list[Path]:
    """Write frames as ``frame_0000.png``, ... in ``folder``."""
    import imageio.v3 as iio

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(to_uint8(video)):
        path = folder / f"frame_{i:04d}.png"
        iio.imwrite(path, frame)
        paths.append(path)
    return paths


def save_result(
    result: SearchResult,
    out: str | Path,
    video_format: str = "mp4",
    fps: int = 16,
    extra: dict | None = None,
) -> dict:
    """Write ``result.json``, ``latents.safetensors`` and the video into ``out``, and
    ``candidates.npz`` (:meth:`~searchkit.candidates.CandidateFrames.save`) where the search
    kept thumbnails of the candidates it decoded.

    ``extra`` adds JSON-able fields to ``result.json`` (the backend, evaluator scores and
    versions that ``searchkit generate`` records).
    """
    if video_format not in VIDEO_FORMATS:
        raise InputError(
            f"video_format must be one of {', '.join(VIDEO_FORMATS)} (got {video_format!r})"
        )
    check_fps(fps)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"result": str(out / "result.json"), "latents": str(out / "latents.safetensors")}
    latents = {"latents": result.latents.detach().float().cpu().contiguous()}
    atomic_write(files["latents"], lambda tmp: save_file(latents, str(tmp)))
    if result.video is not None:
        if video_format == "mp4":
            files["video"] = str(write_video(result.video, out / "video.mp4", fps=fps))
        else:
            write_frames(result.video, out / "frames")
            files["video"] = str(out / "frames")
    if result.candidate_frames is not None:
        files["candidates"] = str(result.candidate_frames.save(out / "candidates.npz"))
    payload = {
        **result.to_dict(),
        **(extra or {}),
        "files": {k: Path(v).name for k, v in files.items()},
    }
    atomic_write_json(out / "result.json", payload)
    return files
