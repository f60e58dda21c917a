"""The frame shared by the form modals (decisions, export): a title, a scope line,
fields, a problem line, OK / Cancel."""

from __future__ import annotations

from typing import TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static
from textual.widgets.selection_list import Selection

from tui.modals.choices import FindingOption
from tui.widgets.marks import PickList
from tui.text import literal_content

T = TypeVar("T")


class FormBody(VerticalScroll, can_focus=False):
    """A form's fields, scrolling when taller than the screen. Never a focus stop
    of its own (nothing would show it had the focus): it scrolls to the field that has it."""


class FormModal(ModalScreen[T]):
    """A form that returns ``result()`` on OK and ``None`` on Cancel / escape.

    Subclasses set ``TITLE_TEXT`` (and ``OK_LABEL``), yield their widgets from
    ``fields()`` and say what is missing by returning a string from ``result()``.
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="modal.cancel"),
    ]

    TITLE_TEXT = ""
    OK_LABEL = "OK"
    # The fields' container: scrolling for forms that can outgrow the screen.
    BODY: type[Container] = FormBody

    def __init__(self, *, scope: str) -> None:
        super().__init__()
        self.scope = scope

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Static(self.TITLE_TEXT, classes="modal-title")
            yield Static(literal_content(self.scope), classes="modal-scope")
            with self.BODY(classes="modal-body"):
                yield from self.fields()
            yield Static("", id="problem", classes="modal-problem")
            with Horizontal(classes="modal-buttons"):
                yield Button(self.OK_LABEL, variant="primary", id="ok", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def fields(self) -> ComposeResult:
        yield from ()

    def result(self) -> T | str:
        """The value to return, or a string saying what is missing."""
        raise NotImplementedError

    def show_problem(self, problem: str) -> None:
        self.query_one("#problem", Static).update(problem)

    def submit(self) -> None:
        outcome = self.result()
        if isinstance(outcome, str):
            self.show_problem(outcome)
            return
        self.dismiss(outcome)

    def action_submit_form(self) -> None:
        """``enter`` in a pick list: send the form as OK does."""
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self.submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class DecisionModal(FormModal[T]):
    """Base of the modals that decide findings: the findings to decide come first
    (each chosen as its ``FindingOption`` says; ``a`` all, ``n`` none, ``space``
    toggles, ``enter`` sends), then the subclass's ``decision_fields()``."""

    def __init__(self, *, scope: str, findings: list[FindingOption] | None = None) -> None:
        super().__init__(scope=scope)
        self.findings = findings or []

    def fields(self) -> ComposeResult:
        if self.findings:
            yield Label("Findings (space toggles, a all, n none)")
            yield PickList[int](
                *(Selection(literal_content(f.label), f.id, f.chosen) for f in self.findings),
                id="findings", compact=True,
            )
        yield from self.decision_fields()

    def decision_fields(self) -> ComposeResult:
        yield from ()

    def chosen_ids(self) -> tuple[int, ...]:
        """The findings chosen, each entry's twins with it."""
        if not self.findings:
            return ()
        chosen = set(self.query_one("#findings", PickList).selected)
        return tuple(fid for option in self.findings if option.id in chosen for fid in option.ids)

    def show_problem(self, problem: str) -> None:
        # A decision dialog can be taller than the screen: the notification is
        # seen even when the problem line is scrolled away.
        super().show_problem(problem)
        self.notify(problem, title="Not yet", severity="warning", markup=False)
