"""Build a large warden database for the benchmarks (not a test; run as a script).

    python tests/benchmarks/make_big_db.py --consumers 1000000 --usage-rows 10000000 --out /tmp/big.db

What it holds (deterministic for a given --seed):
- 5 tiers with day / month / year limits and clause references;
- ``--consumers`` consumers with one app each (source ``feed``), plus the case
  consumer ``northwind-analytics`` ("Northwind Analytics Ltd") with eight apps and
  a year of huge usage, and a few consumers with hostile names (markup, escapes);
- about ``--usage-rows`` usage rows: a full year (2022) of calls + records for an
  evenly spread subset of apps, written in primary-key order;
- findings for every consumer with usage (the top of the queue, up to 40x over)
  and for ``--finding-fraction`` of the others (borderline), mostly candidates,
  some already decided with decisions in the hash-chained log; the queue
  summary refreshed for them.

It writes the schema through :func:`store.db.connect` and then bulk-loads with
``INSERT ... SELECT`` over recursive CTEs (journal off while loading; the file is
switched back to WAL at the end).
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from store.clock import fixed_clock  # noqa: E402
from store.db import connect  # noqa: E402
from store.queue_summary import refresh_summary  # noqa: E402
from store.review import confirm_violation, dismiss, mark_needs_info  # noqa: E402

CASE_ID = "northwind-analytics"
YEAR_DAYS = 365            # 2022
START_DAY = "2022-01-01"
CLOCK = fixed_clock(datetime(2023, 1, 2, 9, 0, tzinfo=timezone.utc))

TIERS = [
    # id, name, calls/day, calls/month, records/month, records/year
    ("starter", "Starter", 5_000, 100_000, 500_000, 5_000_000),
    ("basic", "Basic", 20_000, 500_000, 2_000_000, 20_000_000),
    ("pro", "Pro", 100_000, 2_500_000, 10_000_000, 100_000_000),
    ("enterprise", "Enterprise", 1_000_000, 25_000_000, 100_000_000, 1_000_000_000),
    ("partner", "Partner", 2_000_000, 50_000_000, 1_000_000_000, 2_000_000_000),
]
ADJECTIVES = ["North", "Blue", "Quiet", "Rapid", "Silver", "Bright", "Open", "Clear", "Deep", "Green",
              "Iron", "Lucky", "Prime", "Solid", "Vivid", "Amber", "Coastal", "Urban", "Polar", "Crimson"]
NOUNS = ["Wind", "River", "Signal", "Harbor", "Metric", "Pulse", "Stone", "Field", "Orbit", "Beacon",
         "Ledger", "Vector", "Canyon", "Falcon", "Summit", "Meadow", "Forge", "Atlas", "Delta", "Echo"]
SUFFIXES = ["Analytics Ltd", "Labs", "Inc.", "GmbH", "Data Co", "Research", "Media", "Systems", "AG", "LLC"]
HOSTILE = [
    ("hostile-markup", "[bold red]x[/] Markup Corp"),
    ("hostile-escape", "\x1b[31mRed\x1b[0m Escape Ltd"),
    ("hostile-bell", "Bell\x07 \x1b]0;title\x07 Co"),
]


def build(out: Path, consumers: int, usage_rows: int, finding_fraction: float, seed: int) -> dict[str, float]:
    """Create the database at ``out``; return timings per step (seconds)."""
    timings: dict[str, float] = {}
    for suffix in ("", "-wal", "-shm"):
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    connect(out).close()   # schema + migrations, the one way
    conn = sqlite3.connect(out, isolation_level=None)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")   # 256 MB while loading
    conn.execute("PRAGMA temp_store = MEMORY")
    rnd = random.Random(seed)

    t = time.perf_counter()
    conn.execute("BEGIN")
    for tid, name, cpd, cpm, rpm, rpy in TIERS + [("case", "Case tier", 1_000_000, 30_000_000, 1_000_000_000,
                                                    5_000_000_000)]:
        conn.execute("INSERT INTO tier (id, name, agreement_version, origin) VALUES (?, ?, '2021-06', 'config')",
                     (tid, name))
        conn.executemany("INSERT INTO tier_limit VALUES (?, ?, ?, ?)", [
            (tid, "calls", "day", cpd), (tid, "calls", "month", cpm),
            (tid, "records", "month", rpm), (tid, "records", "year", rpy)])
        conn.executemany("INSERT INTO tier_clause VALUES (?, ?, ?)", [
            (tid, "volume_cap", "§3.1 Volume limits"), (tid, "rate_limit", "§3.2 Rate limits"),
            (tid, "missing_use_case", "§2.4 Declared use case")])
    conn.execute("INSERT INTO source (name, kind, url) VALUES ('feed', 'warden-feed', 'http://127.0.0.1:0/feed/v1')")
    conn.execute("INSERT INTO sync_run (id, source, started_at, finished_at, status, window_start, window_end)"
                 " VALUES (1, 'feed', '2023-01-01T00:00:00Z', '2023-01-01T00:10:00Z', 'ok', '2022-01-01', '2022-12-31')")
    conn.execute("INSERT INTO sync_page (id, run_id, chain, url, fetched_at, http_status, body_sha256)"
                 " VALUES (1, 1, 'usage/0', 'http://127.0.0.1:0/feed/v1/usage', '2023-01-01T00:00:01Z', 200, ?)",
                 ("0" * 64,))

    def consumer_rows():
        tier_ids = [tr[0] for tr in TIERS]
        for i in range(consumers):
            name = f"{rnd.choice(ADJECTIVES)} {rnd.choice(NOUNS)} {rnd.choice(SUFFIXES)}"
            use_case = None if i % 7 == 0 else "Analytics dashboards"
            yield (f"c{i:07d}", name, f"legal+{i}@example.invalid", rnd.choice(tier_ids), use_case)

    conn.executemany("INSERT INTO consumer (id, legal_name, notice_contact, tier_id, agreement_version,"
                     " declared_use_case, origin) VALUES (?, ?, ?, ?, '2021-06', ?, 'feed')", consumer_rows())
    conn.execute("INSERT INTO consumer (id, legal_name, notice_contact, tier_id, agreement_version, origin)"
                 " VALUES (?, 'Northwind Analytics Ltd', 'legal@northwind.example', 'case', '2021-06', 'config')",
                 (CASE_ID,))
    conn.executemany("INSERT INTO consumer (id, legal_name, tier_id, origin) VALUES (?, ?, 'starter', 'feed')",
                     HOSTILE)
    # One app per consumer, same number: c0000042 owns a0000042.
    conn.execute(
        "INSERT INTO app (source, app_id, consumer_id, name, declared_use_case)"
        " WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)"
        " SELECT 'feed', printf('a%07d', i), printf('c%07d', i), printf('App %d', i),"
        " CASE WHEN i % 7 = 0 THEN NULL ELSE 'Analytics dashboards' END FROM n", (consumers,))
    conn.executemany("INSERT INTO app VALUES ('feed', ?, ?, ?, ?)", [
        (f"nw-{k}", CASE_ID, f"Northwind app {k}", "Market research" if k < 2 else None) for k in range(8)])
    conn.execute("COMMIT")
    timings["consumers + apps"] = time.perf_counter() - t

    # Usage: a full year of calls and records for every stride-th app, in key order.
    t = time.perf_counter()
    per_app = YEAR_DAYS * 2
    full_apps = max(1, min(consumers, usage_rows // per_app))
    stride = max(1, consumers // full_apps)
    conn.execute("BEGIN")
    conn.execute("CREATE TEMP TABLE days (n INTEGER PRIMARY KEY, day TEXT)")
    conn.execute("INSERT INTO days WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n + 1 < ?)"
                 " SELECT n, date(?, '+' || n || ' days') FROM d", (YEAR_DAYS, START_DAY))
    conn.execute(
        "INSERT INTO usage (source, app_id, day, metric, value, run_id, page_id)"
        " WITH RECURSIVE a(i) AS (SELECT 0 UNION ALL SELECT i + ? FROM a WHERE i + ? < ?)"
        " SELECT 'feed', printf('a%07d', a.i), d.day, m.metric,"
        # Deterministic spread: a per-app level times a weekly wave, records ~ 30x calls.
        "   ((a.i * 7919) % 20000 + 100) * (8 + (d.n * 13 + a.i) % 5) * m.k,"
        "   1, 1"
        " FROM a CROSS JOIN days d CROSS JOIN (SELECT 'calls' AS metric, 1 AS k UNION ALL SELECT 'records', 30) m"
        " ORDER BY 2, 3, 4", (stride, stride, consumers))
    # The case consumer: eight apps, > 780 M calls and > 26 B records in 2022.
    conn.execute(
        "INSERT INTO usage (source, app_id, day, metric, value, run_id, page_id)"
        " WITH RECURSIVE a(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM a WHERE k < 7)"
        " SELECT 'feed', 'nw-' || a.k, d.day, m.metric, (270000 + a.k * 1000 + (d.n % 7) * 500) * m.k, 1, 1"
        " FROM a CROSS JOIN days d CROSS JOIN (SELECT 'calls' AS metric, 1 AS k UNION ALL SELECT 'records', 34) m")
    conn.execute("COMMIT")
    timings["usage"] = time.perf_counter() - t

    # Findings: every consumer with a usage history (ratios up to 40x, so the top
    # of the queue has charts to draw) plus every n-th other consumer (borderline,
    # 1-2x); mostly candidates, some decided below.
    t = time.perf_counter()
    every = max(1, round(1 / finding_fraction)) if finding_fraction > 0 else consumers + 1
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO finding (consumer_id, category, period, period_start, period_end, severity, status,"
        " rule_id, metric, actual, limit_value, ratio, figures, dedupe_key, detected_at, updated_at)"
        " WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?),"
        " r(i, ratio) AS (SELECT i, CASE WHEN i % ? = 0 THEN (100 + (i * 7919) % 3900) / 100.0"
        "                          ELSE 1.0 + ((i * 31) % 100) / 100.0 END"
        "                 FROM n WHERE i % ? = 0 OR i % ? = 0)"
        " SELECT printf('c%07d', i),"
        "   CASE i % 3 WHEN 0 THEN 'volume_cap' WHEN 1 THEN 'rate_limit' ELSE 'missing_use_case' END,"
        "   '2022', '2022-01-01', '2022-12-31', 'medium', 'candidate',"
        "   CASE i % 3 WHEN 0 THEN 'volume_cap' WHEN 1 THEN 'rate_limit' ELSE 'missing_use_case' END,"
        "   CASE WHEN i % 3 = 2 THEN NULL ELSE 'calls' END,"
        "   CASE WHEN i % 3 = 2 THEN NULL ELSE CAST(ratio * 1000000 AS INTEGER) END,"
        "   CASE WHEN i % 3 = 2 THEN NULL ELSE 1000000 END,"
        "   CASE WHEN i % 3 = 2 THEN NULL ELSE ratio END,"
        "   '{}', printf('gen|%d', i), '2023-01-01T01:00:00Z', '2023-01-01T01:00:00Z'"
        " FROM r", (consumers, stride, stride, every))
    conn.execute(
        "INSERT INTO finding (consumer_id, category, period, period_start, period_end, severity, status, rule_id,"
        " metric, actual, limit_value, ratio, figures, dedupe_key, detected_at, updated_at) VALUES"
        " (?, 'volume_cap', '2022', '2022-01-01', '2022-12-31', 'high', 'candidate', 'volume_cap', 'calls',"
        "  ?, 360000000, ?, '{}', 'gen|case', '2023-01-01T01:00:00Z', '2023-01-01T01:00:00Z')",
        (CASE_ID, 790_000_000, 790_000_000 / 360_000_000 * 100))
    conn.execute("COMMIT")
    conn.close()

    conn = connect(out)
    ids = [r[0] for r in conn.execute("SELECT DISTINCT consumer_id FROM finding")]
    conn.execute("BEGIN IMMEDIATE")
    refresh_summary(conn, ids)
    conn.execute("COMMIT")
    timings["findings + summary"] = time.perf_counter() - t

    # Decide a slice of the findings through the real review functions (hash chain).
    t = time.perf_counter()
    finding_ids = [r[0] for r in conn.execute("SELECT id FROM finding ORDER BY id")]
    decided = finding_ids[1::10][:3000]
    conn.execute("BEGIN IMMEDIATE")
    for k, fid in enumerate(decided):
        reviewer = ("alice", "bob", "carol")[k % 3]
        # Drawn, not k % 3: findings are every n-th consumer, so a stride would
        # give every confirmed finding the same category.
        action = rnd.randrange(3)
        if action == 0:
            confirm_violation(conn, fid, reviewer=reviewer, severity="high", reason="over the cap all year",
                              clock=CLOCK)
        elif action == 1:
            dismiss(conn, fid, reviewer=reviewer, reason_code="within_allowance", clock=CLOCK)
        else:
            mark_needs_info(conn, fid, reviewer=reviewer, reason="asked the account team", clock=CLOCK)
    conn.execute("COMMIT")
    timings["decisions"] = time.perf_counter() - t
    conn.close()
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consumers", type=int, default=1_000_000, help="consumers (default 1,000,000)")
    parser.add_argument("--usage-rows", type=int, default=10_000_000,
                        help="about this many usage rows: a year of calls + records for a spread of apps "
                             "(default 10,000,000)")
    parser.add_argument("--finding-fraction", type=float, default=0.02,
                        help="share of the other consumers with a borderline finding (default 0.02); every "
                             "consumer with usage has one too")
    parser.add_argument("--seed", type=int, default=7, help="names and decisions are drawn from this seed")
    parser.add_argument("--out", type=Path, required=True, help="database file to (re)create")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    timings = build(args.out, args.consumers, args.usage_rows, args.finding_fraction, args.seed)
    conn = sqlite3.connect(args.out)
    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("consumer", "app", "usage", "finding", "decision")}
    conn.close()
    for step, secs in timings.items():
        print(f"{step:>20}: {secs:7.1f} s")
    print("     " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    print(f"{'total':>20}: {time.perf_counter() - started:7.1f} s -> {args.out} "
          f"({os.path.getsize(args.out) / 1e6:,.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
