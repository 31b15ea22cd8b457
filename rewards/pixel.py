"""A toy pixel-space reward on decoded video, so every strategy can run on any backend.

It is *not* a learned or perceptual model: three closed-form statistics of the frames
``[n, F, H, W, 3]`` in ``[0, 1]``, named after the LatSearch paper's dimensions so that the
plumbing (decoding, metering, aggregation) is exercised end to end. Use it for tests, demos
and overhead benchmarks; its scores say nothing about how good a video looks.

With luminance ``Y = 0.299 R + 0.587 G + 0.114 B``:

* ``VQ`` ("visual quality"): ``2 * (std_{h,w} Y + mean |grad Y|) / 0.25 - 1``, averaged over
  frames: contrast plus sharpness, about -1 for a flat video (it also rewards noise);
* ``MQ`` ("motion quality"): ``1 - 10 * mean |frame_{f+1} - frame_f|``: temporal smoothness,
  1 for a still video (1 as well for a single frame);
* ``TA`` ("text alignment"): ``1 - 2 |mean colour - c(prompt)| / sqrt(3)`` in ``[-1, 1]``, with
  ``c(prompt)`` a colour in ``[0, 1]^3`` taken from a SHA-256 hash of the prompt: a
  deterministic, prompt-dependent target, not an understanding of the text.

FLOPs (:meth:`PixelReward.flops`, a closed form): counted as everywhere in searchkit
(``docs/compute.md``), matrix products at two FLOPs per multiply-add and elementwise work
left out, its one matrix product is the luminance, 3 multiply-adds per pixel: ``2 * numel``
of the video. It is computed as a matrix product torch's FLOP counter sees, so the closed
form equals that counter's count of a real call. The elementwise statistics (differences,
absolute values, sums) take about 20 more operations per pixel; like the norms and
activations of every model here, they are not counted. Either way the reward is negligible
next to the decode it needs (``Backend.decode_flops``), which the meter charges apart.
"""

from __future__ import annotations

import hashlib
import math

import torch

from searchkit.backend import Backend
from searchkit.reward import Reward, RewardBatch

_LUMA = (0.299, 0.587, 0.114)


def prompt_colour(prompt: str) -> torch.Tensor:
    """The prompt's target colour ``[3]`` in ``[0, 1]``: the first three bytes of its SHA-256."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    return torch.tensor([digest[0], digest[1], digest[2]], dtype=torch.float32) / 255.0


class PixelReward(Reward):
    """Closed-form VQ, MQ and TA of decoded frames (a toy reward; see the module docstring)."""

    name = "pixel"
    dimensions = ("VQ", "MQ", "TA")
    input = "video"

    def __init__(self, backend: Backend | None = None) -> None:
        if backend is not None and not isinstance(backend, Backend):
            raise TypeError(
                f"backend must be a searchkit Backend or None, got {type(backend).__name__}"
            )
        self.backend = backend

    @property
    def is_differentiable(self) -> bool:
        """Every statistic is differentiable in the frames (the gradient of ``|.|`` at 0 is 0)."""
        return True

    def flops(self, batch: RewardBatch) -> float:
        """``2 * numel`` of the video: the luminance product (see the module docstring)."""
        return 2.0 * batch.data.numel()

    def score(self, batch: RewardBatch) -> torch.Tensor:
        video = batch.data
        if video.dim() != 5 or video.shape[-1] != 3:
            raise ValueError(f"pixel reward needs video [n, F, H, W, 3], got {list(video.shape)}")
        video = video.float()
        # a matrix product (not a matrix-vector one) so that torch's FLOP counter sees it
        weights = torch.tensor(_LUMA, device=video.device).reshape(3, 1)
        luma = (video.reshape(-1, 3) @ weights).reshape(video.shape[:-1])  # [n, F, H, W]
        contrast = luma.flatten(2).std(dim=2, unbiased=False).mean(dim=1)
        grad_w = (luma[..., :, 1:] - luma[..., :, :-1]).abs().mean(dim=(1, 2, 3))
        grad_h = (luma[..., 1:, :] - luma[..., :-1, :]).abs().mean(dim=(1, 2, 3))
        vq = 2.0 * (contrast + 0.5 * (grad_w + grad_h)) / 0.25 - 1.0
        if video.shape[1] > 1:
            mq = 1.0 - 10.0 * (video[:, 1:] - video[:, :-1]).abs().mean(dim=(1, 2, 3, 4))
        else:
            mq = torch.ones(video.shape[0], device=video.device)
        target = prompt_colour(batch.prompt).to(video.device)
        distance = (video.mean(dim=(1, 2, 3)) - target).norm(dim=1)
        ta = 1.0 - 2.0 * distance / math.sqrt(3.0)
        return torch.stack([vq, mq, ta], dim=1).cpu()

    def config_dict(self) -> dict:
        return {**super().config_dict(), "toy": True}
