"""What changed since the rules last looked, so that a rules run evaluates only
the consumers concerned (:func:`store.rules.run_rules`).

A change leaves a mark in ``rules_pending``, in the same transaction as the change:

``figures``
    an app's figures changed: new, revised or withdrawn usage or endpoint rows
    (the sync writer marks new rows; triggers mark revisions and withdrawals);
``provenance``
    an app's figures were fetched again unchanged, so they now point to a newer
    run and page, and its consumer has candidate findings whose provenance lists
    follow them (the sync writer marks these);
``consumer``
    a consumer's tier or declared use case changed, one of its apps was added,
    moved, renamed or changed its use case, or one of its findings went back to
    candidate (triggers);
``tier``
    a tier's limits or allowed endpoints changed: every consumer of the tier
    (triggers).

A run takes the marks up to the highest id when it began; marking again gives
a mark a new, higher id, so a change that arrives while a run is evaluating is
kept for the next run. The run deletes what it took when it is done (a run
that dies midway leaves them for the next), except the marks of apps with
figures but no owner yet: :func:`store.consumers.apply_config` gives those
their own consumer, and then they count.

A database whose rules never ran with this warden's rules (``RULES_VERSION``,
raised whenever what a rule computes changes) gets a full pass first.
"""

from __future__ import annotations

import sqlite3
from typing import Iterable, Iterator

from store.db import transaction

# What the rules compute: raise it when a rule changes, so that the next run
# evaluates every consumer again.
RULES_VERSION = 1
MARK_KINDS: tuple[str, ...] = ("figures", "provenance", "consumer", "tier")
# Marks deleted per transaction when a run is done.
CLEAR_BATCH = 5_000

_MARK = "INSERT INTO rules_pending (kind, subject, app_id) VALUES (?, ?, ?)"


def mark_apps(conn: sqlite3.Connection, kind: str, source: str, app_ids: Iterable[str]) -> None:
    """Mark apps of ``source`` (``kind``: ``figures`` or ``provenance``). Call
    inside the transaction that made the change."""
    conn.executemany(_MARK, [(kind, source, app_id) for app_id in app_ids])


def needs_full_pass(conn: sqlite3.Connection) -> bool:
    """True when no run of this warden's rules has finished on this database."""
    return conn.execute("SELECT 1 FROM rules_run WHERE rules_version = ? AND finished_at IS NOT NULL LIMIT 1",
                        (RULES_VERSION,)).fetchone() is None


def pending_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """How many marks of each kind wait for the next run."""
    counts = dict.fromkeys(MARK_KINDS, 0)
    counts.update(conn.execute("SELECT kind, count(*) FROM rules_pending GROUP BY kind").fetchall())
    return counts


# The consumers the marks up to ``upto`` stand for (deleted consumers left out).
_MARKED_CONSUMERS = """
INSERT OR IGNORE INTO temp.rules_todo (consumer_id)
SELECT p.subject FROM rules_pending AS p JOIN consumer AS c ON c.id = p.subject
WHERE p.kind = 'consumer' AND p.id <= :upto
UNION ALL
SELECT a.consumer_id FROM rules_pending AS p JOIN app AS a ON a.source = p.subject AND a.app_id = p.app_id
WHERE p.kind IN ('figures', 'provenance') AND p.id <= :upto
UNION ALL
SELECT c.id FROM rules_pending AS p JOIN consumer AS c ON c.tier_id = p.subject COLLATE NOCASE
WHERE p.kind = 'tier' AND p.id <= :upto AND c.tier_id = p.subject
"""
_EVERY_CONSUMER = "INSERT OR IGNORE INTO temp.rules_todo (consumer_id) SELECT id FROM consumer"
# Marks taken, but not those of apps with figures and no owner yet (see the module docstring).
_CLEAR = """
DELETE FROM rules_pending WHERE id > ? AND id <= ? AND NOT (
    kind = 'figures'
    AND NOT EXISTS (SELECT 1 FROM app WHERE app.source = rules_pending.subject AND app.app_id = rules_pending.app_id)
    AND (EXISTS (SELECT 1 FROM usage AS u WHERE u.source = rules_pending.subject AND u.app_id = rules_pending.app_id)
         OR EXISTS (SELECT 1 FROM endpoint_usage AS e
                    WHERE e.source = rules_pending.subject AND e.app_id = rules_pending.app_id)))
"""


class PendingWork:
    """The consumers one rules run evaluates, and the marks it takes.

    ``everything``: every consumer (a full pass). Otherwise the consumers the
    marks stand for. The list lives in a temporary table of the run's
    connection, read a chunk at a time, so memory does not grow with it.
    """

    def __init__(self, conn: sqlite3.Connection, *, everything: bool) -> None:
        self.conn = conn
        (self.upto,) = conn.execute("SELECT coalesce(max(id), 0) FROM rules_pending").fetchone()
        conn.execute("DROP TABLE IF EXISTS temp.rules_todo")
        conn.execute("CREATE TEMP TABLE rules_todo (consumer_id TEXT PRIMARY KEY) WITHOUT ROWID")
        with transaction(conn, immediate=False):   # temporary table: no lock on the database
            if everything:
                conn.execute(_EVERY_CONSUMER)
            else:
                conn.execute(_MARKED_CONSUMERS, {"upto": self.upto})

    def chunks(self, size: int) -> Iterator[list[str]]:
        """The consumer ids, ``size`` at a time, in id order."""
        after = ""
        while True:
            chunk = [row[0] for row in self.conn.execute(
                "SELECT consumer_id FROM temp.rules_todo WHERE consumer_id > ? ORDER BY consumer_id LIMIT ?",
                (after, size))]
            if not chunk:
                return
            yield chunk
            after = chunk[-1]

    def done(self) -> int:
        """Delete the marks this run took (in short transactions); returns how many."""
        deleted = 0
        for low in range(0, self.upto, CLEAR_BATCH):
            with transaction(self.conn):
                deleted += self.conn.execute(_CLEAR, (low, min(self.upto, low + CLEAR_BATCH))).rowcount
        return deleted

    def close(self) -> None:
        self.conn.execute("DROP TABLE IF EXISTS temp.rules_todo")
