"""Building blocks of tiny random models, built offline: a word-level tokenizer over a fixed
vocabulary of video-prompt words, and a seeded redraw of every weight.

Every family's tiny model (:func:`searchkit.backends.wan.tiny_pipeline`,
:func:`searchkit.backends.sd3.tiny_pipeline`) is made of small diffusers and transformers
modules built from configs, with weights redrawn from a generator seeded by the caller, and
tokenizers built in memory with the ``tokenizers`` library, so nothing is downloaded and the
same seed gives the same model.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # transformers is imported lazily
    from transformers import PreTrainedTokenizerFast

#: The tiny tokenizer's vocabulary: special tokens, then common words of video prompts.
TINY_VOCABULARY: tuple[str, ...] = (
    "<pad>",
    "</s>",
    "<unk>",
    "a",
    "an",
    "the",
    "of",
    "in",
    "on",
    "at",
    "with",
    "and",
    "through",
    "over",
    "under",
    "into",
    "by",
    "from",
    "to",
    "its",
    "is",
    "are",
    ",",
    ".",
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "white",
    "black",
    "gray",
    "brown",
    "golden",
    "silver",
    "dark",
    "bright",
    "colorful",
    "fox",
    "cat",
    "dog",
    "horse",
    "bird",
    "fish",
    "bear",
    "wolf",
    "rabbit",
    "panda",
    "tiger",
    "lion",
    "deer",
    "owl",
    "eagle",
    "dragon",
    "robot",
    "man",
    "woman",
    "child",
    "people",
    "astronaut",
    "car",
    "train",
    "boat",
    "ship",
    "plane",
    "bicycle",
    "city",
    "street",
    "forest",
    "mountain",
    "mountains",
    "river",
    "lake",
    "ocean",
    "sea",
    "beach",
    "desert",
    "field",
    "garden",
    "sky",
    "clouds",
    "sun",
    "moon",
    "stars",
    "rain",
    "snow",
    "fire",
    "water",
    "waves",
    "night",
    "sunset",
    "sunrise",
    "morning",
    "winter",
    "summer",
    "space",
    "room",
    "kitchen",
    "window",
    "tree",
    "trees",
    "flowers",
    "grass",
    "road",
    "bridge",
    "building",
    "running",
    "walking",
    "flying",
    "swimming",
    "jumping",
    "dancing",
    "playing",
    "eating",
    "sitting",
    "standing",
    "driving",
    "riding",
    "surfing",
    "falling",
    "floating",
    "moving",
    "slowly",
    "quickly",
    "fresh",
    "old",
    "young",
    "big",
    "small",
    "tall",
    "beautiful",
    "cinematic",
    "realistic",
    "close",
    "up",
    "shot",
    "view",
    "camera",
    "aerial",
    "wide",
    "light",
    "shadow",
    "reflection",
    "glowing",
    "misty",
    "foggy",
    "snowy",
    "rainy",
    "sunny",
)


def word_tokenizer(
    vocabulary: tuple[str, ...] = TINY_VOCABULARY,
    *,
    bos: str | None = None,
    eos: str = "</s>",
    pad: str = "<pad>",
    unk: str = "<unk>",
    model_max_length: int = 4096,
) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over ``vocabulary``, built in memory: lower-cased, split on
    whitespace and punctuation (unknown words map to ``unk``), ``eos`` appended and, when
    given, ``bos`` prepended, as UMT5's and CLIP's tokenizers do."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(vocabulary)}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token=unk))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    special = [(eos, vocab[eos])]
    template = f"$A {eos}"
    if bos is not None:
        special.insert(0, (bos, vocab[bos]))
        template = f"{bos} {template}"
    tokenizer.post_processor = processors.TemplateProcessing(
        single=template, special_tokens=special
    )
    extra = {"bos_token": bos} if bos is not None else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=pad,
        eos_token=eos,
        unk_token=unk,
        model_max_length=model_max_length,
        **extra,
    )


@torch.no_grad()
def reinitialise(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Redraw every parameter from ``generator`` (so weights depend on the seed alone).

    Parameters that start as all ones (norm scales) stay ones; matrices and kernels get
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (PyTorch's default scale), vectors ``N(0, 0.02)``.
    """
    for _, param in sorted(module.named_parameters()):
        if not param.is_floating_point() or bool((param == 1).all()):
            continue
        if param.dim() >= 2:
            bound = 1.0 / math.sqrt(max(param[0].numel(), 1))
            fresh = (torch.rand(param.shape, generator=generator) * 2 - 1) * bound
        else:
            fresh = 0.02 * torch.randn(param.shape, generator=generator)
        param.copy_(fresh.to(param.dtype))
