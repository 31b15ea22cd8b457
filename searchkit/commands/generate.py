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
from contextlib import contextmanager
from typing import Any

from searchkit import argtypes
from searchkit.errors import BudgetError, InputError
from searchkit.fielddoc import strip_markup
from searchkit.options import (
    add_augmented_arguments,
    add_config_arguments,
    add_evaluator_arguments,
    config_from_arguments,
    parse_evaluators,
    parse_key_values,
    with_flags,
)
from searchkit.validation import MAX_FPS
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
        description=strip_markup(__doc__),
    )
    parser.add_argument(
        "--backend", default="analytic", metavar="NAME", help="backend name (default: analytic)"
    )
    parser.add_argument(
        "--model-path",
        default=None,
        metavar="PATH",
        help="checkpoint folder for backends with weights",
    )
    parser.add_argument(
        "--backend-opt",
        action="append",
        metavar="KEY=VALUE",
        help="a backend option, e.g. num_steps=30 (repeatable; 'searchkit list NAME' lists them)",
    )
    parser.add_argument(
        "--reward", default=None, metavar="NAME", help="reward name (default: the backend's own)"
    )
    parser.add_argument(
        "--reward-opt",
        action="append",
        metavar="KEY=VALUE",
        help="a reward option (repeatable; 'searchkit list NAME' lists them)",
    )
    parser.add_argument(
        "--strategy",
        default="baseline",
        metavar="NAME",
        help="strategy name (default: baseline); with --help, also lists its options",
    )
    parser.add_argument(
        "--prompt",
        default=None,
        type=argtypes.prompt("--prompt"),
        help=f"the prompt (default: {DEFAULT_PROMPT!r})",
    )
    parser.add_argument(
        "--seed",
        type=argtypes.seed("--seed"),
        default=0,
        help="seed of the search's random generator, in [0, 2**64) (default: 0)",
    )
    parser.add_argument(
        "--budget-nfe",
        type=argtypes.integer("--budget-nfe", minimum=1),
        default=None,
        metavar="N",
        help="most model forwards the search may spend; below the strategy's expected cost "
        "it is refused before any compute (default: no limit)",
    )
    parser.add_argument("--out", default=None, metavar="DIR", help="output folder (one prompt)")
    parser.add_argument(
        "--format",
        choices=VIDEO_FORMATS,
        default="mp4",
        help=f"video as mp4 or PNG frames (one of: {', '.join(VIDEO_FORMATS)}; default: mp4)",
    )
    parser.add_argument(
        "--fps",
        type=argtypes.integer("--fps", minimum=1, maximum=MAX_FPS),
        default=16,
        help=f"frames per second of the mp4, in [1, {MAX_FPS}] (default: 16)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar (it is drawn only when stderr is a terminal)",
    )
    add_evaluator_arguments(parser)
    vbench = parser.add_argument_group("VBench-2.0 output")
    vbench.add_argument(
        "--prompts-file", default=None, metavar="FILE", help="VBench-2.0 prompt file (JSON list)"
    )
    vbench.add_argument(
        "--vbench-out", default=None, metavar="DIR", help="root of the per-dimension video folders"
    )
    add_augmented_arguments(vbench)
    vbench.add_argument(
        "--check-only", action="store_true", help="report missing and stray files; generate nothing"
    )
    strategy = _selected(argv, "--strategy", "baseline")
    if argv and argv[0] == "generate" and strategy in STRATEGIES:
        add_config_arguments(parser, STRATEGIES.get(strategy))
    parser.set_defaults(run=main, explain_unknown=explain_unknown)


def explain_unknown(flag: str, args: argparse.Namespace) -> str | None:
    """For an unknown ``flag`` that is an option of other strategies: which ones take it."""
    import attrs

    from searchkit.registry import STRATEGIES

    takers = []
    for name in STRATEGIES.names():
        cls = STRATEGIES.get(name)
        for field in attrs.fields(cls) if attrs.has(cls) else ():
            option = field.name.replace("_", "-")
            if field.init and flag in (f"--{option}", f"--no-{option}"):
                takers.append(name)
                break
    if not takers:
        return None
    return (
        f"{flag} is an option of {', '.join(takers)}, not of {args.strategy}: pass --strategy NAME"
    )


def main(args: argparse.Namespace) -> int:
    from searchkit.bench.runner import versions
    from searchkit.evaluation import build_evaluators, evaluate
    from searchkit.files import check_output_folder
    from searchkit.video_io import save_result

    if args.prompts_file is not None or args.vbench_out is not None:
        return _main_vbench(args)
    if args.augmented_prompts is not None or args.extender is not None:
        raise InputError("--augmented-prompts and --extender apply with --prompts-file only")
    if args.out is None:
        raise InputError("--out is required (or --prompts-file with --vbench-out)")
    check_output_folder(args.out, "--out folder")
    strategy, backend, reward = _build(args)
    check_budget(strategy, backend, args.budget_nfe)
    evaluators = build_evaluators(parse_evaluators(args.evaluator, args.evaluator_opt), backend)
    prompt = DEFAULT_PROMPT if args.prompt is None else args.prompt
    with _progress(strategy, backend, args.quiet):
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
        "graded_by": graded_by(reward.name, graded),
        "nfe": result.cost.nfe,
        "particle_steps": result.cost.particle_steps,
        "files": files,
    }
    print(json.dumps(summary, indent=2))
    return 0


def graded_by(search_reward: str, graded: dict[str, Any]) -> str:
    """Who graded the output, in words: held-out evaluators, or the search reward alone
    (self-graded), or both."""
    from searchkit.evaluation import SELF_GRADED

    if not graded:
        return (
            f"{SELF_GRADED}: only {search_reward!r} scored it; add --evaluator NAME for a "
            "held-out grade"
        )
    held_out = [name for name in graded if name != search_reward]
    if not held_out:
        return f"{SELF_GRADED}: the only evaluator is the search reward {search_reward!r}"
    text = f"held out: {', '.join(held_out)}"
    if search_reward in graded:
        text += f"; self-graded: {search_reward} (the search reward)"
    return text


def check_budget(strategy, backend, budget_nfe: int | None) -> None:
    """Refuse, before any compute, an NFE budget below the strategy's expected cost.

    Strategies with a deterministic cost (the baseline, best-of-N) would overspend for sure;
    for those that prune at random (RGRP) the expectation is what a budget must cover. A
    strategy that states no expected cost is left to the meter, which stops it before the
    step that would overspend.
    """
    if budget_nfe is None:
        return
    try:
        expected = strategy.expected_nfe(backend)
    except NotImplementedError:
        return
    if budget_nfe < expected:
        knob = f" or lower --{strategy.size_knob.replace('_', '-')}" if strategy.size_knob else ""
        raise BudgetError(
            f"--budget-nfe {budget_nfe} is below the {expected:.0f} NFE that {strategy.name} is "
            f"expected to spend on this backend ({backend.num_steps} steps, "
            f"{backend.forwards_per_step} forwards each); raise it{knob}"
        )


@contextmanager
def _progress(strategy, backend, quiet: bool):
    """A progress bar over the search's NFE while the block runs, on a terminal only."""
    from searchkit import progress

    if not progress.wanted(quiet):
        yield
        return
    try:
        total = strategy.expected_nfe(backend)
    except NotImplementedError:
        total = None
    bar = progress.ProgressBar(total, desc=strategy.name)
    try:
        with progress.observe(bar):
            yield
    finally:
        bar.close()


def _build(args: argparse.Namespace):
    from searchkit.builders import build_backend, build_reward
    from searchkit.registry import get_backend, get_reward, get_strategy

    strategy_cls = get_strategy(args.strategy)
    strategy = config_from_arguments(strategy_cls, args, f"strategy {args.strategy!r}")
    backend_options = parse_key_values(args.backend_opt, "--backend-opt", get_backend(args.backend))
    if args.model_path is not None:
        backend_options["model_path"] = args.model_path
    backend = build_backend(args.backend, **backend_options)
    reward_cls = get_reward(args.reward) if args.reward is not None else None
    reward_options = parse_key_values(args.reward_opt, "--reward-opt", reward_cls)
    reward = build_reward(args.reward, backend, **reward_options)
    strategy.checked_compatible(backend, reward)
    try:
        strategy.check_memory(backend)
    except InputError as error:
        raise with_flags(error, strategy_cls) from None
    return strategy, backend, reward


def _main_vbench(args: argparse.Namespace) -> int:
    """Fill ``--vbench-out`` with every video of ``--prompts-file``; 0 when nothing is missing."""
    from searchkit.bench import vbench
    from searchkit.files import check_output_folder

    if args.prompts_file is None or args.vbench_out is None:
        raise InputError("--prompts-file and --vbench-out go together")
    if args.prompt is not None or args.out is not None:
        raise InputError(
            "--prompt and --out do not apply with --prompts-file (prompts come from the file)"
        )
    if args.format != "mp4":
        raise InputError(f"--format must be mp4 for VBench-2.0 output, got {args.format!r}")
    if not args.check_only:
        check_output_folder(args.vbench_out, "--vbench-out folder")
    if args.extender is not None and args.augmented_prompts is None:
        raise InputError(
            f"--extender {args.extender!r} needs --augmented-prompts (VBench-2.0's prompts folder)"
        )
    augmented = None
    if args.augmented_prompts is not None:
        from searchkit.bench.augmented import DEFAULT_EXTENDER, AugmentedPrompts

        augmented = AugmentedPrompts(args.augmented_prompts, args.extender or DEFAULT_EXTENDER)
    plan = vbench.plan_videos(
        vbench.load_vbench_prompts(args.prompts_file, augmented),
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
                # only where given, so that earlier output folders are still claimed as theirs
                **({"extender": augmented.extender} if augmented is not None else {}),
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
