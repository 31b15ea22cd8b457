"""Stable Diffusion 3 text-to-image through diffusers: the image flow-matching family.

:class:`SD3Backend` is the SD3 adapter over the common diffusers backend
(:mod:`searchkit.backends.common`): it wraps a ``diffusers.StableDiffusion3Pipeline`` (two
CLIP and one T5 text encoder, ``SD3Transformer2DModel``, ``AutoencoderKL``). An image is a
one-frame video (latent ``(16, 1, H / 8, W / 8)``, decoded to ``[n, 1, H, W, 3]``), so every
strategy and reward runs on it unchanged. Constructors as for every family:
:meth:`SD3Backend.from_pretrained` (a checkpoint folder such as
``stabilityai/stable-diffusion-3.5-medium``, its layout checked first),
:meth:`SD3Backend.from_pipeline`, :meth:`SD3Backend.tiny` (small random components built
offline) and :meth:`SD3Backend.compute_profile` (no weights read).

The package: :mod:`~searchkit.backends.sd3.options` (:class:`SD3Options`),
:mod:`~searchkit.backends.sd3.backend` (layout, encoding, the adapter) and
:mod:`~searchkit.backends.sd3.tiny` (the tiny random pipeline).
"""

from searchkit.backends.sd3.backend import LAYOUT, SD3Backend, SD3Encoding
from searchkit.backends.sd3.options import SD3Options
from searchkit.backends.sd3.tiny import TINY_SIZE, tiny_pipeline

__all__ = ["LAYOUT", "TINY_SIZE", "SD3Backend", "SD3Encoding", "SD3Options", "tiny_pipeline"]
