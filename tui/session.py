"""What every screen is handed: the database, the configuration, the reviewer, the clock.

The App opens one :class:`Session` and passes it to each screen it pushes, so a
screen takes what its workers need from here instead of reaching into the App.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from store.clock import Clock, system_clock
from store.config import Config
from store.queue import QueueReader
from tui.connections import ThreadConnections, queue_reader


@dataclass(frozen=True)
class Session:
    """One reviewer's session on one database."""

    db_path: Path
    config: Config
    reviewer: str                     # recorded in the decision log
    clock: Clock
    connections: ThreadConnections    # each worker thread's own connection
    queue: QueueReader                # the queue's reader: one connection, its keyset anchors and counts

    @classmethod
    def open(cls, db_path: Path | str, *, config: Config | None = None, reviewer: str = "reviewer",
             clock: Clock = system_clock) -> Session:
        """A session on ``db_path``; connections open on first use."""
        path = Path(db_path)
        return cls(path, config if config is not None else Config(), reviewer, clock,
                   ThreadConnections(path), queue_reader(path))

    def close(self) -> None:
        """Close the queue reader's connection (the app is exiting)."""
        self.queue.close()
