"""What ``warden demo --headless`` prints after the sync: how much was stored,
the findings the rules made, and who tops the queue."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class DemoSummary:
    consumers: int
    usage_rows: int
    findings: list[tuple[str, str, int]]        # (category, status, count), sorted
    top: tuple[str, str, float] | None          # (consumer id, legal name, worst ratio)


def demo_summary(conn: sqlite3.Connection) -> DemoSummary:
    """Counts from the database ``conn`` (any warden database, the demo's or not)."""
    consumers = conn.execute("SELECT count(*) FROM consumer").fetchone()[0]
    rows = conn.execute("SELECT count(*) FROM usage").fetchone()[0]
    findings = [(category, status, n) for category, status, n in conn.execute(
        "SELECT category, status, count(*) FROM finding GROUP BY 1, 2 ORDER BY 1, 2")]
    top = conn.execute(
        "SELECT id, legal_name, worst_ratio FROM consumer ORDER BY worst_ratio DESC, id LIMIT 1"
    ).fetchone()
    return DemoSummary(consumers, rows, findings,
                       None if top is None else (top[0], top[1], float(top[2])))
