"""The summary ``warden demo --headless`` prints, read by store.demo.summary."""

from __future__ import annotations

from pathlib import Path

from store.db import connect
from store.demo.summary import DemoSummary, demo_summary
from tests.tui_data import seed_review_db


def test_counts_findings_and_the_top_of_the_queue(tmp_path: Path) -> None:
    conn = connect(seed_review_db(tmp_path / "review.db"))
    try:
        summary = demo_summary(conn)
    finally:
        conn.close()
    # 5 consumers with 8 apps between them, 365 days of calls and records each; 40 fillers.
    assert summary == DemoSummary(
        consumers=45,
        usage_rows=8 * 365 * 2,
        findings=[("missing_use_case", "candidate", 1), ("volume_cap", "candidate", 4),
                  ("volume_cap", "dismissed", 1)],
        top=("northwind-analytics", "Northwind Analytics Ltd", 26_170_000_000 / 5_000_000_000),
    )


def test_an_empty_database_has_no_top(tmp_path: Path) -> None:
    conn = connect(tmp_path / "empty.db")
    try:
        assert demo_summary(conn) == DemoSummary(0, 0, [], None)
    finally:
        conn.close()
