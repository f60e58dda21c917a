"""Cases awaiting a reply, soonest due first: what ``warden due`` lists and the
overview counts as overdue.

A case awaits a reply while its letter is sent and no response came, or a
response came and items are still open or partly answered; its consumer's
``case_due`` is then set (:mod:`store.casework.summary`), so the list is one
range of the ``consumer_by_due`` index, however many consumers there are.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from store.deadlines import days_left, due_long
from store.domain import CASE_STATES, PENDING_ITEM_STATES

_PENDING = ", ".join(f"'{s}'" for s in PENDING_ITEM_STATES)
_DUE = f"""
SELECT k.id, k.legal_name, k.notice_contact, c.id, c.state, c.letter_note_id, c.letter_sent_at, k.case_due,
       (SELECT count(*) FROM case_item i WHERE i.case_id = c.id AND i.state IN ({_PENDING})),
       (SELECT count(*) FROM case_item i WHERE i.case_id = c.id),
       (SELECT count(*) FROM response r WHERE r.case_id = c.id)
FROM consumer AS k INDEXED BY consumer_by_due
JOIN case_file AS c ON c.id = (SELECT max(id) FROM case_file WHERE consumer_id = k.id)
WHERE k.due_order < '9999-12-31' {{extra}}
ORDER BY k.due_order, k.worst_ratio DESC, k.id
"""


@dataclass(frozen=True)
class DueCase:
    """One case awaiting a reply."""

    consumer_id: str
    legal_name: str
    notice_contact: str | None
    case_id: int
    state: str
    letter_note_id: int | None
    letter_sent_on: str | None       # UTC day the letter was exported
    due_date: str
    days_left: int                   # negative: overdue by that many days
    items_pending: int               # open or partly answered
    items: int
    responses: int

    @property
    def overdue(self) -> bool:
        return self.days_left < 0

    def line(self, today: date) -> str:
        """``2023-05-23  overdue by 2 days  northwind-analytics  letter sent ...``: one line of ``warden due``."""
        waiting = "no response yet" if not self.responses else \
            f"{self.responses} response(s), {self.items_pending} of {self.items} item(s) still open"
        return (f"{self.due_date}  {due_long(self.due_date, today):<19} case #{self.case_id}  {self.consumer_id}  "
                f"({CASE_STATES.get(self.state, self.state)}, letter {self.letter_sent_on or '-'}; {waiting})")

    def as_json(self) -> dict[str, Any]:
        # Its fields are plain values: a shallow copy (dataclasses.asdict deep-copies each, 10k rows a listing).
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "overdue": self.overdue,
                "state_label": CASE_STATES.get(self.state, self.state)}


def due_cases(conn: sqlite3.Connection, today: date, *, overdue_only: bool = False,
              limit: int | None = None) -> list[DueCase]:
    """Cases awaiting a reply, soonest due first (``overdue_only``: those past
    their due date), at most ``limit``."""
    extra, params = "", []
    if overdue_only:
        extra = "AND k.due_order < ?"
        params.append(today.isoformat())
    sql = _DUE.format(extra=extra) + (" LIMIT ?" if limit is not None else "")
    if limit is not None:
        params.append(limit)
    return [DueCase(r[0], r[1], r[2], r[3], r[4], r[5], (r[6] or "")[:10] or None, r[7],
                    days_left(date.fromisoformat(r[7]), today), r[8], r[9], r[10])
            for r in conn.execute(sql, params)]


def count_due(conn: sqlite3.Connection, today: date) -> tuple[int, int]:
    """(cases awaiting a reply, of which overdue), read from the due-date index."""
    row = conn.execute("SELECT count(*), count(*) FILTER (WHERE due_order < ?) FROM consumer INDEXED BY"
                       " consumer_by_due WHERE due_order < '9999-12-31'", (today.isoformat(),)).fetchone()
    return int(row[0]), int(row[1])
