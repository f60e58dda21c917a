"""The sync's writer: short transactions, the cursor moving with its page's last
rows, the upsert after a first conflict, withdrawals."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from store.db import WaitingWriters, begin_immediate, connect, transaction
from store.sync.adapter import ParsedPage, Request
from store.sync.writer import PROBE_SECONDS, PageOutcome, RunWriter


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    conn = connect(tmp_path / "w.db")
    conn.execute("INSERT INTO sync_run (id, source, started_at, status) VALUES (1, 's', 't', 'running')")
    conn.execute("INSERT INTO sync_cursor (run_id, chain, next) VALUES (1, 'usage/0', '{}')")
    return conn


def page(rows: list[list[object]], nxt: Request | None = None) -> PageOutcome:
    return PageOutcome("usage/0", "http://feed.example/usage", "2022-01-25T00:00:00Z", 200, "ab" * 32, 123,
                       page=ParsedPage(usage=rows, next=nxt))


def rows(n: int, value: int = 1) -> list[list[object]]:
    """``n`` distinct figures."""
    return [[f"app-{i // 56:04d}", f"2022-01-{1 + i % 28:02d}", "calls" if i % 56 < 28 else "records", value]
            for i in range(n)]


def test_a_large_page_is_written_in_several_transactions_and_its_cursor_moves_last(conn: sqlite3.Connection) -> None:
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    writer = RunWriter(conn, "s", 1, commit_rows=1000)
    writer.write(page(rows(5000), Request.get("usage", cursor="next-1")))
    writer.commit()
    conn.set_trace_callback(None)
    assert writer.transactions >= 3
    commits = [i for i, s in enumerate(statements) if s == "COMMIT"]
    cursor = next(i for i, s in enumerate(statements) if s.startswith("UPDATE sync_cursor"))
    assert cursor > commits[-2]  # in the last transaction, with the page's last rows
    assert conn.execute("SELECT count(*) FROM usage").fetchone()[0] == 5000
    nxt = json.loads(conn.execute("SELECT next FROM sync_cursor").fetchone()[0])
    assert Request.from_json(nxt) == Request.get("usage", cursor="next-1")
    assert conn.execute("SELECT pages, rows_taken FROM sync_run").fetchone()[:] == (1, 5000)


def test_small_pages_share_a_transaction_until_commit(conn: sqlite3.Connection) -> None:
    writer = RunWriter(conn, "s", 1)
    writer.write(page(rows(10)))
    assert not writer.due
    writer.write(page([["app-x", "2022-01-01", "calls", 5]]))
    writer.commit()
    assert writer.transactions == 1 and writer.pages == 2 and writer.rows == 11


def test_figures_already_stored_are_updated_and_the_change_logged(conn: sqlite3.Connection) -> None:
    writer = RunWriter(conn, "s", 1)
    writer.write(page(rows(100, value=7)))
    writer.commit()
    conn.execute("INSERT INTO sync_run (id, source, started_at, status) VALUES (2, 's', 't', 'running')")
    conn.execute("INSERT INTO sync_cursor (run_id, chain, next) VALUES (2, 'usage/0', '{}')")
    again = RunWriter(conn, "s", 2)
    revised = rows(100, value=7)
    revised[3][3] = 8
    again.write(page(revised))
    again.commit()
    assert conn.execute("SELECT count(*), sum(value), min(run_id) FROM usage").fetchone()[:] == (100, 701, 2)
    change = conn.execute("SELECT old_value, new_value, old_run_id, new_run_id FROM usage_change").fetchall()
    assert [tuple(c) for c in change] == [(7, 8, 1, 2)]


def test_rollback_drops_what_was_not_committed(conn: sqlite3.Connection) -> None:
    writer = RunWriter(conn, "s", 1)
    writer.write(page(rows(10)))
    writer.rollback()
    assert conn.execute("SELECT count(*) FROM usage").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM sync_page").fetchone()[0] == 0
    assert writer.total_pages == 0


def test_withdraw_missing_deletes_only_this_windows_figures_from_other_runs(conn: sqlite3.Connection) -> None:
    conn.executemany("INSERT INTO usage VALUES ('s', ?, ?, 'calls', 5, 0, 0)",
                     [("old", "2022-01-01"), ("old", "2022-01-10"), ("old", "2022-01-20")])
    conn.execute("INSERT INTO usage VALUES ('other', 'old', '2022-01-10', 'calls', 5, 0, 0)")
    writer = RunWriter(conn, "s", 1)
    writer.write(page([["new", "2022-01-10", "calls", 1]]))
    writer.commit()
    assert writer.withdraw_missing("2022-01-05", "2022-01-15") == 1
    left = conn.execute("SELECT source, app_id, day FROM usage ORDER BY 1, 2, 3").fetchall()
    assert [tuple(r) for r in left] == [("other", "old", "2022-01-10"), ("s", "new", "2022-01-10"),
                                        ("s", "old", "2022-01-01"), ("s", "old", "2022-01-20")]
    assert conn.execute("SELECT app_id, day, new_value FROM usage_change").fetchall()[0][:] == (
        "old", "2022-01-10", None)


def test_a_full_database_is_reported_as_full_not_as_a_failed_rollback(conn: sqlite3.Connection) -> None:
    # SQLite rolls the whole transaction back itself on SQLITE_FULL; a second
    # ROLLBACK then fails, and that error must not replace "database or disk is full".
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    writer = RunWriter(conn, "s", 1, commit_rows=100_000)
    with pytest.raises(sqlite3.OperationalError, match="full"):
        writer.write(page(rows(5000)))
    writer.rollback()                           # the engine's cleanup: harmless now
    assert not conn.in_transaction and writer.total_pages == 0
    conn.execute("PRAGMA max_page_count = 1000000")
    writer.write(page(rows(10)))                # room again: the writer works
    writer.commit()
    assert conn.execute("SELECT count(*) FROM usage").fetchone()[0] == 10


# --- taking turns with other writers ---------------------------------------------

def test_nobody_waiting_means_no_pause(conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("store.sync.writer.time.sleep", slept.append)
    writer = RunWriter(conn, "s", 1, commit_rows=1000)
    writer.write(page(rows(5000)))
    writer.commit()
    assert writer.transactions >= 5 and writer.yields == 0 and slept == []


def test_a_waiting_writer_is_let_in_at_the_next_slice(tmp_path: Path, conn: sqlite3.Connection) -> None:
    db = tmp_path / "w.db"
    writer = RunWriter(conn, "s", 1, commit_seconds=3600)   # only a waiter ends the transaction early
    writer.write(page(rows(100)))
    assert writer.due is False
    other = connect(db)
    done = threading.Event()

    def review() -> None:
        with transaction(other):       # waits for the writer's lock, saying so
            other.execute("UPDATE sync_run SET error = 'reviewer was here'")
        done.set()

    thread = threading.Thread(target=review)
    thread.start()
    waiting = WaitingWriters(str(db))
    deadline = time.monotonic() + 10
    while not waiting and time.monotonic() < deadline:
        time.sleep(0.001)
    assert waiting
    time.sleep(PROBE_SECONDS)              # the writer asks at most this often
    assert writer.due                      # and sees the waiter between slices
    writer.commit()                        # commits and stands back until the waiter has the lock
    assert writer.yields == 1 and not waiting
    thread.join(10)
    assert done.is_set()
    assert conn.execute("SELECT error FROM sync_run").fetchone()[0] == "reviewer was here"
    assert conn.execute("SELECT count(*) FROM usage").fetchone()[0] == 100
    other.close()
    waiting.close()


def test_a_writer_that_waits_past_the_busy_timeout_gets_a_readable_error(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    holder, conn = connect(db), connect(db)
    conn.execute("PRAGMA busy_timeout = 30")
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            begin_immediate(conn)
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30   # the connection's own, restored
        assert not WaitingWriters(str(db))   # it no longer says it waits
    finally:
        holder.execute("ROLLBACK")
    begin_immediate(conn)
    conn.execute("ROLLBACK")
    holder.close(), conn.close()


@pytest.mark.parametrize("app", ["a\x00b", "é€😀", "quote'\"back\\slash", "\x1b[31m", "\u202e", "100%d"])
def test_text_is_stored_exactly_on_a_first_sync_and_a_second(conn: sqlite3.Connection, app: str) -> None:
    given = [[app, "2022-12-01", "calls", 9_223_372_036_854_775_807], [app, "2022-12-02", "calls", 0]]
    for run, value in ((1, 7), (2, 8)):   # the second run conflicts: staged and upserted
        if run == 2:
            conn.execute("INSERT INTO sync_run (id, source, started_at, status) VALUES (2, 's', 't', 'running')")
            conn.execute("INSERT INTO sync_cursor (run_id, chain, next) VALUES (2, 'usage/0', '{}')")
        writer = RunWriter(conn, "s", run)
        writer.write(page(given + [[app, "2022-12-03", "records", value]]))
        writer.commit()
        found = conn.execute("SELECT app_id, day, metric, value, typeof(value), run_id FROM usage ORDER BY day")
        assert [tuple(row) for row in found] == [
            (app, "2022-12-01", "calls", 9_223_372_036_854_775_807, "integer", run),
            (app, "2022-12-02", "calls", 0, "integer", run),
            (app, "2022-12-03", "records", value, "integer", run)]


def test_a_closed_probe_says_nobody_waits_and_lets_its_file_go(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    holder, waiter = connect(db), connect(db)
    holder.execute("BEGIN IMMEDIATE")
    thread = threading.Thread(target=lambda: (begin_immediate(waiter), waiter.execute("ROLLBACK")))
    thread.start()
    probe = WaitingWriters(str(db))
    try:
        deadline = time.monotonic() + 10
        while not probe and time.monotonic() < deadline:
            time.sleep(0.001)
        assert probe                       # someone waits ...
        open_files = len(os.listdir("/proc/self/fd"))
        probe.close()
        assert len(os.listdir("/proc/self/fd")) == open_files - 1
        assert not probe                   # ... but a closed probe asks nobody
        probe.close()                      # closing twice is harmless
        assert not probe
    finally:
        holder.execute("ROLLBACK")
        thread.join(10)
    holder.close(), waiter.close()


def test_begin_immediate_raises_an_error_that_is_not_a_lock_at_once(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    conn = connect(db)
    conn.execute("BEGIN")                  # a transaction already open: no waiting helps

    def waited(seconds: float) -> None:
        pytest.fail("begin_immediate waited on an error that is not a lock")

    with pytest.raises(sqlite3.OperationalError) as refused:
        begin_immediate(conn, sleep=waited)
    assert str(refused.value) == "cannot start a transaction within a transaction"
    assert not (tmp_path / "w.db.waiting").exists()      # it never said it waits
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
    conn.execute("ROLLBACK")
    conn.close()


def test_begin_immediate_stops_waiting_at_an_error_that_is_not_a_lock(tmp_path: Path) -> None:
    # Waiting for another writer's lock, the retry meets an error no waiting helps (the
    # connection became read-only meanwhile, as on a disk remounted read-only): raised at once,
    # the wait over, not retried until the busy timeout.
    db = tmp_path / "w.db"
    holder, waiter = connect(db), connect(db)
    holder.execute("BEGIN IMMEDIATE")
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) > 1:
            pytest.fail("begin_immediate retried an error that is not a lock")
        waiter.execute("PRAGMA query_only = ON")

    try:
        with pytest.raises(sqlite3.OperationalError) as refused:
            begin_immediate(waiter, sleep=pause)
        assert str(refused.value) == "attempt to write a readonly database"
        assert len(pauses) == 1
        assert not WaitingWriters(str(db))                 # it no longer says it waits
        assert waiter.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
    finally:
        holder.execute("ROLLBACK")
    holder.close(), waiter.close()
