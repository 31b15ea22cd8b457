"""What each configuration field means, read from one place: the class docstring.

Every configuration class (strategies, backends, rewards) documents its fields in an
``Args:`` section of its docstring, in the Google style that ``help(RGRP)`` shows::

    Args:
        num_particles: ``N``, candidates at step 0.
        beta: correlation of the candidates' noise with the first one's (0: all equal,
            1: independent).
        channels, frames, height, width: latent shape ``[C, F, H, W]``.

That section is the single source: :func:`field_docs` reads it for the command line's
``--help`` and ``searchkit list``, and the docs render the same docstrings. A field may
instead carry ``attrs.field(metadata={"help": ...})``, which wins over the docstring.
:func:`plain` turns the reST markup of docstrings (````code````, ``:class:`~a.B```) into
plain text for a terminal.
"""

from __future__ import annotations

import inspect
import re

import attrs

_SECTION = re.compile(r"^(Args|Arguments|Parameters|Attributes):\s*$")
_ENTRY = re.compile(r"^([A-Za-z_][\w]*(?:\s*,\s*[A-Za-z_][\w]*)*)\s*(?:\([^)]*\))?:\s*(.*)$")
_ROLE = re.compile(r":[\w:.-]+:`([^`]*)`")
_LITERAL = re.compile(r"``([^`]*)``")
_TARGET = re.compile(r"^(.*?)\s*<[^>]*>$")


def field_docs(cls: type) -> dict[str, str]:
    """``{field name: plain-text description}`` from the ``Args:`` sections along the MRO.

    A subclass's entry wins over a base class's; ``metadata["help"]`` wins over both.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        docs.update(_parse_args(inspect.cleandoc(klass.__dict__.get("__doc__") or "")))
    if attrs.has(cls):
        for field in attrs.fields(cls):
            text = field.metadata.get("help")
            if text:
                docs[field.name] = plain(str(text))
    return docs


def summary(cls: type) -> str:
    """The first paragraph of ``cls``'s docstring as one line of plain text ("" if none)."""
    paragraph = inspect.cleandoc(cls.__doc__ or "").split("\n\n", 1)[0]
    return plain(paragraph)


def plain(text: str) -> str:
    """Docstring markup as plain text on one line: ````x```` -> ``x``; ``:class:`~a.B``` -> ``B``.

    A role's explicit title wins (``:data:`the list <a.b.LIST>``` -> ``the list``); a target
    with ``~`` keeps its last component, one without keeps the whole dotted name.
    """
    return " ".join(strip_markup(text).split())


def strip_markup(text: str) -> str:
    """:func:`plain`'s markup removal, keeping the lines and spacing (for a description)."""

    def role(match: re.Match) -> str:
        body = match[1]
        titled = _TARGET.match(body)
        if titled:
            return titled[1]
        if body.startswith("~"):
            return body[1:].rsplit(".", 1)[-1]
        return body

    return _LITERAL.sub(r"\1", _ROLE.sub(role, text))


def _parse_args(doc: str) -> dict[str, str]:
    """The entries of every ``Args:``-like section of one cleaned docstring."""
    docs: dict[str, str] = {}
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        if not _SECTION.match(lines[i].strip()) or _indent(lines[i]) != 0:
            i += 1
            continue
        i += 1
        base = None
        names: list[str] = []
        parts: list[str] = []
        while i < len(lines):
            line = lines[i]
            if line.strip() and _indent(line) == 0:
                break  # the section ends at the next unindented line
            if line.strip():
                indent = _indent(line)
                base = indent if base is None else base
                entry = _ENTRY.match(line.strip()) if indent == base else None
                if entry:
                    _store(docs, names, parts)
                    names = [n.strip() for n in entry[1].split(",")]
                    parts = [entry[2]]
                elif names:
                    parts.append(line.strip())
            i += 1
        _store(docs, names, parts)
    return docs


def _store(docs: dict[str, str], names: list[str], parts: list[str]) -> None:
    text = plain(" ".join(parts))
    for name in names:
        docs[name] = text


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())
