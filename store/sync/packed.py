"""A page's figures as JSON text, for the writer to insert without a Python
object per row, and the parse of one page (decode, adapter, checks, packing),
the same wherever it runs (a fetch thread, or :mod:`store.sync.parse_worker`).

The writer inserts a slice of rows with one statement,
``INSERT ... SELECT value->>0, ... FROM json_each(?)``: SQLite reads the text
and steps the whole slice without the GIL, where ``executemany`` takes it back
at every row (the fetch threads, parsing meanwhile, would make it wait). The
text is produced by ``json.dumps`` from rows the adapter has already checked,
so SQLite reads exactly the values that were validated (never the response
body itself, whose repeated keys SQLite and Python could read differently).

SQLite's JSON functions stop a string at an escaped NUL (``\\u0000``); a slice
holding one keeps its rows as a list, inserted by ``executemany``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Mapping, Sequence

from store.errors import PageRejected
from store.sync.adapter import Adapter, ParsedPage, Request, Window, expect_in_window

# Rows per statement: the writer checks between slices whether to commit (a
# reviewer waiting), so a slice bounds how long that waiter waits.
SLICE_ROWS = 1_000

_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":")).encode
_APP, _DAY = itemgetter(0), itemgetter(1)
_NUL = "\\u0000"


@dataclass(frozen=True)
class Slice:
    """At most ``SLICE_ROWS`` rows: a JSON array of ``[app, day, key, value]``
    (or the rows themselves, when the text would hold a NUL), and their apps."""

    rows: str | Sequence[Sequence[Any]]
    apps: tuple[str, ...]
    count: int


@dataclass(frozen=True)
class PackedRows:
    """The rows of a page (usage or endpoint figures) in slices."""

    slices: tuple[Slice, ...]
    count: int
    last_day: str | None

    def __len__(self) -> int:
        return self.count


def pack_rows(rows: Sequence[Sequence[Any]] | PackedRows) -> PackedRows:
    """``rows`` (already checked by the adapter) in slices of JSON text."""
    if isinstance(rows, PackedRows):
        return rows
    slices = []
    for offset in range(0, len(rows), SLICE_ROWS):
        chunk = rows[offset:offset + SLICE_ROWS]
        text = _encode(chunk)
        apps = tuple(dict.fromkeys(map(_APP, chunk)))   # in the order they come
        slices.append(Slice(chunk if _NUL in text else text, apps, len(chunk)))
    return PackedRows(tuple(slices), len(rows), max(map(_DAY, rows)) if rows else None)


def expect_within(page: ParsedPage, window: Window) -> None:
    """Refuse a page holding a figure for a day the run did not ask for (each
    adapter refuses it with its JSON path; this is the engine's second line)."""
    for rows in (page.usage, page.endpoint_usage):
        if rows and not isinstance(rows, PackedRows):
            for day in (min(map(_DAY, rows)), max(map(_DAY, rows))):
                expect_in_window(day, window, "$")


def parse_body(adapter: Adapter, chain: str, request: Request, body: bytes, window: Window,
               headers: Mapping[str, str] | None = None) -> ParsedPage:
    """One response body as the writer takes it: decoded, parsed by the
    adapter, its days checked against the window, its figures packed. Raises
    ``PageRejected`` (with a JSON path) for anything malformed."""
    try:
        decoded = json.loads(body)
    except ValueError as exc:
        raise PageRejected(f"not valid JSON ({exc})", path="$") from None
    except RecursionError:
        raise PageRejected("JSON nested too deeply", path="$") from None
    if headers:   # an adapter that reads response headers (a Link header)
        parsed = adapter.parse(chain, request, decoded, window, headers=headers)  # type: ignore[call-arg]
    else:
        parsed = adapter.parse(chain, request, decoded, window)
    del decoded
    expect_within(parsed, window)   # refused whole: no row of it is stored
    if parsed.usage:
        parsed.usage = pack_rows(parsed.usage)  # type: ignore[assignment]
    if parsed.endpoint_usage:
        parsed.endpoint_usage = pack_rows(parsed.endpoint_usage)  # type: ignore[assignment]
    return parsed
