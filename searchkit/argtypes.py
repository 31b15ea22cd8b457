"""Value parsers for command-line options: each names its flag and the form it expects.

An argparse ``type=`` turns the text after a flag into a value or raises
``argparse.ArgumentTypeError``; the command line prints that message as it is
(``--seed must lie in [0, 2**64), got -1``), so every parser here writes the whole
sentence, flag first. Range checks are the shared ones of :mod:`searchkit.validation`, so a
seed or a prompt is refused alike on the command line and in the Python API.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from typing import Any

from searchkit.errors import SearchkitError
from searchkit.validation import check_prompt, check_seed

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
NONE_WORDS = ("none", "null")


class NotOfKind(argparse.ArgumentTypeError):
    """A text that is not of the expected kind at all (``x`` for an integer), as opposed to
    a value of the kind that lies out of range; a list names the first as its form."""


def _named(parse: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    parse.__name__ = name  # argparse names the type in a few of its own messages
    return parse


def integer(
    flag: str, minimum: int | None = None, maximum: int | None = None
) -> Callable[[str], int]:
    """An integer (``>= minimum``, ``<= maximum`` when given)."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise NotOfKind(f"{flag} must be an integer, got {text!r}") from None
        if maximum is not None and not (minimum or 0) <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"{flag} must lie in [{minimum or 0}, {maximum}], got {value}"
            )
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{flag} must be >= {minimum}, got {value}")
        return value

    return _named(parse, "integer")


def number(flag: str, *, above: float | None = None, at_least: float | None = None):
    """A finite number (``> above`` or ``>= at_least`` when given)."""

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise NotOfKind(f"{flag} must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{flag} must be a finite number, got {text!r}")
        if above is not None and not value > above:
            raise argparse.ArgumentTypeError(f"{flag} must be > {above:g}, got {text}")
        if at_least is not None and not value >= at_least:
            raise argparse.ArgumentTypeError(f"{flag} must be >= {at_least:g}, got {text}")
        return value

    return _named(parse, "number")


def seed(flag: str) -> Callable[[str], int]:
    """A seed ``torch.Generator.manual_seed`` takes as it is: an integer in ``[0, 2**64)``."""

    def parse(text: str) -> int:
        value = integer(flag)(text)
        return _checked(lambda: check_seed(value, flag))

    return _named(parse, "seed")


def prompt(flag: str) -> Callable[[str], str]:
    """A prompt: some text (not empty, not only spaces)."""
    return _named(lambda text: _checked(lambda: check_prompt(text, flag)), "prompt")


def boolean(flag: str) -> Callable[[str], bool]:
    """``true``/``false`` (also ``yes``/``no``, ``on``/``off``, ``1``/``0``); nothing else."""

    def parse(text: str) -> bool:
        word = text.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise argparse.ArgumentTypeError(f"{flag} must be true or false, got {text!r}")

    return _named(parse, "boolean")


def choice(flag: str, choices: Sequence[str], *, optional: bool = False) -> Callable[[str], Any]:
    """One of ``choices`` (or ``none`` when ``optional``); the error lists them plainly."""
    allowed = tuple(choices)

    def parse(text: str) -> Any:
        if optional and text.strip().lower() in NONE_WORDS:
            return None
        if text in allowed:
            return text
        listed = ", ".join(allowed) + (", none" if optional else "")
        raise argparse.ArgumentTypeError(f"{flag} must be one of {listed} (got {text!r})")

    return _named(parse, "choice")


def sequence(
    flag: str,
    element: Callable[[str], Any],
    *,
    kind: str = "integers",
    example: str = "10,15,20",
    length: int | None = None,
    scalar: bool = False,
) -> Callable[[str], Any]:
    """Comma-separated values (``10,15,20``); ``length`` fixes how many; ``scalar`` lets one
    value without a comma stand for itself rather than a one-element tuple.

    A list of the wrong form (an empty entry, a wrong count, an entry not of the kind) is
    refused naming the form; an entry of the kind that ``element`` refuses (out of range)
    is refused with ``element``'s message about that entry: ``--patch-size entries must be
    >= 1, got 0 in '0,2,2'``.
    """

    def parse(text: str) -> Any:
        parts = [p.strip() for p in text.split(",")]
        form = f"{length} " if length else ""
        expected = f"{flag} must be {form}comma-separated {kind} like {example}, got {text!r}"
        if not text.strip() or any(not p for p in parts):
            raise argparse.ArgumentTypeError(expected)
        if length is not None and len(parts) != length:
            raise argparse.ArgumentTypeError(expected)
        alone = scalar and len(parts) == 1 and "," not in text
        values = []
        for part in parts:
            try:
                values.append(element(part))
            except (ValueError, NotOfKind):
                raise argparse.ArgumentTypeError(expected) from None
            except argparse.ArgumentTypeError as error:
                if alone:
                    raise
                message = str(error)
                if message.startswith(f"{flag} "):
                    message = f"{flag} entries{message[len(flag) :]}"
                raise argparse.ArgumentTypeError(f"{message} in {text!r}") from None
        values = tuple(values)
        return values[0] if scalar and len(values) == 1 and "," not in text else values

    return _named(parse, "list")


def _checked(check: Callable[[], Any]) -> Any:
    try:
        return check()
    except SearchkitError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
