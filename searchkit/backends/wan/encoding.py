"""Prompts encoded for the Wan transformer: :class:`WanEncoding` and :func:`encode_prompt`.

The embeddings are the pipeline's own (``WanPipeline.encode_prompt``: UMT5 states of the
cleaned prompt, padded with zeros to ``max_sequence_length``), so a search and the pipeline
condition the transformer on the same bits. Beside them the encoding keeps the prompt's
real-token count and the mean of its real-token states, a text vector for rewards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import torch

from searchkit.backends.wan.options import WanOptions

if TYPE_CHECKING:  # diffusers' pipeline module pulls in transformers; import it lazily
    from diffusers import WanPipeline


@attrs.frozen(eq=False)
class WanEncoding:
    """A prompt encoded for the transformer.

    ``prompt_embeds`` and ``negative_embeds`` are ``[1, L, D]`` in the transformer's dtype,
    zero beyond the real tokens (as the pipeline pads them); ``negative_embeds`` is ``None``
    without guidance. ``pooled`` is the mean of the prompt's real-token embeddings (``[D]``,
    float32), for rewards conditioned on text.
    """

    prompt_embeds: torch.Tensor
    negative_embeds: torch.Tensor | None
    num_tokens: int
    pooled: torch.Tensor

    def text_inputs(self, negative: bool = False) -> dict[str, torch.Tensor] | None:
        """The transformer's text keyword of one forward (batch dimension 1)."""
        embeds = self.negative_embeds if negative else self.prompt_embeds
        return None if embeds is None else {"encoder_hidden_states": embeds}


def encode_prompt(
    pipe: WanPipeline,
    prompt: str,
    options: WanOptions,
    *,
    device: torch.device,
    dtype: torch.dtype,
) -> WanEncoding:
    """Encode ``prompt`` (and ``options.negative_prompt`` under guidance) with ``pipe``'s text
    encoder on ``device``; the embeddings are returned in ``dtype`` (the transformer's).

    The caller places the text encoder (the backend moves it to ``device`` for the call under
    ``offload_text_encoder``).
    """
    from diffusers.pipelines.wan.pipeline_wan import prompt_clean

    with torch.no_grad():
        positive, negative = pipe.encode_prompt(
            prompt=prompt,
            negative_prompt=options.negative_prompt,
            do_classifier_free_guidance=options.guided,
            max_sequence_length=options.max_sequence_length,
            device=device,
        )
    tokens = pipe.tokenizer(
        [prompt_clean(prompt)],
        padding="max_length",
        max_length=options.max_sequence_length,
        truncation=True,
        add_special_tokens=True,
        return_attention_mask=True,
    )
    num_tokens = max(int(sum(tokens["attention_mask"][0])), 1)
    pooled = positive[0, :num_tokens].float().mean(dim=0)
    return WanEncoding(
        prompt_embeds=positive.to(dtype),
        negative_embeds=None if negative is None else negative.to(dtype),
        num_tokens=num_tokens,
        pooled=pooled,
    )
