"""The ``searchkit`` command line.

Each subcommand lives in its own module under :mod:`searchkit.commands` with two
functions, ``add_parser(subparsers)`` and ``main(args) -> int``; this file only
dispatches. Bad input exits with status 2 and a one-line message naming the field.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from searchkit.errors import RegistryError

#: Subcommand modules under ``searchkit.commands``, in help order.
COMMANDS: tuple[str, ...] = ("generate", "bench", "diagnose", "show", "reward", "list_names")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="searchkit", description="Inference-time search for video diffusion."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"searchkit.commands.{name}")
        module.add_parser(subparsers, argv or [])
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
        return int(args.run(args) or 0)
    except (ValueError, TypeError, RegistryError, FileNotFoundError) as error:
        print(f"searchkit: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
