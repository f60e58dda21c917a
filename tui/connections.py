"""One SQLite connection per worker thread.

Textual runs thread workers on a pool, so threads are reused; each keeps the
connection it opened with :func:`store.db.connect` (SQLite connections must not
be shared between threads that use them at the same time).

The connections are not closed when the app unmounts: a thread worker the app
cancelled may still be in the middle of a query, and closing a connection under
a running statement crashes the process. They close when this object is
collected (the app is gone, so no worker uses them) or at interpreter exit,
after the worker threads have been joined.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from store.db import connect


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
