"""``/``: type a queue filter (``status:candidate category:volume over:10 name:north``)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

FILTER_HELP = (
    "fields: status:candidate|needs_info|confirmed|dismissed|...  "
    "category:volume  over:10  name:north  tier:ID  state:open|decided|clear"
)


class FilterInput(ModalScreen[str]):
    """Returns the filter text; the screen parses it and reports errors."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="filter.cancel")]

    def __init__(self, current: str = "") -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box filter-box"):
            yield Static("Filter the queue", classes="modal-title")
            yield Input(value=self.current, placeholder="status:candidate over:10", id="filter", compact=True)
            yield Static(FILTER_HELP, classes="modal-scope")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
