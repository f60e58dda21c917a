"""The frame shared by the decision modals: a title, a scope line, OK / Cancel."""

from __future__ import annotations

from typing import TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static
from textual.widgets.selection_list import Selection

from tui.modals.choices import FindingOption
from tui.widgets.marks import MarkedSelectionList
from tui.text import literal_content

T = TypeVar("T")


class DecisionModal(ModalScreen[T]):
    """Base of the modals that decide findings; subclasses add fields and ``result()``."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="modal.cancel"),
    ]

    TITLE_TEXT = ""

    def __init__(self, *, scope: str, findings: list[FindingOption] | None = None) -> None:
        super().__init__()
        self.scope = scope
        self.findings = findings or []

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Static(self.TITLE_TEXT, classes="modal-title")
            yield Static(literal_content(self.scope), classes="modal-scope")
            with VerticalScroll(classes="modal-body"):
                if self.findings:
                    yield Label("Findings (space toggles)")
                    yield MarkedSelectionList[int](
                        *(Selection(literal_content(f.label), f.id, True) for f in self.findings),
                        id="findings", compact=True,
                    )
                yield from self.fields()
            yield Static("", id="problem", classes="modal-problem")
            with Horizontal(classes="modal-buttons"):
                yield Button("OK", variant="primary", id="ok", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def fields(self) -> ComposeResult:
        yield from ()

    def chosen_ids(self) -> tuple[int, ...]:
        if not self.findings:
            return ()
        return tuple(self.query_one("#findings", MarkedSelectionList).selected)

    def result(self) -> T | str:
        """The value to return, or a string saying what is missing."""
        raise NotImplementedError

    def submit(self) -> None:
        outcome = self.result()
        if isinstance(outcome, str):
            self.query_one("#problem", Static).update(outcome)
            self.notify(outcome, title="Not yet", severity="warning", markup=False)
            return
        self.dismiss(outcome)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self.submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
