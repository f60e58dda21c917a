"""Build the large database the queue, TUI and rules benchmarks read (not a test;
run as a script).

    python tests/benchmarks/make_big_db.py --consumers 1000000 --out /tmp/big.db

It is what warden makes of the demo endpoint (its own process) at that size: a
fresh sync of its warden-feed source (``sync_all``: the source, the roster, the
rules; the same sync as ``bench_resync.py``'s first), so consumers, apps, usage,
findings and their figures are real. With a million consumers: 1-3 apps each
(1.8 on average), usage over 2021-10-01..2022-12-30 (the first thousand every
day, the others one day in 30 to 120), about one in 25 over its limits, and the
case consumer ``northwind-analytics`` at the top of the queue. Then reviewers
decide a slice of the findings through ``store.review`` (confirmed, dismissed,
needs info), so the queue has every verdict and the decision log a chain.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench_resync import fresh_sync  # noqa: E402

DECISIONS = 3_000


def decide(db: Path, seed: int) -> float:
    """Decide every n-th finding (at most ``DECISIONS``) as three reviewers would."""
    from store.clock import fixed_clock
    from store.db import connect, transaction
    from store.review import confirm_violation, dismiss, mark_needs_info

    clock = fixed_clock(datetime(2023, 1, 2, 9, 0, tzinfo=timezone.utc))
    rnd = random.Random(seed)
    began = time.perf_counter()
    conn = connect(db)
    ids = [r[0] for r in conn.execute("SELECT id FROM finding WHERE status = 'candidate' ORDER BY id")]
    step = max(1, len(ids) // DECISIONS)
    with transaction(conn):
        for k, fid in enumerate(ids[::step][:DECISIONS]):
            reviewer = ("alice", "bob", "carol")[k % 3]
            action = rnd.randrange(3)
            if action == 0:
                confirm_violation(conn, fid, reviewer=reviewer, severity="high", reason="over the cap",
                                  clock=clock)
            elif action == 1:
                dismiss(conn, fid, reviewer=reviewer, reason_code="within_allowance", clock=clock)
            else:
                mark_needs_info(conn, fid, reviewer=reviewer, reason="asked the account team", clock=clock)
    conn.close()
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consumers", type=int, default=1_000_000, help="demo consumers (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=7, help="which findings each reviewer decides")
    parser.add_argument("--out", type=Path, required=True, help="database file to (re)create")
    args = parser.parse_args(argv)
    synced = fresh_sync(args.out, args.consumers)
    print(f"{'sync':>12}: {synced['seconds']:7.1f} s ({synced['rows']:,} rows)")
    print(f"{'decisions':>12}: {decide(args.out, args.seed):7.1f} s")
    conn = sqlite3.connect(args.out)
    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("consumer", "app", "usage", "endpoint_usage", "finding", "decision")}
    conn.close()
    print("     " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    print(f"{'file':>12}: {args.out} ({os.path.getsize(args.out) / 1e6:,.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
