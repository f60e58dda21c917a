"""store.overview: the numbers `warden demo --headless` prints."""

from __future__ import annotations

from pathlib import Path

from store.db import connect, transaction
from store.overview import Overview, database_overview


def test_an_empty_database_has_no_top(tmp_path: Path) -> None:
    conn = connect(tmp_path / "w.db")
    assert database_overview(conn) == Overview(0, 0, [], None)


def test_counts_findings_by_category_and_status_and_names_the_top(tmp_path: Path) -> None:
    conn = connect(tmp_path / "w.db")
    with transaction(conn):
        conn.executemany("INSERT INTO consumer (id, legal_name, worst_ratio) VALUES (?, ?, ?)",
                         [("a", "Alpha", 2.5), ("b", "Beta", 7.25), ("c", "Gamma", 7.25)])
        conn.executemany("INSERT INTO app (source, app_id, consumer_id) VALUES ('s', ?, ?)", [("1", "a"), ("2", "b")])
        conn.executemany("INSERT INTO usage VALUES ('s', ?, ?, 'calls', 5, 1, 1)",
                         [("1", "2022-01-01"), ("1", "2022-01-02"), ("2", "2022-01-01")])
        conn.executemany(
            "INSERT INTO finding (consumer_id, category, period, period_start, period_end, status, severity,"
            " detected_at, updated_at) VALUES (?, ?, '2022', '2022-01-01', '2022-12-31', ?, 'high', 't', 't')",
            [("a", "volume_cap", "candidate"), ("b", "volume_cap", "candidate"), ("b", "rate_limit", "confirmed"),
             ("c", "volume_cap", "dismissed")])
    assert database_overview(conn) == Overview(
        consumers=3, usage_rows=3,
        findings=[("rate_limit", "confirmed", 1), ("volume_cap", "candidate", 2), ("volume_cap", "dismissed", 1)],
        top=("b", "Beta", 7.25))   # a tie on the ratio goes to the smaller id
