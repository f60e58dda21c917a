"""Opening the database: WAL, a busy timeout, foreign keys, migrations.

Each thread and each process opens its own connection with :func:`connect`.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.request import pathname2url

from store.errors import StoreError
from store.fault_points import reach
from store.schema import MIGRATIONS

# A reviewer's write waits at most this long for a sync's transaction. Syncs
# commit in short transactions (see store.sync.writer), so waits are ms in practice.
BUSY_TIMEOUT_MS = 10_000


def schema_version() -> int:
    """The version a fully migrated database has."""
    return len(MIGRATIONS)


def connect(path: str | os.PathLike[str], *, readonly: bool = False) -> sqlite3.Connection:
    """Open (creating and migrating if needed) the database at ``path``.

    The connection is in autocommit mode (``isolation_level=None``): callers open
    transactions explicitly with :func:`transaction`.
    """
    path = Path(path)
    conn: sqlite3.Connection | None = None
    try:
        if readonly:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        else:
            try:
                _create_private(path)
            except OSError as exc:
                raise StoreError(f"cannot create database {path}: {exc.strerror or exc}") from None
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn)
    except BaseException as exc:
        # The caller never sees a connection that failed to open: close it here,
        # or a refused file stays open behind the error for the life of the process.
        if conn is not None:
            conn.close()
        if not isinstance(exc, sqlite3.DatabaseError):
            raise
        if not readonly and path.is_file() and not _writable(path):
            # A read-only disk or file: reviewers can still read; writes raise StoreError.
            conn = _open_read_only(path, exc)
        else:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
    conn.row_factory = sqlite3.Row
    return conn


def _writable(path: Path) -> bool:
    """Whether the database file and its folder (WAL and SHM files) can be written."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _open_read_only(path: Path, cause: sqlite3.DatabaseError) -> sqlite3.Connection:
    """``path`` opened for reading only. A WAL database on read-only media can only
    be opened as immutable (its -shm file cannot be created); nobody can write it."""
    url = pathname2url(str(path.resolve()))
    for mode in ("mode=ro", "immutable=1"):
        try:
            conn = sqlite3.connect(f"file:{url}?{mode}", uri=True, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError:
            continue
        if version != len(MIGRATIONS):
            conn.close()
            raise StoreError(f"cannot open database {path}: it is read-only and needs an upgrade "
                             f"(schema {version}, this warden {len(MIGRATIONS)})")
        return conn
    raise StoreError(f"cannot open database {path}: {cause}") from cause


def _create_private(path: Path) -> None:
    """Create the database file (and its folder) readable by its owner only."""
    if path.exists():
        return
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
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
            for statement in _statements(MIGRATIONS[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
    return len(MIGRATIONS)


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
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception.

    SQLite's operational errors (a read-only file, a full disk, a lock held past
    the busy timeout) become ``StoreError`` naming the database: a user can act on
    them, and nothing of the transaction was written. ``point`` names the
    transaction for the kill tests' fault points (store.fault_points).
    """
    try:
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
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
