"""FLOPs of the Wan backend's transformer forwards and VAE decodes, counted on the meta device.

The transformer and the VAE are copied to the meta device once, when first counted
(:func:`searchkit.flops.meta_copy`: shapes and dtypes only, the weights are neither read
nor copied, so a full-size model on a GPU costs no memory here), and run under torch's
FLOP counter on empty inputs of the shapes the backend feeds them:

* a forward over one latent ``[1, C, F, H, W]`` in the transformer's dtype, with a
  timestep and a text context of ``max_sequence_length`` tokens (the encodings are padded
  to it);
* a decode of one latent (tiling, when enabled on the VAE, is copied with it).

Every product of these models is per sample (no operation mixes the rows of a batch), so
their FLOPs are linear in the batch: one sample's forward and decode are counted once, and
a batch of ``n`` costs ``n`` times as much (a test checks this against the counter on whole
batches). Counting every batch size instead would count again whenever a search's
population changes size, at a cost of its own. The meter's hot path is a multiplication.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from searchkit.flops import FlopCache, count_flops, meta_copy, meta_empty


class WanFlops:
    """FLOP counts of one Wan pipeline's transformer forward and VAE decode, per batch size."""

    def __init__(self, pipe: Any, latent_shape: tuple[int, ...], options: Any) -> None:
        self._pipe = pipe
        self._latent_shape = tuple(latent_shape)
        self._options = options
        self._meta: dict[str, nn.Module] = {}
        self.cache = FlopCache()

    def _model(self, name: str) -> nn.Module:
        model = self._meta.get(name)
        if model is None:
            model = self._meta[name] = meta_copy(getattr(self._pipe, name)).eval()
        return model

    def forward(self, batch: int) -> float | None:
        """FLOPs of one transformer forward over ``batch`` latents: ``batch`` times one's."""
        one = self.cache.get(("forward", 1), lambda: self._count_forward(1))
        return None if one is None else batch * one

    def decode(self, n: int) -> float | None:
        """FLOPs of decoding ``n`` latents: ``n`` times one's, however they are chunked."""
        if n < 1:
            return 0.0
        one = self.cache.get(("decode", 1), lambda: self._count_decode(1))
        return None if one is None else n * one

    def _count_forward(self, batch: int) -> int:
        # the first expert the pipeline has: a two-expert model's share one architecture
        first = "transformer" if self._pipe.transformer is not None else "transformer_2"
        transformer = self._model(first)
        config = transformer.config
        dtype = next(transformer.parameters()).dtype
        latents = meta_empty((batch, *self._latent_shape), dtype)
        timestep = meta_empty((batch,))
        text = meta_empty((batch, self._options.max_sequence_length, int(config.text_dim)), dtype)
        return count_flops(
            lambda: transformer(
                hidden_states=latents,
                timestep=timestep,
                encoder_hidden_states=text,
                return_dict=False,
            )
        )

    def _count_decode(self, n: int) -> int:
        vae = self._model("vae")
        z = meta_empty((n, *self._latent_shape), next(vae.parameters()).dtype)
        return count_flops(lambda: vae.decode(z, return_dict=False))
