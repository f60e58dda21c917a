"""The recurrence rule: usage that breaks the same limits again after a case
ended reopens the consumer's case, citing the earlier one.

A limit is what a finding says was broken: a tier's ``calls_per_month`` (a
volume cap, a rate limit or the circumvention of either), its allowed endpoints,
or the declared use case. When the rules store a new candidate finding for a
consumer whose latest case is resolved or closed, and the finding breaks a limit
that case's letter cited, over a period that starts after the case ended, a new
case opens as ``reopened`` (``case_file.reopens`` = the earlier case), logged by
the rules with the earlier case, its end and the findings in the reason.

:func:`reopen_on_recurrence` runs inside the rules' write transaction for the
consumers whose findings it created, so it costs nothing for the others.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any, Iterable

from store.casework.state import open_case
from store.casework.summary import refresh_case_summary
from store.domain import CASE_STATES, FINAL_CASE_STATES

# Who the log names for what the rules did.
RULES_REVIEWER = "warden (rules)"


def limit_of(category: str, figures: dict[str, Any] | str | None) -> str | None:
    """The limit a finding breaks: ``calls_per_month``, ``allowed_endpoints``,
    ``declared_use_case``; None for a finding opened by hand."""
    if category == "endpoint_outside":
        return "allowed_endpoints"
    if category == "missing_use_case":
        return "declared_use_case"
    if isinstance(figures, str):
        try:
            figures = json.loads(figures or "{}")
        except ValueError:
            return None
    limit = (figures or {}).get("limit") if isinstance(figures, dict) else None
    if isinstance(limit, dict) and limit.get("metric") and limit.get("period"):
        return f"{limit['metric']}_per_{limit['period']}"
    return None


def reopen_on_recurrence(conn: sqlite3.Connection, consumer_ids: Iterable[str], *, now: str) -> list[int]:
    """Reopen the cases of these consumers whose new candidates break a limit their
    ended case cited (see the module docstring); the caller holds the
    transaction. Returns the new cases' ids."""
    ids = sorted(set(consumer_ids))
    if not ids:
        return []
    finals = ",".join(f"'{s}'" for s in FINAL_CASE_STATES)
    ended = conn.execute(
        f"SELECT c.id, c.consumer_id, c.state, c.updated_at FROM json_each(?) AS k"
        f" JOIN case_file AS c ON c.id = (SELECT max(id) FROM case_file WHERE consumer_id = k.value)"
        f" WHERE c.state IN ({finals})",
        (json.dumps(ids),)).fetchall()
    opened: list[int] = []
    clock = _clock(now)
    for case_id, consumer_id, state, ended_at in ended:
        cited = {limit_of(cat, figs) for cat, figs in conn.execute(
            "SELECT f.category, f.figures FROM case_file c JOIN note_finding n ON n.note_id = c.letter_note_id"
            " JOIN finding f ON f.id = n.finding_id WHERE c.id = ?", (case_id,))} - {None}
        again = [(fid, cat, period, limit_of(cat, figs)) for fid, cat, period, figs in conn.execute(
            "SELECT id, category, period, figures FROM finding WHERE consumer_id = ? AND status = 'candidate'"
            " AND rule_id IS NOT NULL AND period_start > ? ORDER BY period_start, id",
            (consumer_id, ended_at[:10]))]
        again = [a for a in again if a[3] in cited]
        if not again:
            continue
        shown = ", ".join(f"#{fid} ({limit} {period})" for fid, _cat, period, limit in again[:5])
        more = f" and {len(again) - 5} more" if len(again) > 5 else ""
        reason = (f"usage broke the same limits again after case #{case_id} was {CASE_STATES[state]} on "
                  f"{ended_at[:10]}: finding {shown}{more}")
        case, _ = open_case(conn, consumer_id, "reopened", reason=reason, reviewer=RULES_REVIEWER, clock=clock,
                            reopens=case_id)
        opened.append(case.id)
    refresh_case_summary(conn, [row[1] for row in ended])
    return opened


def _clock(now: str) -> Any:
    moment = datetime.fromisoformat(now.replace("Z", "+00:00"))
    return lambda: moment
