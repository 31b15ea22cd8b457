"""CLIP score: how well the frames of a video match its prompt, by a CLIP model.

For a video with frames ``v_1 .. v_F`` and prompt ``c`` the score is::

    CLIP(v, c) = 100 * mean_{i in S} cos(E_I(v_i), E_T(c))

with ``E_I`` and ``E_T`` CLIP's projected image and text embeddings (``get_image_features``
and ``get_text_features`` of transformers' ``CLIPModel``) and ``S`` the sampled frames. It is
the frame-averaged CLIPScore of Hessel et al., "CLIPScore: A Reference-free Evaluation
Metric for Image Captioning" (EMNLP 2021), in the form video benchmarks report it
("CLIPSIM", EvalCrafter's CLIP score): a mean over frames, scaled by 100 as torchmetrics does.

Convention: Hessel et al. define ``w * max(cos, 0)`` with ``w = 2.5``, and torchmetrics uses
``max(100 cos, 0)``; video benchmarks average the plain cosine over frames without clipping.
We follow the video benchmarks and do **not** clip at 0 by default: a search must still rank
candidates whose similarity is negative (clipping makes them all tie). For a real CLIP the
image-text cosine is almost always positive (0.15 to 0.40), so the two agree in practice;
``clamp_at_zero=True`` clips each video's score, torchmetrics' convention.

Frames: ``num_frames=None`` scores every frame; ``num_frames=k < F`` takes ``k`` uniformly
spaced frames, indices ``floor(i (F - 1) / (k - 1))`` for ``i = 0 .. k-1`` (the first and
the last frame included; ``k = 1`` takes the first).

Frames are resized, centre-cropped and normalised as the checkpoint's
``preprocessor_config.json`` says, in floating point (see :mod:`searchkit.rewards.clip_checkpoint`;
within about one 8-bit level of transformers' PIL processor on natural images).

Text: the prompt is tokenised once per prompt (cached) and truncated to the text model's
``max_position_embeddings`` (77 tokens for OpenAI's CLIP).

A checkpoint is a transformers CLIP folder or a Hugging Face Hub id such as
``openai/clip-vit-large-patch14`` (:func:`~searchkit.rewards.clip_checkpoint.resolve_checkpoint`);
transformers is imported only when one is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import torch

from searchkit.backend import Backend
from searchkit.reward import Reward, RewardBatch
from searchkit.rewards.clip_checkpoint import (
    CLIPPreprocessing,
    check_clip_folder,
    load_clip_model,
    resolve_checkpoint,
)
from searchkit.validation import boolean, optional_positive_int, positive_int

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@attrs.frozen
class CLIPScoreOptions:
    """How :class:`CLIPScore` samples and batches frames.

    Args:
        num_frames: frames scored per video, uniformly spaced; ``None`` scores all of them.
        max_batch: frames per forward of the image encoder (bounds memory, not the result).
        clamp_at_zero: clip each video's score at 0 (torchmetrics' convention; off by default).
    """

    num_frames: int | None = attrs.field(default=None, validator=optional_positive_int)
    max_batch: int = attrs.field(default=32, validator=positive_int)
    clamp_at_zero: bool = attrs.field(default=False, validator=boolean)


class CLIPScore(Reward):
    """Frame-averaged CLIP image-text cosine similarity, times 100 (see the module docstring).

    One dimension, ``CLIP``: it is a text-alignment score like the paper's ``TA``, but on its
    own scale (about 15 to 40 for a real CLIP), so it is named after the metric rather than
    mixed with other verifiers' ``TA`` columns in results and summaries.
    """

    name = "clip-score"
    measure_flops = True  # counted on the first real call of each shape
    dimensions = ("CLIP",)
    input = "video"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        preprocessing: CLIPPreprocessing,
        options: CLIPScoreOptions | None = None,
        source: str = "",
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.preprocessing = preprocessing
        self.options = options if options is not None else CLIPScoreOptions()
        self.source = source
        self._text: tuple[str, torch.Tensor] | None = None

    # -- loading ----------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        num_frames: int | None = None,
        max_batch: int = 32,
        clamp_at_zero: bool = False,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "float32",
    ) -> CLIPScore:
        """Load a CLIP checkpoint folder or Hub id; every option is checked before any weight is read.

        Args:
            path: a transformers CLIP folder or hub id (e.g. ``openai/clip-vit-large-patch14``).
            num_frames: frames scored per video, uniformly spaced; ``None`` scores all of them.
            max_batch: frames per forward of the image encoder (bounds memory, not the result).
            clamp_at_zero: clip each video's score at 0 (torchmetrics' convention; off by
                default).
            device: where it runs (default: the backend's device).
            dtype: ``bf16``/``fp16``/``fp32`` (default: float32).
        """
        options = CLIPScoreOptions(
            num_frames=num_frames, max_batch=max_batch, clamp_at_zero=clamp_at_zero
        )
        torch_dtype = _dtype(dtype)
        device = torch.device(device)
        folder = resolve_checkpoint(path)
        config = check_clip_folder(folder)
        preprocessing = CLIPPreprocessing.from_folder(folder, config["vision_config"]["image_size"])
        model = load_clip_model(folder, device, torch_dtype)

        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
        return cls(model, tokenizer, preprocessing, options, source=str(path))

    @classmethod
    def build(
        cls, backend: Backend, *, path: str | Path | None = None, **options: Any
    ) -> CLIPScore:
        """Build by registry name: ``path`` is required; the device defaults to the backend's."""
        if path is None:
            raise ValueError(
                "clip-score needs path=FOLDER or a Hub id, e.g. path=openai/clip-vit-large-patch14"
            )
        options.setdefault("device", backend.device)
        return cls.from_pretrained(path, **options)

    # -- scoring ----------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def frame_indices(self, num_frames: int) -> torch.Tensor:
        """Indices of the frames scored in a video of ``num_frames`` frames."""
        k = self.options.num_frames
        if k is None or k >= num_frames:
            return torch.arange(num_frames)
        if k == 1:
            return torch.zeros(1, dtype=torch.long)
        return torch.arange(k) * (num_frames - 1) // (k - 1)

    def score(self, batch: RewardBatch) -> torch.Tensor:
        video = check_video(batch.data)
        n, frames = video.shape[:2]
        if n == 0:
            return torch.zeros(0, 1)
        index = self.frame_indices(frames).to(video.device)
        sampled = video[:, index].flatten(0, 1)  # [n * k, H, W, 3]
        text = self.text_embedding(batch.prompt)
        cosines = torch.cat(
            [
                self.image_embeddings(sampled[s : s + self.options.max_batch]) @ text
                for s in range(0, sampled.shape[0], self.options.max_batch)
            ]
        )
        scores = 100.0 * cosines.view(n, len(index)).mean(dim=1)
        if self.options.clamp_at_zero:
            scores = scores.clamp(min=0.0)
        return scores[:, None].cpu()

    @torch.no_grad()
    def image_embeddings(self, frames: torch.Tensor) -> torch.Tensor:
        """Unit-norm CLIP image embeddings ``[m, D]`` (float32) of frames ``[m, H, W, 3]``."""
        pixels = self.preprocessing(frames.to(self.device)).to(self.dtype)
        return _unit(_features(self.model.get_image_features(pixel_values=pixels)))

    @torch.no_grad()
    def text_embedding(self, prompt: str) -> torch.Tensor:
        """The unit-norm CLIP text embedding ``[D]`` (float32) of ``prompt``, cached per prompt."""
        if self._text is not None and self._text[0] == prompt:
            return self._text[1]
        limit = int(self.model.config.text_config.max_position_embeddings)
        tokens = self.tokenizer(prompt, truncation=True, max_length=limit, return_tensors="pt")
        features = self.model.get_text_features(
            input_ids=tokens["input_ids"].to(self.device),
            attention_mask=tokens["attention_mask"].to(self.device),
        )
        embedding = _unit(_features(features))[0]
        self._text = (prompt, embedding)
        return embedding

    def config_dict(self) -> dict:
        return {
            **super().config_dict(),
            "source": self.source,
            **attrs.asdict(self.options),
            "dtype": str(self.dtype).removeprefix("torch."),
            "preprocessing": attrs.asdict(self.preprocessing),
        }


# -- helpers ---------------------------------------------------------------
def check_video(video: object) -> torch.Tensor:
    """``video`` as float32 frames ``[n, F, H, W, 3]`` in ``[0, 1]``, or a one-line error naming it."""
    if not isinstance(video, torch.Tensor):
        raise TypeError(f"clip-score: video must be a torch.Tensor, got {type(video).__name__}")
    if video.dim() != 5 or video.shape[-1] != 3 or min(video.shape[1:4], default=0) < 1:
        raise ValueError(
            f"clip-score: video must be frames [n, F, H, W, 3], got shape {list(video.shape)}"
        )
    video = video.float()
    if video.numel() == 0:
        return video
    low, high = float(video.min()), float(video.max())
    if not (low >= 0.0 and high <= 1.0):  # also refuses NaN
        raise ValueError(
            f"clip-score: video values must lie in [0, 1], got min {low:.4g} and max {high:.4g}"
        )
    return video


def _dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in DTYPES:
        return DTYPES[dtype.removeprefix("torch.")]
    raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")


def _features(output: Any) -> torch.Tensor:
    """Projected embeddings from ``get_*_features``: a tensor (transformers 4) or ``pooler_output`` (5)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _unit(features: torch.Tensor) -> torch.Tensor:
    features = features.float()
    return features / features.norm(dim=-1, keepdim=True)
