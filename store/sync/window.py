"""Which days a sync of a source fetches.

* **First sync**: from the source's ``start`` (without one, ``FIRST_SYNC_DAYS``
  before the window's end) to its ``end``, or to today when it has none or it is
  still to come.
* **Later syncs** re-fetch the ``lookback_days`` before the latest day the source
  reported, and everything from the start of a run that did not finish since the
  last good one (never before ``start``).
* **A closed window** (``end`` before today) that complete runs fetched, every day
  of it after that day was over, is not fetched again: :func:`complete_window`
  says so, and the engine skips the source.
* **Refetch** (``warden sync --refetch``): the whole window again, from ``start``.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

from store.config import SourceConfig
from store.sync.adapter import Window
from store.sync.writer import LATEST_DAY_FACT

# Without source.start, a first sync fetches this many days back from its end.
FIRST_SYNC_DAYS = 90


def _last_day(source: SourceConfig, today: date) -> date:
    return min(source.end, today) if source.end is not None else today


def _first_day(source: SourceConfig, end: date) -> date:
    return source.start if source.start is not None else end - timedelta(days=FIRST_SYNC_DAYS)


def sync_window(conn: sqlite3.Connection, source: SourceConfig, today: date, *, refetch: bool = False) -> Window:
    """The days a new run of ``source`` fetches (see the module docstring)."""
    end = _last_day(source, today)
    last_ok = conn.execute("SELECT max(id) FROM sync_run WHERE source = ? AND status = 'ok'",
                           (source.name,)).fetchone()[0]
    latest = conn.execute("SELECT value FROM source_fact WHERE source = ? AND key = ?",
                          (source.name, LATEST_DAY_FACT)).fetchone()
    if refetch or last_ok is None or latest is None:
        start = _first_day(source, end)
    else:
        latest_day = date.fromisoformat(latest[0])
        start = latest_day - timedelta(days=max(0, source.lookback_days - 1))
        if source.lookback_days == 0:
            start = latest_day + timedelta(days=1)
        # Runs that did not complete since the last good one left gaps: cover them.
        unfinished = conn.execute(
            "SELECT min(window_start) FROM sync_run WHERE source = ? AND id > ? AND status != 'ok'",
            (source.name, last_ok)).fetchone()[0]
        if unfinished:
            start = min(start, date.fromisoformat(unfinished))
        if source.start:
            start = max(start, source.start)
    return Window(min(start, end), end)


def complete_window(conn: sqlite3.Connection, source: SourceConfig, today: date) -> tuple[Window, int] | None:
    """The source's closed window and the last run that completed it, when runs
    that ended ``ok`` fetched every day of it after that day was over; else ``None``
    (the window is still open, or a day of it was never fetched completely)."""
    if source.end is None or source.end >= today:
        return None
    window = Window(_first_day(source, source.end), source.end)
    spans: list[tuple[date, date, int]] = []
    for start, end, started_at, run_id in conn.execute(
            "SELECT window_start, window_end, started_at, id FROM sync_run "
            "WHERE source = ? AND status = 'ok' AND window_start IS NOT NULL", (source.name,)):
        # A day fetched before it was over may have grown since: not complete then.
        over = date.fromisoformat(started_at[:10]) - timedelta(days=1)
        spans.append((date.fromisoformat(start), min(date.fromisoformat(end), over), run_id))
    reached = window.start - timedelta(days=1)   # every day up to this one is covered
    last_run = 0
    for start, end, run_id in sorted(spans):
        if start > reached + timedelta(days=1):
            break
        if end > reached:
            reached = end
        last_run = max(last_run, run_id)
    return (window, last_run) if reached >= window.end else None
