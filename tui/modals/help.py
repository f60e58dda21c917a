"""``?``: every key, what it does and its binding id (for the config keymap)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class Help(ModalScreen[None]):
    """Lists ``(keys, action, binding id)`` rows given by the review screen."""

    BINDINGS = [
        Binding("escape,q,question_mark", "close", "Close", id="help.close"),
    ]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_edge=False, pad_edge=False, expand=True)
        table.add_column("keys", no_wrap=True, style="bold")
        table.add_column("action", ratio=1)
        table.add_column("binding id", no_wrap=True)
        for keys, description, binding_id in self.rows:
            table.add_row(Text(keys), Text(description), Text(binding_id))
        with Vertical(classes="modal-box help-box"):
            yield Static(Text("Keys (remap them by binding id in the config file's [keymap])"),
                         classes="modal-title")
            with VerticalScroll(classes="modal-body"):
                yield Static(table)
            yield Static("↑ ↓ pgup pgdn scroll · esc closes", classes="modal-scope")

    def action_close(self) -> None:
        self.dismiss(None)
