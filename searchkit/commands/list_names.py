"""``searchkit list``: the registered strategies, rewards and backends, one line each;
``searchkit list NAME``: the options of one of them, with what each means and its default.

Each name is followed by the first line of its class docstring as plain text (no reST
markup), the names of all three lists aligned in one column. With a NAME, every option the
command line accepts for it is listed (a strategy's as ``--flag``, a backend's as
``--backend-opt KEY=VALUE``, a reward's as ``--reward-opt KEY=VALUE``), its meaning read
from the same docstrings as ``help()`` shows.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import textwrap
from typing import Any

import attrs

from searchkit.fielddoc import field_docs, strip_markup, summary
from searchkit.registry import BACKENDS, REWARDS, STRATEGIES

#: Parameters that are wiring, not options a user sets.
_WIRING = {"self", "cls", "backend"}


def add_parser(subparsers, argv: list[str]) -> None:
    parser = subparsers.add_parser(
        "list",
        help="list registered strategies, rewards and backends, or the options of one",
        description=strip_markup(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "name",
        nargs="?",
        default=None,
        help="a registered strategy, reward or backend: list its options (default: list names)",
    )
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    import searchkit  # noqa: F401  (built-ins register on import)

    if args.name is not None:
        print(describe(args.name))
        return 0
    sections = [
        (title, [(name, summary(registry.get(name))) for name in registry.names()])
        for title, registry in _REGISTRIES
    ]
    width = max((len(name) for _, rows in sections for name, _ in rows), default=0)
    for i, (title, rows) in enumerate(sections):
        print(("\n" if i else "") + f"{title}:")
        for name, text in rows:
            print(f"  {name:<{width}}  {text}".rstrip())
    return 0


_REGISTRIES = (("strategies", STRATEGIES), ("rewards", REWARDS), ("backends", BACKENDS))
_HOW = {
    "strategies": "--{flag} (searchkit generate --strategy {name})",
    "rewards": "--reward-opt KEY=VALUE (or --evaluator-opt {name}:KEY=VALUE)",
    "backends": "--backend-opt KEY=VALUE",
}


def describe(name: str) -> str:
    """Every section (strategy, reward, backend) registered under ``name``: its summary and
    its options as ``name (default): meaning``. An unknown name is an error listing the
    closest registered ones."""
    from searchkit.errors import InputError

    blocks = []
    for title, registry in _REGISTRIES:
        if name in registry:
            cls = registry.get(name)
            kind = title[:-3] + "y" if title.endswith("ies") else title[:-1]
            how = _HOW[title].format(flag="FIELD", name=name)
            lines = [f"{kind} {name}: {summary(cls)}", f"options, as {how}:"]
            lines += _option_lines(options_of(cls), flags=title == "strategies")
            blocks.append("\n".join(lines))
    if not blocks:
        known = sorted({n for _, registry in _REGISTRIES for n in registry.names()})
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InputError(f"no strategy, reward or backend is registered as {name!r}{hint}")
    return "\n\n".join(blocks)


def options_of(cls: type) -> list[tuple[str, Any, str]]:
    """``(option, default, meaning)`` for every option ``cls`` is built from.

    An attrs class lists its fields. A class built through ``build`` lists that signature's
    keyword parameters and, where ``build`` passes ``**options`` on, those of where they
    go: the fields of its ``options_class``, else the keywords of ``from_pretrained``, else
    of the constructor. A class without ``build`` lists its constructor's keywords.
    """
    if attrs.has(cls):
        docs = field_docs(cls)
        return [
            (f.name, f.default, docs.get(f.name, ""))
            for f in attrs.fields(cls)
            if f.init and not f.name.startswith("_")
        ]
    builder = getattr(cls, "build", None)
    targets = [builder] if builder is not None else [cls]
    forwards = builder is not None and any(
        p.kind is p.VAR_KEYWORD for p in inspect.signature(builder).parameters.values()
    )
    options_class = getattr(cls, "options_class", None)
    if forwards and options_class is None:
        targets.append(getattr(cls, "from_pretrained", cls))
    docs = field_docs(cls)
    for target in targets:
        docs = {**_parse_doc(target), **docs}
    rows: dict[str, tuple[str, Any, str]] = {}
    for i, target in enumerate(targets):
        for param in inspect.signature(target).parameters.values():
            if param.name in _WIRING or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                continue
            if i and param.default is param.empty:  # what ``build`` passes on itself
                continue
            default = None if param.default is param.empty else param.default
            rows.setdefault(param.name, (param.name, default, docs.get(param.name, "")))
    if forwards and options_class is not None:
        for name, default, text in options_of(options_class):
            rows.setdefault(name, (name, default, text))
    return list(rows.values())


def _parse_doc(target: Any) -> dict[str, str]:
    from searchkit.fielddoc import _parse_args

    return _parse_args(inspect.cleandoc(getattr(target, "__doc__", None) or ""))


def _option_lines(rows: list[tuple[str, Any, str]], flags: bool) -> list[str]:
    if not rows:
        return ["  (none)"]
    names = [("--" + n.replace("_", "-")) if flags else n for n, _, _ in rows]
    width = max(len(n) for n in names)
    lines = []
    for label, (_, default, text) in zip(names, rows, strict=True):
        shown = "" if isinstance(default, attrs.Factory) else f" (default: {default!r})"
        body = textwrap.wrap((text or "(undocumented)") + shown, width=88 - width - 4) or [""]
        lines.append(f"  {label:<{width}}  {body[0]}")
        lines += [f"  {'':<{width}}  {line}" for line in body[1:]]
    return lines
