"""The dialog for an error nobody expected: it is a bug, here is where the log is."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tui.text import literal


class BugReport(ModalScreen[None]):
    """Says that ``error`` is a bug in warden and where its traceback was written
    (``log_problem``: why it could not be)."""

    BINDINGS = [Binding("escape,enter", "close", "Close", id="bug.close")]

    def __init__(self, error: BaseException, *, log: Path, log_problem: str | None = None) -> None:
        super().__init__()
        self.error = error
        self.log_path = log
        self.log_problem = log_problem

    @property
    def text(self) -> str:
        """What the dialog says, as plain text."""
        return self._body().plain

    def _body(self) -> Text:
        body = Text(end="")
        body.append("This is a bug in warden, not something you did. The app keeps running; what you "
                    "were doing may not have finished.\n\n")
        body.append_text(literal(f"{type(self.error).__name__}: {self.error}", "bold"))
        body.append("\n\n")
        if self.log_problem is None:
            body.append("The details, with the traceback, are in\n")
            body.append_text(literal(self.log_path, "bold"))
            body.append("\nPlease send that file to whoever looks after warden.")
        else:
            body.append_text(literal(f"The details could not be written to {self.log_path} ({self.log_problem})."))
        return body

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Static("Something went wrong", classes="modal-title")
            yield Static(self._body(), id="bug-text")
            with Horizontal(classes="modal-buttons"):
                yield Button("Close", variant="primary", id="close", compact=True)

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
