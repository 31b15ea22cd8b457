"""The layout of a latent reward dataset (the LatSearch paper's public metadata schema).

Data from either side loads::

    out/collect.json                                   what was collected (searchkit only)
    out/metadata/all_latent_metadata_seed_0200.json   one JSON list per seed, prompt order
    out/seed_200/0000/latent_step_t10_tensor.pt        x_t after step 10 ([C, F, H, W])
    out/seed_200/0000/x0_step_t10_tensor.pt            predicted x0 at that step (extra)
    out/seed_200/0000/z0_tensor.pt                     the final clean latent (extra)

One record per (seed, prompt)::

    {"prompt": ..., "video_path": ... or null,
     "output_reward": [{"VQ": .., "MQ": .., "TA": .., "Overall": ..}],
     "latent_tensor_path": [{"t10": "../seed_200/0000/latent_step_t10_tensor.pt", ...}],
     "latent_z0_similarity": [{"t10": s_t, ...}],
     # extras written by searchkit, optional when reading:
     "x0_tensor_path": [{"t10": ...}], "latent_sigma": [{"t10": ..}], "x0_sigma": [{"t10": ..}],
     "z0_tensor_path": ..., "seed": .., "sample_seed": .., "prompt_index": ..}

``t{j}`` is the latent *after* denoising step ``j`` (0-based), as in the paper's scripts:
``j + 1`` steps taken, noise level ``sigmas[j + 1]``; the prediction ``x0`` stored with it
was made from the step's input, at ``sigmas[j]``. ``s_t = (1 + cos(x_t, x_0)) / 2`` with
``x_0`` the final clean latent. Paths are relative to the metadata folder and must stay
inside the dataset folder (the metadata folder's parent); tensors are saved with
``torch.save`` and read with ``torch.load(weights_only=True)``. The output reward's
dimensions are the teacher's (``Overall`` is its aggregate).

``collect.json`` records the backend, the teacher (its registry name, the options it was
built with and its own description), the steps and the prompts.
"""

from __future__ import annotations

import torch

METADATA_DIR = "metadata"
MANIFEST_NAME = "collect.json"
REQUIRED_FIELDS: tuple[str, ...] = (
    "prompt",
    "output_reward",
    "latent_tensor_path",
    "latent_z0_similarity",
)


def metadata_name(seed: int) -> str:
    """The metadata file of one seed: ``all_latent_metadata_seed_0200.json``."""
    return f"all_latent_metadata_seed_{seed:04d}.json"


def step_key(step: int) -> str:
    """``10 -> "t10"``: the key of the latent after step 10."""
    return f"t{step}"


def parse_step_key(key: str) -> int:
    """``"t10" -> 10``; anything else is a ``ValueError``."""
    if not isinstance(key, str) or not key.startswith("t") or not key[1:].isdigit():
        raise ValueError(f"step key must look like 't10', got {key!r}")
    return int(key[1:])


def sample_seed(seed: int, prompt_index: int) -> int:
    """The generator seed of one trajectory (distinct across seeds and prompts)."""
    return seed * 1_000_003 + prompt_index


def similarity(latent: torch.Tensor, z0: torch.Tensor) -> float:
    """``s_t = (1 + cos(x_t, x_0)) / 2`` (the paper's Eq. 7)."""
    cos = torch.nn.functional.cosine_similarity(
        latent.flatten().double(), z0.flatten().double(), dim=0
    )
    return min(max(float(0.5 * (1.0 + cos)), 0.0), 1.0)
