"""Diagnostics for where and how far to search: ``searchkit diagnose`` and its Python API.

* :func:`predictivity`: Spearman's rho, step by step, between the search reward and the
  final evaluator (where a schedule can prune safely);
* :func:`candidate_spread`: for a grid of RGRP's ``beta``, how far correlated candidates
  land apart and how much the evaluator varies among them (which ``beta`` gives a search
  something to choose from);
* :func:`write_diagnosis`: ``diagnose.json``, ``diagnose.png`` and, with the candidates'
  outputs and a backend, ``candidates.png``.

Both run on any backend and reward; the evaluator is the backend's oracle by default, or any
reward. Example::

    from searchkit.diagnostics import candidate_spread, predictivity, write_diagnosis

    pred = predictivity(backend, reward, prompts, seeds=32)
    spread = candidate_spread(backend, reward, prompts, seeds=16)
    write_diagnosis("diagnosis/", predictivity=pred, spread=spread)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from searchkit.backend import Backend
from searchkit.diagnostics.common import Evaluator, resolve_evaluator
from searchkit.diagnostics.plot import candidates_figure, diagnosis_figure
from searchkit.diagnostics.predictivity import PredictivityReport, predictivity
from searchkit.diagnostics.spread import DEFAULT_BETAS, SpreadReport, candidate_spread
from searchkit.errors import InputError
from searchkit.files import atomic_write_json

__all__ = [
    "DEFAULT_BETAS",
    "Evaluator",
    "PredictivityReport",
    "SpreadReport",
    "candidate_spread",
    "candidates_figure",
    "diagnosis_figure",
    "predictivity",
    "resolve_evaluator",
    "write_diagnosis",
]


def write_diagnosis(
    out: str | Path,
    *,
    predictivity: PredictivityReport | None = None,
    spread: SpreadReport | None = None,
    backend: Backend | None = None,
    extra: dict[str, Any] | None = None,
    title: str = "",
) -> dict[str, str]:
    """Write ``diagnose.json`` and ``diagnose.png`` (and ``candidates.png`` when ``spread``
    kept its outputs and ``backend`` can decode them) into ``out``; the paths, by name."""
    if predictivity is None and spread is None:
        raise InputError("write_diagnosis needs a predictivity or a spread report")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": str(out / "diagnose.json"), "figure": str(out / "diagnose.png")}
    payload = {
        **(extra or {}),
        "predictivity": None if predictivity is None else predictivity.to_dict(),
        "spread": None if spread is None else spread.to_dict(),
    }
    diagnosis_figure(predictivity, spread, files["figure"], title=title)
    if spread is not None and spread.outputs is not None and backend is not None:
        betas, n = spread.outputs.shape[:2]
        with torch.no_grad():
            video = backend.decode(spread.outputs.reshape(betas * n, *spread.outputs.shape[2:]))
        middle = video[:, video.shape[1] // 2].float().clamp(0, 1).cpu().numpy()
        frames = (middle * 255 + 0.5).astype("uint8").reshape(betas, n, *middle.shape[1:])
        files["candidates"] = str(out / "candidates.png")
        candidates_figure(frames, spread.betas, files["candidates"])
    payload["files"] = {k: Path(v).name for k, v in files.items()}
    atomic_write_json(files["json"], payload)
    return files
