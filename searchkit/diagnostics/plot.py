"""The diagnostics figure: predictivity by step, and candidate spread against ``beta``.

One PNG with up to three panels, drawn on matplotlib's Agg canvas:

* predictivity: Spearman's rho after each step with its 95% band, one thin line per prompt;
  the upper axis reads the noise level the reward saw;
* distances: the candidates' mean pairwise distance at the start and at the end, per
  ``beta``;
* evaluator: the spread of the evaluator among the candidates, the gain of a perfect pick
  and of the search reward's pick over the first candidate, with 95% intervals.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from searchkit.diagnostics.predictivity import PredictivityReport
from searchkit.diagnostics.spread import SpreadReport
from searchkit.errors import InputError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def diagnosis_figure(
    predictivity: PredictivityReport | None,
    spread: SpreadReport | None,
    path: str | Path | None = None,
    *,
    title: str = "",
) -> Figure:
    """The figure of one diagnosis (either report may be ``None``); a PNG at ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = (predictivity is not None) + 2 * (spread is not None)
    if panels == 0:
        raise InputError("diagnosis_figure needs a predictivity or a spread report")
    fig = Figure(figsize=(5.2 * panels, 4.2), dpi=120)
    FigureCanvasAgg(fig)
    axes = list(np.atleast_1d(fig.subplots(1, panels)))
    if predictivity is not None:
        _predictivity_panel(axes.pop(0), predictivity)
    if spread is not None:
        _distance_panel(axes.pop(0), spread)
        _evaluator_panel(axes.pop(0), spread)
    if title:
        fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    if path is not None:
        fig.savefig(Path(path))
    return fig


def _predictivity_panel(ax: Axes, report: PredictivityReport) -> None:
    steps = np.array(report.steps)
    for row in report.per_prompt:
        ax.plot(steps, row, color="0.75", linewidth=0.8)
    ax.fill_between(steps, report.ci_low, report.ci_high, color="tab:blue", alpha=0.25, lw=0)
    ax.plot(steps, report.rho, "o-", color="tab:blue", ms=3, label="mean over prompts (95% band)")
    if len(report.prompts) > 1:
        ax.plot([], [], color="0.75", linewidth=0.8, label="one prompt")
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_ylim(min(-0.2, float(np.nanmin(report.ci_low, initial=0.0)) - 0.05), 1.05)
    ax.set_xlim(-0.5, report.num_steps - 0.5)
    ax.set_xlabel("scored after step (0-based)")
    ax.set_ylabel("Spearman rho: reward at step vs final evaluator")
    ax.set_title(
        f"predictivity: {report.reward} ({report.score_input}) vs {report.evaluator}\n"
        f"{len(report.seeds)} seeds x {len(report.prompts)} prompts",
        fontsize="small",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="x-small", loc="lower right")
    if report.sigmas and len(report.steps) > 1:
        top = ax.secondary_xaxis(
            "top",
            functions=(
                lambda x: np.interp(x, steps, report.sigmas),
                lambda s: np.interp(s, report.sigmas[::-1], steps[::-1]),
            ),
        )
        picks = np.linspace(0, len(report.sigmas) - 1, min(5, len(report.sigmas))).round()
        top.set_xticks(sorted({round(report.sigmas[int(i)], 2) for i in picks}, reverse=True))
        top.set_xlabel("noise level sigma seen by the reward", fontsize="x-small")
        top.tick_params(labelsize="x-small")


def _errorbar(
    ax: Axes, report: SpreadReport, metric: str, label: str, dodge: float = 0.0, **style
) -> None:
    rows = np.array(report.summary[metric], dtype=float)  # [betas, (mean, low, high)]
    mean = rows[:, 0]
    below = np.nan_to_num(mean - rows[:, 1])
    above = np.nan_to_num(rows[:, 2] - mean)
    x = np.array(report.betas) + dodge  # dodged so that overlapping bars stay apart
    ax.errorbar(x, mean, yerr=[below, above], capsize=3, label=label, **style)


def _distance_panel(ax: Axes, report: SpreadReport) -> None:
    _errorbar(ax, report, "noise_distance", "starting noise", fmt="s--", color="0.5", ms=4)
    _errorbar(ax, report, "output_distance", "finished latents", fmt="o-", color="tab:green")
    ax.set_xlabel("candidate correlation beta (RGRP)")
    ax.set_ylabel("mean pairwise RMS distance per element")
    ax.set_title(f"how far {report.num_candidates} candidates land apart", fontsize="small")
    ax.set_ylim(bottom=0.0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper left")


def _evaluator_panel(ax: Axes, report: SpreadReport) -> None:
    _errorbar(
        ax, report, "evaluator_std", "std among candidates", -0.012, fmt="o-", color="tab:purple"
    )
    _errorbar(ax, report, "best_gain", "best candidate - first", fmt="^-", color="tab:orange")
    _errorbar(
        ax,
        report,
        "reward_pick_gain",
        f"{report.reward}'s pick - first",
        0.012,
        fmt="v-",
        color="tab:red",
    )
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xlabel("candidate correlation beta (RGRP)")
    ax.set_ylabel(f"{report.evaluator} (95% intervals)")
    ax.set_title(f"what there is to choose from ({report.evaluator})", fontsize="small")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper left")


def candidates_figure(
    frames: np.ndarray, betas: tuple[float, ...], path: str | Path | None = None
) -> Figure:
    """One frame of every finished candidate: a row per ``beta``, a column per candidate.

    ``frames`` is ``[len(betas), N, H, W, 3]`` uint8 (the middle frame of each video).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, columns = frames.shape[:2]
    aspect = frames.shape[3] / frames.shape[2]
    fig = Figure(figsize=(1.0 + 1.4 * columns * max(aspect, 0.5), 0.5 + 1.4 * rows), dpi=120)
    FigureCanvasAgg(fig)
    axes = np.atleast_2d(fig.subplots(rows, columns, squeeze=False))
    for r in range(rows):
        for c in range(columns):
            ax = axes[r, c]
            ax.imshow(frames[r, c], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("z (first)" if c == 0 else f"candidate {c + 1}", fontsize="x-small")
        axes[r, 0].set_ylabel(f"beta {betas[r]:g}", fontsize="small")
    fig.suptitle("middle frame of each finished candidate", fontsize="small")
    fig.tight_layout()
    if path is not None:
        fig.savefig(Path(path))
    return fig
