"""The per-consumer summary the review queue is ordered by.

``consumer.worst_ratio`` is the highest overage ratio among the consumer's findings
that still stand (not dismissed or resolved) so that confirming a finding does not
reshuffle the queue under the reviewer; ``open_findings`` counts those waiting for
a decision, twins (:mod:`store.twins`: one overage, two provisions) once;
``review_state`` is ``open`` (a candidate to decide), ``info`` (only findings
waiting for information: nothing to decide until it comes), ``decided`` (all
decided), ``clear`` (no findings) or ``retired`` (an app's own consumer whose app
the roster has since given to its owner: it leaves the queue).

``consumer_finding_key`` holds, once per consumer, each status, category and
severity its findings have, and each combination of them that one finding has
(:func:`finding_key`): the queue's ``status:`` / ``category:`` / ``severity:``
filters count and find their consumers in one range of it, however many
findings each consumer has.
"""

from __future__ import annotations

import itertools
import sqlite3
from typing import Iterable, Sequence

from store.casework.summary import refresh_case_summary
from store.schema import KEYS_OF_FINDING
from store.twins import TWIN_OPEN_SQL

_REFRESH = f"""
UPDATE consumer SET
    worst_ratio = COALESCE((
        SELECT MAX(COALESCE(f.ratio, 1.0)) FROM finding f
        WHERE f.consumer_id = consumer.id AND f.status NOT IN ('dismissed', 'resolved')
    ), 0),
    open_findings = (
        SELECT COUNT(*) FROM finding f
        WHERE f.consumer_id = consumer.id AND f.status IN ('candidate', 'needs_info') AND NOT {TWIN_OPEN_SQL}
    ),
    review_state = CASE
        WHEN consumer.retired_at IS NOT NULL THEN 'retired'
        WHEN EXISTS (SELECT 1 FROM finding f WHERE f.consumer_id = consumer.id
                     AND f.status = 'candidate') THEN 'open'
        WHEN EXISTS (SELECT 1 FROM finding f WHERE f.consumer_id = consumer.id
                     AND f.status = 'needs_info') THEN 'info'
        WHEN EXISTS (SELECT 1 FROM finding f WHERE f.consumer_id = consumer.id) THEN 'decided'
        ELSE 'clear'
    END
WHERE id = ?
"""


def finding_key(status: str | None = None, category: str | None = None, severity: str | None = None) -> str:
    """The key of findings with this status, category and severity (None: any):
    ``'s=candidate c=volume_cap'``. ``store.schema.KEYS_OF_FINDING`` writes the same."""
    parts = [f"{name}={value}" for name, value in (("s", status), ("c", category), ("v", severity))
             if value is not None]
    return " ".join(parts)


def finding_keys(statuses: Sequence[str], categories: Sequence[str], severities: Sequence[str]) -> list[str]:
    """The keys a consumer with a finding matching all three lists (each: any of
    its values; empty: no constraint) has one of."""
    return [finding_key(s, c, v) for s, c, v in itertools.product(statuses or [None], categories or [None],
                                                                   severities or [None])]


def refresh_summary(conn: sqlite3.Connection, consumer_ids: Iterable[str]) -> None:
    """Recompute the queue summary of these consumers (call inside the writer's
    transaction): their finding keys, and their case columns (a finding decided
    may open a case)."""
    ids = list(consumer_ids)
    params = [(cid,) for cid in ids]
    conn.executemany(_REFRESH, params)
    conn.executemany("DELETE FROM consumer_finding_key WHERE consumer_id = ?", params)
    conn.executemany(KEYS_OF_FINDING + " WHERE f.consumer_id = ?", params)
    refresh_case_summary(conn, ids)


def refresh_all(conn: sqlite3.Connection) -> None:
    """Recompute every consumer's summary (after a rules run over everything)."""
    conn.execute(_REFRESH.replace("WHERE id = ?", ""))
    conn.execute("DELETE FROM consumer_finding_key")
    conn.execute(KEYS_OF_FINDING)
    refresh_case_summary(conn, [r[0] for r in conn.execute("SELECT id FROM consumer WHERE case_state IS NOT NULL"
                                                           " OR EXISTS (SELECT 1 FROM finding f WHERE"
                                                           " f.consumer_id = consumer.id)")])
