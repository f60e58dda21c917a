"""Re-sync benchmark: what a sync costs when little or nothing changed upstream,
beside the fresh sync of the same database in the same run (not a test; run as
a script).

    python tests/benchmarks/bench_resync.py --consumers 1000000

The demo endpoint (its own process) serves its warden-feed source for
2021-10-01..2022-12-30: with a million consumers, 1-3 apps each, the first
thousand reporting every day and the others one day in 30 to 120, about one in
25 over its limits. Three syncs (``sync_all``: the source, the roster, the
rules), each timed from start to end, the clock one day after the last day
served:

1. fresh: into a new database;
2. one new day: the endpoint now also serves 2022-12-31 (look-back 7 days, as
   configured by default);
3. nothing changed: the same again.

It prints each time, the re-syncs as a share of the fresh sync beside their
targets (at most 10 % and 5 %), and how many findings changed version in the
third (target: none). ``--keep PATH`` keeps the database (the queue, TUI and
rules benchmarks read it; ``make_big_db.py`` makes the same one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import date, datetime, time as clock_time, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from endpoint import Endpoint, feed_config  # noqa: E402

LAST_DAY = date(2022, 12, 30)
TARGET_NEW_DAY = 0.10
TARGET_NOTHING = 0.05


def clock_after(day: date) -> Any:
    from store.clock import fixed_clock

    return fixed_clock(datetime.combine(day + timedelta(days=1), clock_time(6), tzinfo=timezone.utc))


def timed_sync(db: Path, config: Any, clock: Any) -> dict[str, Any]:
    """``sync_all`` of the configuration, timed, with its parts (source, roster, rules)."""
    from store.sync import engine

    parts: dict[str, float] = {}
    rules: list[Any] = []
    original = engine.sync_source

    def source(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            parts["source"] = parts.get("source", 0.0) + time.perf_counter() - began

    engine.sync_source = source  # type: ignore[assignment]
    began = time.perf_counter()
    try:
        results = engine.sync_all(db, config, clock=clock, on_event=lambda e: rules.append(e)
                                  if type(e).__name__ == "RulesApplied" else None)
    finally:
        engine.sync_source = original  # type: ignore[assignment]
    seconds = time.perf_counter() - began
    bad = [r for r in results if r.status != "ok"]
    if bad:
        raise SystemExit(f"sync failed: {bad}")
    return {"seconds": seconds, "source": parts.get("source", 0.0), "after": seconds - parts.get("source", 0.0),
            "rows": sum(r.rows for r in results), "rules": rules[-1], "load": os.getloadavg()[0]}


def versions(db: Path) -> dict[int, int]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT id, version FROM finding").fetchall())
    finally:
        conn.close()


def counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("consumer", "app", "usage", "endpoint_usage", "finding")}
    finally:
        conn.close()


def fresh_sync(db: Path, consumers: int) -> dict[str, Any]:
    """The demo's source synced into a new database at ``db`` (the benchmark's step 1)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with Endpoint(consumers, end=LAST_DAY) as endpoint:
        return timed_sync(db, feed_config(endpoint), clock_after(LAST_DAY))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consumers", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="keep the database here")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-resync-"))
    db = workdir / "resync.db"
    try:
        with Endpoint(args.consumers, end=LAST_DAY) as endpoint:
            config = feed_config(endpoint)
            fresh = timed_sync(db, config, clock_after(LAST_DAY))
            sizes = counts(db)
            endpoint.serve_until(LAST_DAY + timedelta(days=1))
            new_day = timed_sync(db, config, clock_after(LAST_DAY + timedelta(days=1)))
            before = versions(db)
            same = timed_sync(db, config, clock_after(LAST_DAY + timedelta(days=1)))
            after = versions(db)
        changed = sum(1 for fid, version in after.items() if before.get(fid) != version)
        report(args.consumers, sizes, fresh, new_day, same, changed, len(after))
        if args.keep:
            shutil.copy(db, args.keep)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _verdict(share: float, target: float) -> str:
    return f"(target <= {target:.0%}: {'met' if share <= target else 'MISSED'})"


def report(consumers: int, sizes: dict[str, int], fresh: dict[str, Any], new_day: dict[str, Any],
           same: dict[str, Any], changed: int, findings: int) -> None:
    def line(label: str, run: dict[str, Any]) -> str:
        rules = run["rules"]
        return (f"  {label:<16} {run['seconds']:8.1f} s  (source {run['source']:.1f} s, roster and rules "
                f"{run['after']:.1f} s: {rules.consumers:,} consumers checked; {run['rows']:,} rows; "
                f"load {run['load']:.1f})")

    print(f"re-sync benchmark ({os.cpu_count()} CPUs): demo endpoint over loopback, {consumers:,} consumers, "
          f"{sizes['app']:,} apps, {sizes['usage']:,} usage rows, {sizes['endpoint_usage']:,} endpoint rows, "
          f"{sizes['finding']:,} findings")
    print(line("fresh sync", fresh))
    share = new_day["seconds"] / fresh["seconds"]
    print(line("one new day", new_day) + f"\n  {'':<16} = {share:.1%} of the fresh sync {_verdict(share, TARGET_NEW_DAY)}")
    share = same["seconds"] / fresh["seconds"]
    print(line("nothing changed", same) + f"\n  {'':<16} = {share:.1%} of the fresh sync {_verdict(share, TARGET_NOTHING)}"
          f"; findings whose version changed: {changed:,} of {findings:,} (target 0: "
          f"{'met' if changed == 0 else 'MISSED'})")


if __name__ == "__main__":
    raise SystemExit(main())
