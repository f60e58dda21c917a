"""What the sync runs so far say, in a line: the review screen's header shows it
(a cron sync in another process shows up there on refresh)."""

from __future__ import annotations

import sqlite3


def sync_summary(conn: sqlite3.Connection) -> str:
    """``2/2 sources ok, 2026-11-27T20:14:29Z`` from each source's latest run:
    how many ended ok, the others with their status (``1/2 sources ok (x
    partial), ...``), and when the latest of them ended (or started, if still
    running); ``never synced`` without any run."""
    rows = conn.execute(
        "SELECT r.source, r.status, COALESCE(r.finished_at, r.started_at) AS at FROM sync_run r"
        " WHERE r.id = (SELECT max(id) FROM sync_run WHERE source = r.source) ORDER BY r.source"
    ).fetchall()
    if not rows:
        return "never synced"
    ok = sum(1 for _source, status, _at in rows if status == "ok")
    line = f"{ok}/{len(rows)} sources ok"
    bad = [f"{source} {status}" for source, status, _at in rows if status != "ok"]
    if bad:
        line += f" ({', '.join(bad)})"
    return f"{line}, {max(at for _source, _status, at in rows)}"
