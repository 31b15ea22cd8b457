"""``searchkit bench``: compare search strategies at equal compute.

Runs a sweep (strategies x NFE budgets x prompts x seeds) and writes, into the output
folder, one JSON line per run (``results.jsonl``), the summary (``summary.md``,
``summary.csv``; printed too: a quality table, where the best strategy at each budget is
marked and every other one gets its paired difference to the best with a 95% interval and
its win rates against the best and the baseline, and a cost table: NFE, FLOPs, seconds per
video and their split, time over the baseline's) and the figure ``reward_vs_nfe.png``
(quality against NFE, seconds and FLOPs, Pareto fronts marked). With no arguments it runs
the analytic default sweep, which needs no weights.

Examples:
  searchkit bench                                   # the analytic default sweep
  searchkit bench --config rgrp_beta                # a shipped sweep, by name
  searchkit bench --resume                          # finish a sweep that was interrupted
  searchkit bench --config wan2.1 --prompts-file vbench2.json --dimension Human_Anatomy
  searchkit bench --workers 1                       # every run in this process, in plan order
  searchkit bench --executor ray --address auto     # one Ray task per run, on a cluster
  searchkit bench --config latsearch-paper --model-path ckpt/wan2.1-t2v-1.3b \
      --prompts-file VBench2_full_info.json --seeds vbench --save-videos \
      --reward-opt video-reward:path=ckpt/VideoReward ...   # the paper's table (docs/paper.md)
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from searchkit import argtypes
from searchkit.errors import InputError
from searchkit.fielddoc import strip_markup
from searchkit.options import add_augmented_arguments, add_evaluator_arguments
from searchkit.validation import MAX_FPS


def add_parser(subparsers, argv: list[str]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="equal-compute benchmark of search strategies",
        description=strip_markup(__doc__),
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="sweep configuration: a JSON file or, when no such file exists, "
        "the name of a shipped one (analytic, latsearch-paper, rgrp_beta, sd3.5, "
        "wan2.1; default: analytic)",
    )
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output folder (default: bench-results/<config name>)",
    )
    again = parser.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="keep the folder's results and run only what is missing",
    )
    again.add_argument(
        "--force", action="store_true", help="delete the folder's results and start over"
    )
    parser.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="run here or as Ray tasks (one of: local, ray; default: local)",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default="auto",
        metavar="N|auto",
        help="local executor: the processes the searches run in; auto: one per torch_threads "
        "cores when the sweep sets torch_threads and has a hundred runs or more per process "
        "to do, else 1 (default: auto)",
    )
    parser.add_argument(
        "--address",
        default=None,
        metavar="ADDR",
        help="Ray cluster address (default: RAY_ADDRESS or a new local instance)",
    )
    parser.add_argument(
        "--retries",
        type=argtypes.integer("--retries", minimum=0),
        default=2,
        help="Ray: times a failed run is submitted again (default: 2)",
    )
    parser.add_argument(
        "--seeds",
        type=_seeds,
        default=None,
        metavar="N|vbench",
        help="use seeds 0..N-1 instead of the config's; 'vbench': VBench-2.0's samples per "
        "prompt (3, and 20 for Diversity prompts)",
    )
    parser.add_argument(
        "--prompts-file",
        default=None,
        metavar="F",
        help="VBench-style JSON prompts (records with prompt_en, dimension)",
    )
    parser.add_argument(
        "--dimension",
        default=None,
        metavar="D",
        help="keep the prompts of this VBench dimension (with --prompts-file)",
    )
    parser.add_argument(
        "--max-prompts",
        type=argtypes.integer("--max-prompts", minimum=1),
        default=None,
        metavar="N",
        help="keep the first N prompts of --prompts-file",
    )
    add_augmented_arguments(parser)
    parser.add_argument(
        "--model-path",
        default=None,
        metavar="PATH",
        help="checkpoint folder, for backends with weights (wan)",
    )
    parser.add_argument(
        "--backend-opt",
        action="append",
        metavar="KEY=VALUE",
        help="override a backend option of the config",
    )
    parser.add_argument(
        "--reward-opt",
        action="append",
        metavar="NAME:KEY=VALUE",
        help="an option of every reward NAME in the sweep (search reward, an entry's reward, "
        "an evaluator), e.g. video-reward:path=ckpt/VideoReward",
    )
    add_evaluator_arguments(parser)
    parser.add_argument(
        "--save-videos",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="write every output video in VBench-2.0's layout, one folder per configuration "
        "(default DIR: <out>/videos)",
    )
    parser.add_argument(
        "--fps",
        type=argtypes.integer("--fps", minimum=1, maximum=MAX_FPS),
        default=16,
        help=f"frame rate of the saved videos, in [1, {MAX_FPS}] (default: 16, Wan2.1's)",
    )
    parser.add_argument(
        "--metric",
        default=None,
        metavar="NAME",
        help="what the summary reports: oracle, reward (self-graded) or an "
        "evaluator's name (default: the oracle if the backend has one, else "
        "the first evaluator, else the search reward)",
    )
    parser.add_argument("--no-progress", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(
        run=main, on_interrupt="the finished runs are kept: rerun with --resume to run the rest"
    )


def _seeds(value: str) -> int | str:
    from searchkit.bench.config import VBENCH_SEEDS

    if value.strip() == VBENCH_SEEDS:
        return VBENCH_SEEDS
    try:
        count = int(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--seeds must be a count or {VBENCH_SEEDS!r}, got {value!r}"
        ) from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"--seeds must be >= 1, got {count}")
    return count


def _workers(value: str) -> int | str:
    if value.strip() == "auto":
        return "auto"
    return argtypes.integer("--workers", minimum=1)(value)


def _reward_options(pairs: list[str] | None) -> dict[str, dict]:
    """``--reward-opt NAME:KEY=VALUE`` (repeated) as ``{name: {key: value}}``."""
    from searchkit.options import parse_key_values

    options: dict[str, dict] = {}
    for pair in pairs or []:
        name, sep, rest = pair.partition(":")
        if not sep or not name:
            raise InputError(f"--reward-opt must be NAME:KEY=VALUE, got {pair!r}")
        options.setdefault(name, {}).update(parse_key_values([rest], "--reward-opt"))
    return options


#: Fields of a sweep that bench's flags set in place of the file's, and those flags: a
#: message of :func:`~searchkit.bench.load_config` that starts with the field names the flag.
FLAG_FOR_FIELD: dict[str, str] = {
    "evaluators[].name": "--evaluator",
    "evaluators[].options": "--evaluator-opt",
    "evaluators": "--evaluator",
    "metric": "--metric",
    "seeds": "--seeds",
    "dimension": "--dimension",
    "max_prompts": "--max-prompts",
}


def _with_flags(load, *args, **kwargs):
    """``load(*args, **kwargs)``; a refused value given by a flag is named as that flag."""
    from searchkit.errors import ConfigError

    try:
        return load(*args, **kwargs)
    except ConfigError as error:
        text = str(error)
        for field, flag in FLAG_FOR_FIELD.items():
            if text.startswith((f"{field} ", f"{field}:")):
                raise ConfigError(flag + text[len(field) :]) from None
        raise


def main(args: argparse.Namespace) -> int:
    from searchkit.bench import format_table, load_config, run_sweep
    from searchkit.bench.store import RESULTS_FILE
    from searchkit.bench.sweep import grading
    from searchkit.files import check_output_folder
    from searchkit.options import parse_evaluators, parse_key_values

    backend_options = parse_key_values(args.backend_opt, "--backend-opt")
    if args.model_path is not None:
        backend_options["model_path"] = args.model_path
    config = _with_flags(
        load_config,
        args.config,
        seeds=args.seeds,
        prompts_file=args.prompts_file,
        dimension=args.dimension,
        max_prompts=args.max_prompts,
        backend_options=backend_options,
        evaluators=parse_evaluators(args.evaluator, args.evaluator_opt),
        metric=args.metric,
        reward_options=_reward_options(args.reward_opt),
        prompt_aug_dir=args.augmented_prompts,
        prompt_aug_extender=args.extender,
        use_prompt_aug=False if args.no_augmented else None,
    )
    if args.executor != "ray" and args.address is not None:
        raise InputError("--address is for --executor ray")
    if args.executor != "local" and args.workers != "auto":
        raise InputError("--workers is for --executor local")
    out = args.out if args.out is not None else f"bench-results/{config.name}"
    check_output_folder(out, "--out folder")
    videos = args.save_videos
    if videos == "":
        from searchkit.bench.videos import VIDEOS_DIR

        videos = f"{out}/{VIDEOS_DIR}"
    if videos is not None:
        check_output_folder(videos, "--save-videos folder")
    if args.resume and not (Path(out) / RESULTS_FILE).is_file():
        print(f"searchkit bench: nothing to resume in {out!r}; starting a fresh sweep")

    logging.basicConfig(level=logging.INFO, format="searchkit: %(message)s")
    try:
        outcome = run_sweep(
            config,
            out,
            resume=args.resume,
            force=args.force,
            executor=args.executor,
            address=args.address,
            retries=args.retries,
            workers=args.workers,
            progress=not args.no_progress,
            save_videos=videos,
            fps=args.fps,
        )
    except ImportError as error:  # an executor whose package is not installed
        print(f"searchkit: error: {error}", file=sys.stderr)
        return 2
    if outcome.cells:
        print(format_table(outcome.cells))
    metric = outcome.cells[0].metric if outcome.cells else "-"
    print(
        f"\n{len(outcome.rows)} of {outcome.planned} runs ({outcome.reused} reused) in "
        f"{outcome.seconds:.1f} s"
        + (f" ({outcome.workers} worker processes)" if outcome.workers > 1 else "")
        + f"; metric: {metric}"
        + ("" if metric == "-" else grading(config, metric))
    )
    for name, path in outcome.files.items():
        print(f"{name + ':':<9} {path}")
    if outcome.videos is not None:
        from searchkit.bench.videos import describe_reports

        print(f"{'videos:':<9} {videos}")
        if outcome.rerun_for_videos:
            print(f"({outcome.rerun_for_videos} finished runs ran again for their videos)")
        print(describe_reports(outcome.videos), file=sys.stderr)
    if outcome.failures:
        print(
            f"\n{len(outcome.failures)} runs failed (rerun with --resume to retry them):",
            file=sys.stderr,
        )
        for failure in outcome.failures:
            print(f"  {failure.describe()}", file=sys.stderr)
        return 1
    return 0
