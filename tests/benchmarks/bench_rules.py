"""Rules benchmark: a full pass over the large database, and what it keeps in
memory (not a test; run as a script).

    python tests/benchmarks/make_big_db.py --consumers 1000000 --out /tmp/big.db
    python tests/benchmarks/bench_rules.py /tmp/big.db

``warden rules --all`` (every consumer evaluated; nothing changes, as the
rules already ran there, but a run is logged in ``rules_run``) in a process of
its own: its time and its peak resident memory (``ru_maxrss``, which counts the pages of
a memory-mapped file it touched) against the target of 250 MB. Then ``warden
rules`` (only what changed: nothing) for the cost of a run with nothing to do.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET_MB = 250


def child(db: str, everything: bool) -> None:
    import resource

    sys.path.insert(0, str(ROOT))
    from store.clock import system_clock
    from store.db import connect
    from store.rules import run_rules

    conn = connect(db)
    began = time.perf_counter()
    result = run_rules(conn, clock=system_clock, everything=everything)
    seconds = time.perf_counter() - began
    conn.close()
    print(json.dumps({"seconds": seconds, "consumers": result.consumers, "created": result.created,
                      "updated": result.updated, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run(db: Path, everything: bool) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", "all" if everything else "changed", str(db)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--child", choices=("all", "changed"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(str(args.db), args.child == "all")
        return 0
    if not args.db.exists():
        parser.error(f"no database at {args.db} (make one with tests/benchmarks/make_big_db.py)")
    source = sqlite3.connect(args.db)
    usage = source.execute("SELECT count(*) FROM usage").fetchone()[0]
    source.close()
    full = run(args.db, everything=True)
    changed = run(args.db, everything=False)
    load = os.getloadavg()[0]
    verdict = "met" if full["peak_mb"] <= TARGET_MB else "MISSED"
    print(f"rules benchmark ({os.cpu_count()} CPUs, load {load:.1f}): {args.db}, {full['consumers']:,} consumers, "
          f"{usage:,} usage rows")
    print(f"  rules --all     {full['seconds']:7.1f} s, peak RSS {full['peak_mb']:.0f} MB "
          f"(target <= {TARGET_MB} MB: {verdict}); {full['created']:,} created, {full['updated']:,} updated")
    print(f"  rules (changed) {changed['seconds']:7.1f} s, {changed['consumers']:,} consumers checked, "
          f"peak RSS {changed['peak_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
