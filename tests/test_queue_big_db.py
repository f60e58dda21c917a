"""The benchmark database generator still builds a database the queue can read
(run small here, so a schema change that breaks it shows up in the suite)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "benchmarks"))

import make_big_db  # noqa: E402

from store.queue import QueueQuery, QueueReader  # noqa: E402
from store.queue_filter import parse_filter  # noqa: E402
from store.db import connect  # noqa: E402
from store.cases import read_case, usage_series  # noqa: E402
from store.decision_log import verify_chain  # noqa: E402
from store.demo import CASE_ID  # noqa: E402


def test_generator_builds_a_reviewable_database(tmp_path: Path) -> None:
    out = tmp_path / "big.db"
    assert make_big_db.main(["--consumers", "40", "--out", str(out)]) == 0
    conn = connect(out)
    reader = QueueReader(lambda: conn)
    q = QueueQuery()
    assert reader.count(q) == 40
    top = reader.page(q, 0, 5)
    # Its findings may be among the slice the generator decided: the verdict says how they stand.
    statuses = {row[0] for row in conn.execute("SELECT status FROM finding WHERE consumer_id = ?", (CASE_ID,))}
    verdict = ("open" if "candidate" in statuses else "info" if "needs_info" in statuses
               else "violation" if statuses & {"confirmed", "audit_requested"} else "decided")
    assert top[0].consumer_id == CASE_ID and top[0].verdict == verdict
    assert all(r.review_state != "clear" for r in top)
    assert {r.verdict for r in reader.page(q, 0, 40)} >= {"info", "violation", "clear"}
    # The top of the queue has usage to chart; the case consumer's 2022 is the letter's.
    assert usage_series(conn, top[1].consumer_id, "calls", "2022-01-01", "2022-12-31").points
    case = read_case(conn, CASE_ID)
    assert case is not None and len(case.apps) == 8
    assert case.totals["calls"] > 780_000_000 and case.totals["records"] > 26_000_000_000
    assert sum(1 for a in case.apps if a.declared_use_case is None) == 6
    assert reader.count(QueueQuery(parse_filter("name:northwind"))) == 1
    report = verify_chain(conn)
    assert report.ok and report.checked > 0
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
