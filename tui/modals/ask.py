"""A yes / no question (``y`` / ``n``, ``enter`` yes, ``esc`` no): asked before an
action on many things at once."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.text import literal_content


class Ask(ModalScreen[bool]):
    """Returns True for yes."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes", id="ask.yes"),
        Binding("n,escape", "answer(False)", "No", id="ask.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box ask-box"):
            yield Static(literal_content(self.question), id="question", classes="modal-title")
            yield Static("y yes · n no", classes="modal-scope")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
