"""The evidence behind a note: which period its figures cover, and every figure
with the sync runs and response pages (and their SHA-256) it was summed from.
"""

from __future__ import annotations

import bisect
import hashlib
import sqlite3
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterable

from store.cases import Finding
from store.domain import METRIC_CALLS, METRIC_RECORDS
from store.notes.wording import Period, whole_months

# Findings about how much was used: they set the period of "observed activity".
USAGE_CATEGORIES = frozenset({"volume_cap", "rate_limit", "circumvention", "endpoint_outside", "redistribution"})


def observed_period(conn: sqlite3.Connection, consumer_id: str, findings: list[Finding],
                    today: date) -> Period:
    """The whole months the cited usage findings cover (else all cited findings); without
    findings, the calendar year of the consumer's latest usage (or the year before ``today``).

    A missing use case spans every day an app was used, which is not the period
    of the overage the letter is about: it only sets the period on its own.
    """
    usage = [f for f in findings if f.category in USAGE_CATEGORIES] or findings
    if usage:
        start = min(date.fromisoformat(f.period_start) for f in usage)
        end = max(date.fromisoformat(f.period_end) for f in usage)
        return whole_months(start, end)
    row = conn.execute("""
        SELECT MAX(u.day) FROM app a JOIN usage u ON u.source = a.source AND u.app_id = a.app_id
        WHERE a.consumer_id = ?""", (consumer_id,)).fetchone()
    year = date.fromisoformat(row[0]).year if row and row[0] else today.year - 1
    return Period(date(year, 1, 1), date(year, 12, 31))


@dataclass(frozen=True)
class Coverage:
    """The UTC days a consumer's figures cover, per metric: what lets a letter
    state only periods its data holds."""

    days: dict[str, list[str]]         # metric -> sorted ISO days with a figure of it
    any_days: list[str]                # sorted ISO days with any figure

    def of(self, period: Period, metric: str | None = None) -> Period | None:
        """``period`` with the days in it that hold figures (of ``metric``, or of
        any metric); None when none does."""
        days = self.days.get(metric, []) if metric is not None else self.any_days
        lo = bisect.bisect_left(days, period.start.isoformat())
        hi = bisect.bisect_right(days, period.end.isoformat())
        if lo >= hi:
            return None
        return Period(period.start, period.end, date.fromisoformat(days[lo]), date.fromisoformat(days[hi - 1]),
                      hi - lo)


def coverage_of(conn: sqlite3.Connection, consumer_id: str) -> Coverage:
    """Which days hold figures, over all the consumer's apps (one range of the
    usage key per app)."""
    by_metric: dict[str, set[str]] = {}
    for source, app_id in conn.execute("SELECT source, app_id FROM app WHERE consumer_id = ?", (consumer_id,)):
        for metric, day in conn.execute("SELECT metric, day FROM usage WHERE source = ? AND app_id = ?",
                                        (source, app_id)):
            by_metric.setdefault(metric, set()).add(day)
    every: set[str] = set().union(*by_metric.values()) if by_metric else set()
    return Coverage({metric: sorted(days) for metric, days in by_metric.items()}, sorted(every))


def covered_segments(span: Period, coverage: Coverage, metrics: Iterable[str]) -> list[Period]:
    """:func:`calendar_segments` of ``span``, each with the days the figures of
    ``metrics`` cover in it; a year without figures is left out."""
    wanted = set(metrics)
    days = sorted({d for metric in wanted for d in coverage.days.get(metric, ())})
    within = Coverage({"": days}, days)
    segments = [within.of(segment) for segment in calendar_segments(span)]
    return [segment for segment in segments if segment is not None]


def calendar_segments(span: Period) -> list[Period]:
    """``span`` cut at year boundaries, newest first: Oct 2021..Dec 2022 -> [2022, Oct–Dec 2021].

    The letter states its headline figures for one calendar year (the newest)
    and gives the earlier years' figures after it.
    """
    segments = []
    for year in range(span.end.year, span.start.year - 1, -1):
        segments.append(Period(max(span.start, date(year, 1, 1)), min(span.end, date(year, 12, 31))))
    return segments


def collect_evidence(conn: sqlite3.Connection, consumer_id: str, periods: Period | list[Period],
                     metrics: Iterable[str] = (METRIC_CALLS, METRIC_RECORDS)) -> dict[str, Any]:
    """Every figure the note states, with the runs and response pages it was summed from.

    Each period counts from its first to its last day with figures (see
    :class:`~store.notes.wording.Period`): the snapshot names the days it covers.

    Returns a JSON-able dict: ``figures`` (per period, per app and metric, then
    the period's totals: value, number of daily figures, run ids, page ids),
    ``period`` (the whole span) and ``periods``, ``runs``, ``pages`` (id,
    run, chain, URL, fetch time, HTTP status, body SHA-256, bytes) and
    ``pages_digest`` = SHA-256 of the lines ``"<page id> <body sha256>\\n"`` of
    every page, in page id order, so a long page list can be checked in one line,
    and ``revised_figures``: how many daily figures of the period the source
    revised or withdrew after first reporting them (``usage_change``).
    """
    segments = periods if isinstance(periods, list) else [periods]
    metric_list = sorted(set(metrics))
    marks = ",".join("?" * len(metric_list))
    figures: list[dict[str, Any]] = []
    run_ids: set[int] = set()
    page_ids: set[int] = set()
    for period in segments:
        rows = conn.execute(f"""
            SELECT a.source, a.app_id, u.metric, u.run_id, u.page_id, COUNT(*), SUM(u.value)
            FROM app a JOIN usage u ON u.source = a.source AND u.app_id = a.app_id
            WHERE a.consumer_id = ? AND u.day BETWEEN ? AND ? AND u.metric IN ({marks})
            GROUP BY a.source, a.app_id, u.metric, u.run_id, u.page_id""",
            (consumer_id, period.from_day.isoformat(), period.to_day.isoformat(), *metric_list)).fetchall()
        per: dict[tuple[str, str, str], dict[str, Any]] = {}
        totals: dict[str, dict[str, Any]] = {}
        for source, app_id, metric, run_id, page_id, count, value in rows:
            for key, bucket in (((source, app_id, metric), per), (metric, totals)):
                entry = bucket.setdefault(key, {"value": 0, "daily_figures": 0, "runs": set(), "pages": set()})  # type: ignore[index]
                entry["value"] += value
                entry["daily_figures"] += count
                entry["runs"].add(run_id)
                entry["pages"].add(page_id)
                run_ids.add(run_id)
                page_ids.add(page_id)
        span = {"start": period.from_day.isoformat(), "end": period.to_day.isoformat()}
        for (source, app_id, metric), entry in sorted(per.items()):
            figures.append({"period": span, "source": source, "app_id": app_id, "metric": metric, **_frozen(entry)})
        for metric, entry in sorted(totals.items()):
            figures.append({"period": span, "source": None, "app_id": None, "metric": metric, **_frozen(entry)})
    whole = Period(min(p.from_day for p in segments), max(p.to_day for p in segments))
    runs = _by_ids(conn, "SELECT id, source, started_at, finished_at, status FROM sync_run", sorted(run_ids))
    pages = _by_ids(conn, """SELECT id, run_id, chain, url, fetched_at, http_status, body_sha256, body_bytes
                             FROM sync_page""", sorted(page_ids))
    digest = hashlib.sha256("".join(f"{p['id']} {p['body_sha256']}\n" for p in pages).encode()).hexdigest()
    # Figures the source revised or withdrew after first reporting them: the letter says so.
    revised = conn.execute(f"""
        SELECT COUNT(*) FROM usage_change c JOIN app a ON a.source = c.source AND a.app_id = c.app_id
        WHERE a.consumer_id = ? AND c.day BETWEEN ? AND ? AND c.metric IN ({marks})""",
        (consumer_id, whole.start.isoformat(), whole.end.isoformat(), *metric_list)).fetchone()[0]
    return {
        "revised_figures": revised,
        "period": {"start": whole.start.isoformat(), "end": whole.end.isoformat()},
        "periods": [{"start": p.from_day.isoformat(), "end": p.to_day.isoformat()} for p in segments],
        "metrics": metric_list,
        "figures": figures,
        "runs": runs,
        "pages": pages,
        "pages_digest": digest,
    }


def _frozen(entry: dict[str, Any]) -> dict[str, Any]:
    return {"value": entry["value"], "daily_figures": entry["daily_figures"],
            "runs": sorted(entry["runs"]), "pages": sorted(entry["pages"])}


def _by_ids(conn: sqlite3.Connection, select: str, ids: list[int]) -> list[dict[str, Any]]:
    """Rows by id, in id order, in chunks that stay under SQLite's variable limit."""
    out: list[dict[str, Any]] = []
    for at in range(0, len(ids), 500):
        chunk = ids[at:at + 500]
        out.extend(_rows(conn, f"{select} WHERE id IN ({','.join('?' * len(chunk))}) ORDER BY id", chunk))
    return out


def _rows(conn: sqlite3.Connection, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, tuple(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


@dataclass(frozen=True)
class FigureChange:
    """A figure a note states whose value is not what it was when the note was drafted."""

    period_start: str
    period_end: str
    source: str | None          # None: the total of all applications
    app_id: str | None
    metric: str
    drafted: int | None         # None: no figure then (or now: withdrawn)
    now: int | None

    @property
    def text(self) -> str:
        """``figure changed since drafted: All applications, calls, 2022-01-01..2022-12-31: 790,123,456 then, 790,123,457 now``."""
        who = "All applications" if self.source is None else f"{self.source}/{self.app_id}"

        def shown(value: int | None) -> str:
            return "no figure" if value is None else f"{value:,}"

        return (f"figure changed since it was drafted: {who}, {self.metric}, {self.period_start}..{self.period_end}: "
                f"{shown(self.drafted)} then, {shown(self.now)} now; re-draft before sending")

    def as_json(self) -> dict[str, Any]:
        return {"period": {"start": self.period_start, "end": self.period_end}, "source": self.source,
                "app_id": self.app_id, "metric": self.metric, "drafted": self.drafted, "now": self.now}


def figure_changes(conn: sqlite3.Connection, consumer_id: str, drafted: dict[str, Any]) -> list[FigureChange]:
    """The figures of ``drafted`` (a note's evidence snapshot) whose value differs
    now. Only values count: a re-sync that stored the same figures again from new
    pages (new provenance) changes nothing the letter states."""
    if not drafted.get("period"):
        return []
    periods = [Period(date.fromisoformat(p["start"]), date.fromisoformat(p["end"]))
               for p in drafted.get("periods") or [drafted["period"]]]
    now = collect_evidence(conn, consumer_id, periods, drafted.get("metrics") or ())

    def values(figures: list[dict[str, Any]]) -> dict[tuple[Any, ...], int]:
        return {(f["period"]["start"], f["period"]["end"], f["source"] or "", f["app_id"] or "", f["metric"]): f["value"]
                for f in figures}

    before, after = values(drafted.get("figures") or []), values(now["figures"])
    return [FigureChange(start, end, source or None, app_id or None, metric, before.get(key), after.get(key))
            for key in sorted(set(before) | set(after))
            for start, end, source, app_id, metric in [key]
            if before.get(key) != after.get(key)]
