"""``searchkit show``: pictures of one search from the ``result.json`` that ``generate`` wrote.

Writes ``trace.png`` (particles along the steps, coloured by score, lines from parent to
child at each resampling, pruned branches ending, the output marked) and, where the result
has a video, ``frames.png`` (a contact sheet of its frames), and, where the search decoded
its candidates to score them (a video reward), ``candidates.png`` (one row per candidate:
particle id, step, score and a few frames, the output's row marked), beside the result or
into ``--out``. Where no candidate was decoded it says so in one line.

Examples:
  searchkit generate --strategy rgrp --out run/ && searchkit show run/result.json
  searchkit show run/ --out figures/ --max-frames 12
"""

from __future__ import annotations

import argparse
import json
import sys

from searchkit import argtypes
from searchkit.fielddoc import strip_markup


def add_parser(subparsers, argv: list[str]) -> None:
    parser = subparsers.add_parser(
        "show",
        help="draw one search's trace and frames from its result.json",
        description=strip_markup(__doc__),
    )
    parser.add_argument("result", metavar="RESULT", help="a result.json, or the folder holding it")
    parser.add_argument(
        "--out", default=None, metavar="DIR", help="output folder (default: the result's folder)"
    )
    parser.add_argument(
        "--max-frames",
        type=argtypes.integer("--max-frames", minimum=1),
        default=8,
        metavar="N",
        help="frames in the contact sheet (default: 8)",
    )
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    from searchkit.files import check_output_folder
    from searchkit.show import NO_CANDIDATES, show_result_file

    if args.out is not None:
        check_output_folder(args.out, "--out folder")
    files = show_result_file(args.result, args.out, max_frames=args.max_frames)
    if "candidates" not in files:
        print(NO_CANDIDATES, file=sys.stderr)
    print(json.dumps(files, indent=2))
    return 0
