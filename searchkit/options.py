"""Command-line options generated from attrs configuration classes, and ``key=value`` parsing."""

from __future__ import annotations

import argparse
import json
import typing
from typing import Any

import attrs


def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"true"`` -> True, ``"[1,2]"`` -> [1, 2], else the string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_key_values(pairs: list[str] | None, field: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``; a pair without ``=`` names ``field``."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{field} must be KEY=VALUE, got {pair!r}")
        options[key.strip().replace("-", "_")] = parse_value(value)
    return options


def _scalar_parser(kind: type):
    if kind is bool:
        return lambda s: parse_value(s) is True
    return kind


def _field_kind(cls: type, field: attrs.Attribute) -> tuple[type, bool]:
    """(element type, is_sequence) for one attrs field, from its default or annotation."""
    default = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()
    if isinstance(default, tuple | list):
        return (type(default[0]) if default else int), True
    if default is not None and default is not attrs.NOTHING:
        return type(default), False
    hints = typing.get_type_hints(cls)
    text = str(hints.get(field.name, str))
    for kind in (bool, int, float):
        if kind.__name__ in text:
            return kind, "tuple" in text or "list" in text
    return str, False


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, prefix: str = "") -> None:
    """One ``--field-name`` option per init field of the attrs class ``cls``."""
    group = parser.add_argument_group(f"{cls.__name__} options")
    for field in attrs.fields(cls):
        if not field.init:
            continue
        kind, is_sequence = _field_kind(cls, field)
        flag = "--" + prefix + field.name.replace("_", "-")
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        shown = "none" if default is None else default
        if is_sequence:
            elem = _scalar_parser(kind)
            group.add_argument(
                flag,
                dest=field.name,
                type=lambda s, elem=elem: tuple(elem(x) for x in s.split(",") if x.strip()),
                default=argparse.SUPPRESS,
                help=f"comma-separated (default: {','.join(map(str, shown)) if shown != 'none' else shown})",
            )
        else:
            group.add_argument(
                flag,
                dest=field.name,
                type=(lambda s: parse_value(s)) if default is None else _scalar_parser(kind),
                default=argparse.SUPPRESS,
                help=f"(default: {shown})",
            )


def config_from_namespace(cls: type, namespace: argparse.Namespace) -> dict[str, Any]:
    """The attrs-field values the user set on the command line."""
    names = {f.name for f in attrs.fields(cls) if f.init}
    return {k: v for k, v in vars(namespace).items() if k in names}


def parse_evaluators(
    names: list[str] | None, pairs: list[str] | None
) -> list[tuple[str, dict[str, Any]]]:
    """``--evaluator NAME`` (repeated) and ``--evaluator-opt NAME:KEY=VALUE`` as ``(name, options)``.

    An option for an evaluator that was not named is an error naming the flag.
    """
    options: dict[str, dict[str, Any]] = {name: {} for name in names or []}
    for pair in pairs or []:
        name, sep, rest = pair.partition(":")
        if not sep or not name:
            raise ValueError(f"--evaluator-opt must be NAME:KEY=VALUE, got {pair!r}")
        if name not in options:
            raise ValueError(
                f"--evaluator-opt {pair!r} names evaluator {name!r}, which no --evaluator gives"
            )
        options[name].update(parse_key_values([rest], "--evaluator-opt"))
    return list(options.items())


def add_evaluator_arguments(parser: argparse.ArgumentParser) -> None:
    """``--evaluator`` and ``--evaluator-opt``, shared by ``generate`` and ``bench``."""
    parser.add_argument(
        "--evaluator",
        action="append",
        metavar="NAME",
        help="a registered reward that grades each output apart from the search "
        "(repeatable; not search compute)",
    )
    parser.add_argument(
        "--evaluator-opt",
        action="append",
        metavar="NAME:KEY=VALUE",
        help="an option of the evaluator NAME, e.g. clip-score:path=ckpt/clip",
    )
