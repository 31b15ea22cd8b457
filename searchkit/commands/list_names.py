"""``searchkit list``: the registered strategies, rewards and backends, one line each.

Each name is followed by the first line of its class docstring as plain text (no reST
markup), the names of all three lists aligned in one column.
"""

from __future__ import annotations

import argparse

from searchkit.fielddoc import strip_markup
from searchkit.registry import BACKENDS, REWARDS, STRATEGIES


def add_parser(subparsers, argv: list[str]) -> None:
    parser = subparsers.add_parser(
        "list",
        help="list registered strategies, rewards and backends",
        description=strip_markup(__doc__),
    )
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    import searchkit  # noqa: F401  (built-ins register on import)
    from searchkit.fielddoc import summary

    sections = [
        (title, [(name, summary(registry.get(name))) for name in registry.names()])
        for title, registry in (
            ("strategies", STRATEGIES),
            ("rewards", REWARDS),
            ("backends", BACKENDS),
        )
    ]
    width = max((len(name) for _, rows in sections for name, _ in rows), default=0)
    for i, (title, rows) in enumerate(sections):
        print(("\n" if i else "") + f"{title}:")
        for name, text in rows:
            print(f"  {name:<{width}}  {text}".rstrip())
    return 0
