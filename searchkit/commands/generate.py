"""``searchkit generate``: run one strategy on one prompt and write the video and a report.

Strategy options are generated from the strategy's attrs fields (``--num-particles 6``);
``searchkit generate --strategy rgrp --help`` lists them. Backend and reward options are
``--backend-opt KEY=VALUE`` and ``--reward-opt KEY=VALUE``; ``--model-path`` is passed to
backends that load weights.

With ``--prompts-file FILE --vbench-out DIR`` it runs over a VBench-2.0 prompt file instead
and writes every video VBench-2.0's evaluation reads (one folder per dimension, 3 videos per
prompt, 20 for Diversity; see ``searchkit.bench.vbench``). Finished videos are skipped, so an
interrupted run resumes; ``--check-only`` only reports missing and stray files.
"""

from __future__ import annotations

import argparse
import json
import sys

from searchkit.options import (
    add_config_arguments,
    add_evaluator_arguments,
    config_from_namespace,
    parse_evaluators,
    parse_key_values,
)
from searchkit.video_io import VIDEO_FORMATS

DEFAULT_PROMPT = "a red fox running through fresh snow"


def _selected(argv: list[str], flag: str, default: str) -> str:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return default


def add_parser(subparsers, argv: list[str]) -> None:
    import searchkit  # noqa: F401  (register built-ins)
    from searchkit.registry import STRATEGIES

    parser = subparsers.add_parser(
        "generate",
        help="search for one video",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--backend", default="analytic", help="backend name (default: analytic)")
    parser.add_argument(
        "--model-path", default=None, help="checkpoint folder for backends with weights"
    )
    parser.add_argument(
        "--backend-opt", action="append", metavar="KEY=VALUE", help="backend option"
    )
    parser.add_argument("--reward", default=None, help="reward name (default: the backend's own)")
    parser.add_argument("--reward-opt", action="append", metavar="KEY=VALUE", help="reward option")
    parser.add_argument("--strategy", default="baseline", help="strategy name (default: baseline)")
    parser.add_argument("--prompt", default=None, help=f"the prompt (default: {DEFAULT_PROMPT!r})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--budget-nfe", type=int, default=None, help="raise if the search needs more NFE"
    )
    parser.add_argument("--out", default=None, help="output folder (one prompt)")
    parser.add_argument(
        "--format", choices=VIDEO_FORMATS, default="mp4", help="video as mp4 or PNG frames"
    )
    parser.add_argument("--fps", type=int, default=16)
    add_evaluator_arguments(parser)
    vbench = parser.add_argument_group("VBench-2.0 output")
    vbench.add_argument("--prompts-file", default=None, help="VBench-2.0 prompt file (JSON list)")
    vbench.add_argument(
        "--vbench-out", default=None, help="root of the per-dimension video folders"
    )
    vbench.add_argument(
        "--no-augmented",
        action="store_true",
        help="send prompt_en even where a record has prompt_aug",
    )
    vbench.add_argument(
        "--check-only", action="store_true", help="report missing and stray files; generate nothing"
    )
    strategy = _selected(argv, "--strategy", "baseline")
    if argv and argv[0] == "generate" and strategy in STRATEGIES:
        add_config_arguments(parser, STRATEGIES.get(strategy))
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    from searchkit.bench.runner import versions
    from searchkit.evaluation import build_evaluators, evaluate
    from searchkit.video_io import save_result

    if args.prompts_file is not None or args.vbench_out is not None:
        return _main_vbench(args)
    if args.out is None:
        raise ValueError("--out is required (or --prompts-file with --vbench-out)")
    strategy, backend, reward = _build(args)
    evaluators = build_evaluators(parse_evaluators(args.evaluator, args.evaluator_opt), backend)
    prompt = DEFAULT_PROMPT if args.prompt is None else args.prompt
    result = strategy.run(backend, reward, prompt, seed=args.seed, budget_nfe=args.budget_nfe)
    graded = evaluate(evaluators, backend, result)
    if backend.has_oracle:
        graded = {
            "oracle": {"total": float(backend.oracle(result.latents[None], prompt)[0])},
            **graded,
        }
    files = save_result(
        result,
        args.out,
        video_format=args.format,
        fps=args.fps,
        extra={
            "backend": backend.config_dict(),
            "reward_config": reward.config_dict(),
            "evaluators": graded,
            "versions": versions(),
        },
    )
    summary = {
        "strategy": result.strategy,
        "reward": result.reward,
        "scores": dict(zip(result.dimensions, result.scores.tolist(), strict=True)),
        "evaluators": {name: g["total"] for name, g in graded.items()},
        "nfe": result.cost.nfe,
        "particle_steps": result.cost.particle_steps,
        "files": files,
    }
    print(json.dumps(summary, indent=2))
    return 0


def _build(args: argparse.Namespace):
    from searchkit.builders import build_backend, build_reward
    from searchkit.registry import get_strategy

    strategy_cls = get_strategy(args.strategy)
    strategy = strategy_cls(**config_from_namespace(strategy_cls, args))
    backend_options = parse_key_values(args.backend_opt, "--backend-opt")
    if args.model_path is not None:
        backend_options["model_path"] = args.model_path
    backend = build_backend(args.backend, **backend_options)
    reward = build_reward(args.reward, backend, **parse_key_values(args.reward_opt, "--reward-opt"))
    return strategy, backend, reward


def _main_vbench(args: argparse.Namespace) -> int:
    """Fill ``--vbench-out`` with every video of ``--prompts-file``; 0 when nothing is missing."""
    from searchkit.bench import vbench

    if args.prompts_file is None or args.vbench_out is None:
        raise ValueError("--prompts-file and --vbench-out go together")
    if args.prompt is not None or args.out is not None:
        raise ValueError(
            "--prompt and --out do not apply with --prompts-file (prompts come from the file)"
        )
    if args.format != "mp4":
        raise ValueError(f"--format must be mp4 for VBench-2.0 output, got {args.format!r}")
    plan = vbench.plan_videos(
        vbench.load_vbench_prompts(args.prompts_file),
        seed=args.seed,
        augmented=not args.no_augmented,
    )
    written = skipped = 0
    if not args.check_only:
        strategy, backend, reward = _build(args)
        vbench.claim_output(
            args.vbench_out,
            {
                "strategy": strategy.name,
                "config": strategy.config_dict(),
                "backend": backend.config_dict(),
                "reward": reward.config_dict(),
                "seed": args.seed,
                "budget_nfe": args.budget_nfe,
                "fps": args.fps,
                "augmented": not args.no_augmented,
            },
        )
        for slot in plan:
            if vbench.is_complete(slot.path(args.vbench_out)):
                skipped += 1
                continue
            result = strategy.run(
                backend, reward, slot.prompt, seed=slot.seed, budget_nfe=args.budget_nfe
            )
            vbench.save_vbench_video(result.video, slot, args.vbench_out, fps=args.fps)
            written += 1
    report = vbench.check_layout(plan, args.vbench_out)
    print(json.dumps({"written": written, "skipped": skipped, **report.to_dict()}, indent=2))
    print(report.describe(limit=20), file=sys.stderr)
    return 0 if report.ok else 1
