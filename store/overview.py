"""The database in a few numbers: what ``warden demo --headless`` prints after
its sync (how many consumers and usage figures, findings by category and
status, the top of the queue)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class Overview:
    """What a database holds, in numbers."""

    consumers: int
    usage_rows: int
    findings: list[tuple[str, str, int]]        # (category, status, how many), by category then status
    top: tuple[str, str, float] | None          # (consumer id, legal name, worst ratio) first in the queue


def database_overview(conn: sqlite3.Connection) -> Overview:
    """Count consumers, usage figures and findings by category and status, and
    name the consumer at the top of the queue (worst overage first)."""
    (consumers,) = conn.execute("SELECT count(*) FROM consumer").fetchone()
    (usage_rows,) = conn.execute("SELECT count(*) FROM usage").fetchone()
    findings = [(category, status, n) for category, status, n in conn.execute(
        "SELECT category, status, count(*) FROM finding GROUP BY 1, 2 ORDER BY 1, 2")]
    top = conn.execute(
        "SELECT id, legal_name, worst_ratio FROM consumer ORDER BY worst_ratio DESC, id LIMIT 1").fetchone()
    return Overview(consumers, usage_rows, findings, None if top is None else (top[0], top[1], float(top[2])))
