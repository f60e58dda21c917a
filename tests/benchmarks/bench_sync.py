"""Sync benchmark: usage rows per second from the embedded demo endpoint over
loopback, beside a bare baseline in the same run, peak memory at three sizes,
and how long a reviewer's write in another process waits meanwhile (not a test;
run as a script).

    python tests/benchmarks/bench_sync.py --rows 1000000

The demo endpoint (its own process) serves about ``--rows`` usage rows in a
realistic shape: consumers with 1-3 apps each (1.8 on average), every app
reporting calls and records every day for 35 days, about one in 25 over its
limits (some 8,000 consumers for a million rows). Each part runs in its own
process:

* **baseline**: httpx GET of every usage page (one shard, one after the other) +
  ``json.loads`` + ``sqlite3.executemany`` of a plain INSERT into the same
  ``usage`` table, a commit per page, no validation, no provenance.
* **sync**: ``store.sync.engine.sync_source`` of the demo's warden-feed source
  (every chain: tiers, consumers, usage, endpoints; 4 shards, 4 fetch threads,
  large pages parsed by its parse worker process) into a fresh database, with
  validation, provenance, resumable cursors, marks for the rules and short
  transactions. Its CPU includes the parse worker's.

Both rates count usage rows only (the sync's endpoint rows are not counted).
Baseline and sync run alternately ``--repeat`` times (3); every run's ratio is
printed. During each sync a **reviewer** process writes through
``store.db.transaction`` (as a decision does) every 50 ms and records how long
each write took. **Memory**: peak RSS (``ru_maxrss``) of the sync process at a
quarter of ``--rows``, at ``--rows`` and at twice it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from endpoint import Endpoint, feed_config  # noqa: E402

DAYS = 35
END = date(2022, 12, 31)
START = END - timedelta(days=DAYS - 1)
TODAY = datetime(2023, 1, 1, 6, tzinfo=timezone.utc)
TARGET_RATIO = 0.8
TARGET_WAIT_MS = 100.0


# --- the endpoint -----------------------------------------------------------------

def consumers_for(rows: int) -> int:
    """How many demo consumers (all reporting daily for DAYS days) serve about
    ``rows`` usage rows (bisection on the demo's own row count)."""
    from store.demo.data import DemoData

    def served(n: int) -> int:
        return DemoData(n, end=END, days=DAYS, dense=n).usage_rows()

    lo, hi = 1, 64
    while hi < 1_000_000 and served(hi) < rows:
        lo, hi = hi + 1, min(1_000_000, hi * 2)
    while lo < hi:
        mid = (lo + hi) // 2
        if served(mid) < rows:
            lo = mid + 1
        else:
            hi = mid
    return lo


# --- the measured processes ---------------------------------------------------------

def child_baseline(url: str, db: str) -> dict[str, Any]:
    import sqlite3

    import httpx

    from store.db import connect

    connect(db).close()  # same schema as the sync's database
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    sql = "INSERT INTO usage (source, app_id, day, metric, value, run_id, page_id) VALUES ('bench', ?, ?, ?, ?, 0, 0)"
    rows = 0
    began, cpu_began = time.perf_counter(), _cpu()
    token = os.environ.get("WARDEN_DEMO_TOKEN", "bench-token")
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        params: dict[str, str] = {"shard": "0", "shards": "1", "start": START.isoformat(), "end": END.isoformat()}
        while True:
            page = client.get(url.rstrip("/") + "/usage", params=params)
            page.raise_for_status()
            data = json.loads(page.content)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, data["rows"])
            conn.execute("COMMIT")
            rows += len(data["rows"])
            if not data.get("next"):
                break
            params["cursor"] = data["next"]
    seconds = time.perf_counter() - began
    return {"rows": rows, "seconds": seconds, "cpu": _cpu() - cpu_began,
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def child_sync(url: str, db: str, concurrency: int) -> dict[str, Any]:
    import sqlite3

    from store.clock import fixed_clock
    import store.sync.engine
    from store.sync.engine import sync_source
    from store.sync.writer import RunWriter

    writers: list[RunWriter] = []

    class CountingWriter(RunWriter):  # to report how long the sync held the write lock
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            writers.append(self)

    store.sync.engine.RunWriter = CountingWriter  # type: ignore[misc]
    config = feed_config(_Url(url), concurrency=concurrency)
    source = next(iter(config.sources.values()))
    began, cpu_began = time.perf_counter(), _cpu()
    result = sync_source(db, source, clock=fixed_clock(TODAY))
    seconds = time.perf_counter() - began
    assert result.status == "ok", result
    conn = sqlite3.connect(db)
    usage = conn.execute("SELECT count(*) FROM usage").fetchone()[0]
    conn.close()
    return {"rows": usage, "all_rows": result.rows, "pages": result.pages, "seconds": seconds,
            "cpu": _cpu() - cpu_began, "transactions": writers[0].transactions, "yields": writers[0].yields,
            "longest_transaction_ms": writers[0].longest_transaction * 1000,
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


class _Url:
    def __init__(self, feed_url: str) -> None:
        self.feed_url = feed_url


def _cpu() -> float:
    """CPU seconds of this process, every thread (user + system), and of the
    processes it started and waited for (the sync's parse worker)."""
    return sum(usage.ru_utime + usage.ru_stime for usage in (resource.getrusage(resource.RUSAGE_SELF),
                                                             resource.getrusage(resource.RUSAGE_CHILDREN)))


def child_reviewer(db: str, stop_file: str) -> dict[str, Any]:
    """A reviewer's write every 50 ms, through the store's own transaction (as a
    decision is written: it says it waits, and the sync lets it in)."""
    from store.db import connect, transaction

    conn = connect(db)
    waits: list[float] = []
    locks: list[float] = []   # of which: until the write lock was ours
    n = 0
    while not os.path.exists(stop_file):
        began = time.perf_counter()
        with transaction(conn):
            locks.append(time.perf_counter() - began)
            conn.execute("UPDATE tier SET name = ? WHERE id = 'bench-reviewer'", (f"write {n}",))
        waits.append(time.perf_counter() - began)
        n += 1
        time.sleep(0.05)
    waits.sort()
    return {"writes": len(waits), "max_ms": waits[-1] * 1000 if waits else 0.0,
            "max_lock_ms": max(locks) * 1000 if locks else 0.0,
            "p99_ms": waits[int(len(waits) * 0.99)] * 1000 if waits else 0.0,
            "median_ms": waits[len(waits) // 2] * 1000 if waits else 0.0}


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the report -----------------------------------------------------------------------

def measure(rows: int, workdir: Path, *, concurrency: int, repeat: int, reviewer: bool,
            baseline: bool) -> dict[str, Any]:
    """Baseline and sync, alternately, ``repeat`` times against one endpoint;
    each run into a fresh database, with the machine's load when it ended."""
    from store.db import connect

    consumers = consumers_for(rows)
    feed = feed_config  # the token variable is set for the children too
    report: dict[str, Any] = {"consumers": consumers, "baseline": [], "sync": [], "reviewer": [], "load": []}
    with Endpoint(consumers, end=END, days=DAYS, dense=consumers) as endpoint:
        feed(endpoint)
        for run in range(repeat):
            if baseline:
                report["baseline"].append(run_child("baseline", endpoint.feed_url, str(workdir / f"base-{run}.db")))
            db = workdir / f"sync-{rows}-{run}.db"
            conn = connect(db)
            conn.execute("INSERT INTO tier (id, name) VALUES ('bench-reviewer', 'reviewer')")
            conn.close()
            stop_file = workdir / "stop"
            stop_file.unlink(missing_ok=True)
            review = None
            if reviewer:
                review = subprocess.Popen([sys.executable, __file__, "--child", "reviewer", str(db), str(stop_file)],
                                          stdout=subprocess.PIPE, text=True, cwd=REPO)
                time.sleep(0.3)
            try:
                report["sync"].append(run_child("sync", endpoint.feed_url, str(db), str(concurrency)))
            finally:
                stop_file.touch()
                if review is not None:
                    out, _ = review.communicate(timeout=30)
                    report["reviewer"].append(json.loads(out.strip().splitlines()[-1]))
            report["load"].append(os.getloadavg()[0])
            for path in workdir.glob("*.db*"):
                path.unlink()
    return report


def rate(run: dict[str, Any]) -> float:
    return run["rows"] / run["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="usage rows of the large run")
    parser.add_argument("--concurrency", type=int, default=4, help="fetch threads of the sync")
    parser.add_argument("--repeat", type=int, default=3, help="runs of baseline and sync, alternately")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = {"baseline": child_baseline, "sync": lambda *a: child_sync(a[0], a[1], int(a[2])),
                  "reviewer": child_reviewer}[kind](*rest)
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        workdir = Path(tmp)
        large = measure(args.rows, workdir, concurrency=args.concurrency, repeat=args.repeat, reviewer=True,
                        baseline=True)
        small = measure(args.rows // 4, workdir, concurrency=args.concurrency, repeat=1, reviewer=False,
                        baseline=False)
        double = measure(args.rows * 2, workdir, concurrency=args.concurrency, repeat=1, reviewer=False,
                         baseline=False)

    ratios = [rate(sync) / rate(base) for base, sync in zip(large["baseline"], large["sync"])]
    met = sum(1 for r in ratios if r >= TARGET_RATIO)
    print(f"sync benchmark ({os.cpu_count()} CPUs): demo endpoint over loopback, {large['consumers']:,} consumers "
          f"(1-3 apps, every day for {DAYS} days), usage rows only on both sides")
    for n, (base, sync, load) in enumerate(zip(large["baseline"], large["sync"], large["load"]), 1):
        print(f"  run {n}: baseline {base['rows']:,} rows in {base['seconds']:.2f} s = {rate(base):,.0f} rows/s; "
              f"sync {sync['rows']:,} rows in {sync['seconds']:.2f} s = {rate(sync):,.0f} rows/s "
              f"-> {rate(sync) / rate(base):.2f} of baseline (load {load:.1f})")
    verdict = (f"met in all {len(ratios)} runs" if met == len(ratios) else
               f"MISSED in {len(ratios) - met} of {len(ratios)} runs")
    print(f"  ratio   {', '.join(f'{r:.2f}' for r in ratios)} (target >= {TARGET_RATIO}: {verdict})")
    sync = large["sync"][0]
    print(f"  CPU     client CPU per usage row: baseline "
          f"{sum(b['rows'] for b in large['baseline']) / sum(b['cpu'] for b in large['baseline']):,.0f} rows per "
          f"CPU-second, sync {sum(s['rows'] for s in large['sync']) / sum(s['cpu'] for s in large['sync']):,.0f}")
    rss = [(run["sync"][0]["rows"], max(r["maxrss_kb"] for r in run["sync"]) / 1024) for run in (small, large, double)]
    print("  peak RSS  " + "; ".join(f"{rows:,} rows: {mib:.1f} MiB" for rows, mib in rss)
          + " (includes the writer's SQLite page cache, bounded at 32 MiB)")
    longest = max(r["longest_transaction_ms"] for r in large["sync"])
    print(f"  writer  {sync['transactions']:,} transactions per sync ({sync['pages']:,} pages, {sync['all_rows']:,} "
          f"rows with endpoints), the longest held the write lock {longest:.1f} ms; it stood back for a waiting "
          f"writer {sum(s['yields'] for s in large['sync'])} times")
    reviews = large["reviewer"]
    worst = max(r["max_ms"] for r in reviews)
    print(f"  reviewer {sum(r['writes'] for r in reviews)} writes during the syncs: longest wait {worst:.1f} ms "
          f"(target <= {TARGET_WAIT_MS:.0f} ms: {'met' if worst <= TARGET_WAIT_MS else 'MISSED'}; for the lock "
          f"alone at most {max(r['max_lock_ms'] for r in reviews):.1f} ms), "
          f"p99 {max(r['p99_ms'] for r in reviews):.1f} ms, median {max(r['median_ms'] for r in reviews):.1f} ms")


if __name__ == "__main__":
    main()
