"""A seeded case for the notes and export tests: the Northwind case and a hostile consumer.

Built by direct inserts into a real SQLite file (the rules and review helpers are
tested elsewhere); figures are chosen so the letter must say "more than 790
million" calls and "more than 26 billion" records for 2022. The case has a figure
for every day of 2022 (a letter states the days its figures cover); the hostile
and bulk consumers only one a month (their letters say so).
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from store.clock import fixed_clock
from store.db import connect, transaction

CLOCK = fixed_clock(datetime(2023, 5, 2, 9, 30, 0, tzinfo=timezone.utc))
CASE_ID = "northwind-analytics"
HOSTILE_ID = "../../etc/pass wd\\x:y"
HOSTILE_NAME = ("=HYPERLINK(\"http://evil.example\") [bold red]Evil[/] <script>alert(1)</script> "
                "[click](javascript:alert(1)) \x1b[31mred\x1b[0m | a | \u202eexe.txt # *x* _y_ `z`")
CASE_CALLS = 790_123_456
CASE_RECORDS = 26_412_000_000


def _split(total: int, parts: int) -> list[int]:
    """``total`` over ``parts`` uneven but deterministic shares that sum exactly."""
    weights = [(i * 7919) % 97 + 10 for i in range(parts)]
    shares = [total * w // sum(weights) for w in weights]
    shares[-1] += total - sum(shares)
    return shares


def seed(path: Path, *, consumers: int = 0, findings: bool = True) -> sqlite3.Connection:
    """Create the database at ``path`` with the case (and ``consumers`` extra small cases).

    ``findings=False`` leaves findings to ``store.rules`` (the pipeline test)."""
    conn = connect(path)
    with transaction(conn):
        conn.execute("INSERT INTO source (name, kind, url) VALUES ('demo', 'warden-feed', 'http://127.0.0.1:8765/feed/v1')")
        conn.execute("INSERT INTO tier (id, name, agreement_version) VALUES ('enterprise-basic', 'Enterprise Basic', '2022-06')")
        conn.executemany("INSERT INTO tier_limit VALUES ('enterprise-basic', ?, ?, ?)", [
            ("calls", "year", 100_000_000), ("records", "month", 500_000_000)])
        conn.executemany("INSERT INTO tier_clause VALUES ('enterprise-basic', ?, ?)", [
            ("volume_cap", "§3.1 (Volume caps)"), ("missing_use_case", "§2.4 (Declared use case)"),
            ("government_end_user", "§5.2 (Government end users)")])
        for run_id, started in ((1, "2023-01-01T02:00:00Z"), (2, "2023-01-02T02:00:00Z")):
            conn.execute("INSERT INTO sync_run (id, source, started_at, finished_at, status, pages, rows_taken) "
                         "VALUES (?, 'demo', ?, ?, 'ok', 2, 0)", (run_id, started, started.replace("02:00", "02:05")))
        for page_id in range(1, 5):
            run_id = 1 if page_id <= 2 else 2
            body = f"page {page_id}".encode()
            conn.execute("INSERT INTO sync_page (id, run_id, chain, url, fetched_at, http_status, body_sha256, "
                         "body_bytes, rows_taken) VALUES (?, ?, 'usage/0', ?, ?, 200, ?, ?, 96)",
                         (page_id, run_id, f"http://127.0.0.1:8765/feed/v1/usage?shard=0&shards=1&page={page_id}",
                          f"2023-01-0{run_id}T02:0{page_id}:00Z", hashlib.sha256(body).hexdigest(), len(body)))
        _consumer(conn, CASE_ID, "Northwind Analytics Ltd", "Legal Department <legal@northwind.example>",
                  apps=[(f"app-{i}", f"Northwind App {i}", "Market dashboards" if i <= 2 else None) for i in range(1, 9)],
                  calls=CASE_CALLS, records=CASE_RECORDS, use_case="Market research dashboards", daily=True)
        conn.executemany(
            "INSERT INTO finding (consumer_id, category, period, period_start, period_end, severity, status, rule_id, "
            "metric, actual, limit_value, ratio, figures, evidence, dedupe_key, detected_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                (CASE_ID, "volume_cap", "2022", "2022-01-01", "2022-12-31", "high", "confirmed", "volume_cap", "calls",
                 CASE_CALLS, 100_000_000, CASE_CALLS / 100_000_000,
                 '{"limit": {"metric": "calls", "period": "year", "max": 100000000}, "runs": [1], "pages": [1, 2]}',
                 None, "volume_cap|nw|2022|calls_per_year", "2023-01-02T03:00:00Z", "2023-01-03T10:00:00Z"),
                # As store.rules opens it: spanning every day the apps without a use case were used.
                (CASE_ID, "missing_use_case", "2021-10-01..2022-12-31", "2021-10-01", "2022-12-31", "medium",
                 "confirmed", "missing_use_case", None, 6, None, None,
                 '{"apps_with_usage": 8, "apps_without_use_case": 6}', None, "missing_use_case|nw",
                 "2023-01-02T03:00:00Z", "2023-01-03T10:00:00Z"),
                (CASE_ID, "rate_limit", "2022-03", "2022-03-01", "2022-03-31", "low", "candidate", "rate_limit", "calls",
                 5_000_000, 4_000_000, 1.25, '{"limit": {"metric": "calls", "period": "day", "max": 4000000}}', None,
                 "rate_limit|nw|2022-03|calls_per_day", "2023-01-02T03:00:00Z", "2023-01-02T03:00:00Z"),
                (CASE_ID, "government_end_user", "2022", "2022-01-01", "2022-12-31", "critical", "confirmed", None, None,
                 None, None, None, "{}", "App 3 delivered data to a government agency without the required notice.",
                 None, "2023-01-03T11:00:00Z", "2023-01-03T11:00:00Z"),
            ] if findings else [])
        _consumer(conn, HOSTILE_ID, HOSTILE_NAME, "a@b.example, =evil@c.example",
                  apps=[("evil-app", "**bold** | <img src=x onerror=alert(1)> @SUM(1)", "-2+3")],
                  calls=1_000, records=0, use_case="+cmd|' /C calc'!A0")
        conn.execute(
            "INSERT INTO finding (consumer_id, category, period, period_start, period_end, severity, status, "
            "figures, evidence, detected_at, updated_at) VALUES (?, 'restricted_use', '2022-03', '2022-03-01', "
            "'2022-03-31', 'high', 'confirmed', '{}', ?, '2023-01-03T12:00:00Z', '2023-01-03T12:00:00Z')",
            (HOSTILE_ID, "@SUM(A1:A9) -1 +1 =1 \tTab \rCR <b>bold</b> [x](http://evil.example)"))
        for i in range(consumers):
            cid = f"bulk-{i:05d}"
            _consumer(conn, cid, f"Bulk Consumer {i} plc", f"legal@bulk{i}.example",
                      apps=[(f"bulk-{i}-a", f"Bulk {i} A", None)], calls=150_000_000 + i, records=1_000_000 + i,
                      use_case=None)
            conn.execute(
                "INSERT INTO finding (consumer_id, category, period, period_start, period_end, severity, status, "
                "rule_id, metric, actual, limit_value, ratio, figures, detected_at, updated_at) VALUES "
                "(?, 'volume_cap', '2022', '2022-01-01', '2022-12-31', 'high', 'confirmed', 'volume_cap', 'calls', "
                "?, 100000000, ?, '{}', '2023-01-02T03:00:00Z', '2023-01-02T03:00:00Z')",
                (cid, 150_000_000 + i, (150_000_000 + i) / 100_000_000))
        # A confirmed finding has its confirmation in the log, as store.review writes it
        # (warden verify replays the log against the findings).
        for (fid,) in conn.execute("SELECT id FROM finding WHERE status = 'confirmed' ORDER BY id").fetchall():
            _log_confirmation(conn, fid)
    return conn


def _log_confirmation(conn: sqlite3.Connection, finding_id: int) -> None:
    from store.decision_log import record_decision

    severity, category = conn.execute("SELECT severity, category FROM finding WHERE id = ?", (finding_id,)).fetchone()
    first = None
    for field, old, new in (("status", "candidate", "confirmed"), ("severity", severity, severity),
                            ("category", category, category)):
        entry = record_decision(conn, subject="finding", subject_id=finding_id, field=field, old=old, new=new,
                                reason="confirmed for the case", reviewer="seed", clock=CLOCK, action_id=first)
        first = entry.action_id


def _consumer(conn: sqlite3.Connection, cid: str, name: str, contact: str, *, apps: list[tuple[str, str, str | None]],
              calls: int, records: int, use_case: str | None, daily: bool = False) -> None:
    conn.execute("INSERT INTO consumer (id, legal_name, notice_contact, tier_id, agreement_version, declared_use_case) "
                 "VALUES (?, ?, ?, 'enterprise-basic', '2022-06', ?)", (cid, name, contact, use_case))
    conn.executemany("INSERT INTO app (source, app_id, consumer_id, name, declared_use_case) VALUES ('demo', ?, ?, ?, ?)",
                     [(app_id, cid, app_name, declared) for app_id, app_name, declared in apps])
    for metric, total, first_page in (("calls", calls, 1), ("records", records, 3)):
        if not total:
            continue
        days = ([date(2022, 1, 1) + timedelta(days=n) for n in range(365)] if daily
                else [date(2022, month, 1) for month in range(1, 13)])
        shares = _split(total, len(apps) * len(days))
        rows = []
        for a, (app_id, _, _) in enumerate(apps):
            for n, day in enumerate(days):
                page = first_page if day.month <= 6 else first_page + 1
                rows.append(("demo", app_id, day.isoformat(), metric, shares[a * len(days) + n],
                             1 if page <= 2 else 2, page))
        conn.executemany("INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
