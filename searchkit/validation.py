"""attrs validators and converters shared by every configuration class.

Configuration in searchkit is frozen attrs classes; bad input fails on construction with a
message that names the field and the value. The helpers here are the only ones: strategies,
backends, rewards and benchmark configs all use them, so the same mistake reads the same
everywhere.

Validators take ``(instance, attribute, value)``; a list of them runs in order. Integers
never accept booleans (``True`` is an ``int`` in Python, never a count in a config). Their
errors are :class:`~searchkit.errors.InputError` (a ``ValueError``) and
:class:`~searchkit.errors.InputTypeError` (a ``TypeError``). Values that enter through a
function rather than a configuration class (seeds, prompts) have checks here too, and
:func:`construct` builds any attrs configuration from user options with the same messages.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs

from searchkit.errors import InputError, InputTypeError

T = TypeVar("T")

#: Seeds are what ``torch.Generator.manual_seed`` takes without wrapping: ``[0, 2**64)``
#: (it maps a negative seed ``s`` to ``2**64 + s`` silently).
SEED_LIMIT = 2**64

#: The highest frame rate of a saved video (``fps``).
MAX_FPS = 240


def is_int(value: object) -> bool:
    """``value`` is an ``int`` and not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def integer(_instance: object, attribute: attrs.Attribute, value: object) -> None:
    """An integer (booleans refused)."""
    if not is_int(value):
        raise InputTypeError(f"{attribute.name} must be an integer, got {value!r}")


def int_at_least(minimum: int):
    """An integer ``>= minimum`` (booleans refused)."""

    def check(_instance: object, attribute: attrs.Attribute, value: object) -> None:
        integer(_instance, attribute, value)
        if value < minimum:
            raise InputError(f"{attribute.name} must be >= {minimum}, got {value!r}")

    return check


def int_at_most(maximum: int):
    """An integer ``<= maximum`` (booleans refused): an upper bound on a size that allocates."""

    def check(_instance: object, attribute: attrs.Attribute, value: object) -> None:
        integer(_instance, attribute, value)
        if value > maximum:
            raise InputError(f"{attribute.name} must be <= {maximum}, got {value!r}")

    return check


def int_between(minimum: int, maximum: int):
    """An integer in ``[minimum, maximum]`` (booleans refused): for sizes that allocate."""

    def check(_instance: object, attribute: attrs.Attribute, value: object) -> None:
        integer(_instance, attribute, value)
        if not minimum <= value <= maximum:
            raise InputError(f"{attribute.name} must lie in [{minimum}, {maximum}], got {value!r}")

    return check


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def optional_positive_int(_instance: object, attribute: attrs.Attribute, value: object) -> None:
    """``None`` or a positive integer."""
    if value is not None:
        positive_int(_instance, attribute, value)


def boolean(_instance: object, attribute: attrs.Attribute, value: object) -> None:
    """``True`` or ``False`` exactly (no truthy strings or numbers)."""
    if not isinstance(value, bool):
        raise InputTypeError(f"{attribute.name} must be true or false, got {value!r}")


def as_tuple(value: object) -> object:
    """Converter: a list (from JSON or the command line) becomes a tuple; anything else is kept."""
    return tuple(value) if isinstance(value, list) else value


def lists_as_tuples(options: dict[str, Any]) -> dict[str, Any]:
    """Every list value of ``options`` (parsed JSON) as a tuple, as configuration fields expect."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}


def seed(_instance: object, attribute: attrs.Attribute, value: object) -> None:
    """A seed: an integer in ``[0, 2**64)``."""
    check_seed(value, attribute.name)


def check_seed(value: object, field: str = "seed") -> int:
    """``value`` if it is a seed ``torch.Generator.manual_seed`` takes as it is, else an error.

    Seeds are integers in ``[0, 2**64)``; booleans, negative seeds (which torch would wrap
    to ``2**64 + s``) and larger ones are refused, naming ``field``.
    """
    if not is_int(value):
        raise InputTypeError(f"{field} must be an integer, got {value!r}")
    if not 0 <= value < SEED_LIMIT:
        raise InputError(f"{field} must lie in [0, 2**64), got {value!r}")
    return value


def check_prompt(value: object, field: str = "prompt") -> str:
    """``value`` if it is a prompt: a string with some text (not empty, not only spaces)."""
    if not isinstance(value, str):
        raise InputTypeError(f"{field} must be a string, got {type(value).__name__}: {value!r}")
    if not value.strip():
        raise InputError(f"{field} must be a non-empty text, got {value!r}")
    return value


def one_of(choices: Sequence[Any]):
    """One of ``choices``; the error lists them plainly (``must be one of a, b (got 'c')``).

    A boolean is never taken for the number ``1`` or ``0`` among numeric choices.
    """
    allowed = tuple(choices)

    def check(_instance: object, attribute: attrs.Attribute, value: object) -> None:
        if value not in allowed or (
            isinstance(value, bool) and not any(isinstance(c, bool) for c in allowed)
        ):
            raise InputError(
                f"{attribute.name} must be one of {', '.join(map(str, allowed))} (got {value!r})"
            )

    check.choices = allowed  # type: ignore[attr-defined]  (read by the command line)
    return check


def step_schedule(_instance: object, attribute: attrs.Attribute, value: object) -> None:
    """A non-empty, strictly increasing tuple of non-negative integer step indices."""
    name = attribute.name
    if not isinstance(value, tuple) or not value:
        raise InputError(f"{name} must be a non-empty tuple of step indices, got {value!r}")
    if not all(is_int(s) for s in value):
        raise InputError(f"{name} must hold integers, got {value!r}")
    if min(value) < 0:
        raise InputError(f"{name} steps must be >= 0, got {value!r}")
    if len(set(value)) != len(value):
        raise InputError(f"{name} must not repeat a step, got {value!r}")
    if list(value) != sorted(value):
        raise InputError(f"{name} must be sorted in increasing order, got {value!r}")


def check_steps_within(schedule: Sequence[int], num_steps: int, field: str = "schedule") -> None:
    """Scheduled steps must lie in ``[0, num_steps)``; raises naming ``field`` otherwise."""
    if schedule and (min(schedule) < 0 or max(schedule) >= num_steps):
        subject = field if field.endswith("steps") else f"{field} steps"
        raise InputError(
            f"{subject} must lie in [0, {num_steps}) for a {num_steps}-step backend, "
            f"got {tuple(schedule)}"
        )


def optional(check: Callable[[object, attrs.Attribute, object], None]):
    """``None``, or a value ``check`` takes (the choices of a :func:`one_of` stay readable)."""

    def optional_check(instance: object, attribute: attrs.Attribute, value: object) -> None:
        if value is not None:
            check(instance, attribute, value)

    optional_check.validator = check  # type: ignore[attr-defined]  (read by the command line)
    choices = getattr(check, "choices", None)
    if choices is not None:
        optional_check.choices = choices  # type: ignore[attr-defined]
    return optional_check


def of_type(kind: type, what: str | None = None):
    """An instance of ``kind``; the error names the field, the type wanted and the value."""
    wanted = what or f"a {kind.__name__}"

    def check(_instance: object, attribute: attrs.Attribute, value: object) -> None:
        if not isinstance(value, kind):
            raise InputTypeError(
                f"{attribute.name} must be {wanted}, got {type(value).__name__}: {value!r}"
            )

    return check


text = of_type(str, "a string")


def _as_float(value: object, field: str) -> float:
    if isinstance(value, bool) or str(getattr(value, "dtype", "")) in ("bool", "torch.bool"):
        raise InputTypeError(f"{field} must be a number, got {value!r}")
    try:
        return float(value)  # type: ignore[arg-type]
    except TypeError:
        raise InputTypeError(f"{field} must be a number, got {value!r}") from None
    except ValueError:
        raise InputError(f"{field} must be a number, got {value!r}") from None


def _float_converter(value: object, _instance: object, field: attrs.Attribute) -> float:
    return _as_float(value, field.name)


def _optional_float_converter(
    value: object, _instance: object, field: attrs.Attribute
) -> float | None:
    return None if value is None else _as_float(value, field.name)


#: Converter: a number (an ``int``, a ``float``, a numeric string) as a ``float``; a
#: boolean, ``None`` or anything else is refused naming the field (``float(True)`` would
#: silently be ``1.0``).
to_float = attrs.Converter(_float_converter, takes_self=True, takes_field=True)
#: :data:`to_float` that keeps ``None``.
to_float_or_none = attrs.Converter(_optional_float_converter, takes_self=True, takes_field=True)


def number(
    *,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
):
    """A real number (``NaN`` and booleans refused) within the given bounds.

    Bounds are inclusive (``at_least``, ``at_most``) or strict (``above``, ``below``); the
    error names the field, the bound and the value (``beta must be <= 1.0 (got 2.0)``).
    Use with the :data:`to_float` converter.
    """
    bounds = [
        (at_least, ">=", lambda x, b: x >= b),
        (above, ">", lambda x, b: x > b),
        (at_most, "<=", lambda x, b: x <= b),
        (below, "<", lambda x, b: x < b),
    ]

    def check(_instance: object, attribute: attrs.Attribute, value: object) -> None:
        name = attribute.name
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputTypeError(f"{name} must be a number, got {value!r}")
        if math.isnan(value):
            raise InputError(f"{name} must be a number, not NaN (got {value!r})")
        for bound, sign, holds in bounds:
            if bound is not None and not holds(value, bound):
                raise InputError(f"{name} must be {sign} {bound!r} (got {value!r})")

    return check
