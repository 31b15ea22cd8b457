"""FLOPs of the Wan backend's transformer forwards and VAE decodes, counted on the meta device.

The transformer and the VAE are copied to the meta device once, when first counted
(:func:`searchkit.flops.meta_copy`: shapes and dtypes only, the weights are neither read
nor copied, so a full-size model on a GPU costs no memory here), and run under torch's
FLOP counter on empty inputs of the shapes the backend feeds them:

* a forward over ``batch`` latents ``[batch, C, F, H, W]`` in the transformer's dtype, with
  a timestep per row and a text context of ``max_sequence_length`` tokens (the encodings
  are padded to it);
* a decode of ``n`` latents as :meth:`WanBackend.decode <searchkit.backends.wan.WanBackend.decode>`
  runs it: one video at a time under ``vae_slicing``, else all at once (tiling, when
  enabled on the VAE, is copied with it).

Each count is cached per batch size; the meter's hot path is the cache lookup.
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
        """FLOPs of one transformer forward over ``batch`` latents."""
        return self.cache.get(("forward", batch), lambda: self._count_forward(batch))

    def decode(self, n: int) -> float | None:
        """FLOPs of decoding ``n`` latents, chunked as the backend decodes."""
        if n < 1:
            return 0.0
        if self._options.vae_slicing:
            one = self.cache.get(("decode", 1), lambda: self._count_decode(1))
            return None if one is None else n * one
        return self.cache.get(("decode", n), lambda: self._count_decode(n))

    def _count_forward(self, batch: int) -> int:
        transformer = self._model("transformer")
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
