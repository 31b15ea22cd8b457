"""The Wan text-to-video family through diffusers, as a searchkit backend.

:class:`WanBackend` is the Wan adapter over the common diffusers backend
(:mod:`searchkit.backends.common`): it wraps the components of a ``diffusers.WanPipeline``
(UMT5 text encoder, one or two ``WanTransformer3DModel`` experts, ``AutoencoderKLWan``) and
exposes them as the :class:`~searchkit.backend.Backend` surface; the denoising loop itself
stays in :class:`~searchkit.context.SearchContext`. Every text-to-video member of the family
runs through the same code:

* Wan2.1 T2V 1.3B and 14B (one transformer; the 14B differs in its config only);
* Wan2.2 TI2V-5B in text-to-video mode (its own VAE: 48 latent channels, spatial factor 16;
  per-token timesteps);
* Wan2.2 T2V-A14B (a high-noise and a low-noise transformer switching at the checkpoint's
  ``boundary_ratio``, each with its guidance scale, as ``WanPipeline`` switches them).

Three constructors:

* :meth:`WanBackend.from_pretrained` loads a diffusers-format checkpoint folder of any member,
  checking its layout first;
* :meth:`WanBackend.from_pipeline` wraps a loaded ``WanPipeline``;
* :meth:`WanBackend.tiny` builds small *random* components offline (no download), for tests
  and demos, copying the structure of one member (``variant``): its videos are noise-like
  patterns, not generations.

:meth:`WanBackend.compute_profile` gives the steps and forwards per step of a configuration
from its options alone, without loading weights, for compute planning.

Settings. Defaults are the LatSearch paper's configuration (its own Wan code): UniPC with
flow shift 5.0, 50 steps, guidance 5.0, 832x480, 33 frames; ``max_sequence_length`` is 512,
the value ``WanPipeline.__call__`` uses (``encode_prompt`` alone defaults to 226). The
Wan2.1-T2V-1.3B diffusers checkpoint ships UniPC with flow shift 3.0: ``solver="pipeline"``
uses the wrapped pipeline's own scheduler configuration instead of a named solver. The
paper's best configuration is ``solver="sde-dpmsolver++"``. The negative prompt defaults to
Wan's standard one, :data:`~searchkit.backends.wan.options.WAN_NEGATIVE_PROMPT` (the long
fixed prompt the LatSearch code passes: the English text of the Chinese one in Wan2.1's
reference code, :data:`~searchkit.backends.wan.options.WAN_NEGATIVE_PROMPT_ZH`);
``negative_prompt=""`` opts out (``WanPipeline``'s own default).
Memory options for 14B models on one GPU: ``cpu_offload``, ``offload_text_encoder``,
``vae_tiling``, ``vae_slicing``.

The package, one job per module:

* :mod:`~searchkit.backends.wan.options`: :class:`WanOptions` and its validators;
* :mod:`~searchkit.backends.wan.checkpoint`: the checkpoint layout and the pipeline check;
* :mod:`~searchkit.backends.wan.encoding`: prompts encoded for the transformer;
* :mod:`~searchkit.backends.wan.backend`: :class:`WanBackend`, the family adapter;
* :mod:`~searchkit.backends.wan.tiny`: the tiny random pipelines and their tokenizer.
"""

from searchkit.backends.wan.backend import WanBackend
from searchkit.backends.wan.checkpoint import REQUIRED_COMPONENTS, check_checkpoint
from searchkit.backends.wan.encoding import WanEncoding
from searchkit.backends.wan.options import (
    FRAME_MULTIPLE,
    PIPELINE_SOLVER,
    SIZE_MULTIPLE,
    WAN_NEGATIVE_PROMPT,
    WAN_NEGATIVE_PROMPT_ZH,
    WAN_SOLVERS,
    WanOptions,
    parse_dtype,
)
from searchkit.backends.wan.tiny import (
    TINY_SIZE,
    TINY_VARIANTS,
    TINY_VOCABULARY,
    WAN21_1_3B_TRANSFORMER,
    tiny_pipeline,
    tiny_tokenizer,
)

__all__ = [
    "FRAME_MULTIPLE",
    "PIPELINE_SOLVER",
    "REQUIRED_COMPONENTS",
    "SIZE_MULTIPLE",
    "TINY_SIZE",
    "TINY_VARIANTS",
    "TINY_VOCABULARY",
    "WAN21_1_3B_TRANSFORMER",
    "WAN_NEGATIVE_PROMPT",
    "WAN_NEGATIVE_PROMPT_ZH",
    "WAN_SOLVERS",
    "WanBackend",
    "WanEncoding",
    "WanOptions",
    "check_checkpoint",
    "parse_dtype",
    "tiny_pipeline",
    "tiny_tokenizer",
]
