"""Sync benchmark: rows per second from the embedded demo endpoint over loopback,
beside a bare baseline, peak memory at two sizes, and how long a reviewer's write
in another process waits meanwhile.

Run from the repository root::

    python tests/benchmarks/bench_sync.py --rows 1000000

What it measures (each part in its own process, so one's memory or GIL does not
touch another's; the demo endpoint also runs in its own process):

* **baseline**: httpx GET of every usage page (one shard, one after the other) +
  ``json.loads`` + ``sqlite3.executemany`` of a plain INSERT into the same
  ``usage`` table, a commit per page, no validation, no provenance.
* **sync**: ``store.sync.engine.sync_source`` of the demo's warden-feed source
  (every chain: tiers, consumers, usage, endpoints) into a fresh database, with
  validation, provenance, resumable cursors and short transactions.
* **memory**: peak RSS (``ru_maxrss``) of the sync process at a quarter of
  ``--rows``, at ``--rows`` and at twice it: flat memory means they are about
  equal once the writer's page cache (bounded at 32 MiB) is full.
* **reviewer**: during the large sync, another process does ``BEGIN IMMEDIATE;
  UPDATE ...; COMMIT`` every 50 ms and records how long each took.
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
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

START = date(2021, 10, 1)
END = date(2022, 12, 31)
TODAY = datetime(2023, 1, 1, 6, tzinfo=timezone.utc)


# --- the endpoint -----------------------------------------------------------------

def consumers_for(rows: int) -> int:
    """How many demo consumers serve about ``rows`` usage rows (bisection on the
    demo's own row count)."""
    from store.demo.data import DemoData

    lo, hi = 1, 64
    while hi < 1_000_000 and DemoData(consumers=hi).usage_rows() < rows:
        lo, hi = hi + 1, min(1_000_000, hi * 2)
    while lo < hi:
        mid = (lo + hi) // 2
        if DemoData(consumers=mid).usage_rows() < rows:
            lo = mid + 1
        else:
            hi = mid
    return lo


def child_endpoint(consumers: int) -> None:
    """Serve the demo endpoint until stdin closes; print its feed URL first."""
    from store.demo import DEMO_TOKEN_ENV, DemoEndpoint

    with DemoEndpoint(consumers=consumers) as endpoint:
        print(json.dumps({"url": endpoint.feed_url, "token_env": DEMO_TOKEN_ENV, "options": {"shards": 4}}),
              flush=True)
        sys.stdin.read()


class Endpoint:
    def __init__(self, consumers: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--child", "endpoint", "--consumers", str(consumers)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert self.process.stdout is not None
        info = json.loads(self.process.stdout.readline())
        self.url: str = info["url"]
        self.token_env: str | None = info["token_env"]
        self.options: dict[str, Any] = info["options"]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


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


def child_sync(url: str, db: str, token_env: str | None, options: str, concurrency: int) -> dict[str, Any]:
    from store.clock import fixed_clock
    from store.config import SourceConfig
    import store.sync.engine
    from store.sync.engine import sync_source
    from store.sync.writer import RunWriter

    writers: list[RunWriter] = []

    class CountingWriter(RunWriter):  # to report how long the sync held the write lock
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            writers.append(self)

    store.sync.engine.RunWriter = CountingWriter  # type: ignore[misc]
    source = SourceConfig("bench", "warden-feed", url, token_env=token_env, start=START,
                          concurrency=concurrency, options=json.loads(options))
    began, cpu_began = time.perf_counter(), _cpu()
    result = sync_source(db, source, clock=fixed_clock(TODAY))
    seconds = time.perf_counter() - began
    assert result.status == "ok", result
    return {"rows": result.rows, "pages": result.pages, "seconds": seconds, "cpu": _cpu() - cpu_began,
            "transactions": writers[0].transactions, "longest_transaction_ms": writers[0].longest_transaction * 1000,
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def _cpu() -> float:
    """CPU seconds of this process, every thread (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_reviewer(db: str, stop_file: str) -> dict[str, Any]:
    from store.db import connect

    conn = connect(db)
    waits: list[float] = []
    locks: list[float] = []   # of which: waiting for BEGIN IMMEDIATE (the sync holding the lock)
    n = 0
    while not os.path.exists(stop_file):
        began = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        locked = time.perf_counter()
        conn.execute("UPDATE tier SET name = ? WHERE id = 'bench-reviewer'", (f"write {n}",))
        conn.execute("COMMIT")
        waits.append(time.perf_counter() - began)
        locks.append(locked - began)
        n += 1
        time.sleep(0.05)
    waits.sort()
    return {"writes": len(waits), "max_ms": waits[-1] * 1000 if waits else None,
            "max_lock_ms": max(locks) * 1000 if locks else None,
            "p99_ms": waits[int(len(waits) * 0.99)] * 1000 if waits else None,
            "median_ms": waits[len(waits) // 2] * 1000 if waits else None}


def run_child(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the report -----------------------------------------------------------------------

def measure(rows: int, workdir: Path, *, concurrency: int, repeat: int, reviewer: bool,
            baseline: bool) -> dict[str, Any]:
    """Baseline and sync, alternately, ``repeat`` times against one endpoint; each
    run into a fresh database. The machine is shared, so the best rate of each
    is kept (and every run's reviewer waits)."""
    from store.db import connect

    consumers = consumers_for(rows)
    endpoint = Endpoint(consumers)
    report: dict[str, Any] = {"consumers": consumers, "baseline": [], "sync": [], "reviewer": []}
    try:
        env = {}
        if endpoint.token_env:
            env[endpoint.token_env] = os.environ.get(endpoint.token_env, "bench-token")
        for run in range(repeat):
            if baseline:
                report["baseline"].append(
                    run_child("baseline", endpoint.url, str(workdir / f"base-{rows}-{run}.db"), env=env))
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
                report["sync"].append(run_child("sync", endpoint.url, str(db), endpoint.token_env or "",
                                                json.dumps(endpoint.options), str(concurrency), env=env))
            finally:
                stop_file.touch()
                if review is not None:
                    out, _ = review.communicate(timeout=30)
                    report["reviewer"].append(json.loads(out.strip().splitlines()[-1]))
            for path in workdir.glob(f"*-{rows}-{run}.db*"):
                path.unlink()
    finally:
        endpoint.close()
    return report


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return max(runs, key=lambda r: r["rows"] / r["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="usage rows of the large run")
    parser.add_argument("--concurrency", type=int, default=4, help="fetch threads of the sync")
    parser.add_argument("--repeat", type=int, default=3, help="runs of baseline and sync, alternately (best kept)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--consumers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "endpoint":
            child_endpoint(args.consumers)
            return
        result = {"baseline": child_baseline, "sync": lambda *a: child_sync(*a[:4], int(a[4])),
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

    base, sync = best(large["baseline"]), best(large["sync"])
    base_rate = base["rows"] / base["seconds"]
    sync_rate = sync["rows"] / sync["seconds"]
    rates = ", ".join(f"{r['rows'] / r['seconds']:,.0f}" for r in large["sync"])
    base_rates = ", ".join(f"{r['rows'] / r['seconds']:,.0f}" for r in large["baseline"])
    print(f"sync benchmark ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}), demo endpoint over "
          f"loopback, {large['consumers']:,} consumers, best of {args.repeat}")
    print(f"  baseline  {base['rows']:>10,} rows in {base['seconds']:6.2f} s = {base_rate:>9,.0f} rows/s "
          f"(httpx + json + executemany, one chain; runs: {base_rates})")
    print(f"  sync      {sync['rows']:>10,} rows in {sync['seconds']:6.2f} s = {sync_rate:>9,.0f} rows/s "
          f"({sync['pages']:,} pages, {args.concurrency} fetch threads; runs: {rates})"
          f"  -> {sync_rate / base_rate:.2f} of baseline")
    print(f"  CPU       client CPU per row (load-independent): baseline "
          f"{base['rows'] / base['cpu']:,.0f} rows per CPU-second, sync {sync['rows'] / sync['cpu']:,.0f}")
    rss = [(run["sync"][0]["rows"], max(r["maxrss_kb"] for r in run["sync"]) / 1024)
           for run in (small, large, double)]
    print("  peak RSS  " + "; ".join(f"{rows:,} rows: {mib:.1f} MiB" for rows, mib in rss)
          + " (includes the writer's SQLite page cache, bounded at 32 MiB)")
    longest = max(r["longest_transaction_ms"] for r in large["sync"])
    print(f"  writer    {sync['transactions']:,} transactions per sync, the longest held the write lock "
          f"{longest:.1f} ms")
    reviews = large["reviewer"]
    worst = max(reviews, key=lambda r: r["max_ms"])
    print(f"  reviewer  {sum(r['writes'] for r in reviews)} writes during the syncs: longest wait "
          f"{worst['max_ms']:.1f} ms (for the lock alone {worst['max_lock_ms']:.1f} ms), "
          f"p99 {max(r['p99_ms'] for r in reviews):.1f} ms, median {worst['median_ms']:.1f} ms")


if __name__ == "__main__":
    main()
