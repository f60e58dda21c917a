"""The TUI's SQLite connections: one per worker thread, and the queue's own.

This is the one module of ``tui`` that knows about ``sqlite3``: every other
module hands a connection from here to a ``store`` function.

Textual runs thread workers on a pool, so threads are reused; each keeps the
connection it opened with :func:`store.db.connect` (SQLite connections must not
be shared between threads that use them at the same time).

The per-thread connections are not closed when the app unmounts: a thread
worker the app cancelled may still be in the middle of a query, and closing a
connection under a running statement crashes the process. They close when this
object is collected (the app is gone, so no worker uses them) or at interpreter
exit, after the worker threads have been joined.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from store.db import connect
from store.errors import StoreError


class ThreadConnections:
    """Hands each thread its own connection to one database file."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.db_path)
            self._local.conn = conn
        return conn


class QueueConnection:
    """The queue's one connection, used by one worker at a time.

    ``store.queue`` remembers keyset anchors per connection, so every read of the
    queue (count, page, position, next unreviewed, data version) goes through
    this connection, whichever worker thread runs it. Opened by the first read,
    closed once when the app exits.
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def is_open(self) -> bool:
        """Opened by a read and not closed yet."""
        return self._conn is not None

    @contextmanager
    def use(self) -> Iterator[sqlite3.Connection | None]:
        """The connection, held for the ``with`` block; None once closed (a worker
        that outlived the app returns without reading)."""
        with self._lock:
            if self._closed:
                yield None
                return
            if self._conn is None:
                self._conn = connect(self.db_path)
            yield self._conn

    def data_version(self) -> int | None:
        """SQLite's ``data_version`` on this connection: it changes when another
        connection (another session, a cron sync, this app's workers) commits."""
        with self.use() as conn:
            if conn is None:
                return None
            (version,) = conn.execute("PRAGMA data_version").fetchone()
            return int(version)

    def close(self) -> None:
        # Under the lock: a cancelled page worker may still be mid-query, and
        # closing a connection under a running statement crashes the process.
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def database_error(error: BaseException, db_path: Path) -> StoreError | None:
    """A ``StoreError`` for what SQLite raised while reading (a lock held past the
    busy timeout, a disk error, a damaged file): something the reviewer can act
    on, not a bug in warden. None for anything else.

    Writes already raise ``StoreError`` (``store.db.transaction``); reads hand
    SQLite's own errors up, and this is where the TUI names the database for them.
    """
    if isinstance(error, sqlite3.OperationalError) or type(error) is sqlite3.DatabaseError:
        return StoreError(f"cannot read the database {db_path}: {error}")
    return None
