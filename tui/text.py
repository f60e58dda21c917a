"""Showing text that came from data (names, reasons, evidence) literally.

Remote endpoints and reviewers supply strings that may hold Rich/Textual markup
(``[bold red]x[/]``) or terminal control sequences (``\\x1b]52;...``). Everything
such a string contains must reach the screen as visible characters: never as
styling, never as a control effect.
"""

from __future__ import annotations

import unicodedata

from rich.text import Text
from textual.content import Content

# Control characters become their visible "control picture" (U+2400 block) so a
# reviewer sees that something odd is in the name instead of it vanishing.
_PICTURES = {code: chr(0x2400 + code) for code in range(0x20)}
_PICTURES[0x7F] = "\u2421"  # DEL


def visible(value: object) -> str:
    """``value`` as a string whose every character is printable.

    C0/DEL become control pictures (ESC -> ␛); C1 controls, bidi overrides and
    other format characters become ``\\u....`` escapes.
    """
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    out: list[str] = []
    for char in text:
        code = ord(char)
        if code in _PICTURES:
            out.append(_PICTURES[code])
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"):
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


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
