"""Evaluating latent rewards per denoising step: pairwise accuracy and Spearman correlation.

For every stored step ``t{j}`` the dataset holds, for many trajectories of each prompt, the
latent ``x_t``, the one-step prediction ``x0`` and the final reward. A scorer ranks the
trajectories of one prompt from what it sees at that step; we compare with the ranking by
the final (aggregate) reward with the metrics of :mod:`.metrics`: pairwise accuracy within
prompts, Spearman's rho across all trajectories at that step (``spearman``: it also rewards
knowing which prompts score high) and the mean within-prompt rho (``spearman_within``).

Two scorers are compared: the learned ``LatentRewardModel`` on its declared input, and the
teacher reward applied to the predicted ``x0`` (the no-training baseline). The teacher runs
as in a search: one :class:`~searchkit.context.SearchContext` per prompt encodes the prompt
and decodes (metered) for a video teacher; the report carries what the teacher cost.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import torch

from searchkit.backend import Backend
from searchkit.context import SearchContext
from searchkit.cost import Cost
from searchkit.reward import Reward, RewardBatch
from searchkit.rewards.latent.dataset import LatentDataset
from searchkit.rewards.latent.metrics import pairwise_accuracy, spearman, spearman_within
from searchkit.rewards.latent.predict import predict_dataset, text_embeddings
from searchkit.rewards.latent.reward import LatentRewardModel
from searchkit.rewards.latent.schema import step_key


@attrs.define
class StepRow:
    """The metrics of one stored step (teacher fields ``None`` without a teacher)."""

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
    """One :class:`StepRow` per step, what the model reads, the teacher and its cost."""

    rows: list[StepRow]
    model_input: str
    teacher: str | None
    #: Teacher reward calls, decodes and their seconds (``None`` without a teacher).
    teacher_cost: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_input": self.model_input,
            "teacher": self.teacher,
            "teacher_cost": self.teacher_cost,
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


@torch.no_grad()
def teacher_on_x0(
    teacher: Reward,
    dataset: LatentDataset,
    backend: Backend,
    indices: Sequence[int],
    costs: list[Cost] | None = None,
) -> torch.Tensor:
    """The teacher's ``[n, dims]`` scores on each sample's predicted ``x0``.

    The teacher sees what ``ctx.score(particles, input="x0")`` shows it in a search after
    step ``j + 1``: ``x0`` at the noise level it was predicted at (decoded through the
    context for a video teacher). Each prompt's metered cost is appended to ``costs``.
    """
    by_prompt: dict[str, list[int]] = defaultdict(list)
    for pos, i in enumerate(indices):
        by_prompt[dataset.samples[i].prompt].append(pos)
    out = torch.zeros(len(indices), len(teacher.dimensions))
    for prompt, positions in by_prompt.items():
        # The generator is never drawn from: no noise, no denoising step.
        ctx = SearchContext(backend, teacher, prompt, generator=torch.Generator())
        items = [dataset[indices[p]] for p in positions]
        data = torch.stack([it["x0"] for it in items])
        sigma = torch.tensor([it["x0_sigma"] for it in items])
        if teacher.input == "video":
            data = ctx.decode(data)
        step = int(items[0]["step"]) + 1
        batch = RewardBatch(data=data, sigma=sigma, conditioning=ctx.conditioning, step=step)
        with ctx.meter.timed("reward"):
            scores = teacher(batch)
        ctx.meter.reward_calls += len(positions)
        out[positions] = scores.detach().float().cpu()
        if costs is not None:
            costs.append(ctx.meter.snapshot())
    return out


def _total_cost(costs: list[Cost]) -> dict[str, Any]:
    return {
        "reward_calls": sum(c.reward_calls for c in costs),
        "decodes": sum(c.decodes for c in costs),
        "seconds": {k: sum(c.seconds[k] for c in costs) for k in ("reward", "decode")},
    }


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
        raise ValueError(
            "the teacher baseline needs predicted x0 tensors (x0_tensor_path) in the data"
        )
    weights = model.weights
    truth_all = torch.stack([s.reward for s in dataset.samples]) @ weights
    texts = text_embeddings(backend, dataset.prompts)
    prompt_ids = {p: i for i, p in enumerate(dataset.prompts)}
    costs: list[Cost] = []
    rows = []
    for step in dataset.steps:
        idx = [i for i, s in enumerate(dataset.samples) if s.step == step]
        truth = truth_all[idx]
        groups = torch.tensor([prompt_ids[dataset.samples[i].prompt] for i in idx])
        learned = predict_dataset(model, dataset, backend, idx, batch_size, texts=texts) @ weights
        acc, pairs = pairwise_accuracy(learned, truth, groups)
        t_acc = t_rho = t_within = None
        if teacher is not None:
            t_scores = teacher.aggregate(teacher_on_x0(teacher, dataset, backend, idx, costs))
            t_acc, _ = pairwise_accuracy(t_scores, truth, groups)
            t_rho = spearman(t_scores, truth)
            t_within = spearman_within(t_scores, truth, groups)
        sigma = sum(dataset.samples[i].sigma for i in idx) / len(idx)
        rows.append(
            StepRow(
                step,
                sigma,
                len(idx),
                pairs,
                acc,
                spearman(learned, truth),
                spearman_within(learned, truth, groups),
                t_acc,
                t_rho,
                t_within,
            )
        )
    return EvalReport(
        rows,
        model.input,
        None if teacher is None else teacher.name,
        None if teacher is None else _total_cost(costs),
    )


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
        ax.plot(
            sigma,
            [getattr(r, f"learned_{metric}") for r in report.rows],
            "o-",
            label=f"latent reward model (input {report.model_input})",
        )
        if report.teacher is not None:
            ax.plot(
                sigma,
                [getattr(r, f"teacher_{metric}") for r in report.rows],
                "s--",
                label=f"teacher {report.teacher!r} on predicted x0",
            )
        ax.axhline(
            0.5 if metric == "accuracy" else 0.0, color="gray", lw=0.8, ls=":", label="chance"
        )
        ax.set_xlabel("noise level sigma (denoising progresses to the right)")
        ax.invert_xaxis()
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
