"""Text that came from data, made safe to show, store or print.

Names, reasons, evidence, note bodies and servers' error messages come from
remote endpoints and reviewers. They may hold terminal control sequences
(``\\x1b]52;...``), bidi overrides or NUL; none of these may act on whoever reads
the text. Three readers, three forms, one home:

- :func:`visible`: a screen (the TUI): control characters as visible pictures
  (ESC -> ␛) so a reviewer sees something odd is there;
- :func:`clean_text`: a document (notes, exports, e-mail): control characters as
  U+FFFD, tabs and line breaks as spaces (or kept, for a body);
- :func:`printable`: a message (errors that quote a server, printed to terminals
  and stored): every character that is not printable as a ``\\uXXXX`` escape.
"""

from __future__ import annotations

import unicodedata

# Control characters become their visible "control picture" (U+2400 block) so a
# reviewer sees that something odd is in the name instead of it vanishing.
_PICTURES = {code: chr(0x2400 + code) for code in range(0x20)}
_PICTURES[0x7F] = "\u2421"  # DEL

_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


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


def clean_text(value: object, *, newlines: bool = False) -> str:
    """``value`` as text with control characters (ANSI escapes, NUL, bidi overrides) made visible.

    Each control character becomes U+FFFD so a hostile name can neither drive a
    terminal nor reorder what a reader sees. Tabs, CR and LF become spaces, or
    (``newlines=True``) LF is kept and CR dropped.
    """
    text = "" if value is None else str(value)
    out: list[str] = []
    for ch in text:
        if ch == "\n" and newlines:
            out.append(ch)
        elif ch == "\r" and newlines:
            continue
        elif ch in "\t\r\n":
            out.append(" ")
        elif ch in _BIDI or unicodedata.category(ch) == "Cc":
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


def printable(text: str) -> str:
    """``text`` with every character that is not printable (ANSI/OSC escapes, bidi
    overrides, newlines) written as a ``\\uXXXX`` escape: messages quote servers,
    and they are printed to terminals and stored."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


def ratio_text(ratio: float | None) -> str:
    """An overage ratio as the queue, the detail and the report show it: ``812.3x``, ``1.02x``, ``-``.

    Findings without a figure (a missing use case, a manual finding) rank as 1.0 in
    the queue summary; 1.0 is never an overage, so it shows as ``-`` too.
    """
    if not ratio or ratio <= 1.0:
        return "-"
    if ratio >= 1000:
        return f"{ratio:,.0f}x"
    if ratio >= 10:
        return f"{ratio:.1f}x"
    return f"{ratio:.2f}x"


_MONTHS_SHORT = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def month_short(month: str) -> str:
    """The month of ``YYYY-MM`` as the overview and the report label it: ``Jul``."""
    return _MONTHS_SHORT[int(month[5:7]) - 1]
