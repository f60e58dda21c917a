"""``/``: type a queue filter (``status:candidate category:volume over:10 name:north``).

The text is parsed here (``store.queue_filter.parse_filter``): a filter that does
not parse keeps the dialog open with what was typed, the cursor where it goes
wrong and the reason under it.
"""

from __future__ import annotations

from datetime import date

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from store.errors import FilterError
from store.queue_filter import QueueFilter, parse_filter
from tui.text import literal_content

FILTER_HELP = (
    "fields: status:candidate|needs_info|confirmed|dismissed|...  "
    "category:volume  over:10  name:north  tier:ID  state:open|info|decided|clear  "
    "case:letter-sent|response-received|...  due:overdue|today|7d  month:2022-07  by:NAME  week:2026-W48"
)


class FilterInput(ModalScreen[QueueFilter]):
    """Returns the parsed filter; ``None`` when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="filter.cancel")]

    def __init__(self, current: str = "", *, today: date | None = None) -> None:
        super().__init__()
        self.current = current
        self.today = today   # due: counts from it (the session's day)

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box filter-box"):
            yield Static("Filter the queue", classes="modal-title")
            yield Input(value=self.current, placeholder="status:candidate over:10", id="filter", compact=True)
            yield Static("", id="problem", classes="modal-problem")
            yield Static(FILTER_HELP, classes="modal-scope")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            flt = parse_filter(event.value, today=self.today)
        except FilterError as exc:
            self.query_one("#problem", Static).update(literal_content(f"{exc.title}: {exc}"))
            field = self.query_one(Input)
            field.cursor_position = len(event.value) if exc.position is None else exc.position
            field.focus()
            return
        self.dismiss(flt)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#problem", Static).update("")

    def action_cancel(self) -> None:
        self.dismiss(None)
