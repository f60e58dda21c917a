"""A consumer's case, read once and typed: the detail pane, notes and exports all
read it here.

:func:`read_case` gives the consumer, its tier with limits and clauses, its apps
with their usage totals, its findings, the decisions on them and its latest
note; :func:`read_findings` the findings a note cites. :func:`chart_of` resolves
what the usage chart shows: which year or month (the latest with figures unless
the reviewer moved), which metric, and which cap applies per bar and over the
whole period.

Unreadable stored values never stop a read (a reviewer must still see the
case): a finding's figures that are not JSON read as ``{"unreadable": <text>}``,
a tier's allowed endpoints that are not JSON as ``None``.
"""

from __future__ import annotations

import calendar
import json
import sqlite3
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import Any, Iterable, Literal, Sequence

from store.decision_log import Decision, read_decisions
from store.domain import CATEGORIES, METRIC_CALLS, METRIC_RECORDS
from store.errors import StoreError

# --- findings ------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """A finding as the review screen shows it."""

    id: int
    consumer_id: str
    category: str
    period: str
    period_start: str
    period_end: str
    severity: str
    status: str
    rule_id: str | None
    metric: str | None
    actual: int | None
    limit_value: int | None
    ratio: float | None
    figures: dict[str, Any]
    evidence: str | None
    detected_at: str
    updated_at: str
    version: int

    @property
    def category_label(self) -> str:
        """The category as the reviewer reads it ("Volume cap exceeded")."""
        return CATEGORIES.get(self.category, self.category)

    @property
    def manual(self) -> bool:
        """Opened by hand (no rule detected it)."""
        return self.rule_id is None


FINDING_COLUMNS = ("id, consumer_id, category, period, period_start, period_end, severity, status, rule_id,"
                   " metric, actual, limit_value, ratio, figures, evidence, detected_at, updated_at, version")


def finding_from_row(row: Sequence[Any]) -> Finding:
    """A :class:`Finding` from a row of ``SELECT {FINDING_COLUMNS}``."""
    values = list(row)
    try:
        values[13] = json.loads(values[13] or "{}")
    except ValueError:
        values[13] = {"unreadable": values[13]}
    return Finding(*values)


def read_findings(conn: sqlite3.Connection, finding_ids: Iterable[int]) -> list[Finding]:
    """These findings, in id order (ids that do not exist are left out)."""
    ids = sorted(set(finding_ids))
    if not ids:
        return []
    return [finding_from_row(row) for row in conn.execute(
        f"SELECT {FINDING_COLUMNS} FROM finding WHERE id IN ({','.join('?' * len(ids))}) ORDER BY id", ids)]


def of_consumer_in_status(consumer_id: str | None, status: str | None) -> tuple[list[str], list[Any]]:
    """SQL conditions (and their parameters) for rows of a consumer and in a status,
    either left out when None: findings and notes are selected this way."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("consumer_id", consumer_id), ("status", status)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return clauses, params


def consumer_exists(conn: sqlite3.Connection, consumer_id: str) -> bool:
    """Whether there is a consumer with this id."""
    return conn.execute("SELECT 1 FROM consumer WHERE id = ?", (consumer_id,)).fetchone() is not None


def finding_owners(conn: sqlite3.Connection, finding_ids: Iterable[int]) -> dict[int, str]:
    """finding id -> its consumer's id, for the ids that exist."""
    ids = sorted(set(finding_ids))
    if not ids:
        return {}
    return dict(conn.execute(f"SELECT id, consumer_id FROM finding WHERE id IN ({','.join('?' * len(ids))})",
                             ids).fetchall())


def list_findings(conn: sqlite3.Connection, *, consumer_id: str | None = None,
                  status: str | None = None) -> list[Finding]:
    """Findings (of a consumer, in a status), by consumer, period and id."""
    clauses, params = of_consumer_in_status(consumer_id, status)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return [finding_from_row(r) for r in conn.execute(
        f"SELECT {FINDING_COLUMNS} FROM finding {where} ORDER BY consumer_id, period_start, period_end, id",
        params)]


# --- the case ------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """One cap of a tier: at most ``max_value`` of ``metric`` per ``period``."""

    metric: str
    period: str          # day | month | year
    max_value: int


@dataclass(frozen=True)
class Tier:
    """A tier (agreement level) with its limits and the clause reference per category."""

    id: str
    name: str
    agreement_version: str | None
    allowed_endpoints: list[str] | None
    limits: list[Limit]
    clauses: dict[str, str]

    def limit(self, metric: str, period: str) -> int | None:
        """The cap on ``metric`` per ``period``, if the tier has one."""
        for lim in self.limits:
            if lim.metric == metric and lim.period == period:
                return lim.max_value
        return None


@dataclass(frozen=True)
class App:
    """One app of a consumer with its stored usage totals."""

    source: str
    app_id: str
    name: str | None
    declared_use_case: str | None
    calls: int | None        # None = no figures stored (missing is not zero)
    records: int | None
    first_day: str | None
    last_day: str | None


@dataclass(frozen=True)
class NotePreview:
    """The first lines of a consumer's latest note, for the detail pane."""

    id: int
    status: str
    subject: str
    due_date: str | None
    updated_at: str
    first_lines: list[str]


@dataclass(frozen=True)
class Case:
    """One consumer's case: who it is, its tier and limits, its apps with their
    usage totals, its findings, the decisions on them and its latest note."""

    id: str
    legal_name: str
    notice_contact: str | None
    tier_id: str | None
    agreement_version: str | None
    declared_use_case: str | None
    government_end_users: str | None
    origin: str
    worst_ratio: float
    open_findings: int
    review_state: str
    tier: Tier | None
    apps: list[App]
    findings: list[Finding]
    decisions: list[Decision]          # about its findings and notes, newest first
    note: NotePreview | None = None
    totals: dict[str, int] = field(default_factory=dict)   # metric -> sum over apps

    def record(self) -> dict[str, Any]:
        """The consumer and its tier as plain values: what a note's template calls
        ``consumer`` and a case bundle stores (apps apart, see :meth:`app_records`)."""
        return {
            "id": self.id, "legal_name": self.legal_name, "notice_contact": self.notice_contact,
            "tier_id": self.tier_id, "agreement_version": self.agreement_version,
            "declared_use_case": self.declared_use_case, "government_end_users": self.government_end_users,
            "origin": self.origin, "tier": asdict(self.tier) if self.tier is not None else None,
        }

    def app_records(self) -> list[dict[str, Any]]:
        """The apps as plain values (source, app_id, name, declared_use_case), in
        source and id order."""
        return [{"source": a.source, "app_id": a.app_id, "name": a.name, "declared_use_case": a.declared_use_case}
                for a in self.apps]

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics it has figures for: calls and records first, then the others
        by name (``("calls",)`` when it has none)."""
        return tuple(sorted(self.totals, key=lambda m: (m not in (METRIC_CALLS, METRIC_RECORDS), m))) or (
            METRIC_CALLS,)


def read_tier(conn: sqlite3.Connection, tier_id: str) -> Tier | None:
    """The tier with its limits and clauses, or None."""
    row = conn.execute("SELECT id, name, agreement_version, allowed_endpoints FROM tier WHERE id = ?",
                       (tier_id,)).fetchone()
    if row is None:
        return None
    limits = [Limit(*r) for r in conn.execute(
        "SELECT metric, period, max_value FROM tier_limit WHERE tier_id = ?"
        " ORDER BY metric, CASE period WHEN 'day' THEN 0 WHEN 'month' THEN 1 ELSE 2 END", (tier_id,))]
    clauses = dict(conn.execute("SELECT category, clause FROM tier_clause WHERE tier_id = ? ORDER BY category",
                                (tier_id,)).fetchall())
    try:
        endpoints = json.loads(row[3]) if row[3] else None
    except ValueError:
        endpoints = None
    return Tier(row[0], row[1], row[2], endpoints, limits, clauses)


def read_case(conn: sqlite3.Connection, consumer_id: str, *, start: str | None = None,
              end: str | None = None, note_lines: int = 6, decision_limit: int = 200) -> Case | None:
    """The consumer, its tier and limits, apps with usage totals (over ``start``..``end``
    when given), findings (open first, worst first), decision history (newest
    first, at most ``decision_limit``) and the latest note's first lines.
    ``None`` if there is no such consumer."""
    c = conn.execute(
        "SELECT id, legal_name, notice_contact, tier_id, agreement_version, declared_use_case,"
        " government_end_users, origin, worst_ratio, open_findings, review_state FROM consumer WHERE id = ?",
        (consumer_id,)).fetchone()
    if c is None:
        return None
    lo, hi = start or "0000-00-00", end or "9999-99-99"
    apps: list[App] = []
    totals: dict[str, int] = {}
    for a in conn.execute("SELECT source, app_id, name, declared_use_case FROM app WHERE consumer_id = ?"
                          " ORDER BY source, app_id", (consumer_id,)).fetchall():
        sums: dict[str, int] = {}
        first = last = None
        # One range scan of the usage primary key (source, app_id, day, metric) per app.
        for metric, total, d0, d1 in conn.execute(
                "SELECT metric, sum(value), min(day), max(day) FROM usage WHERE source = ? AND app_id = ?"
                " AND day BETWEEN ? AND ? GROUP BY metric", (a[0], a[1], lo, hi)):
            sums[metric] = int(total)
            totals[metric] = totals.get(metric, 0) + int(total)
            first = d0 if first is None or d0 < first else first
            last = d1 if last is None or d1 > last else last
        apps.append(App(a[0], a[1], a[2], a[3], sums.get("calls"), sums.get("records"), first, last))
    findings = [finding_from_row(r) for r in conn.execute(
        f"SELECT {FINDING_COLUMNS} FROM finding WHERE consumer_id = ?"
        " ORDER BY CASE status WHEN 'candidate' THEN 0 WHEN 'needs_info' THEN 1 ELSE 2 END,"
        " COALESCE(ratio, 0) DESC, id", (consumer_id,))]
    decisions = decisions_about(conn, consumer_id, limit=decision_limit)
    n = conn.execute("SELECT id, status, subject, due_date, updated_at, body FROM note WHERE consumer_id = ?"
                     " ORDER BY updated_at DESC, id DESC LIMIT 1", (consumer_id,)).fetchone()
    note = None
    if n is not None:
        lines = [ln for ln in n[5].splitlines() if ln.strip()][:note_lines]
        note = NotePreview(n[0], n[1], n[2], n[3], n[4], lines)
    return Case(
        id=c[0], legal_name=c[1], notice_contact=c[2], tier_id=c[3], agreement_version=c[4],
        declared_use_case=c[5], government_end_users=c[6], origin=c[7], worst_ratio=float(c[8]),
        open_findings=int(c[9]), review_state=c[10], tier=read_tier(conn, c[3]) if c[3] else None,
        apps=apps, findings=findings, decisions=decisions, note=note, totals=totals,
    )


# The consumer's own entries of the log: about its findings, notes, cases, the
# items its letters asked for and its responses.
_ABOUT = """
WHERE (subject = 'finding' AND subject_id IN (SELECT id FROM finding WHERE consumer_id = :c))
   OR (subject = 'note' AND subject_id IN (SELECT id FROM note WHERE consumer_id = :c))
   OR (subject = 'case' AND subject_id IN (SELECT id FROM case_file WHERE consumer_id = :c))
   OR (subject = 'item' AND subject_id IN (SELECT i.id FROM case_item i JOIN case_file k ON k.id = i.case_id
                                            WHERE k.consumer_id = :c))
   OR (subject = 'response' AND subject_id IN (SELECT r.id FROM response r JOIN case_file k ON k.id = r.case_id
                                                WHERE k.consumer_id = :c))
"""


def decisions_about(conn: sqlite3.Connection, consumer_id: str, *, limit: int | None = None,
                    newest_first: bool = True) -> list[Decision]:
    """The log's entries about the consumer (its findings, notes, cases, items and
    responses), newest first (or oldest first), at most ``limit``."""
    order = "DESC" if newest_first else "ASC"
    return read_decisions(conn, f"{_ABOUT} ORDER BY id {order} LIMIT :n",
                          {"c": consumer_id, "n": -1 if limit is None else limit})


# --- usage over time -------------------------------------------------------------------

Grain = Literal["day", "month", "year"]
# Characters of an ISO day that name its day, month or year.
_GRAIN_LEN = {"day": 10, "month": 7, "year": 4}


@dataclass(frozen=True)
class UsageSeries:
    """A consumer's usage of one metric per period, with the tier's cap per period."""

    metric: str
    grain: str
    points: list[tuple[str, int]]    # (period, value); periods without figures are absent
    limit: int | None                # the tier's cap per ``grain``, if it has one


def usage_series(conn: sqlite3.Connection, consumer_id: str, metric: str, start: str, end: str,
                 grain: Grain = "day") -> UsageSeries:
    """Sum of ``metric`` over the consumer's apps per day / month / year in ``start``..``end``
    (UTC days, inclusive), and the limit that applies at that grain."""
    if grain not in _GRAIN_LEN:
        raise StoreError(f"unknown grain {grain!r}; valid: day, month, year")
    width = _GRAIN_LEN[grain]
    sums: dict[str, int] = {}
    apps = conn.execute("SELECT source, app_id FROM app WHERE consumer_id = ?", (consumer_id,)).fetchall()
    for source, app_id in apps:
        # Per app, so each read is one range of the usage primary key.
        for period, value in conn.execute(
                f"SELECT substr(day, 1, {width}) AS p, sum(value) FROM usage WHERE source = ? AND app_id = ?"
                " AND day BETWEEN ? AND ? AND metric = ? GROUP BY p", (source, app_id, start, end, metric)):
            sums[period] = sums.get(period, 0) + int(value)
    limit_row = conn.execute(
        "SELECT l.max_value FROM consumer c JOIN tier_limit l ON l.tier_id = c.tier_id"
        " WHERE c.id = ? AND l.metric = ? AND l.period = ?", (consumer_id, metric, grain)).fetchone()
    return UsageSeries(metric, grain, sorted(sums.items()), int(limit_row[0]) if limit_row else None)


@dataclass(frozen=True)
class ChartWindow:
    """Which chart the reviewer looks at: the months of a year, or the days of a month."""

    grain: str = "month"          # month | day
    metric: str = METRIC_CALLS
    year: int | None = None       # None: the year of the consumer's latest usage
    month: int | None = None      # with grain "day"

    def toggled_grain(self) -> ChartWindow:
        """Months of the year <-> days of a month (December, unless one was shown)."""
        if self.grain == "month":
            return replace(self, grain="day", month=self.month or 12)
        return replace(self, grain="month")

    def shifted(self, steps: int) -> ChartWindow:
        """``steps`` years (or months) later; earlier when negative."""
        if self.year is None:
            return self
        if self.grain == "month":
            return replace(self, year=self.year + steps)
        months = self.year * 12 + (self.month or 12) - 1 + steps
        return replace(self, year=months // 12, month=months % 12 + 1)

    def next_metric(self, metrics: tuple[str, ...]) -> ChartWindow:
        """The next of ``metrics`` after the one shown (the first after the last)."""
        if not metrics:
            return self
        at = metrics.index(self.metric) if self.metric in metrics else -1
        return replace(self, metric=metrics[(at + 1) % len(metrics)])


@dataclass(frozen=True)
class Chart:
    """A consumer's usage of one metric over a year (per month) or a month (per day)."""

    window: ChartWindow            # resolved: metric, year (and month) filled in
    metrics: tuple[str, ...]       # what the reviewer can switch to
    points: list[tuple[str, int]]  # (period, value); periods without figures are absent
    limit: int | None              # the cap per bar (per month, or per day)
    period_total: int | None       # the whole year (or month); None without figures
    period_cap: int | None         # the cap over the whole year (or month)


def chart_of(conn: sqlite3.Connection, case: Case, window: ChartWindow, *, today: date) -> Chart:
    """The chart ``window`` asks for, resolved for ``case``: a metric it has figures
    for, and without a year the year (and month) of its latest figures, so a
    reviewer lands on the data (``today``'s when it has none)."""
    metrics = case.metrics
    if window.metric not in metrics:
        window = replace(window, metric=metrics[0])
    if window.year is None:
        last = max((a.last_day for a in case.apps if a.last_day), default=None)
        year = int(last[:4]) if last else today.year
        month = int(last[5:7]) if last else today.month
        window = replace(window, year=year, month=window.month or (month if window.grain == "day" else None))
    year = window.year or today.year
    if window.grain == "month":
        series = usage_series(conn, case.id, window.metric, f"{year}-01-01", f"{year}-12-31", "month")
        whole = "year"
    else:
        month = window.month or 12
        last_day = calendar.monthrange(year, month)[1]
        series = usage_series(conn, case.id, window.metric, f"{year}-{month:02d}-01",
                              f"{year}-{month:02d}-{last_day:02d}", "day")
        whole = "month"
    points = list(series.points)
    return Chart(window=window, metrics=metrics, points=points, limit=series.limit,
                 period_total=sum(v for _, v in points) if points else None,
                 period_cap=case.tier.limit(window.metric, whole) if case.tier else None)
