"""``searchkit generate``: run one strategy on one prompt and write the video and a report.

Strategy options are generated from the strategy's attrs fields (``--num-particles 6``);
``searchkit generate --strategy rgrp --help`` lists them. Backend and reward options are
``--backend-opt KEY=VALUE`` and ``--reward-opt KEY=VALUE``; ``--model-path`` is passed to
backends that load weights.
"""

from __future__ import annotations

import argparse
import json

from searchkit.options import (
    add_config_arguments,
    add_evaluator_arguments,
    config_from_namespace,
    parse_evaluators,
    parse_key_values,
)
from searchkit.video_io import VIDEO_FORMATS


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
        "generate", help="search for one video", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--backend", default="analytic", help="backend name (default: analytic)")
    parser.add_argument("--model-path", default=None, help="checkpoint folder for backends with weights")
    parser.add_argument("--backend-opt", action="append", metavar="KEY=VALUE", help="backend option")
    parser.add_argument("--reward", default=None, help="reward name (default: the backend's own)")
    parser.add_argument("--reward-opt", action="append", metavar="KEY=VALUE", help="reward option")
    parser.add_argument("--strategy", default="baseline", help="strategy name (default: baseline)")
    parser.add_argument("--prompt", default="a red fox running through fresh snow")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-nfe", type=int, default=None, help="raise if the search needs more NFE")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--format", choices=VIDEO_FORMATS, default="mp4", help="video as mp4 or PNG frames")
    parser.add_argument("--fps", type=int, default=16)
    add_evaluator_arguments(parser)
    strategy = _selected(argv, "--strategy", "baseline")
    if argv and argv[0] == "generate" and strategy in STRATEGIES:
        add_config_arguments(parser, STRATEGIES.get(strategy))
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    from searchkit.bench.runner import versions
    from searchkit.builders import build_backend, build_reward
    from searchkit.evaluation import build_evaluators, evaluate
    from searchkit.registry import get_strategy
    from searchkit.video_io import save_result

    strategy_cls = get_strategy(args.strategy)
    strategy = strategy_cls(**config_from_namespace(strategy_cls, args))
    backend_options = parse_key_values(args.backend_opt, "--backend-opt")
    if args.model_path is not None:
        backend_options["model_path"] = args.model_path
    backend = build_backend(args.backend, **backend_options)
    reward = build_reward(args.reward, backend, **parse_key_values(args.reward_opt, "--reward-opt"))
    evaluators = build_evaluators(parse_evaluators(args.evaluator, args.evaluator_opt), backend)
    result = strategy.run(backend, reward, args.prompt, seed=args.seed, budget_nfe=args.budget_nfe)
    graded = evaluate(evaluators, backend, result)
    if backend.has_oracle:
        graded = {"oracle": {"total": float(backend.oracle(result.latents[None], args.prompt)[0])}, **graded}
    files = save_result(result, args.out, video_format=args.format, fps=args.fps,
                        extra={"backend": backend.config_dict(), "reward_config": reward.config_dict(),
                               "evaluators": graded, "versions": versions()})
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
