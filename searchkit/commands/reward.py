"""``searchkit reward collect | train | eval``: the latent reward model's data, training, evaluation.

    searchkit reward collect --out data/ --prompt-file prompts.json --seeds 200 300 --steps 10 15 20
    searchkit reward train   --data data/ --out lrm/ --input latent --epochs 15
    searchkit reward eval    --model lrm/best --data data/ --out eval/

``collect`` runs the backend's trajectories and writes the paper's metadata schema (resumable:
rerun the same command to continue); any registered reward labels them (``--teacher NAME``
with ``--teacher-opt KEY=VALUE``, default the backend's own reward), and its name and options
are recorded in ``collect.json``. ``train`` checks the whole dataset first, takes the reward
dimensions from the recorded teacher, and resumes a run in ``--out`` with the same
configuration. ``eval`` scores the validation prompts recorded with the model (``--all`` for
every prompt) against the teacher on predicted x0 (default: the recorded teacher) and writes
``eval.json`` and ``eval.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from searchkit import argtypes
from searchkit.errors import FileFormatError, InputError
from searchkit.fielddoc import field_docs, strip_markup
from searchkit.files import check_output_folder
from searchkit.options import (
    add_config_arguments,
    config_from_arguments,
    construct_with_flags,
    with_flags,
)


def _add_backend_arguments(parser: argparse.ArgumentParser) -> None:
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
        "--backend-opt", action="append", metavar="KEY=VALUE", help="a backend option (repeatable)"
    )


def _add_teacher_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--teacher",
        default=None,
        metavar="NAME",
        help=f"a registered reward that labels the data (default: {default})",
    )
    parser.add_argument(
        "--teacher-opt",
        action="append",
        metavar="KEY=VALUE",
        help="an option of the teacher, e.g. path=CHECKPOINT (repeatable)",
    )


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model's size options; their help is :class:`LatentRewardConfig`'s field docs."""
    from searchkit.rewards.latent.network import MAX_DEPTH, MAX_WIDTH, LatentRewardConfig

    docs = field_docs(LatentRewardConfig)
    parser.add_argument(
        "--input",
        choices=("latent", "x0"),
        default="latent",
        help=f"{docs['input'].rstrip('.')} (one of: latent, x0; default: latent)",
    )
    parser.add_argument(
        "--width",
        type=argtypes.integer("--width", minimum=1, maximum=MAX_WIDTH),
        default=64,
        metavar="N",
        help=f"{docs['width'].rstrip('.')} (default: 64)",
    )
    parser.add_argument(
        "--depth",
        type=argtypes.integer("--depth", minimum=0, maximum=MAX_DEPTH),
        default=2,
        metavar="N",
        help=f"{docs['depth'].rstrip('.')} (default: 2)",
    )
    parser.add_argument(
        "--patch-size",
        type=argtypes.sequence(
            "--patch-size", argtypes.integer("--patch-size", minimum=1), example="1,2,2", length=3
        ),
        default=(1, 2, 2),
        metavar="F,H,W",
        help=f"{docs['patch_size'].rstrip('.')} (default: 1,2,2)",
    )


def add_parser(subparsers, argv: list[str]) -> None:
    from searchkit.rewards.latent import TrainConfig

    parser = subparsers.add_parser(
        "reward",
        help="collect data for, train and evaluate the latent reward model",
        description=strip_markup(__doc__),
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    collect = actions.add_parser(
        "collect", help="run trajectories and store latents and final rewards"
    )
    _add_backend_arguments(collect)
    _add_teacher_arguments(collect, "the backend's own reward")
    collect.add_argument(
        "--out", required=True, metavar="DIR", help="dataset folder (metadata/ and seed_*/ inside)"
    )
    collect.add_argument(
        "--prompt",
        action="append",
        default=None,
        type=argtypes.prompt("--prompt"),
        help="a prompt (repeatable)",
    )
    collect.add_argument(
        "--prompt-file",
        default=None,
        metavar="FILE",
        help="JSON list of prompts (strings or objects with 'prompt'/'text') or a text file, one per line",
    )
    collect.add_argument(
        "--seeds",
        type=argtypes.seed("--seeds"),
        nargs="+",
        default=[200, 300, 400, 500, 600],
        metavar="SEED",
        help="one metadata file per seed (default: 200 300 400 500 600)",
    )
    collect.add_argument(
        "--steps",
        type=argtypes.integer("--steps", minimum=0),
        nargs="+",
        default=[10, 15, 20, 25, 30],
        metavar="STEP",
        help="step indices (0-based) after which latents are stored (default: 10 15 20 25 30)",
    )
    collect.add_argument("--save-video", action="store_true", help="also write each final video")
    collect.add_argument(
        "--limit",
        type=argtypes.integer("--limit", minimum=0),
        default=None,
        metavar="N",
        help="stop after this many new records (default: no limit)",
    )
    collect.set_defaults(run=main_collect)

    train = actions.add_parser("train", help="train a latent reward model on collected data")
    _add_backend_arguments(train)
    train.add_argument(
        "--data", required=True, metavar="DIR", help="dataset folder or its metadata/ folder"
    )
    train.add_argument(
        "--out", required=True, metavar="DIR", help="training folder (checkpoints/, best/)"
    )
    _add_model_arguments(train)
    add_config_arguments(train, TrainConfig, title="training options")
    train.add_argument(
        "--no-cache", action="store_true", help="do not keep loaded latents in memory"
    )
    train.add_argument(
        "--arch",
        choices=("searchkit", "latsearch"),
        default="searchkit",
        help="searchkit: this package's model; latsearch: the paper's model on a VideoReward "
        "backbone (--backbone-path) (one of: searchkit, latsearch; default: searchkit)",
    )
    train.add_argument(
        "--backbone-path", default=None, metavar="DIR", help="VideoReward folder (--arch latsearch)"
    )
    train.add_argument(
        "--base-model", default=None, metavar="DIR", help="base Qwen2-VL folder (--arch latsearch)"
    )
    train.set_defaults(run=main_train)

    evaluate = actions.add_parser(
        "eval", help="per-step pairwise accuracy and Spearman, with a plot"
    )
    _add_backend_arguments(evaluate)
    _add_teacher_arguments(evaluate, "the teacher recorded in the dataset, else the backend's own")
    evaluate.add_argument(
        "--model", required=True, metavar="DIR", help="a saved model folder (e.g. TRAIN_OUT/best)"
    )
    evaluate.add_argument(
        "--data", required=True, metavar="DIR", help="dataset folder or its metadata/ folder"
    )
    evaluate.add_argument(
        "--out", required=True, metavar="DIR", help="folder for eval.json and eval.png"
    )
    evaluate.add_argument(
        "--all", action="store_true", help="evaluate every prompt, not only the validation split"
    )
    evaluate.add_argument(
        "--no-teacher", action="store_true", help="skip the teacher-on-x0 baseline"
    )
    evaluate.set_defaults(run=main_eval)


def _backend(args: argparse.Namespace):
    from searchkit.builders import build_backend
    from searchkit.options import parse_key_values

    options = parse_key_values(args.backend_opt, "--backend-opt")
    if args.model_path is not None:
        options["model_path"] = args.model_path
    return build_backend(args.backend, **options)


def _teacher_options(args: argparse.Namespace) -> dict:
    from searchkit.options import parse_key_values

    return parse_key_values(args.teacher_opt, "--teacher-opt")


def read_prompts(args: argparse.Namespace) -> list[str]:
    """The prompts of ``--prompt`` and ``--prompt-file``; errors name the file and the item."""
    from searchkit.files import read_json, read_text

    prompts = list(args.prompt or [])
    if args.prompt_file is not None:
        path = Path(args.prompt_file)
        what = "--prompt-file"
        if path.suffix == ".json":
            items = read_json(path, what)
            if not isinstance(items, list):
                raise FileFormatError(
                    f"{what} {str(path)!r} must hold a JSON list, got {type(items).__name__}"
                )
            for i, item in enumerate(items):
                if isinstance(item, dict):
                    item = item.get("prompt", item.get("text"))
                if not isinstance(item, str) or not item.strip():
                    raise FileFormatError(
                        f"{what} {str(path)!r}: item {i} is not a prompt: {items[i]!r}"
                    )
                prompts.append(item)
        else:
            text = read_text(path, what)
            prompts.extend(line.strip() for line in text.splitlines() if line.strip())
    if not prompts:
        raise InputError("give prompts with --prompt or --prompt-file")
    return prompts


def main_collect(args: argparse.Namespace) -> int:
    from searchkit.rewards.latent import CollectConfig, collect

    config = construct_with_flags(
        CollectConfig,
        "reward collect",
        steps=tuple(args.steps),
        seeds=tuple(args.seeds),
        save_video=args.save_video,
    )
    prompts = read_prompts(args)
    check_output_folder(args.out, "--out folder")
    options = _teacher_options(args)
    backend = _backend(args)
    summary = collect(
        backend,
        args.teacher,
        prompts,
        args.out,
        config,
        teacher_options=options,
        limit=args.limit,
        progress=True,
    )
    print(
        json.dumps(
            {
                "written": summary.written,
                "already_present": summary.skipped,
                "folder": str(summary.folder),
            },
            indent=2,
        )
    )
    return 0


def main_train(args: argparse.Namespace) -> int:
    from searchkit.rewards.latent import TrainConfig

    config = config_from_arguments(TrainConfig, args, "reward train")
    check_output_folder(args.out, "--out folder")
    if args.arch == "latsearch":
        from searchkit.rewards.video_reward.train import main_train_latsearch

        if args.backbone_path is None:
            raise InputError("--arch latsearch needs --backbone-path (a VideoReward folder)")
        return main_train_latsearch(argparse.Namespace(**{**vars(args), **config.to_dict()}))
    import torch

    from searchkit.rewards.latent import LatentRewardModel, read_latent_dataset, train
    from searchkit.rewards.latent.network import LatentRewardConfig
    from searchkit.rewards.latent.records import recorded_teacher

    patch = args.patch_size
    recorded = (recorded_teacher(args.data) or {}).get("config") or {}
    dimensions = {"dimensions": tuple(recorded["dimensions"])} if recorded.get("dimensions") else {}
    backend = _backend(args)
    try:
        model = LatentRewardModel.for_backend(
            backend,
            input=args.input,
            width=args.width,
            depth=args.depth,
            patch_size=patch,
            generator=torch.Generator().manual_seed(config.seed),
            **dimensions,
        )
    except InputError as error:
        raise with_flags(error, LatentRewardConfig) from None
    dataset = read_latent_dataset(
        args.data, backend=backend, dimensions=model.dimensions, cache=not args.no_cache
    )
    result = train(model, dataset, backend, args.out, config, progress=True)
    print(
        json.dumps(
            {
                "best_epoch": result.best_epoch,
                "best_val_pairwise_accuracy": result.best_accuracy,
                "model": str(Path(args.out) / "best"),
            },
            indent=2,
        )
    )
    return 0


def main_eval(args: argparse.Namespace) -> int:
    from searchkit.builders import build_reward
    from searchkit.rewards.latent import (
        LatentRewardModel,
        evaluate,
        plot_report,
        read_latent_dataset,
    )
    from searchkit.rewards.latent.records import recorded_teacher

    check_output_folder(args.out, "--out folder")
    backend = _backend(args)
    model = LatentRewardModel.from_pretrained(args.model, backend)
    dataset = read_latent_dataset(args.data, backend=backend, dimensions=model.dimensions)
    if not args.all:
        val = model.extra.get("training", {}).get("split", {}).get("val")
        if not val:
            raise InputError(f"{args.model} records no validation split; pass --all")
        dataset = dataset.subset(val)
    teacher = None
    if not args.no_teacher and dataset.has_x0:
        name, options = args.teacher, _teacher_options(args)
        recorded = recorded_teacher(args.data) if name is None else None
        if recorded is not None:
            name, options = recorded["name"], {**recorded.get("options", {}), **options}
        teacher = build_reward(name, backend, **options)
    report = evaluate(model, dataset, backend, teacher=teacher)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    plot_report(report, out / "eval.png")
    print(report.table())
    return 0


def main(args: argparse.Namespace) -> int:  # pragma: no cover - each action sets its own
    return int(args.run(args) or 0)
