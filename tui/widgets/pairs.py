"""Label: value pairs that never run together, whatever the width.

A pair is a label and its value (``tier: Enterprise``). :func:`wrap_pairs` lays
pairs out in lines of a given width: two spaces between pairs on a line, a whole
pair moves to the next line when it does not fit (a label never ends a line
without its value), and only a pair wider than a whole line wraps, inside its
value, indented. :func:`fit_pairs` puts pairs on one line (a header): when they
do not fit, pairs with a ``short`` form use it, in the order they are given
most expendable first by ``shorten_first``; then the one pair marked ``cut`` is
cut with an ellipsis; nothing else is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from rich.cells import chop_cells
from rich.text import Text

GAP = "  "
INDENT = "    "


@dataclass(frozen=True)
class Pair:
    """``label: value``; an empty label shows the value alone."""

    label: str
    value: Text
    short: Text | None = None   # what a full line shows instead (fit_pairs)
    cut: bool = False           # the one pair a full line may cut (fit_pairs)


def pair(label: str, value: str | Text, *, style: str = "", short: str | Text | None = None,
         cut: bool = False) -> Pair:
    """A :class:`Pair` from plain strings (``style`` for the value)."""
    def text(v: str | Text) -> Text:
        return v if isinstance(v, Text) else Text(v, style=style, end="")
    return Pair(label, text(value), None if short is None else text(short), cut)


def _piece(p: Pair, value: Text, label_style: str) -> Text:
    out = Text(end="", no_wrap=True)
    if p.label:
        out.append(f"{p.label}: ", label_style)
    out.append_text(value)
    return out


def _chop(piece: Text, width: int, label: int) -> list[Text]:
    """``piece`` cut into lines of at most ``width`` cells (after a word of the
    value where it can; its first ``label`` characters are the label),
    continuation lines indented."""
    lines: list[Text] = []
    start = 0
    plain = piece.plain
    room = width
    while start < len(plain):
        chunk = chop_cells(plain[start:], max(1, room))[0]
        end = start + max(1, len(chunk))
        space = chunk.rfind(" ")
        if end < len(plain) and space > 0 and start + space > label:
            end = start + space + 1      # after a word of the value (never between label and value)
        line = piece[start:end]
        line.rstrip()
        if lines:
            line = Text(INDENT, end="") + line
        lines.append(line)
        start = end
        room = width - len(INDENT)
    return lines or [Text(end="")]


def wrap_pairs(pairs: Sequence[Pair], width: int, *, label_style: str = "dim", gap: str = GAP) -> Text:
    """The pairs in lines of at most ``width`` cells, ``gap`` apart, whole pairs moving down."""
    width = max(len(INDENT) + 2, width)   # room for a wide character after the indent
    lines: list[Text] = []
    line = Text(end="", no_wrap=True)
    for p in pairs:
        piece = _piece(p, p.value, label_style)
        if line.cell_len and line.cell_len + len(gap) + piece.cell_len <= width:
            line.append(gap)
            line.append_text(piece)
            continue
        if line.cell_len:
            lines.append(line)
        if piece.cell_len <= width:
            line = piece
        else:
            # Wider than a line: on lines of its own, the next pair on a fresh one.
            lines.extend(_chop(piece, width, len(p.label) + 2 if p.label else 0))
            line = Text(end="", no_wrap=True)
    if line.cell_len:
        lines.append(line)
    return Text("\n", end="", no_wrap=True).join(lines)


def fit_pairs(pairs: Sequence[Pair], width: int, *, shorten_first: Sequence[int] = (),
              label_style: str = "dim") -> Text:
    """The pairs on one line of at most ``width`` cells (see the module docstring);
    ``shorten_first``: indexes of the pairs to shorten, in that order (the rest
    after them, from the last pair back)."""
    values = [p.value for p in pairs]

    def line() -> Text:
        # A pair shortened to nothing (no label, no value) goes with its gap.
        return Text(GAP, end="", no_wrap=True).join(_piece(p, v, label_style) for p, v in zip(pairs, values)
                                                    if p.label or v.plain)

    order = list(shorten_first) + [i for i in reversed(range(len(pairs))) if i not in shorten_first]
    for i in order:
        if line().cell_len <= width:
            break
        short = pairs[i].short
        if short is not None:
            values[i] = short
    over = line().cell_len - width
    cut = next((i for i, p in enumerate(pairs) if p.cut), None)
    if over > 0 and cut is not None:
        keep = max(1, values[cut].cell_len - over - 1)
        values[cut] = values[cut][:len(chop_cells(values[cut].plain, keep)[0])] + Text("…", end="")
    out = line()
    if out.cell_len > width:
        out.truncate(width, overflow="ellipsis")
    return out

