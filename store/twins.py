"""Twin findings: one overage, two provisions.

When a consumer's apps together exceed a limit while each app stays under it,
the rules open two findings over the same figures: the overage itself
(``volume_cap`` for a month or year limit, ``rate_limit`` for a daily one) and
``circumvention`` (the split that hid it). They are one matter for a reviewer:
the queue counts them once, the decision dialog shows them as one entry, a
decision on one takes the other along (the log still records each finding's
decision), and the letter gives them one schedule table citing both provisions.

Twins are recognised from the findings themselves: same consumer, period,
metric and limit, the same figure (and, for a daily limit, the same days over).
:data:`TWIN_OPEN_SQL` says the same in SQL for the queue's count.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Iterable, Sequence

from store.cases import FINDING_COLUMNS, Finding, finding_from_row

# The category a circumvention finding's twin has, by the period of its limit.
PRIMARY_BY_PERIOD = {"day": "rate_limit", "month": "volume_cap", "year": "volume_cap"}
TWINNED = frozenset({"circumvention", *PRIMARY_BY_PERIOD.values()})


def _signature(f: Finding) -> tuple[object, ...] | None:
    """What twins share; None for a finding that has no twin."""
    limit = f.figures.get("limit") if isinstance(f.figures, dict) else None
    if f.rule_id is None or f.category not in TWINNED or not isinstance(limit, dict):
        return None
    return (f.consumer_id, f.period, f.metric, json.dumps(limit, sort_keys=True), f.actual,
            json.dumps(f.figures.get("days_over"), sort_keys=True))


def _primary_category(f: Finding) -> str | None:
    limit = f.figures.get("limit") if isinstance(f.figures, dict) else None
    return PRIMARY_BY_PERIOD.get(str(limit.get("period"))) if isinstance(limit, dict) else None


def pair_twins(findings: Iterable[Finding]) -> dict[int, int]:
    """Among ``findings``: circumvention finding id -> the id of its twin (the
    volume-cap or rate-limit finding over the same figures)."""
    primaries: dict[tuple[object, ...], int] = {}
    circumventions: list[tuple[tuple[object, ...], Finding]] = []
    for f in findings:
        signature = _signature(f)
        if signature is None:
            continue
        if f.category == "circumvention":
            circumventions.append((signature, f))
        elif f.category == _primary_category(f):
            primaries.setdefault(signature, f.id)
    return {f.id: primaries[sig] for sig, f in circumventions if sig in primaries}


def twins_of(conn: sqlite3.Connection, consumer_ids: Iterable[str]) -> dict[int, int]:
    """:func:`pair_twins` over every finding of these consumers that may have a twin."""
    consumers = sorted(set(consumer_ids))
    pairs: dict[int, int] = {}
    for at in range(0, len(consumers), 500):
        chunk = consumers[at:at + 500]
        pairs.update(pair_twins(finding_from_row(r) for r in conn.execute(
            f"SELECT {FINDING_COLUMNS} FROM finding WHERE consumer_id IN ({','.join('?' * len(chunk))})"
            f" AND category IN ({','.join('?' * len(TWINNED))}) AND rule_id IS NOT NULL",
            (*chunk, *sorted(TWINNED)))))
    return pairs


def with_twins(conn: sqlite3.Connection, finding_ids: Sequence[int]) -> list[int]:
    """``finding_ids`` and, after each, its twin when the twin stands where it
    stands (same status): what a decision on one of them decides."""
    ids = list(dict.fromkeys(int(i) for i in finding_ids))
    if not ids:
        return ids
    marks = ",".join("?" * len(ids))
    named = {r[0]: (r[1], r[2]) for r in conn.execute(
        f"SELECT id, consumer_id, category FROM finding WHERE id IN ({marks})", ids)}
    consumers = {consumer for consumer, category in named.values() if category in TWINNED}
    if not consumers:
        return ids
    pairs = twins_of(conn, consumers)
    partner = {**pairs, **{primary: twin for twin, primary in pairs.items()}}
    wanted = [partner[fid] for fid in ids if fid in partner]
    status = dict(conn.execute(
        f"SELECT id, status FROM finding WHERE id IN ({','.join('?' * len(ids + wanted))})", ids + wanted).fetchall())
    out: list[int] = []
    for fid in ids:
        out.append(fid)
        other = partner.get(fid)
        if other is not None and other not in ids and other not in out and status.get(other) == status.get(fid):
            out.append(other)
    return out


# SQL: finding ``f`` is a circumvention finding whose twin is open too, so the
# queue counts the two once. The same test as pair_twins (figures are written by
# store.rules with sorted keys, so equal JSON is equal text).
TWIN_OPEN_SQL = """(f.category = 'circumvention' AND f.rule_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM finding t WHERE t.consumer_id = f.consumer_id AND t.status IN ('candidate', 'needs_info')
    AND t.category = CASE json_extract(f.figures, '$.limit.period') WHEN 'day' THEN 'rate_limit'
                                                                  ELSE 'volume_cap' END
    AND t.rule_id IS NOT NULL AND t.period = f.period AND t.metric IS f.metric AND t.actual IS f.actual
    AND json_extract(t.figures, '$.limit') = json_extract(f.figures, '$.limit')
    AND json_extract(t.figures, '$.days_over') IS json_extract(f.figures, '$.days_over')))"""
