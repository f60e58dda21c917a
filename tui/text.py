"""Showing text that came from data (names, reasons, evidence) literally.

Remote endpoints and reviewers supply strings that may hold Rich/Textual markup
(``[bold red]x[/]``) or terminal control sequences (``\\x1b]52;...``). Everything
such a string contains must reach the screen as visible characters: never as
styling, never as a control effect. Control characters are made visible by
:func:`store.text.visible` (the one home for cleaning text from data); this
module only keeps markup from being read as markup, and (:func:`glue_spaces`)
keeps the spaces between labels and values where every viewer of a screenshot
draws them.
"""

from __future__ import annotations

import io
from typing import Iterable

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.content import Content

from store.text import visible


def literal(value: object, style: str = "") -> Text:
    """A ``Text`` showing ``value`` exactly as its characters, markup included."""
    return Text(visible(value), style=style, no_wrap=False, end="")


def literal_content(value: object) -> Content:
    """The same as :func:`literal`, for widgets that take Textual ``Content``."""
    return Content(visible(value))


def number(value: int | float | None) -> str:
    """A count with thousands separators, ``-`` when missing (missing is not zero)."""
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def wrap_lines(text: Text, console: Console, width: int) -> list[Text]:
    """``text.wrap(console, width)`` as a list: the same lines, for less.

    Rich measures every word of every line to find where to break it; most lines
    of the detail pane (figures, tables, the chart) already fit and are taken as
    they are, and only the others (evidence, reasons, a long name) go through
    Rich's wrap."""
    lines: list[Text] = []
    for line in text.split(allow_blank=True):
        plain = line.plain
        if "\t" not in plain and cell_len(plain) <= width:
            lines.append(line)
        else:
            lines.extend(line.wrap(console, width))
    return lines


def _spaces_look_alike(a: Style | None, b: Style | None) -> bool:
    """Whether a space looks the same in style ``a`` and in style ``b`` (same
    background, neither reversed, underlined, struck or overlined differently)."""
    a, b = a or Style(), b or Style()
    return (a.bgcolor == b.bgcolor and bool(a.reverse) == bool(b.reverse) and not a.underline and not b.underline
            and not a.strike and not b.strike and not a.overline and not b.overline)


def glue_spaces(segments: Iterable[Segment]) -> list[Segment]:
    """The segments with every run of spaces that starts a new style given to the
    text before it, where that looks the same on a terminal.

    A label and its value stay apart on screen either way, but an SVG screenshot
    draws each style run as its own ``<text>``, and viewers drop the spaces that
    begin one: "filter: none" then "  sync:" read "filter: nonesync:". Spaces that
    end a run are kept."""
    out: list[Segment] = []
    for segment in segments:
        text, style, control = segment
        if out and not control and not out[-1].control and text.startswith(" ") and style != out[-1].style:
            before = out[-1]
            if _spaces_look_alike(before.style, style):
                rest = text.lstrip(" ")
                out[-1] = Segment(before.text + " " * (len(text) - len(rest)), before.style)
                if rest:
                    out.append(Segment(rest, style))
                continue
        out.append(segment)
    return out


def glued(text: Text) -> Text:
    """:func:`glue_spaces` for a ``Text`` shown by a ``Static``."""
    segments = glue_spaces(text.render(_CONSOLE))
    out = Text(end="", no_wrap=text.no_wrap, overflow=text.overflow)
    for segment in segments:
        out.append(segment.text, segment.style)
    return out


_CONSOLE = Console(file=io.StringIO(), width=10_000, color_system="truecolor", legacy_windows=False)
