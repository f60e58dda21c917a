"""What every warden screen has: the session, and its workers' failures sent to
the App's boundary."""

from __future__ import annotations

from typing import TypeVar

from textual import on
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from tui.messages import Problem
from tui.session import Session

T = TypeVar("T")


class WardenScreen(Screen[T]):
    """A screen handed the :class:`~tui.session.Session`.

    A worker of the screen that fails (every worker runs with
    ``exit_on_error=False``) becomes a :class:`~tui.messages.Problem` for the App,
    which says what went wrong; the screen itself only keeps its own state
    straight, in its ``on_worker_state_changed``.
    """

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    @on(Worker.StateChanged)
    def _report_failure(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state is WorkerState.ERROR and worker.error is not None:
            self.app.post_message(Problem(worker.error, screen=self,
                                          where=f"{type(self).__name__}.{worker.name}"))

    def reload(self) -> None:
        """Read again what the screen shows from the database (after a conflict).
        Nothing by default: a screen with typed text keeps it."""
