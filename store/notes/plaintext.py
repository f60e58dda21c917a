"""A note's Markdown as plain text, for the text part of an ``.eml`` draft: what a
mail client without HTML shows, and what a lawyer may paste into a reply.

Paragraphs wrapped at :data:`WIDTH` columns; no Markdown markers (``**``, ``\\<``,
``|---|``, ``#``); lists keep their numbers and dashes with a hanging indent;
tables become aligned columns (a long text column wraps inside its cell), or,
when even that cannot fit, one block of ``Header: value`` lines per row.
"""

from __future__ import annotations

import textwrap
from markdown_it import MarkdownIt
from markdown_it.token import Token

WIDTH = 72
_GAP = "  "
# The one reading of a note's Markdown (raw HTML off): the HTML export renders the
# same tokens (store.export.formats), so an .eml parses its note once.
PARSER = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"])


def parse(markdown: str) -> list[Token]:
    """A note's Markdown as tokens, for :func:`plain_text` and the HTML renderer."""
    return PARSER.parse(markdown)


def plain_text(markdown: str | list[Token], width: int = WIDTH) -> str:
    """``markdown`` (text, or its tokens from :func:`parse`) rendered as plain text
    lines of at most ``width`` columns (a table row, or a word longer than the
    width such as a SHA-256, may be longer)."""
    tokens = parse(markdown) if isinstance(markdown, str) else markdown
    blocks: list[str] = []
    i = 0
    while i < len(tokens):
        i, block = _block(tokens, i, width)
        if block is not None:
            blocks.append(block)
    return "\n\n".join(blocks).rstrip() + "\n"


def _block(tokens: list[Token], i: int, width: int, indent: str = "") -> tuple[int, str | None]:
    token = tokens[i]
    kind = token.type
    if kind in ("heading_open", "paragraph_open"):
        text = _inline(tokens[i + 1])
        return i + 3, _wrap(text, width, indent)
    if kind == "table_open":
        end = _closing(tokens, i)
        return end + 1, _table(tokens[i:end + 1], width)
    if kind in ("bullet_list_open", "ordered_list_open"):
        end = _closing(tokens, i)
        return end + 1, _list(tokens[i:end + 1], width, indent)
    if kind == "blockquote_open":
        end = _closing(tokens, i)
        inner = tokens[i + 1:end]
        parts: list[str] = []
        j = 0
        while j < len(inner):
            j, block = _block(inner, j, width, indent + "    ")
            if block is not None:
                parts.append(block)
        return end + 1, "\n\n".join(parts)
    if kind in ("fence", "code_block"):
        return i + 1, "\n".join(indent + "    " + line for line in token.content.rstrip("\n").splitlines())
    if kind == "hr":
        return i + 1, indent + "-" * min(width, 20)
    return i + 1, None


def _closing(tokens: list[Token], i: int) -> int:
    """The index of the token closing the one at ``i``."""
    depth = 0
    for j in range(i, len(tokens)):
        depth += tokens[j].nesting
        if depth == 0:
            return j
    return len(tokens) - 1


def _inline(token: Token) -> str:
    """An inline token's text: emphasis and code markers dropped, a link's address
    after its text, hard breaks kept as newlines."""
    out: list[str] = []
    href: str | None = None
    for child in token.children or []:
        kind = child.type
        if kind in ("text", "code_inline", "html_inline"):
            out.append(child.content)
        elif kind == "softbreak":
            out.append(" ")
        elif kind == "hardbreak":
            out.append("\n")
        elif kind == "link_open":
            href = str(child.attrs.get("href") or "")
        elif kind == "link_close" and href:
            out.append(f" <{href}>")
            href = None
        elif kind == "image":
            out.append(child.content or "")
    return "".join(out)


def _wrap(text: str, width: int, indent: str = "", hanging: str | None = None) -> str:
    """``text`` wrapped at ``width``: the first line after ``indent``, the others
    after ``hanging`` (default: ``indent``); a hard break starts a line after ``hanging``."""
    follow = hanging if hanging is not None else indent
    lines: list[str] = []
    for n, piece in enumerate(text.split("\n")):
        lead = indent if n == 0 else follow
        lines.extend(textwrap.wrap(piece, width=width, initial_indent=lead, subsequent_indent=follow,
                                   break_long_words=False, break_on_hyphens=False) or [lead.rstrip()])
    return "\n".join(lines)


def _list(tokens: list[Token], width: int, indent: str) -> str:
    ordered = tokens[0].type == "ordered_list_open"
    number = int(tokens[0].attrs.get("start") or 1) if ordered else 0
    items: list[str] = []
    i = 1
    while i < len(tokens) - 1:
        if tokens[i].type != "list_item_open":
            i += 1
            continue
        end = _closing(tokens, i)
        marker = f"{number}. " if ordered else "- "
        number += 1
        inner = tokens[i + 1:end]
        parts: list[str] = []
        j = 0
        while j < len(inner):
            if inner[j].type == "paragraph_open":
                text = _inline(inner[j + 1])
                lead = indent + marker if not parts else indent + " " * len(marker)
                parts.append(_wrap(text, width, lead, indent + " " * len(marker)))
                j += 3
                continue
            j, block = _block(inner, j, width, indent + " " * len(marker))
            if block is not None:
                parts.append(block)
        items.append("\n".join(parts))
        i = end + 1
    return "\n".join(items)


def _table(tokens: list[Token], width: int) -> str:
    rows: list[list[str]] = []
    aligns: list[str] = []
    current: list[str] | None = None
    for token in tokens:
        if token.type == "tr_open":
            current = []
        elif token.type in ("th_open", "td_open"):
            if token.type == "th_open":
                style = str(token.attrs.get("style") or "")
                aligns.append("right" if "right" in style else "left")
        elif token.type == "inline" and current is not None:
            current.append(" ".join(_inline(token).split()))
        elif token.type == "tr_close" and current is not None:
            rows.append(current)
            current = None
    if not rows:
        return ""
    columns = max(len(r) for r in rows)
    rows = [r + [""] * (columns - len(r)) for r in rows]
    aligns += ["left"] * (columns - len(aligns))
    widths = _fit([max(len(r[c]) for r in rows) for c in range(columns)],
                  [max((len(r[c]) for r in rows[1:]), default=0) for c in range(columns)],
                  [max((len(w) for r in rows for w in r[c].split()), default=0) for c in range(columns)], width)
    if widths is None:
        return _records(rows, width)
    lines: list[str] = []
    for n, row in enumerate(rows):
        cells = [textwrap.wrap(cell, widths[c], break_long_words=False, break_on_hyphens=False) or [""]
                 for c, cell in enumerate(row)]
        for k in range(max(len(cell) for cell in cells)):
            parts = []
            for c, cell in enumerate(cells):
                text = cell[k] if k < len(cell) else ""
                parts.append(text.rjust(widths[c]) if aligns[c] == "right" else text.ljust(widths[c]))
            lines.append(_GAP.join(parts).rstrip())
        if n == 0:
            lines.append(_GAP.join("-" * w for w in widths))
    return "\n".join(lines)


def _fit(natural: list[int], data: list[int], smallest: list[int], width: int) -> list[int] | None:
    """Column widths that fit ``width``, or None when they cannot: headers wider
    than their column's values wrap first, then the widest columns narrow, never
    below their longest word."""
    widths = list(natural)
    room = width - len(_GAP) * (len(widths) - 1)
    while sum(widths) > room:
        shrinkable = [c for c in range(len(widths)) if widths[c] > smallest[c]]
        if not shrinkable:
            return None
        widest = max(shrinkable, key=lambda c: (widths[c] > max(data[c], smallest[c]), widths[c]))
        widths[widest] -= 1
    return widths


def _records(rows: list[list[str]], width: int) -> str:
    """A table too wide for columns: each row a block of "Header: value" lines."""
    header, body = rows[0], rows[1:]
    label = max(len(h) for h in header) + 2
    blocks = []
    for row in body:
        lines = [_wrap(value, width, f"{(name + ':').ljust(label)}", " " * label)
                 for name, value in zip(header, row) if value]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
