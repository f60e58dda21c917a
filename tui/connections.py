"""The TUI's SQLite connections: one per worker thread, and the queue reader's.

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
from pathlib import Path

from store.db import connect
from store.errors import StoreError
from store.queue import QueueReader


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


def queue_reader(db_path: Path) -> QueueReader:
    """The queue's reader: one connection of its own, opened by its first read
    and closed once when the app exits (``Session.close``)."""
    path = Path(db_path)
    return QueueReader(lambda: connect(path))


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
