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

from collections.abc import Sequence
from typing import Any, TypeVar

import attrs

from searchkit.errors import InputError, InputTypeError

T = TypeVar("T")

#: Seeds are what ``torch.Generator.manual_seed`` takes without wrapping: ``[0, 2**64)``
#: (it maps a negative seed ``s`` to ``2**64 + s`` silently).
SEED_LIMIT = 2**64


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


def one_of(choices: Sequence[str]):
    """One of ``choices``; the error lists them plainly (``must be one of a, b (got 'c')``)."""
    allowed = tuple(choices)

    def check(_instance: object, attribute: attrs.Attribute, value: object) -> None:
        if value not in allowed:
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
