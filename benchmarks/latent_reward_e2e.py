"""The latent reward model end to end on the analytic world: collect, train, evaluate, search.

1. Collect trajectories of ``--prompts`` prompts x ``--seeds`` seeds (50 UniPC steps), storing
   ``x_t`` and the predicted ``x0`` after steps 5, 10, ..., 45 and the final per-dimension
   reward from the analytic teacher (exact VQ, MQ, TA of the final clean latent).
2. Train a :class:`LatentRewardModel` on the training prompts (80/20 prompt split).
3. Evaluate per step on the held-out prompts: pairwise accuracy against the final reward and
   Spearman's rho, for the learned model and for the teacher applied to the predicted x0.
4. Search on held-out prompts and fresh seeds: RGRP (N = 6, schedule (10, 15, 20)) guided by
   the learned model against Baseline, scored by the oracle
   (``backend.oracle(result.latents[None], prompt)``), with one-sided paired tests
   (Wilcoxon signed-rank and paired t, scipy). RGRP guided by the teacher on x0 is shown
   for reference.

Every stage is resumable (rerun the same command); runs with ``--input latent`` and
``--input x0`` share the collected data. Results go to ``--out``: ``eval_{input}.json``,
``eval_{input}.png`` and ``e2e_{input}.json``. About 3 minutes on 2 CPU cores.

    python benchmarks/latent_reward_e2e.py --out runs/lrm_e2e
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/latent_reward_e2e")
    parser.add_argument("--prompts", type=int, default=160)
    parser.add_argument("--seeds", type=int, default=8, help="trajectories per prompt")
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 15, 20, 25, 30, 35, 40, 45])
    parser.add_argument("--input", choices=("latent", "x0"), default="latent")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument(
        "--search-seeds", type=int, default=256, help="paired RGRP/Baseline runs (>= 64)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1 is fastest for these small tensors on a shared machine)",
    )
    args = parser.parse_args(argv)
    if args.search_seeds < 64:
        raise ValueError(f"--search-seeds must be at least 64, got {args.search_seeds}")
    torch.set_num_threads(args.threads)

    from scipy import stats

    from searchkit import RGRP, Baseline
    from searchkit.backends import AnalyticBackend
    from searchkit.rewards import AnalyticReward, LatentRewardModel
    from searchkit.rewards.latent import (
        CollectConfig,
        TrainConfig,
        collect,
        evaluate,
        plot_report,
        read_latent_dataset,
        train,
    )

    out = Path(args.out)
    backend = AnalyticBackend()
    teacher = AnalyticReward(backend)
    timings = {}

    # 1. collect
    start = time.perf_counter()
    prompts = [f"scene {i}" for i in range(args.prompts)]
    summary = collect(
        backend,
        teacher,
        prompts,
        out / "data",
        CollectConfig(steps=tuple(args.steps), seeds=tuple(range(args.seeds))),
        progress=True,
    )
    timings["collect_s"] = time.perf_counter() - start
    print(
        f"collected {summary.written} new trajectories ({summary.skipped} present) "
        f"in {timings['collect_s']:.1f} s"
    )

    # 2. train
    start = time.perf_counter()
    dataset = read_latent_dataset(out / "data")
    model = LatentRewardModel.for_backend(
        backend,
        input=args.input,
        width=args.width,
        depth=args.depth,
        generator=torch.Generator().manual_seed(0),
    )
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, group_size=8, lr=args.lr)
    result = train(model, dataset, backend, out / f"train_{args.input}", config, progress=True)
    timings["train_s"] = time.perf_counter() - start
    model = result.model
    val_prompts = model.extra["training"]["split"]["val"]
    print(
        f"trained in {timings['train_s']:.1f} s; best epoch {result.best_epoch}, "
        f"validation pairwise accuracy {result.best_accuracy:.3f}"
    )

    # 3. evaluate on held-out prompts
    start = time.perf_counter()
    report = evaluate(model, dataset.subset(val_prompts), backend, teacher=teacher)
    timings["eval_s"] = time.perf_counter() - start
    (out / f"eval_{args.input}.json").write_text(json.dumps(report.to_dict(), indent=2))
    plot_report(report, out / f"eval_{args.input}.png")
    print(
        f"\nper step on {len(val_prompts)} held-out prompts x {args.seeds} seeds "
        f"(t{{j}}: after step j of {backend.num_steps}):"
    )
    print(report.table())
    rows = {r.step: r for r in report.rows}
    accuracy = [r.learned_accuracy for r in report.rows]
    trend = stats.spearmanr([r.step for r in report.rows], accuracy).statistic
    print(
        f"rank correlation of learned accuracy with step: {trend:.2f}; "
        f"first -> last step: {accuracy[0]:.3f} -> {accuracy[-1]:.3f}"
    )
    for step in (10, 15, 20):
        if step in rows:
            print(
                f"  t{step}: learned {rows[step].learned_accuracy:.3f} (chance 0.5), "
                f"teacher on x0 {rows[step].teacher_accuracy:.3f}"
            )

    # 4. search: RGRP guided by the learned model vs Baseline, scored by the oracle
    start = time.perf_counter()
    rgrp = RGRP(num_particles=6, schedule=(10, 15, 20))
    lrm_scores, base_scores, teacher_scores, nfe_rgrp, nfe_teacher = [], [], [], [], []
    for i in range(args.search_seeds):
        prompt = val_prompts[i % len(val_prompts)]
        seed = 100_000 + i
        guided = rgrp.run(backend, model, prompt, seed=seed)
        base = Baseline().run(backend, model, prompt, seed=seed)
        reference = rgrp.run(backend, teacher, prompt, seed=seed)
        lrm_scores.append(float(backend.oracle(guided.latents[None], prompt)[0]))
        base_scores.append(float(backend.oracle(base.latents[None], prompt)[0]))
        teacher_scores.append(float(backend.oracle(reference.latents[None], prompt)[0]))
        nfe_rgrp.append(guided.cost.nfe)
        nfe_teacher.append(reference.cost.nfe)
    timings["search_s"] = time.perf_counter() - start
    lrm_t, base_t, teacher_t = (
        torch.tensor(x, dtype=torch.float64) for x in (lrm_scores, base_scores, teacher_scores)
    )
    diff = lrm_t - base_t
    wilcoxon = stats.wilcoxon(
        lrm_t.numpy(), base_t.numpy(), alternative="greater", zero_method="wilcox"
    )
    ttest = stats.ttest_rel(lrm_t.numpy(), base_t.numpy(), alternative="greater")
    ref_ttest = stats.ttest_rel(teacher_t.numpy(), base_t.numpy(), alternative="greater")
    n = args.search_seeds
    print(f"\noracle reward over {n} paired runs on held-out prompts (fresh seeds):")
    print(f"  Baseline                         {base_t.mean():.4f}  (NFE {2 * backend.num_steps})")
    print(
        f"  RGRP + learned latent model      {lrm_t.mean():.4f}  (mean NFE {sum(nfe_rgrp) / n:.1f})"
    )
    print(
        f"  RGRP + teacher on x0 (reference) {teacher_t.mean():.4f}  (mean NFE {sum(nfe_teacher) / n:.1f})"
    )
    print(
        f"  RGRP(learned) - Baseline: mean {diff.mean():.4f} +- {diff.std() / n**0.5:.4f} (s.e.), "
        f"wins {int((diff > 0).sum())}, ties {int((diff == 0).sum())}, losses {int((diff < 0).sum())}"
    )
    print(
        f"  one-sided Wilcoxon signed-rank p = {wilcoxon.pvalue:.2e}; paired t p = {ttest.pvalue:.2e}"
    )
    print(
        f"  (reference: RGRP + teacher - Baseline {float((teacher_t - base_t).mean()):.4f}, "
        f"paired t p = {ref_ttest.pvalue:.2e})"
    )
    print("timings: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    results = {
        "eval": report.to_dict(),
        "accuracy_step_rank_correlation": float(trend),
        "search": {
            "seeds": n,
            "baseline_mean": float(base_t.mean()),
            "rgrp_learned_mean": float(lrm_t.mean()),
            "rgrp_teacher_mean": float(teacher_t.mean()),
            "diff_mean": float(diff.mean()),
            "diff_se": float(diff.std() / n**0.5),
            "wins": int((diff > 0).sum()),
            "ties": int((diff == 0).sum()),
            "losses": int((diff < 0).sum()),
            "wilcoxon_p": float(wilcoxon.pvalue),
            "paired_t_p": float(ttest.pvalue),
            "teacher_paired_t_p": float(ref_ttest.pvalue),
            "mean_nfe_rgrp": sum(nfe_rgrp) / n,
        },
        "config": vars(args),
        "timings_s": timings,
    }
    (out / f"e2e_{args.input}.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
