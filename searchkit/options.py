"""Command-line options generated from attrs configuration classes, and ``key=value`` parsing."""

from __future__ import annotations

import argparse
import json
import re
import typing
from typing import Any

import attrs

from searchkit import argtypes
from searchkit.construct import construct
from searchkit.errors import InputError, InputTypeError
from searchkit.fielddoc import field_docs, summary


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


def parse_key_values(
    pairs: list[str] | None, field: str, cls: type | None = None
) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``; a pair without ``=`` names ``field``.

    With ``cls`` (an attrs class, e.g. the backend the options are for), a key naming one of
    its fields is read as that field's type (:func:`field_spec`): ``channels=true`` for an
    integer field is refused as ``--backend-opt channels must be an integer, got 'true'``,
    and a string field keeps its text as written. Other keys are read by :func:`parse_value`.
    """
    fields = attrs.fields_dict(cls) if cls is not None and attrs.has(cls) else {}
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise InputError(f"{field} must be KEY=VALUE, got {pair!r}")
        attribute = fields.get(key)
        if attribute is None or not attribute.init:
            options[key] = parse_value(value)
            continue
        spec = field_spec(cls, attribute)
        flag = f"{field} {key}"
        parse = argtypes.boolean(flag) if spec.kind is bool else _value_parser(flag, spec)
        if spec.optional and value.strip().lower() in argtypes.NONE_WORDS:
            options[key] = None
            continue
        try:
            options[key] = parse(value)
        except argparse.ArgumentTypeError as error:
            raise InputError(str(error)) from None
    return options


@attrs.frozen
class FieldSpec:
    """How one attrs field reads from the command line."""

    kind: type  # bool, int, float or str: the type of the value or of each element
    sequence: bool = False  # a tuple of ``kind`` (comma-separated on the command line)
    scalar_or_sequence: bool = False  # ``int | tuple[int, ...]``: one value or several
    optional: bool = False  # ``None`` is a value (spelled ``none``)
    choices: tuple[str, ...] | None = None  # from an ``in_``/``one_of`` validator


def field_spec(cls: type, field: attrs.Attribute) -> FieldSpec:
    """Read ``field``'s type from its annotation (else its default) and choices from its
    validator."""
    text = _annotation(cls, field)
    default = _default(field)
    sequence = "tuple" in text or "list" in text or isinstance(default, tuple | list)
    kind = None
    for candidate in (bool, int, float, str):
        if re.search(rf"\b{candidate.__name__}\b", text):
            kind = candidate
            break
    if kind is None:
        sample = default[0] if isinstance(default, tuple | list) and default else default
        kind = type(sample) if isinstance(sample, bool | int | float | str) else str
    scalar = sequence and not isinstance(default, tuple | list) and default is not None
    optional = "None" in text or default is None
    return FieldSpec(kind, sequence, scalar, optional, _choices(field.validator))


def _annotation(cls: type, field: attrs.Attribute) -> str:
    try:
        hint = typing.get_type_hints(cls).get(field.name)
    except Exception:  # an annotation that does not resolve here: read its text
        hint = None
    if hint is not None:
        return str(hint).replace("typing.", "").replace("NoneType", "None")
    return str(field.type or "")


def _default(field: attrs.Attribute) -> Any:
    default = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = None if default.takes_self else default.factory()
    return None if default is attrs.NOTHING else default


def _choices(validator: Any) -> tuple[str, ...] | None:
    """The allowed values of an ``in_`` (or ``one_of``) validator, through ``optional``/``and_``."""
    if validator is None:
        return None
    if getattr(validator, "choices", None) is not None:  # searchkit.validation.one_of
        return tuple(validator.choices)
    options = getattr(validator, "options", None)  # attrs.validators.in_
    if isinstance(options, tuple | list | frozenset | set) and all(
        isinstance(o, str) for o in options
    ):
        return tuple(options)
    for inner in (
        getattr(validator, "validator", None),  # attrs.validators.optional
        *getattr(validator, "_validators", ()),  # attrs.validators.and_
    ):
        found = _choices(inner) if inner is not None else None
        if found:
            return found
    if isinstance(validator, list | tuple):
        for inner in validator:
            found = _choices(inner)
            if found:
                return found
    return None


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(map(str, value))
    return str(value)


def _value_parser(flag: str, spec: FieldSpec):
    """The argparse ``type=`` for one non-boolean field."""
    if spec.choices is not None:
        return argtypes.choice(flag, spec.choices, optional=spec.optional)
    element = {int: argtypes.integer(flag), float: argtypes.number(flag)}.get(spec.kind, str)
    if spec.sequence:
        kind = {int: "integers", float: "numbers"}.get(spec.kind, "values")
        parse = argtypes.sequence(
            flag, element, kind=kind, example="10,15,20", scalar=spec.scalar_or_sequence
        )
    else:
        parse = element
    if not spec.optional:
        return parse

    def optional(text: str) -> Any:
        return None if text.strip().lower() in argtypes.NONE_WORDS else parse(text)

    return optional


class Switch(argparse.BooleanOptionalAction):
    """``--flag`` / ``--no-flag``; ``--flag true|false`` is read too, anything else refused.

    A bare switch that swallowed nothing would leave ``--keep-duplicates maybe`` to fail as
    an unrecognised ``maybe``; taking an optional value names the flag instead.
    """

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.nargs = "?"
        self.metavar = "true|false"

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        negative = option_string is not None and option_string.startswith("--no-")
        if negative and values is not None:
            parser.error(f"{option_string} takes no value")
        value = True if values is None else bool(values)
        setattr(namespace, self.dest, (not value) if negative else value)

    def format_usage(self) -> str:
        return " | ".join(self.option_strings)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; a :class:`Switch` listed as ``--flag, --no-flag``."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if isinstance(action, Switch):
            return ", ".join(action.option_strings)
        return super()._format_action_invocation(action)


def add_config_arguments(
    parser: argparse.ArgumentParser, cls: type, prefix: str = "", title: str | None = None
) -> None:
    """One ``--field-name`` option per init field of the attrs class ``cls``.

    The help text is the field's entry in the class docstring (:mod:`searchkit.fielddoc`)
    with its default and, for a field with an ``in_`` validator, its choices. A boolean
    field is a switch pair (``--keep-duplicates`` / ``--no-keep-duplicates``); a tuple field
    takes comma-separated values; ``none`` sets an optional field to ``None``. Values the
    field's validator refuses fail when the configuration is built, naming the field.
    """
    docs = field_docs(cls)
    name = getattr(cls, "name", cls.__name__)
    group = parser.add_argument_group(title or f"{name} options", summary(cls))
    for field in attrs.fields(cls):
        if not field.init:
            continue
        spec = field_spec(cls, field)
        flag = "--" + prefix + field.name.replace("_", "-")
        default = _default(field)
        about = docs.get(field.name, "").rstrip(".")
        extra = f"default: {_shown(default)}"
        if spec.choices is not None:
            extra = f"one of: {', '.join(spec.choices)}; " + extra
        elif spec.sequence:
            extra = "comma-separated; " + extra
        help_text = f"{about} ({extra})" if about else f"({extra})"
        help_text = help_text.replace("%", "%%")
        if spec.kind is bool and not spec.sequence:
            group.add_argument(
                flag,
                dest=field.name,
                action=Switch,
                type=argtypes.boolean(flag),
                default=argparse.SUPPRESS,
                help=help_text,
            )
            continue
        group.add_argument(
            flag,
            dest=field.name,
            type=_value_parser(flag, spec),
            default=argparse.SUPPRESS,
            metavar=_metavar(spec),
            help=help_text,
        )


def _metavar(spec: FieldSpec) -> str:
    if spec.choices is not None:
        return "{" + ",".join(spec.choices) + "}"
    one = {int: "N", float: "X"}.get(spec.kind, "TEXT")
    if spec.scalar_or_sequence:
        return f"{one}[,{one}...]"
    return f"{one},{one},..." if spec.sequence else one


def config_from_namespace(cls: type, namespace: argparse.Namespace) -> dict[str, Any]:
    """The attrs-field values the user set on the command line."""
    names = {f.name for f in attrs.fields(cls) if f.init}
    return {k: v for k, v in vars(namespace).items() if k in names}


def config_from_arguments(cls: type, namespace: argparse.Namespace, owner: str) -> Any:
    """``cls`` built from the options set on the command line; a refused value names its flag.

    Built with :func:`searchkit.construct.construct`, so the field validators' messages are
    the Python API's, with the field's name replaced by its flag (``--num-particles must be
    >= 2, got 1``).
    """
    return construct_with_flags(cls, owner, **config_from_namespace(cls, namespace))


def construct_with_flags(cls: type, owner: str, **options: Any) -> Any:
    """:func:`~searchkit.construct.construct` for options given as ``--field-name`` flags:
    a message that starts with a field's name starts with its flag instead."""
    try:
        return construct(cls, owner=owner, **options)
    except (InputError, InputTypeError) as error:
        raise with_flags(error, cls) from None


def with_flags(error: InputError | InputTypeError, cls: type) -> InputError | InputTypeError:
    """``error`` restated for the command line: a message that starts with a field of the
    attrs class ``cls`` (or asks to ``lower`` one) names its ``--field-name`` flag instead."""
    text = str(error)
    for field in attrs.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        if text.startswith(f"{field.name} "):
            text = flag + text[len(field.name) :]
            text = text.replace(f"; lower {field.name}", f"; lower {flag}")
            break
    return type(error)(text)


def parse_evaluators(
    names: list[str] | None, pairs: list[str] | None
) -> list[tuple[str, dict[str, Any]]]:
    """``--evaluator NAME`` (repeated) and ``--evaluator-opt NAME:KEY=VALUE`` as ``(name, options)``.

    An option for an evaluator that was not named is an error naming the flag.
    """
    options: dict[str, dict[str, Any]] = {}
    for name in names or []:
        if name in options:
            raise InputError(f"--evaluator {name!r} is given twice; name each evaluator once")
        options[name] = {}
    for pair in pairs or []:
        name, sep, rest = pair.partition(":")
        if not sep or not name:
            raise InputError(f"--evaluator-opt must be NAME:KEY=VALUE, got {pair!r}")
        if name not in options:
            raise InputError(
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


def add_augmented_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--augmented-prompts``, ``--extender`` and ``--no-augmented``, shared by ``generate
    --prompts-file`` and ``bench``: which text of a VBench-2.0 record the model receives."""
    parser.add_argument(
        "--augmented-prompts",
        default=None,
        metavar="DIR",
        help="VBench-2.0's prompts folder (holding prompt/ and prompt_aug/): give each record "
        "of the prompts file the line of prompt_aug/EXTENDER/{dimension}.txt that sits where "
        "its prompt_en sits in prompt/{dimension}.txt; the model receives that rewrite, the "
        "videos keep prompt_en's names",
    )
    parser.add_argument(
        "--extender",
        default=None,
        metavar="NAME",
        help="the prompt extender's folder under prompt_aug/ (default: wanx_aug_prompt, the "
        "rewrites VBench-2.0 used for Wan2.1; VBench2_aug_prompt for its other models)",
    )
    parser.add_argument(
        "--no-augmented",
        action="store_true",
        help="send prompt_en even where a record has prompt_aug",
    )
