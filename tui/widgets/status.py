"""The review screen's header line: where the cursor is, the sort and its
direction, the filter, the sync state.

One line at any width: at 80 columns the sync time is kept (shortened to
``01-02 09:30Z``, sources not ok counted), the name ``warden`` goes if need be,
and the filter text is what gets cut, with an ellipsis (the filter dialog shows
it whole).
"""

from __future__ import annotations

import re

from rich.text import Text

from tui.text import glued, literal
from tui.widgets.pairs import fit_pairs, pair

_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):\d\d(?:\.\d+)?Z")


def sync_long(text: str) -> str:
    """``2/2 sources ok, 2023-01-02 09:30 UTC``: the sync summary, its time readable."""
    return _ISO.sub(lambda m: f"{m[1]}-{m[2]}-{m[3]} {m[4]}:{m[5]} UTC", text)


_NOT_OK = re.compile(r" \(([^()]*)\)")


def sync_short(text: str) -> str:
    """``1/2 ok (1 partial), 01-02 09:30Z``: the same in fewer cells (a narrow
    terminal): the sources not ok counted by status instead of named."""
    def counted(m: re.Match[str]) -> str:
        statuses = [part.rsplit(" ", 1)[-1] for part in m[1].split(", ")]
        return " (" + ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses)) + ")"

    short = _NOT_OK.sub(counted, text.replace(" sources ok", " ok"), count=1)
    return _ISO.sub(lambda m: f"{m[2]}-{m[3]} {m[4]}:{m[5]}Z", short)


def direction(reverse: bool) -> str:
    """``↓`` the sort's own direction (largest overage, open, A first), ``↑`` reversed."""
    return "↑" if reverse else "↓"


def status_text(*, position: tuple[int, int], tagged: int, sort: str, reverse: bool, filter_text: str,
                sync: str, width: int) -> Text:
    """The header line for a screen ``width`` cells wide."""
    here, total = position
    pairs = [
        pair("", " warden ", style="bold reverse", short=""),
        pair("", f"{here:,} / {total:,}", short=f"{here:,}/{total:,}"),
        pair("sort", f"{sort} {direction(reverse)}"),
        pair("filter", literal(filter_text) if filter_text else Text("none", "dim", end=""), cut=True),
    ]
    if tagged:
        pairs.insert(2, pair("", f"{tagged:,} tagged", style="bold"))
    if sync:
        pairs.append(pair("sync", literal(sync_long(sync)), short=literal(sync_short(sync))))
    # Shortened in this order: the sync state, the position, then the name goes;
    # the filter is what is cut.
    return glued(fit_pairs(pairs, width, shorten_first=(len(pairs) - 1, 1, 0)))
