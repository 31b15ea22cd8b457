"""Frames and latents to Qwen2-VL vision patches, as the VideoReward reference code makes them.

The reference (VideoAlign's ``vision_process.py`` as LatSearch calls it on in-memory
tensors, then transformers' Qwen2-VL image processor) does, per video:

1. **Frame sampling.** The video is taken to run at 16 fps (the reference hard-codes this
   for tensors). With ``fps`` set (2.0 in the released config) the count is
   ``n = F / 16 * fps``, clipped to ``[4, floor_even(min(768, F))]`` and rounded to an even
   number with Python's ``round`` (half to even); with a fixed ``nframes`` it is
   ``round(nframes / 2) * 2`` (so 9 latent frames become 8). Either way it is capped at
   ``F`` and must be at least 2. The frames taken are ``linspace(0, F - 1, n).round()``
   (torch rounds half to even too). For 33 frames that is 4 frames: 0, 11, 21, 32.
2. **Resizing.** Sides become multiples of 28 by the "smart resize" rule: round each
   side to a multiple of 28 (at least 28); if the area exceeds ``max_frame_pixels``
   (200,704 in the release), scale both sides by ``sqrt(H W / max)`` and floor to
   multiples of 28; if it is below ``128 * 28 * 28`` pixels, scale by
   ``sqrt(min / (H W))`` and ceil. The aspect ratio is kept; a ratio above 200 is refused.
   The resize is bicubic with antialiasing, ``torch.nn.functional.interpolate(mode=
   "bicubic", antialias=True, align_corners=False)`` (what torchvision's tensor resize
   runs; torchvision itself is not needed), skipped when the size does not change.
   832x480 becomes 588x336.
3. **Range.** The reference hands Wan's decoded frames in ``[-1, 1]`` (the VAE output,
   clamped) to the resize and maps them with ``((v + 1) / 2).clamp(0, 1)`` afterwards
   (the clamp catches bicubic overshoot). searchkit's backends return ``[0, 1]``
   (``x = v / 2 + 1 / 2``), so the frames are taken back to ``v = 2 x - 1`` (exact in
   float arithmetic for the backends' values up to one rounding), resized, and mapped as
   the reference does. The order matters only at the rounding level, but step 4 turns
   rounding into whole 8-bit levels for the pixels it lands next to.
4. **8-bit quantisation.** The slow Qwen2-VL image processor resizes through PIL, which
   turns float frames into ``uint8`` by truncation, ``k = floor(x * 255)``, and back into
   ``k / 255``; the resize itself is the identity here (the size is already on the grid),
   but the quantisation stays. Skipping it moves the released model's scores by about 0.1.
5. **CLIP normalisation** with the processor's ``image_mean`` / ``image_std``.
6. **Patches.** An odd frame count repeats the last frame; frames are cut into
   ``2 x 14 x 14`` tubelets, ordered by 2x2 merge groups, each flattened channel-major
   (``C x 2 x 14 x 14`` values). The grid is ``(n / 2, H / 14, W / 14)`` and the language
   model sees ``n / 2 * H / 28 * W / 28`` video tokens.

The latent path of the LatSearch latent reward model uses steps 1, 2 and 6 on the 16
channels of a Wan latent (sampled with a fixed ``nframes`` equal to its frame count),
then casts the resized latent to bfloat16 and back (the reference stores it that way), with
no range mapping, quantisation or normalisation.
"""

from __future__ import annotations

import math

import attrs
import torch
import torch.nn.functional as F

from searchkit.validation import positive_int

SIZE_FACTOR = 28
VIDEO_MIN_PIXELS = 128 * 28 * 28
MAX_ASPECT_RATIO = 200
FRAME_FACTOR = 2
FPS_MIN_FRAMES = 4
FPS_MAX_FRAMES = 768
SOURCE_FPS = 16.0
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@attrs.frozen
class PatchSpec:
    """The vision tower's patch geometry and the processor's normalisation."""

    patch_size: int = attrs.field(default=14, validator=positive_int)
    temporal_patch_size: int = attrs.field(default=2, validator=positive_int)
    merge_size: int = attrs.field(default=2, validator=positive_int)
    mean: tuple[float, ...] = CLIP_MEAN
    std: tuple[float, ...] = CLIP_STD

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size


def _round_even(x: float) -> int:
    return round(x / FRAME_FACTOR) * FRAME_FACTOR


def sample_count(total: int, *, fps: float | None = 2.0, nframes: int | None = None) -> int:
    """How many of ``total`` frames the reference samples (see the module docstring, step 1)."""
    if nframes is not None:
        count = _round_even(nframes)
    else:
        low = math.ceil(FPS_MIN_FRAMES / FRAME_FACTOR) * FRAME_FACTOR
        high = math.floor(min(FPS_MAX_FRAMES, total) / FRAME_FACTOR) * FRAME_FACTOR
        count = _round_even(min(max(total / SOURCE_FPS * fps, low), high))
    count = min(count, total)
    if count < FRAME_FACTOR:
        raise ValueError(f"a video needs at least {FRAME_FACTOR} frames to be scored, got {total}")
    return count


def sample_indices(total: int, count: int) -> torch.Tensor:
    """``linspace(0, total - 1, count)`` rounded half to even, as indices."""
    return torch.linspace(0, total - 1, count).round().long()


def smart_resize(
    height: int,
    width: int,
    *,
    max_pixels: int,
    min_pixels: int = VIDEO_MIN_PIXELS,
    factor: int = SIZE_FACTOR,
) -> tuple[int, int]:
    """The reference's target size: multiples of ``factor``, area in ``[min, max]`` pixels."""
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(
            f"frames of {height}x{width} have an aspect ratio above {MAX_ASPECT_RATIO}, which the reward cannot read"
        )
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = math.floor(height / beta / factor) * factor
        w = math.floor(width / beta / factor) * factor
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def resize(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic, antialiased resize of ``[T, C, H, W]`` in float32 (identity at the same size)."""
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames.float()
    return F.interpolate(
        frames.float(), size=size, mode="bicubic", align_corners=False, antialias=True
    )


def quantize_8bit(frames: torch.Tensor) -> torch.Tensor:
    """``floor(x * 255) / 255`` with the processor's precisions (float64 products, float32 values)."""
    levels = (frames.double() * 255.0).float().floor()
    return (levels.double() * (1.0 / 255.0)).float()


def patchify(frames: torch.Tensor, spec: PatchSpec) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """``[T, C, H, W]`` frames to ``[tokens, C * tp * p * p]`` patch rows and the ``(t, h, w)`` grid."""
    tp, p, m = spec.temporal_patch_size, spec.patch_size, spec.merge_size
    if frames.shape[0] % tp:
        repeat = frames[-1:].expand(tp - frames.shape[0] % tp, *frames.shape[1:])
        frames = torch.cat([frames, repeat])
    t, c, h, w = frames.shape
    gt, gh, gw = t // tp, h // p, w // p
    if h % (p * m) or w % (p * m):
        raise ValueError(f"frame size {h}x{w} is not a multiple of {p * m}")
    x = frames.reshape(gt, tp, c, gh // m, m, p, gw // m, m, p)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return x.reshape(gt * gh * gw, c * tp * p * p), (gt, gh, gw)


def video_patches(
    video: torch.Tensor,
    spec: PatchSpec,
    *,
    max_pixels: int,
    fps: float | None = 2.0,
    nframes: int | None = None,
) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """One video ``[F, H, W, 3]`` in ``[0, 1]`` to normalised patch rows and its grid."""
    total, height, width = video.shape[:3]
    frames = video[sample_indices(total, sample_count(total, fps=fps, nframes=nframes))]
    frames = frames.permute(0, 3, 1, 2)
    size = smart_resize(height, width, max_pixels=max_pixels, factor=spec.factor)
    signed = resize(frames.float() * 2.0 - 1.0, size)
    frames = quantize_8bit(((signed + 1.0) / 2.0).clamp(0.0, 1.0))
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=frames.device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32, device=frames.device).view(1, -1, 1, 1)
    return patchify((frames - mean) / std, spec)


def latent_patches(
    latent: torch.Tensor, spec: PatchSpec, *, max_pixels: int
) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """One latent ``[C, F, H, W]`` to patch rows (resized, cast through bfloat16) and its grid."""
    frames = latent.permute(1, 0, 2, 3)
    total, _, height, width = frames.shape
    frames = frames[sample_indices(total, sample_count(total, nframes=total))]
    size = smart_resize(height, width, max_pixels=max_pixels, factor=spec.factor)
    frames = resize(frames, size).to(torch.bfloat16).float()
    return patchify(frames, spec)


def check_video(video: object, field: str = "video") -> torch.Tensor:
    """``[n, F, H, W, 3]`` finite frames in ``[0, 1]``; raises naming ``field`` otherwise."""
    if not isinstance(video, torch.Tensor):
        raise TypeError(f"{field} must be a torch.Tensor, got {type(video).__name__}")
    if video.dim() != 5 or video.shape[-1] != 3:
        raise ValueError(f"{field} must be frames [n, F, H, W, 3], got shape {list(video.shape)}")
    if not video.is_floating_point():
        raise TypeError(f"{field} must hold floats in [0, 1], got dtype {video.dtype}")
    if not torch.isfinite(video).all():
        raise ValueError(f"{field} holds NaN or infinite values")
    low, high = float(video.min()), float(video.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{field} must lie in [0, 1] (decoded frames), got values in [{low:.4g}, {high:.4g}]"
        )
    return video
