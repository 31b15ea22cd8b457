"""Ranking metrics for latent rewards: within-group pairwise accuracy and Spearman's rho.

* **pairwise accuracy**: over all pairs of the same group (prompt, or prompt and step) with
  different true rewards, the share the scores order the same way (score ties count one
  half; 0.5 is chance). This is what a search like RGRP needs: ranking candidates of one
  prompt.
* **Spearman's rho** (``scipy.stats.spearmanr``) between scores and true rewards, over all
  samples (:func:`spearman`) or as the mean over groups of the within-group rho
  (:func:`spearman_within`).
"""

from __future__ import annotations

import torch


def pairwise_accuracy(
    scores: torch.Tensor, truth: torch.Tensor, groups: torch.Tensor
) -> tuple[float, int]:
    """Share of same-group pairs with different ``truth`` that ``scores`` order the same way.

    Returns ``(accuracy, number of pairs)``; accuracy is NaN without pairs.
    """
    scores, truth, groups = scores.double().flatten(), truth.double().flatten(), groups.flatten()
    agree_sum, pairs = 0.0, 0
    for g in torch.unique(groups):
        members = (groups == g).nonzero().flatten()
        if members.numel() < 2:
            continue
        s, t = scores[members], truth[members]
        dt = t[:, None] - t[None, :]
        mask = torch.triu(torch.ones_like(dt, dtype=torch.bool), diagonal=1) & (dt != 0)
        ds = s[:, None] - s[None, :]
        agree = torch.where(ds == 0, 0.5, ((ds > 0) == (dt > 0)).double())
        agree_sum += float(agree[mask].sum())
        pairs += int(mask.sum())
    if pairs == 0:
        return float("nan"), 0
    return agree_sum / pairs, pairs


def spearman(scores: torch.Tensor, truth: torch.Tensor) -> float:
    """Spearman's rho of ``scores`` against ``truth`` (NaN for fewer than 3 samples)."""
    from scipy.stats import spearmanr

    if scores.numel() < 3:
        return float("nan")
    return float(spearmanr(scores.double().numpy(), truth.double().numpy()).statistic)


def spearman_within(scores: torch.Tensor, truth: torch.Tensor, groups: torch.Tensor) -> float:
    """Mean over groups (prompts) of the within-group Spearman rho (groups of >= 3 only)."""
    values = []
    for g in torch.unique(groups):
        members = groups == g
        if int(members.sum()) >= 3 and truth[members].unique().numel() > 1:
            rho = spearman(scores[members], truth[members])
            if rho == rho:  # constant scores give NaN: skip
                values.append(rho)
    return sum(values) / len(values) if values else float("nan")
