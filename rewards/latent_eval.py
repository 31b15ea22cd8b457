"""Evaluating latent rewards per denoising step: pairwise accuracy and Spearman correlation.

For every stored step ``t{j}`` the dataset holds, for many trajectories of each prompt, the
latent ``x_t``, the one-step prediction ``x0`` and the final reward. A scorer ranks the
trajectories of one prompt from what it sees at that step; we compare with the ranking by
the final (aggregate) reward:

* **pairwise accuracy**: over all pairs of trajectories of the same prompt with different
  final rewards, the share the scorer orders the same way (score ties count one half;
  0.5 is chance). This is what a search like RGRP needs: ranking candidates of one prompt.
* **Spearman's rho** (``scipy.stats.spearmanr``) between scores and final rewards: over all
  trajectories at that step (``spearman``, across prompts, so it also rewards knowing
  which prompts score high) and the mean over prompts of the within-prompt rho
  (``spearman_within``, what ranking candidates of one prompt needs).

Two scorers are compared: the learned :class:`LatentRewardModel` on its declared input,
and the teacher reward applied to the predicted ``x0`` (the no-training baseline).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import torch

from searchkit.backend import Backend
from searchkit.reward import Reward, RewardBatch
from searchkit.rewards.latent_data import LatentDataset, step_key
from searchkit.rewards.latent_reward_model import LatentRewardModel


def pairwise_accuracy(scores: torch.Tensor, truth: torch.Tensor, groups: torch.Tensor) -> tuple[float, int]:
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


@attrs.define
class StepRow:
    step: int
    sigma: float
    samples: int
    pairs: int
    learned_accuracy: float
    learned_spearman: float
    learned_spearman_within: float
    teacher_accuracy: float | None
    teacher_spearman: float | None
    teacher_spearman_within: float | None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class EvalReport:
    rows: list[StepRow]
    model_input: str
    teacher: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_input": self.model_input,
            "teacher": self.teacher,
            "rows": [r.to_dict() for r in self.rows],
        }

    def table(self) -> str:
        """A plain-text table, one row per step."""
        head = (
            f"{'step':>5} {'sigma':>6} {'n':>5} {'pairs':>6} | {'acc learned':>11} "
            f"{'acc teacher':>11} | {'rho learned':>11} {'rho teacher':>11} | "
            f"{'rho/prompt L':>12} {'rho/prompt T':>12}"
        )
        lines = [head, "-" * len(head)]

        def fmt(x: float | None, width: int = 11) -> str:
            return f"{'-':>{width}}" if x is None else f"{x:>{width}.3f}"

        for r in self.rows:
            lines.append(
                f"{step_key(r.step):>5} {r.sigma:>6.3f} {r.samples:>5} {r.pairs:>6} | "
                f"{fmt(r.learned_accuracy)} {fmt(r.teacher_accuracy)} | "
                f"{fmt(r.learned_spearman)} {fmt(r.teacher_spearman)} | "
                f"{fmt(r.learned_spearman_within, 12)} {fmt(r.teacher_spearman_within, 12)}"
            )
        return "\n".join(lines)


def text_embeddings(backend: Backend, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
    return {p: backend.prompt_embedding(backend.encode(p)).detach().float().reshape(-1) for p in prompts}


@torch.no_grad()
def predict_dataset(
    model: LatentRewardModel,
    dataset: LatentDataset,
    backend: Backend,
    indices: Sequence[int] | None = None,
    batch_size: int = 256,
    normalized: bool = False,
    texts: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The model's ``[len(indices), dims]`` scores on its declared input for dataset samples."""
    indices = list(range(len(dataset))) if indices is None else list(indices)
    texts = texts if texts is not None else text_embeddings(backend, dataset.prompts)
    was_training = model.net.training
    model.net.eval()
    out = []
    try:
        for start in range(0, len(indices), batch_size):
            items = [dataset[i] for i in indices[start : start + batch_size]]
            data, sigma, text = model_inputs(model, items, texts)
            out.append(model.predict(data, sigma, text, normalized=normalized))
    finally:
        model.net.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, len(model.dimensions))


def model_inputs(
    model: LatentRewardModel, items: list[dict], texts: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack a list of dataset items into the model's ``(data, sigma, text)``."""
    if model.input == "x0":
        if any("x0" not in it for it in items):
            bad = next(it for it in items if "x0" not in it)
            raise ValueError(
                f"the model reads input 'x0' but {bad['record']} has no x0_tensor_path; "
                "train a model with input 'latent' on this data"
            )
        data = torch.stack([it["x0"] for it in items])
        sigma = torch.tensor([it["x0_sigma"] for it in items])
    else:
        data = torch.stack([it["latent"] for it in items])
        sigma = torch.tensor([it["sigma"] for it in items])
    text = torch.stack([texts[it["prompt"]] for it in items])
    return data, sigma, text


@torch.no_grad()
def teacher_on_x0(
    teacher: Reward, dataset: LatentDataset, backend: Backend, indices: Sequence[int]
) -> torch.Tensor:
    """The teacher's ``[n, dims]`` scores on each sample's predicted ``x0``."""
    by_prompt: dict[str, list[int]] = defaultdict(list)
    for pos, i in enumerate(indices):
        by_prompt[dataset.samples[i].prompt].append(pos)
    out = torch.zeros(len(indices), len(teacher.dimensions))
    for prompt, positions in by_prompt.items():
        cond = backend.encode(prompt)
        items = [dataset[indices[p]] for p in positions]
        data = torch.stack([it["x0"] for it in items])
        sigma = torch.tensor([it["x0_sigma"] for it in items])
        if teacher.input == "video":
            data = backend.decode(data)
        step = int(items[0]["step"]) + 1
        scores = teacher.score(RewardBatch(data=data, sigma=sigma, conditioning=cond, step=step))
        out[positions] = scores.detach().float().cpu()
    return out


def evaluate(
    model: LatentRewardModel,
    dataset: LatentDataset,
    backend: Backend,
    *,
    teacher: Reward | None = None,
    batch_size: int = 256,
) -> EvalReport:
    """Per-step pairwise accuracy and Spearman of the model (and the teacher on ``x0``)."""
    if teacher is not None and not dataset.has_x0:
        raise ValueError("the teacher baseline needs predicted x0 tensors (x0_tensor_path) in the data")
    weights = model.weights
    truth_all = torch.stack([s.reward for s in dataset.samples]) @ weights
    texts = text_embeddings(backend, dataset.prompts)
    prompt_ids = {p: i for i, p in enumerate(dataset.prompts)}
    rows = []
    for step in dataset.steps:
        idx = [i for i, s in enumerate(dataset.samples) if s.step == step]
        truth = truth_all[idx]
        groups = torch.tensor([prompt_ids[dataset.samples[i].prompt] for i in idx])
        learned = predict_dataset(model, dataset, backend, idx, batch_size, texts=texts) @ weights
        acc, pairs = pairwise_accuracy(learned, truth, groups)
        t_acc = t_rho = t_within = None
        if teacher is not None:
            t_scores = teacher.aggregate(teacher_on_x0(teacher, dataset, backend, idx))
            t_acc, _ = pairwise_accuracy(t_scores, truth, groups)
            t_rho = spearman(t_scores, truth)
            t_within = spearman_within(t_scores, truth, groups)
        sigma = sum(dataset.samples[i].sigma for i in idx) / len(idx)
        rows.append(
            StepRow(step, sigma, len(idx), pairs, acc, spearman(learned, truth),
                    spearman_within(learned, truth, groups), t_acc, t_rho, t_within)
        )
    return EvalReport(rows, model.input, None if teacher is None else teacher.name)


def plot_report(report: EvalReport, path: str | Path) -> Path:
    """Pairwise accuracy and Spearman of both scorers against the noise level (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sigma = [r.sigma for r in report.rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, metric, title in (
        (axes[0], "accuracy", "pairwise accuracy (within prompt)"),
        (axes[1], "spearman", "Spearman rho (all samples)"),
        (axes[2], "spearman_within", "Spearman rho (mean within prompt)"),
    ):
        ax.plot(sigma, [getattr(r, f"learned_{metric}") for r in report.rows], "o-",
                label=f"latent reward model (input {report.model_input})")
        if report.teacher is not None:
            ax.plot(sigma, [getattr(r, f"teacher_{metric}") for r in report.rows], "s--",
                    label=f"teacher {report.teacher!r} on predicted x0")
        ax.axhline(0.5 if metric == "accuracy" else 0.0, color="gray", lw=0.8, ls=":", label="chance")
        ax.set_xlabel("noise level sigma (denoising progresses to the right)")
        ax.invert_xaxis()
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
