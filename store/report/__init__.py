"""The lead's overview: where the cases stand, what is overdue, what the rules
find month by month, who breaks their limits most, and who decided what.

:func:`lead_overview` reads it (the TUI's overview screen and ``warden report``
show the same :class:`LeadOverview`); :mod:`.formats` writes it as Markdown,
HTML (charts as inline SVG) or JSON. Every number carries the queue filter that
lists what it counts (``Count.filter``), so a screen can link it.

Each part is an index read, never a pass over every consumer or finding: the
case states and due dates from the consumer's case columns
(:mod:`store.casework.summary`), findings per month from ``finding_month`` (kept
by triggers), the largest overage from ``consumer_by_severity``, decisions from
the last weeks of ``decision_by_time``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from store.casework.due import DueCase, count_due, due_cases
from store.casework.recurrence import RULES_REVIEWER
from store.domain import CASE_STATES, CATEGORIES, FINDING_STATUSES

MONTHS = 12         # findings per month: this many months, ending with the latest that has any
WEEKS = 4           # decisions per reviewer: this many ISO weeks, ending with today's
TOP = 5             # consumers with the largest overage
# The findings the chart counts (not dismissed), as a queue filter term.
STANDING = "status:" + ",".join(s for s in FINDING_STATUSES if s != "dismissed")
OVERDUE_SHOWN = 5   # overdue cases listed by name


@dataclass(frozen=True)
class Count:
    """One number of the overview and the queue filter that lists what it counts."""

    label: str
    value: int
    filter: str


@dataclass(frozen=True)
class CategoryMonths:
    """Findings of one category, per month of the chart (and the filter of each)."""

    category: str
    label: str
    counts: list[Count]
    total: int


@dataclass(frozen=True)
class TopConsumer:
    consumer_id: str
    legal_name: str
    worst_ratio: float
    case_state: str | None
    filter: str


@dataclass(frozen=True)
class ReviewerWeeks:
    reviewer: str
    counts: list[Count]       # one per week of ``LeadOverview.weeks``
    total: int


@dataclass(frozen=True)
class LeadOverview:
    """Everything the overview shows, as of ``today``."""

    today: str
    cases: list[Count]                     # per case state, in CASE_STATES order
    awaiting: Count                        # cases awaiting a reply
    overdue: Count                         # of which past their due date
    overdue_cases: list[DueCase]           # the first OVERDUE_SHOWN, most overdue first
    months: list[str]                      # YYYY-MM, oldest first
    month_totals: list[Count]
    categories: list[CategoryMonths]       # most findings first
    top: list[TopConsumer]
    weeks: list[str]                       # ISO weeks (2026-W48), oldest first
    week_starts: list[str]                 # their Mondays
    reviewers: list[ReviewerWeeks] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def quoted(value: str) -> str:
    """A filter value, quoted when it holds a space or a quote."""
    if value and not any(c in value for c in " \"'"):
        return value
    return '"' + value.replace('"', "'") + '"'


def lead_overview(conn: sqlite3.Connection, today: date) -> LeadOverview:
    """The overview as of ``today`` (UTC)."""
    by_state = dict(conn.execute("SELECT case_state, count(*) FROM consumer INDEXED BY consumer_by_case"
                                 " WHERE case_state IS NOT NULL GROUP BY case_state").fetchall())
    cases = [Count(label, int(by_state.get(state, 0)), f"case:{state.replace('_', '-')}")
             for state, label in CASE_STATES.items()]
    awaiting, overdue = count_due(conn, today)
    months, totals, categories = _finding_months(conn)
    weeks, starts, reviewers = _reviewer_weeks(conn, today)
    top = [TopConsumer(r[0], r[1], float(r[2]), r[3], f"id:{quoted(r[0])}") for r in conn.execute(
        "SELECT id, legal_name, worst_ratio, case_state FROM consumer INDEXED BY consumer_by_severity"
        " WHERE worst_ratio > 1 ORDER BY worst_ratio DESC, id LIMIT ?", (TOP,))]
    return LeadOverview(
        today=today.isoformat(), cases=cases,
        awaiting=Count("awaiting a reply", awaiting, "due:any"),
        overdue=Count("overdue", overdue, "due:overdue"),
        overdue_cases=due_cases(conn, today, overdue_only=True, limit=OVERDUE_SHOWN),
        months=months, month_totals=totals, categories=categories, top=top,
        weeks=weeks, week_starts=starts, reviewers=reviewers)


def _finding_months(conn: sqlite3.Connection) -> tuple[list[str], list[Count], list[CategoryMonths]]:
    latest = conn.execute("SELECT max(month) FROM finding_month WHERE findings > 0").fetchone()[0]
    if latest is None:
        return [], [], []
    year, month = int(latest[:4]), int(latest[5:7])
    months = []
    for back in range(MONTHS - 1, -1, -1):
        y, m = divmod(year * 12 + month - 1 - back, 12)
        months.append(f"{y:04d}-{m + 1:02d}")
    counts: dict[tuple[str, str], int] = {(c, m): n for c, m, n in conn.execute(
        "SELECT category, month, findings FROM finding_month WHERE month BETWEEN ? AND ? AND findings > 0",
        (months[0], months[-1]))}
    order = list(CATEGORIES)
    present = sorted({c for c, _m in counts}, key=lambda c: (-sum(counts.get((c, m), 0) for m in months),
                                                               order.index(c) if c in order else len(order)))
    categories = [CategoryMonths(
        c, CATEGORIES.get(c, c),
        [Count(m, counts.get((c, m), 0), f"category:{c} month:{m} {STANDING}") for m in months],
        sum(counts.get((c, m), 0) for m in months)) for c in present]
    totals = [Count(m, sum(counts.get((c, m), 0) for c in present), f"month:{m} {STANDING}") for m in months]
    return months, totals, categories


def _reviewer_weeks(conn: sqlite3.Connection, today: date) -> tuple[list[str], list[str], list[ReviewerWeeks]]:
    monday = today - timedelta(days=today.weekday())
    starts = [monday - timedelta(weeks=back) for back in range(WEEKS - 1, -1, -1)]
    labels = [f"{d.isocalendar().year}-W{d.isocalendar().week:02d}" for d in starts]
    rows = conn.execute(
        "SELECT reviewer, date(at, '-6 days', 'weekday 1') AS week, count(*) FROM decision INDEXED BY"
        " decision_by_time WHERE at >= ? AND field IN ('status', 'state') AND reviewer != ?"
        " GROUP BY reviewer, week", (starts[0].isoformat(), RULES_REVIEWER)).fetchall()
    counts: dict[tuple[str, str], int] = {(r, w): n for r, w, n in rows}
    reviewers = []
    for name in sorted({r for r, _w in counts}, key=lambda r: (-sum(n for (x, _), n in counts.items() if x == r), r)):
        per_week = [Count(label, counts.get((name, d.isoformat()), 0), f"by:{quoted(name)} week:{label}")
                    for label, d in zip(labels, starts)]
        reviewers.append(ReviewerWeeks(name, per_week, sum(c.value for c in per_week)))
    return labels, [d.isoformat() for d in starts], reviewers
