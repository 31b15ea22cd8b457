"""Wan2.1 text-to-video through diffusers, as a searchkit backend.

:class:`WanBackend` wraps the components of a ``diffusers.WanPipeline`` (UMT5 text encoder,
``WanTransformer3DModel``, ``AutoencoderKLWan``) and exposes them as the
:class:`~searchkit.backend.Backend` surface; the denoising loop itself stays in
:class:`~searchkit.context.SearchContext`. Three constructors:

* :meth:`WanBackend.from_pretrained` loads a diffusers-format Wan2.1 text-to-video checkpoint
  folder (1.3B or 14B), checking its layout first;
* :meth:`WanBackend.from_pipeline` wraps a loaded ``WanPipeline``;
* :meth:`WanBackend.tiny` builds small *random* components offline (no download), for tests
  and demos: its videos are noise-like patterns, not generations.

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

The package, one job per module:

* :mod:`~searchkit.backends.wan.options`: :class:`WanOptions`, its validators, dtype names;
* :mod:`~searchkit.backends.wan.checkpoint`: checking and loading a checkpoint folder;
* :mod:`~searchkit.backends.wan.encoding`: prompts encoded for the transformer;
* :mod:`~searchkit.backends.wan.backend`: :class:`WanBackend` itself;
* :mod:`~searchkit.backends.wan.tiny`: the tiny random pipeline and its tokenizer, for tests.
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
