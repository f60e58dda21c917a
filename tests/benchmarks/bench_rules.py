"""Benchmark: store.rules.run_rules over a large synthetic database.

    python tests/benchmarks/bench_rules.py [--consumers 1000000] [--rows-per-consumer 10] [--db PATH]

Builds (or reuses, with --db) a database of N consumers, each with one or two apps
and about R usage rows, a few percent of them over their tier's limits, then times
a first rules run (creates findings) and a second one (nothing changes).
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from store.clock import fixed_clock  # noqa: E402
from store.db import connect  # noqa: E402
from store.rules import run_rules  # noqa: E402


def build(path: Path, consumers: int, rows_per_consumer: int) -> None:
    conn = connect(path)
    rng = random.Random(7)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO tier (id, name, allowed_endpoints) VALUES ('basic', 'Basic', '[\"/2/tweets/*\"]')")
    conn.executemany("INSERT INTO tier_limit VALUES ('basic', ?, ?, ?)",
                     [("calls", "day", 10_000), ("calls", "month", 100_000), ("records", "year", 1_000_000)])
    conn.execute("INSERT INTO sync_run (id, source, started_at, status) VALUES (1, 'feed', 't', 'ok')")
    start = date(2022, 1, 1)
    days_each = max(1, rows_per_consumer // 2)
    batch: list[tuple[object, ...]] = []
    for n in range(consumers):
        cid = f"c{n:07d}"
        apps = [f"{cid}-a"] if n % 3 else [f"{cid}-a", f"{cid}-b"]
        conn.execute("INSERT INTO consumer (id, legal_name, tier_id, declared_use_case) VALUES (?, ?, 'basic', ?)",
                     (cid, f"Consumer {n}", None if n % 50 == 0 else "Analytics"))
        conn.executemany("INSERT INTO app (source, app_id, consumer_id) VALUES ('feed', ?, ?)",
                         [(app, cid) for app in apps])
        heavy = n % 40 == 0
        first = rng.randrange(300)
        for k in range(days_each):
            day = (start + timedelta(days=first + k)).isoformat()
            app = apps[k % len(apps)]
            calls = rng.randrange(20_000 if heavy else 5_000)
            batch.append(("feed", app, day, "calls", calls, 1, 1 + n // 1000))
            batch.append(("feed", app, day, "records", calls * 50, 1, 1 + n // 1000))
        if len(batch) >= 200_000:
            conn.executemany("INSERT OR IGNORE INTO usage VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
            batch.clear()
    conn.executemany("INSERT OR IGNORE INTO usage VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
    conn.execute("COMMIT")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consumers", type=int, default=1_000_000)
    parser.add_argument("--rows-per-consumer", type=int, default=10)
    parser.add_argument("--db", type=Path, help="reuse (or create) this database")
    args = parser.parse_args()
    path = args.db or Path(tempfile.mkdtemp()) / "bench_rules.db"
    if not path.exists():
        began = time.perf_counter()
        build(path, args.consumers, args.rows_per_consumer)
        print(f"built {path} in {time.perf_counter() - began:.1f} s")
    conn = connect(path)
    conn.execute("DELETE FROM finding")
    rows = conn.execute("SELECT COUNT(*) FROM usage").fetchone()[0]
    consumers = conn.execute("SELECT COUNT(*) FROM consumer").fetchone()[0]
    clock = fixed_clock(datetime(2023, 1, 2, tzinfo=timezone.utc))
    for label in ("first run", "second run"):
        began = time.perf_counter()
        result = run_rules(conn, clock=clock)
        elapsed = time.perf_counter() - began
        print(f"{label}: {consumers:,} consumers, {rows:,} usage rows in {elapsed:.1f} s "
              f"({rows / elapsed:,.0f} rows/s) -> {result}")


if __name__ == "__main__":
    main()
