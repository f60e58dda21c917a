"""Markdown for notes: values escaped so they render literally, and back to plain text."""

from __future__ import annotations

import re

from store.text import clean_text


class Markdown(str):
    """Text that is already Markdown: the note templates output it unescaped."""


_MD_ALWAYS = frozenset("\\`*_[]<>|~")
_MD_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
# What starts a block at the start of a line: a quote; a heading, list item or
# ordered item when followed by a space (or nothing); a rule or setext underline.
_MD_LINE_START = re.compile(r"^(\s*)(?:(>|#(?=#{0,5}(?:\s|$))|[+-](?=\s|$)|[-=](?=[\s=-]*$))|(\d{1,9})([.)])(?=\s|$))")


def md_escape(value: object) -> Markdown:
    """``value`` as Markdown text that renders literally, on one line.

    Backslash-escapes what could start emphasis, code, links, images, raw HTML,
    tables or strike-through anywhere, entity references, and what would start a
    heading, quote, list or rule at the start of a line.
    """
    text = clean_text(value)
    escaped = "".join("\\" + ch if ch in _MD_ALWAYS else ch for ch in text)
    escaped = _MD_ENTITY.sub(r"\\&", escaped)
    match = _MD_LINE_START.match(escaped)
    if match:
        lead, marker, digits, dot = match.groups()
        if marker:
            escaped = f"{lead}\\{marker}{escaped[match.end():]}"
        else:
            escaped = f"{lead}{digits}\\{dot}{escaped[match.end():]}"
    return Markdown(escaped)


_MD_UNESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def plain_text(markdown: str) -> str:
    """The Markdown source as plain text: backslash escapes removed (CommonMark's meaning)."""
    return _MD_UNESCAPE.sub(r"\1", markdown)
