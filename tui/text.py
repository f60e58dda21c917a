"""Showing text that came from data (names, reasons, evidence) literally.

Remote endpoints and reviewers supply strings that may hold Rich/Textual markup
(``[bold red]x[/]``) or terminal control sequences (``\\x1b]52;...``). Everything
such a string contains must reach the screen as visible characters: never as
styling, never as a control effect. Control characters are made visible by
:func:`store.text.visible` (the one home for cleaning text from data); this
module only keeps markup from being read as markup.
"""

from __future__ import annotations

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
