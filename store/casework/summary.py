"""What the queue shows of each consumer's case, kept on its ``consumer`` row.

``consumer.case_state`` is the state of its latest case while that case is
under way (reopened, letter sent, response received, escalated); otherwise
``open`` when findings stand that no letter has asked about yet (candidate,
needs info or confirmed) and the consumer is not retired, else the latest case's final state (resolved,
closed), else NULL (no case). ``consumer.case_due`` is the latest case's due
date while a reply is awaited: a letter sent, or a response received while
items are still open or partly answered.

Refreshed in the same transaction as every change of a case, an item or a
finding (:func:`store.queue_summary.refresh_summary` calls it), so the queue's
case filters and the due-date sort read an index, never the cases.
"""

from __future__ import annotations

import sqlite3
from typing import Iterable

from store.domain import AWAITING_CASE_STATES, FINAL_CASE_STATES, PENDING_ITEM_STATES


def _quoted(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


_LATEST = "(SELECT {col} FROM case_file c WHERE c.consumer_id = consumer.id ORDER BY c.id DESC LIMIT 1)"
_REFRESH = f"""
UPDATE consumer SET
    case_state = CASE
        WHEN {_LATEST.format(col='c.state')} NOT IN ({_quoted(FINAL_CASE_STATES)}) THEN {_LATEST.format(col='c.state')}
        WHEN consumer.retired_at IS NULL AND EXISTS (SELECT 1 FROM finding f WHERE f.consumer_id = consumer.id
                     AND f.status IN ('candidate', 'needs_info', 'confirmed')) THEN 'open'
        ELSE {_LATEST.format(col='c.state')}
    END,
    case_due = (
        SELECT c.due_date FROM case_file c
        WHERE c.id = {_LATEST.format(col='c.id')} AND c.state IN ({_quoted(AWAITING_CASE_STATES)})
          AND EXISTS (SELECT 1 FROM case_item i WHERE i.case_id = c.id
                      AND i.state IN ({_quoted(PENDING_ITEM_STATES)}))
    )
WHERE id = ?
"""


def refresh_case_summary(conn: sqlite3.Connection, consumer_ids: Iterable[str]) -> None:
    """Recompute these consumers' case state and due date (inside the writer's transaction)."""
    conn.executemany(_REFRESH, ((cid,) for cid in consumer_ids))

