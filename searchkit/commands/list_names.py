"""``searchkit list``: the registered strategies, rewards and backends."""

from __future__ import annotations

import argparse

from searchkit.registry import BACKENDS, REWARDS, STRATEGIES


def add_parser(subparsers, argv: list[str]) -> None:
    parser = subparsers.add_parser("list", help="list registered strategies, rewards and backends")
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    import searchkit  # noqa: F401  (built-ins register on import)

    for title, registry in (
        ("strategies", STRATEGIES),
        ("rewards", REWARDS),
        ("backends", BACKENDS),
    ):
        print(f"{title}:")
        for name in registry.names():
            cls = registry.get(name)
            doc = (cls.__doc__ or "").strip().splitlines()
            print(f"  {name:<16} {doc[0] if doc else ''}")
    return 0
