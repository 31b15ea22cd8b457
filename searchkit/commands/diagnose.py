"""``searchkit diagnose``: where a search can prune, and how far apart its candidates start.

Runs two diagnostics on any backend and search reward and writes, into ``--out``,
``diagnose.json``, the figure ``diagnose.png`` and ``candidates.png`` (one frame of every
finished candidate per beta, first prompt and seed):

* predictivity by step: Spearman's rho, across seeds, between the search reward after each
  step and the evaluator's score of the finished output, with 95% bootstrap intervals;
* candidate spread: for each beta of a grid, how far RGRP's correlated candidates land
  apart and how much the evaluator varies among them.

The evaluator is the backend's oracle (the analytic world) or ``--evaluator NAME``.

Examples:
  searchkit diagnose --out diagnosis/                       # analytic world, proxy reward
  searchkit diagnose --reward analytic --seeds 64 --steps 9,14,19,29,49 --out d/
  searchkit diagnose --backend wan --backend-opt tiny=true --reward pixel \\
      --evaluator pixel --seeds 4 --steps 0,1 --betas 0.1,1 --out d/
"""

from __future__ import annotations

import argparse
import json

from searchkit import argtypes
from searchkit.errors import InputError
from searchkit.fielddoc import strip_markup
from searchkit.options import add_evaluator_arguments

DEFAULT_PROMPT = "a red fox running through fresh snow"


def add_parser(subparsers, argv: list[str]) -> None:
    parser = subparsers.add_parser(
        "diagnose",
        help="predictivity of the reward by step and spread of correlated candidates",
        description=strip_markup(__doc__),
    )
    parser.add_argument("--backend", default="analytic", help="backend name (default: analytic)")
    parser.add_argument(
        "--model-path", default=None, help="checkpoint folder for backends with weights"
    )
    parser.add_argument(
        "--backend-opt", action="append", metavar="KEY=VALUE", help="backend option"
    )
    parser.add_argument(
        "--reward", default=None, help="search reward name (default: the backend's own)"
    )
    parser.add_argument("--reward-opt", action="append", metavar="KEY=VALUE", help="reward option")
    add_evaluator_arguments(parser)
    parser.add_argument(
        "--prompt",
        action="append",
        default=None,
        help=f"a prompt (repeatable; default: {DEFAULT_PROMPT!r})",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=32,
        metavar="N",
        help="seeds 0..N-1 per prompt (default: 32)",
    )
    parser.add_argument(
        "--steps",
        type=argtypes.sequence("--steps", argtypes.integer("--steps", minimum=0), example="4,9"),
        default=None,
        metavar="J,K,...",
        help="0-based steps after which the reward is scored (default: every step)",
    )
    parser.add_argument(
        "--score-input",
        choices=("latent", "x0"),
        default=None,
        help="what a latent-space reward sees (one of: latent, x0; default: its own declaration)",
    )
    parser.add_argument(
        "--betas",
        type=argtypes.sequence(
            "--betas", argtypes.number("--betas"), kind="numbers", example="0.1,1"
        ),
        default=None,
        metavar="B,...",
        help="candidate correlations to try (default: 0.05,0.1,0.2,0.4,0.7,1)",
    )
    parser.add_argument(
        "--candidates", type=int, default=6, metavar="N", help="RGRP's N per group (default: 6)"
    )
    parser.add_argument(
        "--spread-seeds",
        type=int,
        default=None,
        metavar="N",
        help="seeds per prompt for the spread (default: half of --seeds, at least 2)",
    )
    parser.add_argument(
        "--only",
        choices=("predictivity", "spread"),
        default=None,
        help="run one diagnostic (one of: predictivity, spread; default: both)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=16, help="trajectories denoised together (default: 16)"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    from searchkit.builders import build_backend, build_reward
    from searchkit.diagnostics import (
        DEFAULT_BETAS,
        candidate_spread,
        predictivity,
        write_diagnosis,
    )
    from searchkit.diagnostics.common import MAX_SEEDS
    from searchkit.evaluation import build_evaluators
    from searchkit.files import check_output_folder
    from searchkit.memory import check_particle_memory
    from searchkit.options import parse_evaluators, parse_key_values

    check_output_folder(args.out, "--out folder")
    evaluators = parse_evaluators(args.evaluator, args.evaluator_opt)
    if len(evaluators) > 1:
        names = ", ".join(name for name, _ in evaluators)
        raise InputError(f"--evaluator takes one evaluator for diagnose, got {names}")
    from searchkit.diagnostics.predictivity import MIN_SEEDS as RANKED_SEEDS
    from searchkit.diagnostics.spread import MIN_SEEDS as SPREAD_SEEDS

    for flag, value, minimum in (
        ("--seeds", args.seeds, SPREAD_SEEDS if args.only == "spread" else RANKED_SEEDS),
        ("--spread-seeds", args.spread_seeds, SPREAD_SEEDS),
        ("--candidates", args.candidates, 2),
    ):
        if value is not None and value < minimum:
            raise InputError(f"{flag} must be at least {minimum}, got {value}")
    for flag, value in (("--seeds", args.seeds), ("--spread-seeds", args.spread_seeds)):
        if value is not None and value > MAX_SEEDS:
            raise InputError(f"{flag} must be at most {MAX_SEEDS}, got {value}")
    prompts = args.prompt or [DEFAULT_PROMPT]
    backend_options = parse_key_values(args.backend_opt, "--backend-opt")
    if args.model_path is not None:
        backend_options["model_path"] = args.model_path
    backend = build_backend(args.backend, **backend_options)
    reward = build_reward(args.reward, backend, **parse_key_values(args.reward_opt, "--reward-opt"))
    evaluator = next(iter(build_evaluators(evaluators, backend).values()), None)
    if args.only != "predictivity":  # the spread holds every beta's candidates at once
        betas = args.betas or DEFAULT_BETAS
        check_particle_memory(
            backend, len(betas) * args.candidates, "--candidates", args.candidates
        )

    pred = spread = None
    if args.only != "spread":
        pred = _with_flags(
            {"seeds": "--seeds", "steps": "--steps"},
            predictivity,
            backend,
            reward,
            prompts,
            seeds=args.seeds,
            steps=args.steps,
            evaluator=evaluator,
            score_input=args.score_input,
            batch_size=args.batch_size,
        )
    if args.only != "predictivity":
        spread = _with_flags(
            {"seeds": "--spread-seeds" if args.spread_seeds else "--seeds", "betas": "--betas"},
            candidate_spread,
            backend,
            reward,
            prompts,
            seeds=args.spread_seeds or max(2, args.seeds // 2),
            betas=args.betas or DEFAULT_BETAS,
            num_candidates=args.candidates,
            evaluator=evaluator,
            keep_outputs=True,
        )
    files = write_diagnosis(
        args.out,
        predictivity=pred,
        spread=spread,
        backend=backend,
        extra={"backend": backend.config_dict(), "reward_config": reward.config_dict()},
        title=f"{backend.name} · search reward {reward.name}",
    )
    print(json.dumps(_summary(pred, spread, files), indent=2))
    return 0


def _with_flags(flags: dict[str, str], call, *args, **kwargs):
    """``call(*args, **kwargs)``; a refused keyword's message names its flag instead."""
    try:
        return call(*args, **kwargs)
    except InputError as error:
        text = str(error)
        for keyword, flag in flags.items():
            if text.startswith(f"{keyword} "):
                raise InputError(flag + text[len(keyword) :]) from None
        raise


def _summary(pred, spread, files: dict[str, str]) -> dict:
    summary: dict = {}
    if pred is not None:
        summary["predictivity"] = {
            "evaluator": pred.evaluator,
            "interval": pred.interval,
            "rho_by_step": {
                str(step): [round(r, 3), round(lo, 3), round(hi, 3)]
                for step, r, lo, hi in zip(
                    pred.steps, pred.rho, pred.ci_low, pred.ci_high, strict=True
                )
            },
        }
    if spread is not None:
        summary["spread"] = {
            "evaluator": spread.evaluator,
            "by_beta": {
                f"{beta:g}": {
                    metric: round(rows[i][0], 4) for metric, rows in spread.summary.items()
                }
                for i, beta in enumerate(spread.betas)
            },
        }
    summary["files"] = files
    return summary
