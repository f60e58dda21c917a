"""One SQLite connection per worker thread.

Textual runs thread workers on a pool, so threads are reused; each keeps the
connection it opened with :func:`store.db.connect` (SQLite connections must not
be shared between threads that use them at the same time).
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
        self._lock = threading.Lock()
        self._opened: list[sqlite3.Connection] = []

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.db_path)
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def close_all(self) -> None:
        """Close every connection (when the app exits and its workers are done)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            try:
                conn.close()
            except sqlite3.Error:
                pass
