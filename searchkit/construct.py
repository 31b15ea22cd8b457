"""Building a configured object from user options, with every input error stated alike.

Strategies, backends and rewards are built from options a user wrote (command-line flags,
``--backend-opt KEY=VALUE``, a sweep file). :func:`construct` calls the class (or its
``build`` classmethod) so that a refused value reads the same wherever it came from:

* an option the callable does not take is an :class:`~searchkit.errors.InputError` that
  lists the options it does take (checked against its signature before the call);
* an error raised by an attrs field's validator or converter becomes an
  :class:`~searchkit.errors.InputError` (``ValueError``) or
  :class:`~searchkit.errors.InputTypeError` (``TypeError``) naming the field and the value;
  attrs' own messages are restated plainly (``resampler must be one of multinomial,
  stratified, systematic, residual (got 'bogus')``, not a tuple of the attribute's repr);
* with ``refusals=True`` (backends and rewards, whose ``build`` and ``__init__`` check their
  options by hand and load their weights), any other ``ValueError``/``TypeError`` raised
  while building is a refusal too, and a ``FileNotFoundError`` a
  :class:`~searchkit.errors.MissingFileError`, reported as one naming ``owner`` and chained to the
  original; building happens before any compute, and it is the contract of these
  constructors that a bad option raises one of those two;
* every other error propagates unchanged (with ``refusals=False``, strategies: a failure
  in ``__attrs_post_init__``, which computes rather than checks, keeps its traceback).

Which errors come from a field check is read from the traceback: attrs generates each
class's ``__init__`` with one line per validator and converter call
(``__attr_validator_<field>(...)``, ``__attr_converter_<field>(...)``), and Python's
``linecache`` holds that source, so the frame below the generated ``__init__`` names the
field. Errors that are already :class:`~searchkit.errors.SearchkitError` pass through.
"""

from __future__ import annotations

import inspect
import linecache
import re
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import attrs

from searchkit.errors import InputError, InputTypeError, MissingFileError, SearchkitError

T = TypeVar("T")

_GENERATED = "<attrs generated"
_FIELD_CALL = re.compile(r"__attr_(validator|converter)_(\w+)\(")
_NUMBER_BOUND = re.compile(r"^'(\w+)' must be ([<>]=?) (\S+): (.*)$")


def construct(
    factory: Callable[..., T], *args: Any, owner: str, refusals: bool = False, **options: Any
) -> T:
    """``factory(*args, **options)`` with input errors made :class:`InputError`, naming ``owner``.

    ``owner`` says whose options these are in messages (``"backend 'analytic'"``);
    ``refusals`` makes every ``ValueError``/``TypeError`` of the call a refusal (see above).
    """
    check_options(factory, args, options, owner)
    try:
        return factory(*args, **options)
    except SearchkitError:
        raise
    except FileNotFoundError as error:  # a path among the options that does not exist
        if not refusals:
            raise
        raise MissingFileError(str(error)) from error
    except (TypeError, ValueError) as error:
        restated = restate_field_error(error, owner)
        if restated is not None:
            raise restated from None
        if not refusals:
            raise
        kind = InputTypeError if isinstance(error, TypeError) else InputError
        text = str(error)
        raise kind(text if owner.split()[-1] in text else f"{owner}: {text}") from error


def check_options(
    factory: Callable[..., Any], args: tuple, options: dict[str, Any], owner: str
) -> None:
    """Raise :class:`InputError` when ``factory`` takes no option of one of these names."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return
    try:
        signature.bind(*args, **options)
    except TypeError:
        params = signature.parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return  # takes **options: the callee (or an attrs class inside it) checks them
        known = [
            p.name
            for p in list(params)[len(args) :]  # those not given positionally
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise InputError(
                f"{owner} has no option {unknown[0]!r}; known: {', '.join(known) or '(none)'}"
            ) from None
        raise InputError(f"{owner}: {_missing(signature, args, options)}") from None


def _missing(signature: inspect.Signature, args: tuple, options: dict[str, Any]) -> str:
    try:
        signature.bind(*args, **options)
    except TypeError as error:
        return str(error)
    return "bad arguments"  # pragma: no cover - bind failed a moment ago


def restate_field_error(error: BaseException, owner: str) -> SearchkitError | None:
    """The :class:`InputError` for an error raised by an attrs field check, else ``None``."""
    found = _field_check(error.__traceback__)
    if found is None:
        return None
    kind, name, raw = found
    kind_of = InputTypeError if isinstance(error, TypeError) else InputError
    args = error.args
    if len(args) == 4 and isinstance(args[1], attrs.Attribute):
        if isinstance(args[2], type):  # attrs.validators.instance_of
            wanted = "true or false" if args[2] is bool else f"of type {args[2].__name__}"
            return kind_of(f"{name} must be {wanted} (got {args[3]!r})")
        if isinstance(args[2], tuple | list | set | frozenset | dict):  # attrs.validators.in_
            options = ", ".join(map(str, args[2]))
            return kind_of(f"{name} must be one of {options} (got {args[3]!r})")
    text = str(error)
    match = _NUMBER_BOUND.match(text)
    if match:  # attrs' ge/gt/le/lt: "'beta' must be <= 1.0: 2.0"
        return kind_of(f"{match[1]} must be {match[2]} {match[3]} (got {match[4]})")
    if kind == "converter":
        return kind_of(f"{name}: cannot take {raw!r} ({text})")
    if name in text:
        return kind_of(text)
    return kind_of(f"{owner}: {name}: {text}")


def _field_check(tb: TracebackType | None) -> tuple[str, str, Any] | None:
    """``(validator|converter, field, raw value)`` when the error left a field check."""
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    for i in range(len(frames) - 1, -1, -1):
        code = frames[i].tb_frame.f_code
        if not (code.co_filename.startswith(_GENERATED) and code.co_name == "__init__"):
            continue
        if i + 1 < len(frames) and frames[i + 1].tb_frame.f_code.co_name == "__attrs_post_init__":
            return None
        line = linecache.getline(code.co_filename, frames[i].tb_lineno)
        match = _FIELD_CALL.search(line)
        if match is None:
            return None
        kind, name = match[1], match[2]
        local = frames[i].tb_frame.f_locals
        raw = local.get(name, local.get(f"_{name}"))
        return kind, name.lstrip("_"), raw
    return None
