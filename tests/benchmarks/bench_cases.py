"""Benchmark: ``warden due`` and the lead's overview on a large database (not a
test; run as a script).

    python tests/benchmarks/make_big_db.py --consumers 1000000 --out /tmp/big.db
    python tests/benchmarks/bench_cases.py /tmp/big.db

Gives ``--cases`` consumers (default 10,000) a case through the store's own
code, as their letters' exports would (``store.casework.state``: each case
logged, its six request items tracked), the due dates spread over the 30 days
before and after today, a reply with an item marked for one in five, and a few
escalated or closed; a database that has them already is left as it is. Then
times, each ``--runs`` times after one cold run:

- ``warden due``: :func:`store.casework.due.due_cases` (every case awaiting a
  reply, soonest first) and the whole command as a process (``warden due --json``
  to /dev/null, Python's start included);
- the overview: :func:`store.report.lead_overview`;
- the queue's case terms: counts and first pages of ``case:letter-sent``,
  ``due:overdue`` and the due-date sort (``store.queue``).

Target: ``warden due`` and the overview each under 200 ms (the store's work; the
process's start is printed beside it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from store.casework.items import ItemChange, add_items, mark_items  # noqa: E402
from store.casework.state import change_case, close_case, escalate_case, open_case  # noqa: E402
from store.casework.due import due_cases  # noqa: E402
from store.casework.summary import refresh_case_summary  # noqa: E402
from store.clock import fixed_clock, iso  # noqa: E402
from store.db import connect, transaction  # noqa: E402
from store.queue import QueueQuery, QueueReader  # noqa: E402
from store.queue_filter import parse_filter  # noqa: E402
from store.report import lead_overview  # noqa: E402

TARGET_MS = 200.0
BATCH = 1_000


def add_cases(path: Path, count: int, today: date) -> int:
    """Give ``count`` consumers a case (letter sent), if the database has fewer; returns how many it has."""
    conn = connect(path)
    have = conn.execute("SELECT count(*) FROM case_file").fetchone()[0]
    if have >= count:
        conn.close()
        return have
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM consumer WHERE id NOT IN (SELECT consumer_id FROM case_file) ORDER BY id LIMIT ?",
        (count - have,))]
    started = time.perf_counter()
    for at in range(0, len(ids), BATCH):
        with transaction(conn):
            for n, consumer_id in enumerate(ids[at:at + BATCH], start=at):
                sent = today - timedelta(days=21 + (n * 7919) % 61 - 30)        # due today - 30 .. today + 30
                clock = fixed_clock(datetime(sent.year, sent.month, sent.day, 10, tzinfo=timezone.utc))
                reviewer = ("ana", "bo", "cy", "dee")[n % 4]
                case, action = open_case(conn, consumer_id, "letter_sent", reason="bench letter", reviewer=reviewer,
                                         clock=clock)
                case, action = change_case(conn, case, reason="bench letter", reviewer=reviewer, clock=clock,
                                           action_id=action, letter_sent_at=iso(clock()),
                                           due_date=(sent + timedelta(days=21)).isoformat())
                add_items(conn, case.id, 0, reviewer=reviewer, clock=clock, action_id=action)
                refresh_case_summary(conn, [consumer_id])          # as note_exported does after the items
                if n % 5 == 0:
                    mark_items(conn, case.id, [ItemChange("purpose", "answered")], comment="bench reply",
                               reviewer=reviewer, clock=clock)
                if n % 97 == 0:
                    escalate_case(conn, consumer_id, to="Counsel", reason="bench", reviewer=reviewer, clock=clock)
                elif n % 89 == 0:
                    close_case(conn, consumer_id, outcome="within_limits", reason="bench", reviewer=reviewer,
                               clock=clock)
        print(f"  cases: {min(at + BATCH, len(ids)) + have:,} of {count:,} "
              f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    total = conn.execute("SELECT count(*) FROM case_file").fetchone()[0]
    conn.close()
    return total


def timed(label: str, run, runs: int) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = run()
    cold = (time.perf_counter() - started) * 1000
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    median, worst = statistics.median(times), max(times)
    size = f"   ({len(result):,} rows)" if isinstance(result, list) else ""
    print(f"{label:<48} cold {cold:8.1f} ms   median {median:7.1f} ms   max {worst:7.1f} ms{size}")
    return cold, median, worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path, help="a large database (tests/benchmarks/make_big_db.py)")
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    today = datetime.now(timezone.utc).date()
    cases = add_cases(args.db, args.cases, today)
    conn = connect(args.db)
    consumers = conn.execute("SELECT count(*) FROM consumer").fetchone()[0]
    awaiting = conn.execute("SELECT count(*) FROM consumer WHERE case_due IS NOT NULL").fetchone()[0]
    print(f"database: {consumers:,} consumers, {cases:,} cases ({awaiting:,} awaiting a reply), today {today}")
    results = {
        "warden due (store: due_cases)": timed("warden due (store: due_cases)", lambda: due_cases(conn, today),
                                               args.runs),
        "overview (store: lead_overview)": timed("overview (store: lead_overview)",
                                                 lambda: lead_overview(conn, today), args.runs),
    }
    for text, sort in (("case:letter-sent", "overage"), ("due:overdue", "overage"), ("", "due")):
        query = QueueQuery(parse_filter(text, today=today), sort)
        timed(f"queue count {text or '(all)'} sort:{sort}", lambda q=query: _fresh_count(args.db, q), 3)
        timed(f"queue first page {text or '(all)'} sort:{sort}", lambda q=query: _fresh_page(args.db, q), 3)
    command = [str(Path(sys.executable).with_name("warden")), "due", "--json", "--db", str(args.db)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    timed("warden due --json (the process, start included)",
          lambda: subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 check=True).returncode, 3)
    misses = [label for label, (_cold, median, _worst) in results.items() if median > TARGET_MS]
    print(f"target: each under {TARGET_MS:.0f} ms (median): " + ("met" if not misses else f"MISSED by {misses}"))
    return 0


def _fresh_count(path: Path, query: QueueQuery) -> int:
    """A count by a new reader (nothing remembered), as a session's first look does."""
    reader = QueueReader(lambda: connect(path, readonly=True))
    try:
        return reader.count(query)
    finally:
        reader.close()


def _fresh_page(path: Path, query: QueueQuery) -> list[object]:
    reader = QueueReader(lambda: connect(path, readonly=True))
    try:
        return list(reader.page(query, 0, 64))
    finally:
        reader.close()


if __name__ == "__main__":
    sys.exit(main())
