"""The ``searchkit`` command line.

Each subcommand lives in its own module under :mod:`searchkit.commands` with two
functions, ``add_parser(subparsers)`` and ``main(args) -> int``; this file only
dispatches. A user error (any :class:`~searchkit.errors.SearchkitError`, a malformed
command line included) prints one or two lines, ``searchkit: error: ...``, and exits with
status 2; anything else is a bug and keeps its traceback (set ``SEARCHKIT_TRACEBACK=1`` to
see the traceback of a user error too). Messages of the Python API name
its keywords (``resume=True``); here they are translated to the flags
(:data:`FLAG_FOR_KEYWORD`).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import sys
from collections.abc import Sequence

from searchkit.errors import SearchkitError, UsageError

#: Subcommand modules under ``searchkit.commands``, in help order.
COMMANDS: tuple[str, ...] = ("generate", "bench", "diagnose", "show", "reward", "list_names")

#: Python API keywords in error messages, and the flags that say the same on the command line.
FLAG_FOR_KEYWORD: dict[str, str] = {
    "resume=True": "--resume",
    "force=True": "--force",
    "model_path=PATH": "--model-path PATH",
    "tiny=True": "--backend-opt tiny=true",
    "save_videos folder": "--save-videos folder",
    "save_videos: ": "--save-videos: ",
    "reward_options names": "--reward-opt names",
}

_ARGUMENT = re.compile(r"^argument ([^:]+): (.*)$", re.DOTALL)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are :class:`UsageError` (printed by :func:`main`)
    and whose invalid choices read ``--x must be one of a, b (got 'c')``."""

    def __init__(self, *args, **kwargs) -> None:
        from searchkit.options import HelpFormatter

        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        """As argparse's, but an unknown option is named by the subcommand it was given to
        (``searchkit generate: error: ...``), with the subcommand's word on it where it has
        one (its ``explain_unknown(flag, namespace)`` default)."""
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            message = f"unrecognized arguments: {' '.join(extras)}"
            explain = getattr(namespace, "explain_unknown", None)
            for flag in [e.partition("=")[0] for e in extras if e.startswith("-")]:
                note = explain(flag, namespace) if explain else None
                if note:
                    message += f"; {note}"
                    break
            error = UsageError(message)
            error.prog = getattr(namespace, "prog", self.prog)  # type: ignore[attr-defined]
            raise error
        return namespace

    def error(self, message: str) -> None:  # type: ignore[override]
        match = _ARGUMENT.match(message)
        if match and match[2].lower().startswith(tuple(match[1].lower().split("/"))):
            message = match[2]  # the parser's message already names the flag
        error = UsageError(message)
        error.prog = self.prog  # type: ignore[attr-defined]
        raise error

    def _check_value(self, action: argparse.Action, value: object) -> None:
        choices = action.choices
        if choices is None or value in choices:
            return
        name = action.option_strings[-1] if action.option_strings else str(action.metavar)
        known = list(choices)
        close = difflib.get_close_matches(str(value), [str(c) for c in known], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise argparse.ArgumentError(
            action, f"{name} must be one of {', '.join(map(str, known))} (got {value!r}){hint}"
        )


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    from searchkit import __version__

    parser = Parser(prog="searchkit", description="Inference-time search for video diffusion.")
    parser.add_argument("--version", action="version", version=f"searchkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"searchkit.commands.{name}")
        module.add_parser(subparsers, list(argv or []))
    _record_prog(parser)
    return parser


def _record_prog(parser: argparse.ArgumentParser) -> None:
    """Let every (sub)command's namespace carry its name, for its error messages."""
    parser.set_defaults(prog=parser.prog)
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        for sub in (action.choices or {}).values():
            _record_prog(sub)


def describe(error: SearchkitError) -> str:
    """The message of ``error`` as the command line says it (flags for API keywords)."""
    text = str(error)
    for keyword, flag in FLAG_FOR_KEYWORD.items():
        text = text.replace(keyword, flag)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = None
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        return int(args.run(args) or 0)
    except SearchkitError as error:
        if os.environ.get("SEARCHKIT_TRACEBACK"):
            raise
        prog = getattr(error, "prog", None) or getattr(args, "prog", "searchkit")
        print(f"{prog}: error: {describe(error)}", file=sys.stderr)
        if isinstance(error, UsageError):
            print(f"Run '{prog} --help' for the options.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if os.environ.get("SEARCHKIT_TRACEBACK"):
            raise
        prog = getattr(args, "prog", None) or "searchkit"
        hint = getattr(args, "on_interrupt", None)
        print(f"\n{prog}: interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
    except BrokenPipeError:  # the reader went away (`searchkit list | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
