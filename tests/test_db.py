"""store.db: opening a database (the settings every connection gets), migrating
it (from nothing, from an older version, by eight processes at once, a migration
that fails), and transactions that either commit whole or change nothing and say
which file refused them.

The schema a migration should give is built independently here, by SQLite's own
``executescript`` on the migration scripts, not by the code under test."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

import store.db
from store.db import connect, migrate, transaction, write_error, writing
from store.errors import StoreError
from store.schema import MIGRATIONS


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    return [tuple(row) for row in conn.execute("SELECT type, name, sql FROM sqlite_master "
                                               "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")]


def _reference_schema(tmp_path: Path, upto: int | None = None) -> list[tuple[str, str, str]]:
    """The schema the migrations (the first ``upto``) give, applied by sqlite3 itself
    (a migration written in Python given the plain connection)."""
    raw = sqlite3.connect(tmp_path / f"reference-{upto}.db")
    for migration in MIGRATIONS[:upto]:
        if callable(migration):
            migration(raw)
        else:
            raw.executescript(migration)
    try:
        return _schema(raw)
    finally:
        raw.close()


def _version(path: Path) -> int:
    raw = sqlite3.connect(path)
    try:
        return raw.execute("PRAGMA user_version").fetchone()[0]
    finally:
        raw.close()


def test_a_new_database_has_every_migration_and_only_them(tmp_path: Path) -> None:
    conn = connect(tmp_path / "w.db")
    reference = _reference_schema(tmp_path)
    assert _schema(conn) == reference
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert migrate(conn) == len(MIGRATIONS)          # nothing left to do: nothing done
    assert _schema(conn) == reference
    conn.close()


def test_every_connection_gets_the_settings_warden_relies_on(tmp_path: Path) -> None:
    conn = connect(tmp_path / "w.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1            # NORMAL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000      # a reviewer waits at most 10 s
    # Autocommit: a statement outside a transaction is stored at once, for everyone.
    conn.execute("INSERT INTO source (name, kind, url) VALUES ('s', 'warden-feed', 'https://u.example')")
    assert not conn.in_transaction
    other = sqlite3.connect(tmp_path / "w.db")
    assert other.execute("SELECT name FROM source").fetchall() == [("s",)]
    other.close()
    # Rows are read by column name.
    assert conn.execute("SELECT name, kind FROM source").fetchone()["kind"] == "warden-feed"
    # A foreign key is enforced.
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO tier_limit VALUES ('no-such-tier', 'calls', 'day', 1)")
    # A worker thread may use the connection it was handed.
    seen: list[object] = []
    worker = threading.Thread(target=lambda: seen.append(conn.execute("SELECT count(*) FROM source").fetchone()[0]))
    worker.start()
    worker.join()
    assert seen == [1]
    conn.close()


def test_a_new_database_and_its_folders_are_private(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "w.db"
    connect(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    connect(path).close()                           # an existing folder and file are fine
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_older_database_gets_the_missing_migrations_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    raw = sqlite3.connect(path)
    raw.executescript(MIGRATIONS[0])
    raw.execute("INSERT INTO source (name, kind, url) VALUES ('kept', 'warden-feed', 'https://u.example')")
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()
    conn = connect(path)
    assert _schema(conn) == _reference_schema(tmp_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert [tuple(r) for r in conn.execute("SELECT name FROM source")] == [("kept",)]
    conn.close()


def test_a_database_newer_than_this_warden_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    connect(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    raw.close()
    with pytest.raises(StoreError) as refused:
        connect(path)
    assert str(refused.value) == (f"database schema version {len(MIGRATIONS) + 1} is newer than this warden "
                                  f"({len(MIGRATIONS)}); upgrade warden")
    with pytest.raises(StoreError) as refused:      # a command that only reads: the file named too
        connect(path, readonly=True)
    assert str(refused.value) == (f"database schema version {len(MIGRATIONS) + 1} of {path} is newer than this "
                                  f"warden ({len(MIGRATIONS)}); upgrade warden")
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")   # exactly this warden's: opens
    raw.close()
    connect(path).close()
    conn = connect(path, readonly=True)
    assert conn.execute("SELECT count(*) FROM consumer").fetchone()[0] == 0
    conn.close()


def test_a_migration_that_fails_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.db"
    connect(path).close()
    broken = "CREATE TABLE half_done (a INTEGER);\nCREATE TABLE broken (;\n"
    monkeypatch.setattr(store.db, "MIGRATIONS", [*MIGRATIONS, broken])
    with pytest.raises(StoreError, match="cannot open database"):
        connect(path)
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'").fetchone()[0] == 0
    assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    raw.close()


def _open_at_once(path: str, barrier: multiprocessing.synchronize.Barrier, errors: multiprocessing.Queue) -> None:
    barrier.wait()
    try:
        connect(path).close()
    except BaseException as exc:       # reported to the test, which names it
        errors.put(f"{type(exc).__name__}: {exc}")


def test_eight_processes_opening_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    # Each migration is re-checked under the write lock: without that, the processes
    # that read version 0 before the first one committed apply it a second time.
    context = multiprocessing.get_context("fork")
    reference = _reference_schema(tmp_path)
    for round_ in range(5):
        path = tmp_path / f"race-{round_}.db"
        barrier, errors = context.Barrier(8), context.Queue()
        workers = [context.Process(target=_open_at_once, args=(str(path), barrier, errors)) for _ in range(8)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        failures = [errors.get() for _ in range(errors.qsize())] if not errors.empty() else []
        assert failures == [] and [w.exitcode for w in workers] == [0] * 8, failures
        assert _version(path) == len(MIGRATIONS)
        raw = sqlite3.connect(path)
        assert _schema(raw) == reference
        raw.close()


class _SaysWhenItBegins:
    """A connection that sets ``event`` as it is about to begin its first write transaction."""

    def __init__(self, conn: sqlite3.Connection, event: threading.Event) -> None:
        self._conn, self._event = conn, event

    def execute(self, sql: str, *args):
        if " ".join(sql.split()).upper() == "BEGIN IMMEDIATE":     # SQL's keywords read in any case
            self._event.set()
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str):
        return getattr(self._conn, name)


def test_a_migration_another_process_applied_meanwhile_is_passed_over_and_the_rest_applied(tmp_path: Path) -> None:
    # One opener reads version 0 and waits for the write lock; the other, holding it, applies
    # migration 1 alone and commits. The first must pass over migration 1 (already there) and
    # still apply every later one: the database ends whole, not at version 1.
    path = tmp_path / "w.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    waiting = threading.Event()
    opener = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    opener.execute("PRAGMA busy_timeout = 60000")
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(migrate(_SaysWhenItBegins(opener, waiting))))
    worker.start()
    assert waiting.wait(60)                 # the opener read version 0 and now waits for the lock
    for statement in store.db._statements(MIGRATIONS[0]):
        other.execute(statement)
    other.execute("PRAGMA user_version = 1")
    other.execute("COMMIT")
    worker.join(60)
    assert result == [len(MIGRATIONS)]
    assert _version(path) == len(MIGRATIONS)
    assert _schema(opener) == _reference_schema(tmp_path)
    opener.close()
    other.close()


def test_a_transaction_commits_whole_or_changes_nothing(tmp_path: Path) -> None:
    conn = connect(tmp_path / "w.db")
    with transaction(conn):
        conn.execute("INSERT INTO source (name, kind, url) VALUES ('a', 'k', 'u')")
    with pytest.raises(ValueError):
        with transaction(conn):
            conn.execute("INSERT INTO source (name, kind, url) VALUES ('b', 'k', 'u')")
            raise ValueError("stop")
    assert not conn.in_transaction
    assert [r[0] for r in conn.execute("SELECT name FROM source")] == ["a"]
    # A write SQLite refuses is a StoreError naming the file; the rest of the transaction is undone.
    with pytest.raises(StoreError) as refused:
        with transaction(conn):
            conn.execute("INSERT INTO source (name, kind, url) VALUES ('c', 'k', 'u')")
            conn.execute("INSERT INTO no_such_table VALUES (1)")
    assert str(refused.value) == (f"cannot write to the database {tmp_path / 'w.db'}: no such table: "
                                  "no_such_table; nothing was changed")
    assert not conn.in_transaction
    assert [r[0] for r in conn.execute("SELECT name FROM source")] == ["a"]
    conn.close()


def test_a_write_that_waits_past_the_busy_timeout_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    holder = connect(path)
    holder.execute("BEGIN IMMEDIATE")
    waiter = connect(path)
    waiter.execute("PRAGMA busy_timeout = 50")
    with pytest.raises(StoreError) as refused:
        with transaction(waiter):
            pytest.fail("the transaction must not start")
    assert str(refused.value) == f"cannot write to the database {path}: database is locked; nothing was changed"
    holder.execute("ROLLBACK")
    with transaction(waiter):      # free again: it goes through
        waiter.execute("INSERT INTO source (name, kind, url) VALUES ('a', 'k', 'u')")
    holder.close()
    waiter.close()


def test_writing_joins_the_callers_transaction_or_runs_its_own(tmp_path: Path) -> None:
    conn = connect(tmp_path / "w.db")
    with pytest.raises(ValueError):
        with transaction(conn):
            with writing(conn):
                conn.execute("INSERT INTO source (name, kind, url) VALUES ('joined', 'k', 'u')")
            assert conn.in_transaction            # still the caller's: not committed on its own
            raise ValueError("the caller gives up")
    assert conn.execute("SELECT count(*) FROM source").fetchone()[0] == 0
    with writing(conn):
        conn.execute("INSERT INTO source (name, kind, url) VALUES ('own', 'k', 'u')")
    assert not conn.in_transaction
    assert [r[0] for r in conn.execute("SELECT name FROM source")] == ["own"]
    conn.close()


def test_a_write_error_names_the_database_it_could_not_write() -> None:
    memory = sqlite3.connect(":memory:")
    assert str(write_error(memory, sqlite3.OperationalError("disk I/O error"))) == \
        "cannot write to the database (in memory): disk I/O error; nothing was changed"
    memory.close()
    assert str(write_error(memory, sqlite3.OperationalError("x"))) == \
        "cannot write to the database (unknown): x; nothing was changed"


def test_a_read_only_connection_reads_and_never_writes_or_creates(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    conn = connect(path)
    conn.execute("INSERT INTO source (name, kind, url) VALUES ('a', 'k', 'u')")
    conn.close()
    reader = connect(path, readonly=True)
    assert reader.execute("SELECT name FROM source").fetchone()["name"] == "a"
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("INSERT INTO source (name, kind, url) VALUES ('b', 'k', 'u')")
    reader.close()
    missing = tmp_path / "missing.db"
    with pytest.raises(StoreError, match=f"no database at {missing}"):
        connect(missing, readonly=True)
    assert not missing.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any file")
def test_a_read_only_file_opens_for_reading(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    connect(path).close()
    path.chmod(0o400)
    conn = connect(path)
    assert conn.execute("SELECT count(*) FROM source").fetchone()[0] == 0
    conn.close()


def _operational(code: int, message: str) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorcode = code
    return exc


@pytest.mark.parametrize(("code", "busy"), [
    (5, True),       # SQLITE_BUSY: "database is locked"
    (261, True),     # SQLITE_BUSY_RECOVERY: another process recovering the WAL
    (517, True),     # SQLITE_BUSY_SNAPSHOT
    (773, True),     # SQLITE_BUSY_TIMEOUT
    (6, False),      # SQLITE_LOCKED: a conflict inside this connection; waiting does not help
    (262, False),    # SQLITE_LOCKED_SHAREDCACHE
    (1, False),      # SQLITE_ERROR
    (8, False),      # SQLITE_READONLY
    (4, False),      # SQLITE_INTERRUPT (one below)
])
def test_busy_means_sqlite_busy_and_its_extended_codes(code, busy):
    from store.db import _is_busy

    assert _is_busy(_operational(code, "database is locked")) is busy


def test_an_error_raised_by_hand_without_a_code_is_not_busy():
    from store.db import _is_busy

    assert _is_busy(sqlite3.OperationalError("database is locked")) is False


def test_a_real_lock_is_busy(tmp_path):
    from store.db import _is_busy

    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as caught:
        other.execute("BEGIN IMMEDIATE")
    assert _is_busy(caught.value)
    holder.execute("ROLLBACK")
    holder.close()
    other.close()


@pytest.mark.parametrize(("denied", "writable"), [(None, True), ("file", False), ("folder", False)])
def test_writable_needs_the_file_and_its_folder(tmp_path, monkeypatch, denied, writable):
    """The folder holds the WAL and SHM files: a writable file in a read-only folder
    cannot be written either. (As root os.access allows both, so it is asked here.)"""
    import store.db as db

    path = tmp_path / "w.db"
    path.write_bytes(b"")
    refused = {"file": path, "folder": tmp_path}.get(denied)
    monkeypatch.setattr(db.os, "access", lambda p, mode: Path(p) != refused)
    assert db._writable(path) is writable


def test_a_read_only_open_of_a_file_that_is_not_a_database_says_why(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    path.write_bytes(b"not a database, only text, " * 40)
    with pytest.raises(StoreError) as refused:
        connect(path, readonly=True)
    assert str(refused.value) == f"cannot open database {path}: file is not a database"
    assert path.read_bytes() == b"not a database, only text, " * 40


def test_a_read_only_connection_keeps_seeing_new_rows_after_a_refused_write(tmp_path: Path) -> None:
    # A reader whose write was refused must not be left inside a transaction: it
    # would go on reading the database as it was, blind to every later sync.
    path = tmp_path / "w.db"
    writer = connect(path)
    reader = connect(path, readonly=True)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("INSERT INTO source (name, kind, url) VALUES ('b', 'k', 'u')")
    assert not reader.in_transaction
    writer.execute("INSERT INTO source (name, kind, url) VALUES ('a', 'k', 'u')")
    assert [row["name"] for row in reader.execute("SELECT name FROM source")] == ["a"]
    reader.close(), writer.close()


def test_a_read_only_connection_reads_from_a_worker_thread(tmp_path: Path) -> None:
    # The TUI opens on the main thread and reads in workers, as with a writable database.
    path = tmp_path / "w.db"
    connect(path).close()
    reader = connect(path, readonly=True)
    read: list[object] = []
    thread = threading.Thread(target=lambda: read.append(reader.execute("SELECT count(*) FROM source").fetchone()[0]))
    thread.start()
    thread.join(10)
    assert read == [0]
    reader.close()


def test_a_waiting_writer_is_seen_for_its_own_database_only(tmp_path: Path, monkeypatch) -> None:
    # Each database has its .waiting file beside it: a reviewer waiting on one
    # database must not make a sync of another stand back.
    import time

    from store.db import WaitingWriters, begin_immediate

    monkeypatch.chdir(tmp_path)       # where a file named without its database would land
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    a, b = tmp_path / "a" / "w.db", tmp_path / "b" / "w.db"
    holder, waiter = connect(a), connect(a)
    connect(b).close()
    holder.execute("BEGIN IMMEDIATE")
    thread = threading.Thread(target=lambda: (begin_immediate(waiter), waiter.execute("ROLLBACK")))
    thread.start()
    on_a, on_b = WaitingWriters(str(a)), WaitingWriters(str(b))
    try:
        deadline = time.monotonic() + 10
        while not on_a and time.monotonic() < deadline:
            time.sleep(0.001)
        assert on_a and not on_b
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
        assert (tmp_path / "a" / "w.db.waiting").is_file()
    finally:
        holder.execute("ROLLBACK")
        thread.join(10)
        on_a.close(), on_b.close(), holder.close(), waiter.close()


def test_a_database_in_memory_waits_without_a_waiting_file(tmp_path: Path, monkeypatch) -> None:
    from store.db import WaitingWriters, begin_immediate, database_file

    monkeypatch.chdir(tmp_path)
    memory = sqlite3.connect(":memory:", isolation_level=None)
    assert database_file(memory) == ""
    begin_immediate(memory)
    memory.execute("ROLLBACK")
    probe = WaitingWriters(database_file(memory))
    assert not probe
    probe.close()
    assert list(tmp_path.iterdir()) == []
    memory.close()


def _locked_new_file(tmp_path: Path, release_after: float) -> tuple[Path, threading.Thread]:
    """A new database file (rollback journal) another connection holds an exclusive
    lock on, letting go after ``release_after`` seconds."""
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN EXCLUSIVE")

    def hold() -> None:
        time.sleep(release_after)
        other.execute("ROLLBACK")
        other.close()

    thread = threading.Thread(target=hold)
    thread.start()
    return path, thread


def test_the_switch_to_wal_waits_for_a_lock_held_a_moment(tmp_path: Path) -> None:
    from store.db import _use_wal

    path, holder = _locked_new_file(tmp_path, release_after=0.2)
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)     # busy at once, no handler
    _use_wal(conn)
    holder.join()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_the_switch_to_wal_never_waits_on_a_refusal_that_is_not_a_lock(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # A read-only database refuses the switch at once, and no wait would change that: the
    # refusal is raised as it came, without a single pause (a reviewer opening a database on a
    # read-only disk is not kept waiting for the busy timeout).
    from store.db import _use_wal

    path = tmp_path / "w.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE t (x)")
    raw.commit()
    raw.close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)

    def no_pause(seconds: float) -> None:
        raise AssertionError(f"paused {seconds} s for a refusal that is not a lock")

    monkeypatch.setattr(store.db.time, "sleep", no_pause)
    with pytest.raises(sqlite3.OperationalError, match="^attempt to write a readonly database$"):
        _use_wal(conn)
    conn.close()


def test_the_switch_to_wal_gives_up_at_the_busy_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from store.db import _use_wal

    monkeypatch.setattr(store.db, "BUSY_TIMEOUT_MS", 100)
    path, holder = _locked_new_file(tmp_path, release_after=1.5)     # let go well after the 0.1 s
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    with pytest.raises(sqlite3.OperationalError, match="^database is locked$"):
        _use_wal(conn)
    holder.join()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
