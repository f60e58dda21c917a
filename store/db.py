"""Opening the database: WAL, a busy timeout, foreign keys, migrations; taking
turns to write.

Each thread and each process opens its own connection with :func:`connect`.

Turns. SQLite lets one connection write at a time, and a writer that finds the
lock taken sleeps in SQLite's busy handler (1, 2, 5, 10, 15, 20, 25 ms ...), so
it can miss a gap between two of a sync's transactions and wait for the next.
Instead, a writer that finds the lock taken says so: it holds a shared
``flock`` on ``<database>.waiting`` while it waits (:func:`begin_immediate`,
polling every fraction of a millisecond), and a long-running writer (the sync's
:class:`store.sync.writer.RunWriter`) asks :class:`WaitingWriters` between
slices of its work whether anyone waits, commits, and stands back until the
waiter has the lock. Nobody waiting: no pause at all.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.request import pathname2url

from store import folders
from store.errors import ForeignDatabase, StoreError
from store.fault_points import reach
from store.schema import MIGRATIONS

# A reviewer's write waits at most this long for a sync's transaction. Syncs
# commit in short transactions and stand back when someone waits (see the
# module docstring), so waits are milliseconds in practice.
BUSY_TIMEOUT_MS = 10_000
# How often a waiting writer tries the lock again.
RETRY_SECONDS = 0.0005


def schema_version() -> int:
    """The version a fully migrated database has."""
    return len(MIGRATIONS)


def connect(path: str | os.PathLike[str], *, readonly: bool = False,
            notices: list[str] | None = None) -> sqlite3.Connection:
    """Open (creating and migrating if needed) the database at ``path``.

    The connection is in autocommit mode (``isolation_level=None``): callers open
    transactions explicitly with :func:`transaction`.

    Before anything is written: a SQLite file holding another program's tables is
    refused (:class:`~store.errors.ForeignDatabase`) and left exactly as it was; a
    database that others can read is made private (:func:`make_private`; what it
    did is appended to ``notices``, so a caller can say it once). ``readonly``
    opens for reading only and never migrates: a database of an older schema is
    refused with advice.
    """
    path = Path(path)
    if path.is_file():
        _probe(path)
        said = make_private(path)
        if said and notices is not None:
            notices.append(said)
    if readonly:
        return _open_for_reading(path)
    conn: sqlite3.Connection | None = None
    try:
        try:
            _create_private(path)
        except OSError as exc:
            raise StoreError(f"cannot create database {path}: {exc.strerror or exc}") from None
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        _use_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn)
    except BaseException as exc:
        # The caller never sees a connection that failed to open: close it here,
        # or a refused file stays open behind the error for the life of the process.
        if conn is not None:
            conn.close()
        if not isinstance(exc, sqlite3.DatabaseError):
            raise
        if path.is_file() and not _writable(path):
            # A read-only disk or file: reviewers can still read; writes raise StoreError.
            conn = _open_read_only(path)
        else:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
    conn.row_factory = sqlite3.Row
    return conn


# The tables that make a SQLite file warden's.
WARDEN_TABLES = frozenset({"consumer", "finding", "decision"})


def _probe(path: Path) -> None:
    """Refuse a SQLite file that is not warden's, reading it only (``mode=ro``: no
    journal, no WAL switch, no schema written). An empty file or database passes;
    a file SQLite cannot read at all is left to the open that follows."""
    url = pathname2url(str(path.resolve()))
    found: tuple[int, set[str]] | None = None
    for mode in ("mode=ro", "immutable=1"):
        try:
            probe = sqlite3.connect(f"file:{url}?{mode}", uri=True, isolation_level=None)
        except sqlite3.Error:
            continue
        try:
            version = probe.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in probe.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
            found = (version, tables)
            break
        except sqlite3.Error:
            continue
        finally:
            probe.close()
    if found is None:
        return
    version, tables = found
    if not tables and version == 0:
        return   # an empty database: warden makes it its own
    if WARDEN_TABLES <= tables:
        return
    shown = ", ".join(sorted(tables)[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
    raise ForeignDatabase(f"{path} is not a warden database (it holds the tables {shown or 'none'}, "
                          f"not warden's {', '.join(sorted(WARDEN_TABLES))}); it was left as it is: give --db a "
                          "warden database or a new file name")


def make_private(path: str | os.PathLike[str]) -> str | None:
    """Make the database at ``path`` and its -wal, -shm and -journal files readable
    by their owner only (0600) if others can read or write them; say what was
    done (None when they already were private). Raises StoreError, with the reason,
    when a file cannot be made private: warden does not keep compliance data where
    others can read it."""
    path = Path(path)
    first: int | None = None      # the mode of the first file that was not private
    for file in (path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
        try:
            current = stat.S_IMODE(os.stat(file).st_mode)
        except FileNotFoundError:
            continue
        if not current & 0o077:
            continue
        try:
            os.chmod(file, 0o600)
        except OSError as exc:
            how = "readable by others" if current & 0o044 else "writable by others"
            raise StoreError(f"{file} is {how} (mode {current:04o}) and cannot be made private: "
                             f"{exc.strerror or exc}; make it private (chmod 600 {file}) or move it, "
                             "then try again") from None
        first = current if first is None else first
    if first is None:
        return None
    return (f"{path} was open to others (mode {first:04o}); made it private (0600), "
            "with its -wal and -shm files")


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, waiting (at most the busy timeout) for another process that
    holds the new file's lock: SQLite answers "database is locked" at once, without
    its busy handler, when the switch meets a database another connection is
    creating (eight processes opening one new file at once failed this way)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def _writable(path: Path) -> bool:
    """Whether the database file and its folder (WAL and SHM files) can be written."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _open_for_reading(path: Path) -> sqlite3.Connection:
    """``path`` opened for reading only, refusing a schema this warden does not
    read as it is (older: a command that writes upgrades it first)."""
    if not path.is_file():
        raise StoreError(f"no database at {path}")
    conn = _open_read_only(path)
    conn.row_factory = sqlite3.Row
    return conn


def _open_read_only(path: Path) -> sqlite3.Connection:
    """``path`` opened for reading only. A WAL database on read-only media can only
    be opened as immutable (its -shm file cannot be created); nobody can write it."""
    url = pathname2url(str(path.resolve()))
    last: sqlite3.DatabaseError | None = None
    for mode in ("mode=ro", "immutable=1"):
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(f"file:{url}?{mode}", uri=True, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            last = exc
            continue
        if version != len(MIGRATIONS):
            conn.close()
            if version > len(MIGRATIONS):
                raise StoreError(f"database schema version {version} of {path} is newer than this warden "
                                 f"({len(MIGRATIONS)}); upgrade warden")
            raise StoreError(f"cannot read database {path} as it is: its schema ({version}) is older than this "
                             f"warden's ({len(MIGRATIONS)}) and this command only reads; run a command that "
                             "writes (warden sync, or open it in warden) to upgrade it, then try again")
        return conn
    raise StoreError(f"cannot open database {path}: {last}") from last


def _create_private(path: Path) -> None:
    """Create the database file (and every folder above it that is missing)
    readable by its owner only."""
    if path.exists():
        return
    folders.create(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration the database has not had yet; return the new version."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > len(MIGRATIONS):
        raise StoreError(
            f"database schema version {current} is newer than this warden ({len(MIGRATIONS)}); upgrade warden"
        )
    for number in range(current, len(MIGRATIONS)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-check under the write lock: another process may have migrated meanwhile.
            if conn.execute("PRAGMA user_version").fetchone()[0] != number:
                conn.execute("ROLLBACK")
                continue
            migration = MIGRATIONS[number]
            if callable(migration):
                migration(InTransaction(conn))
            else:
                for statement in _statements(migration):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
    return len(MIGRATIONS)


class InTransaction:
    """A connection whose scripts run inside the caller's transaction.

    ``sqlite3.Connection.executescript`` commits first (Python < 3.12 does so
    always): a migration written with a library that runs scripts (sqlite-utils)
    would commit half of itself. Everything else is the connection's own.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def executescript(self, script: str) -> sqlite3.Cursor:
        cursor = self._conn.cursor()
        for statement in _statements(script):
            cursor.execute(statement)
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (triggers contain ';' inside BEGIN..END)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer
            buffer = ""
    if buffer.strip():
        yield buffer


@contextmanager
def transaction(conn: sqlite3.Connection, *, immediate: bool = True,
                point: str | None = None) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` (:func:`begin_immediate`) ... ``COMMIT``, rolled back on any exception.

    SQLite's operational errors (a read-only file, a full disk, a lock held past
    the busy timeout) become ``StoreError`` naming the database: a user can act on
    them, and nothing of the transaction was written. ``point`` names the
    transaction for the kill tests' fault points (store.fault_points).
    """
    try:
        if immediate:
            begin_immediate(conn)
        else:
            conn.execute("BEGIN")
    except sqlite3.OperationalError as exc:
        raise write_error(conn, exc) from exc
    try:
        yield conn
    except sqlite3.OperationalError as exc:
        _rollback(conn)
        raise write_error(conn, exc) from exc
    except BaseException:
        _rollback(conn)
        raise
    else:
        try:
            if point is not None:
                reach(point, "before-commit")
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            _rollback(conn)
            raise write_error(conn, exc) from exc
        if point is not None:
            reach(point, "after-commit")


# --- turns between writers (see the module docstring) ---------------------------------

def database_file(conn: sqlite3.Connection) -> str:
    """The file of ``conn``'s main database ("" in memory)."""
    return conn.execute("PRAGMA database_list").fetchone()[2] or ""


def waiting_file(database: str) -> str:
    """Where writers waiting for ``database``'s write lock say so."""
    return f"{database}.waiting"


def begin_immediate(conn: sqlite3.Connection, *, sleep: Callable[[float], None] = time.sleep) -> None:
    """``BEGIN IMMEDIATE``; when another connection holds the write lock, wait for
    it saying so (a shared lock on the database's ``.waiting`` file, which a sync
    writer polls to stand back) and try again every ``RETRY_SECONDS``, for at most
    the connection's busy timeout. Raises ``sqlite3.OperationalError`` (database
    is locked) past it."""
    (timeout_ms,) = conn.execute("PRAGMA busy_timeout").fetchone()
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
        deadline = time.monotonic() + timeout_ms / 1000
        with _waiting(database_file(conn)):
            while True:
                sleep(RETRY_SECONDS)
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc) or time.monotonic() >= deadline:
                        raise
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether another connection holds the lock (worth waiting for): SQLITE_BUSY or
    one of its extended codes (SQLITE_BUSY_RECOVERY while another process recovers
    the WAL, _SNAPSHOT, _TIMEOUT), whose low byte is SQLITE_BUSY. An error raised by
    hand carries no code: not busy."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


@contextmanager
def _waiting(database: str) -> Iterator[None]:
    """Hold a shared lock on the database's ``.waiting`` file (nothing on a
    database in memory, a system without ``flock`` or a folder we cannot write)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = _open_waiting(database) if database else None
    if fd is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)   # releases the lock


def _open_waiting(database: str) -> int | None:
    try:
        return os.open(waiting_file(database), os.O_CREAT | os.O_RDWR, 0o600)
    except OSError:   # a read-only folder: nobody can write there anyway
        return None


class WaitingWriters:
    """Whether another connection is waiting for ``database``'s write lock
    (one probe: a non-blocking exclusive ``flock`` of the ``.waiting`` file,
    released at once). For a writer that holds the lock often and long."""

    def __init__(self, database: str) -> None:
        self._fd: int | None = None
        try:
            import fcntl
        except ImportError:
            return
        self._fcntl = fcntl
        self._fd = _open_waiting(database) if database else None

    def __bool__(self) -> bool:
        if self._fd is None:
            return False
        fcntl = self._fcntl
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        return False

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextmanager
def writing(conn: sqlite3.Connection, *, point: str | None = None) -> Iterator[sqlite3.Connection]:
    """Join the caller's transaction, or run in a short :func:`transaction` of our own
    (named ``point``, as :func:`transaction`).

    In our own, a database that stays locked past the busy timeout or cannot be
    written (read-only file or disk) is a StoreError the reviewer can read.
    """
    if conn.in_transaction:
        yield conn
        return
    with transaction(conn, point=point):
        yield conn


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite may already have rolled back (SQLITE_FULL does): keep the first error.
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def write_error(conn: sqlite3.Connection, exc: sqlite3.Error) -> StoreError:
    """A ``StoreError`` for a write that SQLite refused, naming the database file."""
    try:
        where = conn.execute("PRAGMA database_list").fetchone()[2] or "(in memory)"
    except sqlite3.Error:
        where = "(unknown)"
    return StoreError(f"cannot write to the database {where}: {exc}; nothing was changed")
