"""The queue's filters about cases and the overview's numbers: ``case:``,
``due:``, ``month:``, ``by:`` and ``week:`` (:mod:`store.queue_filter` parses
the rest and joins these in).

::

    case:letter-sent          the consumer's case state (open, reopened, letter-sent,
                              response-received, escalated, resolved, closed)
    due:overdue               a reply is due: overdue, today, 7d (today to 7 days on), any
    month:2022-07             a finding whose period starts in that month (with status:,
                              category:, severity: it is the same finding)
    by:alice                  consumers alice decided on (a finding, note, case or item)
    week:2026-W48             with by: (or alone): decided in that ISO week

Each reads an index: the case columns of ``consumer`` (``consumer_by_case``,
``consumer_by_due``), the decisions of a reviewer or a week as a set.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from store.domain import CASE_STATES
from store.errors import FilterError

CASE_FILTER_FIELDS: dict[str, str] = {
    "case": "case state (" + ", ".join(s.replace("_", "-") for s in CASE_STATES) + ")",
    "due": "reply due: overdue, today, 7d (within 7 days), any",
    "month": "a finding whose period starts in this month (2022-07)",
    "by": "decided by this reviewer (a finding, note, case or item)",
    "week": "decided in this ISO week (2026-W48), with by: or alone",
}
_DUE_DAYS = re.compile(r"(\d{1,4})d")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_WEEK = re.compile(r"(\d{4})-?w(\d{1,2})")
# The end of every due-date range (consumer.due_order of those with nothing due).
NOTHING_DUE = "9999-12-31"


def case_value(name: str, value: str, today: date, pick: Any) -> Any:
    """What ``value`` of the case field ``name`` stands for (a case state, a due
    range counted from ``today``, a month, a week); read as its term is, so that a
    FilterError points at the term typed. ``pick(value, valid, what)`` resolves a
    prefix as the other fields do."""
    if name == "case":
        return pick(value, tuple(CASE_STATES), "case state")
    if name == "due":
        return _due_range(value, today)
    if name == "month":
        return _month(value)
    if name == "week":
        return _week(value)
    return value


def case_terms(values: dict[str, list[Any]]) -> dict[str, Any]:
    """The QueueFilter fields of the case terms in ``values`` (field -> the values
    :func:`case_value` read)."""
    ranges = values.get("due", [])
    weeks = values.get("week", [])
    if len(weeks) > 1:
        raise FilterError("week: takes one week (week:2026-W48)")
    return {
        "case_states": tuple(dict.fromkeys(values.get("case", ()))),
        # Alternatives: the widest range lets the most through.
        "due_range": (min(lo for lo, _ in ranges), max(hi for _, hi in ranges)) if ranges else None,
        "months": tuple(dict.fromkeys(values.get("month", ()))),
        "reviewers": tuple(dict.fromkeys(values.get("by", ()))),
        "week": weeks[0] if weeks else None,
    }


def _due_range(value: str, today: date) -> tuple[str, str]:
    v = value.lower()
    if v == "overdue":
        return "0000-01-01", (today - timedelta(days=1)).isoformat()
    if v == "today":
        return today.isoformat(), today.isoformat()
    if v == "any":
        return "0000-01-01", (date.fromisoformat(NOTHING_DUE) - timedelta(days=1)).isoformat()
    match = _DUE_DAYS.fullmatch(v)
    if match:
        return today.isoformat(), (today + timedelta(days=int(match.group(1)))).isoformat()
    raise FilterError(f"due:{value} is not a due filter; write due:overdue, due:today, due:7d or due:any")


def _month(value: str) -> str:
    match = _MONTH.fullmatch(value)
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise FilterError(f"month:{value} is not a month; write month:2022-07")
    return value


def _week(value: str) -> tuple[str, str]:
    match = _WEEK.fullmatch(value.lower())
    try:
        monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1) if match else None
    except ValueError:
        monday = None
    if monday is None:
        raise FilterError(f"week:{value} is not an ISO week; write week:2026-W48")
    return monday.isoformat(), (monday + timedelta(days=7)).isoformat()


def month_condition(months: tuple[str, ...], alias: str) -> tuple[list[str], list[Any]]:
    """The finding condition of ``month:``."""
    if not months:
        return [], []
    return [f"substr({alias}.period_start, 1, 7) IN ({','.join('?' * len(months))})"], list(months)


# The consumers a reviewer (or anyone, in a week) decided on, as a set: the
# decisions read once from the index that narrows them most (by reviewer, or by
# time), then their subjects' consumers.
_DECIDED = """consumer.id IN (
    WITH d AS MATERIALIZED (SELECT subject, subject_id FROM decision INDEXED BY {index} WHERE {w})
    SELECT f.consumer_id FROM d JOIN finding f ON f.id = d.subject_id WHERE d.subject = 'finding'
    UNION SELECT n.consumer_id FROM d JOIN note n ON n.id = d.subject_id WHERE d.subject = 'note'
    UNION SELECT c.consumer_id FROM d JOIN case_file c ON c.id = d.subject_id WHERE d.subject = 'case'
    UNION SELECT c.consumer_id FROM d JOIN case_item i ON i.id = d.subject_id
          JOIN case_file c ON c.id = i.case_id WHERE d.subject = 'item')"""


def case_conditions(case_states: tuple[str, ...], due_range: tuple[str, str] | None,
                    reviewers: tuple[str, ...], week: tuple[str, str] | None) -> tuple[list[str], list[Any]]:
    """SQL conditions on ``consumer`` of the case terms, and their parameters."""
    conds: list[str] = []
    params: list[Any] = []
    if case_states:
        conds.append(f"case_state IN ({','.join('?' * len(case_states))})")
        params.extend(case_states)
    if due_range is not None:
        conds.append("due_order BETWEEN ? AND ?")
        params.extend(due_range)
    if reviewers or week:
        where = ["field IN ('status', 'state')"]
        wparams: list[Any] = []
        if reviewers:
            where.append(f"reviewer IN ({','.join('?' * len(reviewers))})")
            wparams.extend(reviewers)
        if week:
            where.append("at >= ? AND at < ?")
            wparams.extend(week)
        index = "decision_by_reviewer" if reviewers else "decision_by_time"
        conds.append(_DECIDED.format(index=index, w=" AND ".join(where)))
        params.extend(wparams)
    return conds, params
