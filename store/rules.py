"""Rules: compare each consumer's usage with its tier and open candidate findings.

Rule id == category id (``store.domain.RULE_CATEGORIES``):

``volume_cap``
    The consumer's total over all its apps in a calendar month (year) is above a
    ``<metric>_per_month`` (``_per_year``) limit of its tier. One finding per
    consumer x metric x period exceeded; ``actual`` is the total.
``rate_limit``
    The consumer's total on a UTC day is above a ``<metric>_per_day`` limit. One
    finding per consumer x metric x calendar month with such days; ``actual`` is
    the worst day, ``figures.days_over`` lists every day over.
``circumvention``
    As above (day, month or year limits), but every single app stayed at or under
    the limit while the consumer's two or more apps together went over it: the
    split is what hides the overage. Reported beside ``volume_cap`` /
    ``rate_limit`` (a different provision is at issue). Severity at least medium.
``missing_use_case``
    The consumer declared no use case, and some of its apps with usage declared
    none either. One finding per consumer; ``actual`` is the number of such apps,
    ``figures.apps`` lists every app with usage.
``endpoint_outside``
    The source reported calls to endpoints that match none of the tier's
    ``allowed_endpoints`` (fnmatch patterns). One finding per consumer x month;
    ``actual`` is the calls outside.

Severity from ``ratio`` = actual / limit: >= 10 critical, >= 3 high, >= 1.5 medium,
else low; missing use case and endpoint outside are medium.

Figures (JSON) carry what a note's evidence appendix needs: the limit, the
per-app breakdown, and the ``runs`` and ``pages`` (``sync_run.id`` /
``sync_page.id``) of the usage rows the finding rests on.

Idempotent: ``dedupe_key`` = ``rule|consumer|period|<metric>_per_<period>`` (or
``missing_use_case|consumer``, ``endpoint_outside|consumer|month``);
:mod:`store.candidates` writes the detections against what is stored (a
decided finding is never changed; a version changes only with a figure a
reviewer sees; a candidate no longer detected is kept and marked).

Which consumers: those whose figures, apps, tier or limits changed since the
last run (:mod:`store.rules_pending`); every consumer on ``everything=True``
(``warden rules --all``) or when the rules never ran on the database; both give
the same findings.

Scale: usage is aggregated in SQL (GROUP BY), a chunk of consumers at a time,
each chunk's findings written in one short transaction. Memory is what one
chunk needs plus a bounded page cache, whatever the size of the database.
"""

from __future__ import annotations

import calendar
import json
import sqlite3
from collections import defaultdict
from fnmatch import fnmatchcase
from typing import Any, Iterable, Iterator

from store.candidates import Candidate, RulesResult, store_candidates
from store.clock import Clock, iso
from store.db import transaction
from store.domain import SEVERITIES
from store.rules_pending import RULES_VERSION, PendingWork, needs_full_pass

__all__ = ["run_rules", "severity_for", "RulesResult", "CHUNK_CONSUMERS"]

# Consumers evaluated per chunk (one read pass and one write transaction each).
CHUNK_CONSUMERS = 2_000
# The run's page cache: bounded, so memory does not grow with the database.
RULES_CACHE_KIB = 32 * 1024
# A circumvention finding is at least this severe: splitting load is deliberate.
CIRCUMVENTION_MIN_SEVERITY = "medium"


def severity_for(ratio: float) -> str:
    """The severity of an overage of ``ratio`` times the limit."""
    if ratio >= 10:
        return "critical"
    if ratio >= 3:
        return "high"
    if ratio >= 1.5:
        return "medium"
    return "low"


def run_rules(conn: sqlite3.Connection, *, clock: Clock, consumer_ids: Iterable[str] | None = None,
              everything: bool = False, chunk_size: int = CHUNK_CONSUMERS) -> RulesResult:
    """Evaluate every rule for the consumers whose data changed since the last
    run (``everything``: for every consumer; ``consumer_ids``: for these only,
    leaving the marks of changes alone) and create / update candidate findings;
    refreshes the queue summary of the consumers whose findings changed. See
    the module docstring for semantics."""
    now = iso(clock())
    result = RulesResult()
    tiers = _Tiers(conn)
    cache_size = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute(f"PRAGMA cache_size = -{RULES_CACHE_KIB}")
    _create_scratch(conn)
    work: PendingWork | None = None
    try:
        if consumer_ids is not None:
            result.mode = "named"
            chunks: Iterator[list[str]] = _given(consumer_ids, chunk_size)
        else:
            everything = everything or needs_full_pass(conn)
            result.mode = "full" if everything else "changed"
            work = PendingWork(conn, everything=everything)
            run_id = _run_started(conn, now, result.mode, work.upto)
            chunks = work.chunks(chunk_size)
        for chunk in chunks:
            ids = json.dumps(chunk)
            # One read transaction per chunk: a sync committing meanwhile is seen by
            # all of its reads or by none (the days over a limit and the app rows
            # behind them, a period's totals and its runs and pages, agree).
            conn.execute("BEGIN")
            try:
                candidates = list(_evaluate(conn, ids, tiers))
            finally:
                conn.execute("COMMIT")
            store_candidates(conn, ids, candidates, now, result)
            result.consumers += len(chunk)
        if work is not None:
            work.done()
            _run_finished(conn, run_id, iso(clock()), result)
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.rules_app_month")
        if work is not None:
            work.close()
        conn.execute(f"PRAGMA cache_size = {int(cache_size)}")
    return result


# --- which consumers --------------------------------------------------------------

def _given(consumer_ids: Iterable[str], size: int) -> Iterator[list[str]]:
    wanted = sorted(set(consumer_ids))
    for start in range(0, len(wanted), size):
        yield wanted[start:start + size]


def _run_started(conn: sqlite3.Connection, now: str, mode: str, upto: int) -> int:
    with transaction(conn):
        return int(conn.execute(
            "INSERT INTO rules_run (started_at, mode, rules_version, pending_upto) VALUES (?, ?, ?, ?)",
            (now, mode, RULES_VERSION, upto)).lastrowid)


def _run_finished(conn: sqlite3.Connection, run_id: int, now: str, result: RulesResult) -> None:
    with transaction(conn):
        conn.execute(
            "UPDATE rules_run SET finished_at = ?, consumers = ?, created = ?, updated = ?, provenance = ?, "
            "no_longer_detected = ? WHERE id = ?",
            (now, result.consumers, result.created, result.updated, result.provenance,
             result.no_longer_detected, run_id))


class _Tiers:
    """Limits and allowed endpoints of every tier (a handful of rows)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.endpoints: dict[str, list[str]] = {}
        for tier_id, allowed in conn.execute("SELECT id, allowed_endpoints FROM tier WHERE allowed_endpoints IS NOT NULL"):
            try:
                patterns = json.loads(allowed)
            except ValueError:
                continue
            if isinstance(patterns, list):
                self.endpoints[tier_id] = [str(p) for p in patterns]
        self._allowed: dict[tuple[str, str], bool] = {}

    def allows(self, tier_id: str, endpoint: str) -> bool:
        key = (tier_id, endpoint)
        known = self._allowed.get(key)
        if known is None:
            known = any(fnmatchcase(endpoint, pattern) for pattern in self.endpoints.get(tier_id, ()))
            self._allowed[key] = known
        return known


# --- evaluation (reads only) -----------------------------------------------------------

def _create_scratch(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TABLE IF EXISTS temp.rules_app_month")
    conn.execute("""
        CREATE TEMP TABLE rules_app_month (
            consumer_id TEXT, source TEXT, app_id TEXT, metric TEXT, month TEXT,
            total INTEGER, days INTEGER, first_day TEXT, last_day TEXT, runs TEXT, pages TEXT)""")


# Per app x metric x month totals of the chunk's consumers (only consumers whose
# tier limits something per month or year are passed in).
_FILL_APP_MONTH = """
INSERT INTO temp.rules_app_month
SELECT a.consumer_id, u.source, u.app_id, u.metric, substr(u.day, 1, 7),
       SUM(u.value), COUNT(*), MIN(u.day), MAX(u.day), NULL, NULL
FROM json_each(?) AS j
JOIN app AS a ON a.consumer_id = j.value
JOIN usage AS u ON u.source = a.source AND u.app_id = a.app_id
GROUP BY a.consumer_id, u.source, u.app_id, u.metric, substr(u.day, 1, 7)
"""
_LIMITED_PER_PERIOD = """
SELECT c.id FROM json_each(?) AS j JOIN consumer AS c ON c.id = j.value
WHERE EXISTS (SELECT 1 FROM tier_limit AS tl WHERE tl.tier_id = c.tier_id AND tl.period IN ('month', 'year'))
"""
# Consumer totals over a month or year limit. The per-app split (for
# circumvention) is computed in Python from the few consumers that are over.
_PERIODS_OVER = """
SELECT p.consumer_id, p.metric, tl.period, CASE tl.period WHEN 'month' THEN p.month ELSE substr(p.month, 1, 4) END,
       SUM(p.total), tl.max_value
FROM temp.rules_app_month AS p
JOIN consumer AS c ON c.id = p.consumer_id
JOIN tier_limit AS tl ON tl.tier_id = c.tier_id AND tl.metric = p.metric AND tl.period IN ('month', 'year')
GROUP BY p.consumer_id, p.metric, tl.period, 4
HAVING SUM(p.total) > tl.max_value
"""
# Provenance is gathered only for the few consumers over a limit: DISTINCT
# aggregates over every row of every consumer would double the cost of a run.
_PROVENANCE_OF = """
UPDATE temp.rules_app_month AS p SET runs = agg.runs, pages = agg.pages
FROM (SELECT u.source, u.app_id, u.metric, substr(u.day, 1, 7) AS month,
             group_concat(DISTINCT u.run_id) AS runs, group_concat(DISTINCT u.page_id) AS pages
      FROM json_each(?) AS j
      JOIN app AS a ON a.consumer_id = j.value
      JOIN usage AS u ON u.source = a.source AND u.app_id = a.app_id
      GROUP BY u.source, u.app_id, u.metric, substr(u.day, 1, 7)) AS agg
WHERE p.source = agg.source AND p.app_id = agg.app_id AND p.metric = agg.metric AND p.month = agg.month
"""
_APP_MONTHS_OF = """
SELECT p.consumer_id, p.metric, p.month, p.source, p.app_id, a.name, p.total, p.days,
       p.first_day, p.last_day, p.runs, p.pages
FROM temp.rules_app_month AS p
LEFT JOIN app AS a ON a.source = p.source AND a.app_id = p.app_id
WHERE p.consumer_id IN (SELECT value FROM json_each(?))
ORDER BY p.consumer_id, p.metric, p.month, p.source, p.app_id
"""
# Days on which a consumer went over a daily limit.
_DAYS_OVER = """
SELECT a.consumer_id, u.metric, u.day, SUM(u.value), MAX(u.value), COUNT(*), tl.max_value
FROM json_each(?) AS j
JOIN consumer AS c ON c.id = j.value
JOIN tier_limit AS tl ON tl.tier_id = c.tier_id AND tl.period = 'day'
JOIN app AS a ON a.consumer_id = c.id
JOIN usage AS u ON u.source = a.source AND u.app_id = a.app_id AND u.metric = tl.metric
GROUP BY a.consumer_id, u.metric, u.day
HAVING SUM(u.value) > tl.max_value
"""
# The app rows behind those days: [[consumer, metric, day], ...].
_APP_DAYS_OF = """
SELECT a.consumer_id, u.metric, u.day, u.source, u.app_id, a.name, u.value, u.run_id, u.page_id
FROM json_each(?) AS j
JOIN app AS a ON a.consumer_id = json_extract(j.value, '$[0]')
JOIN usage AS u ON u.source = a.source AND u.app_id = a.app_id
     AND u.day = json_extract(j.value, '$[2]') AND u.metric = json_extract(j.value, '$[1]')
ORDER BY u.source, u.app_id
"""
# Apps of consumers without a declared use case, with their first and last day
# of usage (index lookups, not scans).
_USE_CASES = """
SELECT c.id, a.source, a.app_id, a.name, a.declared_use_case,
       (SELECT MIN(u.day) FROM usage AS u WHERE u.source = a.source AND u.app_id = a.app_id),
       (SELECT MAX(u.day) FROM usage AS u WHERE u.source = a.source AND u.app_id = a.app_id)
FROM json_each(?) AS j
JOIN consumer AS c ON c.id = j.value
JOIN app AS a ON a.consumer_id = c.id
WHERE TRIM(COALESCE(c.declared_use_case, '')) = ''
ORDER BY c.id, a.source, a.app_id
"""
_ENDPOINTS = """
SELECT a.consumer_id, c.tier_id, e.source, e.app_id, a.name, e.endpoint, substr(e.day, 1, 7),
       SUM(e.calls), MIN(e.day), MAX(e.day), group_concat(DISTINCT e.run_id), group_concat(DISTINCT e.page_id)
FROM json_each(?) AS j
JOIN consumer AS c ON c.id = j.value
JOIN tier AS t ON t.id = c.tier_id AND t.allowed_endpoints IS NOT NULL
JOIN app AS a ON a.consumer_id = c.id
JOIN endpoint_usage AS e ON e.source = a.source AND e.app_id = a.app_id
GROUP BY a.consumer_id, e.source, e.app_id, e.endpoint, substr(e.day, 1, 7)
"""


def _evaluate(conn: sqlite3.Connection, ids: str, tiers: _Tiers) -> Iterator[Candidate]:
    yield from _period_rules(conn, ids)
    yield from _daily_rules(conn, ids)
    yield from _missing_use_case(conn, ids)
    if tiers.endpoints:
        yield from _endpoint_outside(conn, ids, tiers)


def _period_rules(conn: sqlite3.Connection, ids: str) -> Iterator[Candidate]:
    """volume_cap and circumvention against month and year limits."""
    conn.execute("DELETE FROM temp.rules_app_month")
    limited = json.dumps([cid for cid, in conn.execute(_LIMITED_PER_PERIOD, (ids,))])
    conn.execute(_FILL_APP_MONTH, (limited,))
    over = [tuple(row) for row in conn.execute(_PERIODS_OVER)]
    if not over:
        return
    consumers = sorted({row[0] for row in over})
    # (consumer, metric, month) -> per-app rows
    app_months: dict[tuple[str, str, str], list[tuple[Any, ...]]] = defaultdict(list)
    conn.execute(_PROVENANCE_OF, (json.dumps(consumers),))
    for row in conn.execute(_APP_MONTHS_OF, (json.dumps(consumers),)):
        app_months[(row[0], row[1], row[2])].append(row[3:])

    for consumer_id, metric, grain, period, total, maximum in sorted(over):
        if grain == "month":
            months = [period]
            start, end = _month_span(period)
        else:
            months = [f"{period}-{m:02d}" for m in range(1, 13)]
            start, end = f"{period}-01-01", f"{period}-12-31"
        apps: dict[tuple[str, str], dict[str, Any]] = {}
        runs: set[int] = set()
        pages: set[int] = set()
        for month in months:
            for source, app_id, name, app_total, days, first, last, app_runs, app_pages in app_months.get(
                    (consumer_id, metric, month), ()):
                entry = apps.setdefault((source, app_id), {
                    "source": source, "app_id": app_id, "name": name, "total": 0, "days": 0,
                    "first_day": first, "last_day": last})
                entry["total"] += app_total
                entry["days"] += days
                entry["first_day"] = min(entry["first_day"], first)
                entry["last_day"] = max(entry["last_day"], last)
                runs.update(_ids(app_runs))
                pages.update(_ids(app_pages))
        ratio = total / maximum
        max_app = max(app["total"] for app in apps.values())
        figures: dict[str, Any] = {
            "limit": {"metric": metric, "period": grain, "max": maximum},
            "total": total,
            "apps": sorted(apps.values(), key=lambda a: (-a["total"], a["source"], a["app_id"])),
            "runs": sorted(runs),
            "pages": sorted(pages),
        }
        common = dict(consumer_id=consumer_id, period=period, period_start=start, period_end=end,
                      metric=metric, actual=total, limit_value=maximum, ratio=round(ratio, 6))
        yield Candidate(category="volume_cap", severity=severity_for(ratio), figures=figures, **common)
        if len(apps) >= 2 and max_app <= maximum:
            yield Candidate(category="circumvention", severity=_at_least(severity_for(ratio), CIRCUMVENTION_MIN_SEVERITY),
                             figures={**figures, "largest_app_total": max_app, "apps_with_usage": len(apps)},
                             **common)


def _daily_rules(conn: sqlite3.Connection, ids: str) -> Iterator[Candidate]:
    """rate_limit and daily circumvention, one finding per consumer x metric x month."""
    days = conn.execute(_DAYS_OVER, (ids,)).fetchall()
    if not days:
        return
    per_app: dict[tuple[str, str, str], list[tuple[Any, ...]]] = defaultdict(list)
    keys = [[row[0], row[1], row[2]] for row in days]
    for row in conn.execute(_APP_DAYS_OF, (json.dumps(keys),)):
        per_app[(row[0], row[1], row[2])].append(row[3:])

    # (consumer, metric, month) -> days over (rate_limit) / days split across apps (circumvention)
    rate: dict[tuple[str, str, str], list[tuple[Any, ...]]] = defaultdict(list)
    split: dict[tuple[str, str, str], list[tuple[Any, ...]]] = defaultdict(list)
    for consumer_id, metric, day, total, max_app, n_apps, maximum in days:
        key = (consumer_id, metric, day[:7])
        rate[key].append((day, total, maximum))
        if n_apps >= 2 and max_app <= maximum:
            split[key].append((day, total, maximum))

    for category, groups in (("rate_limit", rate), ("circumvention", split)):
        for (consumer_id, metric, month), over in sorted(groups.items()):
            maximum = over[0][2]
            # max() keeps the first of equals: the earliest day.
            worst_day, worst_total, _ = max(sorted(over), key=lambda d: d[1])
            ratio = worst_total / maximum
            apps: dict[tuple[str, str], dict[str, Any]] = {}
            runs: set[int] = set()
            pages: set[int] = set()
            for day, _, _ in over:
                # Every day over has its app rows: both were read in one transaction.
                for source, app_id, name, value, run_id, page_id in per_app[(consumer_id, metric, day)]:
                    entry = apps.setdefault((source, app_id), {
                        "source": source, "app_id": app_id, "name": name, "worst_day": 0, "days_over_total": 0})
                    entry["days_over_total"] += value
                    if day == worst_day:
                        entry["worst_day"] = value
                    runs.add(run_id)
                    pages.add(page_id)
            start, end = _month_span(month)
            figures: dict[str, Any] = {
                "limit": {"metric": metric, "period": "day", "max": maximum},
                "worst_day": {"day": worst_day, "total": worst_total},
                "days_over": [{"day": day, "total": total, "ratio": round(total / maximum, 6)}
                              for day, total, _ in sorted(over)],
                "apps": sorted(apps.values(), key=lambda a: (-a["worst_day"], a["source"], a["app_id"])),
                "runs": sorted(runs),
                "pages": sorted(pages),
            }
            severity = severity_for(ratio)
            if category == "circumvention":
                severity = _at_least(severity, CIRCUMVENTION_MIN_SEVERITY)
                figures["apps_with_usage"] = len(apps)
                figures["largest_app_worst_day"] = max(app["worst_day"] for app in apps.values())
            yield Candidate(consumer_id=consumer_id, category=category, period=month, period_start=start,
                             period_end=end, severity=severity, metric=metric, actual=worst_total,
                             limit_value=maximum, ratio=round(ratio, 6), figures=figures)


def _missing_use_case(conn: sqlite3.Connection, ids: str) -> Iterator[Candidate]:
    by_consumer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for consumer_id, source, app_id, name, use_case, first, last in conn.execute(_USE_CASES, (ids,)):
        if first is None:  # no usage: nothing was done without a use case
            continue
        by_consumer[consumer_id].append({
            "source": source, "app_id": app_id, "name": name,
            "declared_use_case": use_case if use_case and use_case.strip() else None,
            "first_day": first, "last_day": last})
    for consumer_id, apps in by_consumer.items():
        missing = [app for app in apps if app["declared_use_case"] is None]
        if not missing:
            continue
        start = min(app["first_day"] for app in missing)
        end = max(app["last_day"] for app in missing)
        yield Candidate(
            consumer_id=consumer_id, category="missing_use_case", period=f"{start}..{end}",
            period_start=start, period_end=end, severity="medium", metric=None,
            actual=len(missing), limit_value=None, ratio=None,
            figures={"apps": apps, "apps_with_usage": len(apps), "apps_without_use_case": len(missing)})


def _endpoint_outside(conn: sqlite3.Connection, ids: str, tiers: _Tiers) -> Iterator[Candidate]:
    # (consumer, month) -> endpoint -> aggregated figures
    outside: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    meta: dict[tuple[str, str], dict[str, Any]] = {}
    for (consumer_id, tier_id, source, app_id, name, endpoint, month, calls, first, last,
         runs, pages) in conn.execute(_ENDPOINTS, (ids,)):
        if tiers.allows(tier_id, endpoint):
            continue
        key = (consumer_id, month)
        info = meta.setdefault(key, {"tier": tier_id, "runs": set(), "pages": set()})
        info["runs"].update(_ids(runs))
        info["pages"].update(_ids(pages))
        entry = outside[key].setdefault(endpoint, {"endpoint": endpoint, "calls": 0, "apps": []})
        entry["calls"] += calls
        entry["apps"].append({"source": source, "app_id": app_id, "name": name, "calls": calls,
                              "first_day": first, "last_day": last})
    for (consumer_id, month), endpoints in sorted(outside.items()):
        info = meta[(consumer_id, month)]
        start, end = _month_span(month)
        total = sum(entry["calls"] for entry in endpoints.values())
        yield Candidate(
            consumer_id=consumer_id, category="endpoint_outside", period=month, period_start=start,
            period_end=end, severity="medium", metric="calls", actual=total, limit_value=None, ratio=None,
            figures={
                "allowed_endpoints": tiers.endpoints.get(info["tier"], []),
                "endpoints": sorted(endpoints.values(), key=lambda e: (-e["calls"], e["endpoint"])),
                "runs": sorted(info["runs"]),
                "pages": sorted(info["pages"]),
            })


def _month_span(month: str) -> tuple[str, str]:
    year, number = int(month[:4]), int(month[5:7])
    return f"{month}-01", f"{month}-{calendar.monthrange(year, number)[1]:02d}"


def _ids(joined: str | None) -> Iterator[int]:
    if joined:
        for part in str(joined).split(","):
            yield int(part)


def _at_least(severity: str, floor: str) -> str:
    return max(severity, floor, key=SEVERITIES.index)


