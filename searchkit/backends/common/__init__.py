"""The common diffusers backend: a model family is a small adapter on top of it.

:class:`DiffusersBackend` drives any flow-matching diffusers pipeline (text-to-video or
text-to-image) through the :class:`~searchkit.backend.Backend` surface: guidance, batching,
prompt caching, schedulers, experts, memory options, constructors and compute profiles.
A family (:mod:`searchkit.backends.wan`, :mod:`searchkit.backends.sd3`) supplies only how
its prompts are encoded, how its denoiser is called, how its latents are decoded, its latent
geometry and its checkpoint layout (see :mod:`searchkit.backends.common.family`).

The package, one job per module:

* :mod:`~searchkit.backends.common.options`: :class:`DiffusersOptions`, the options every
  family shares, its validators, dtype names, build arguments;
* :mod:`~searchkit.backends.common.checkpoint`: checkpoint layouts, checked without loading;
* :mod:`~searchkit.backends.common.family`: what a family supplies; experts;
* :mod:`~searchkit.backends.common.constructors`: from a pipeline, a folder, the tiny model;
* :mod:`~searchkit.backends.common.backend`: :class:`DiffusersBackend` itself;
* :mod:`~searchkit.backends.common.tiny`: tokenizers and seeded weights of tiny models.
"""

from searchkit.backends.common.backend import DiffusersBackend
from searchkit.backends.common.checkpoint import CheckpointLayout, check_layout
from searchkit.backends.common.family import Expert, TextEncoding
from searchkit.backends.common.options import (
    DIFFUSERS_SOLVERS,
    PIPELINE_SOLVER,
    DiffusersOptions,
    family_default,
    family_options,
    parse_dtype,
)

__all__ = [
    "DIFFUSERS_SOLVERS",
    "PIPELINE_SOLVER",
    "CheckpointLayout",
    "DiffusersBackend",
    "DiffusersOptions",
    "Expert",
    "TextEncoding",
    "check_layout",
    "family_default",
    "family_options",
    "parse_dtype",
]
