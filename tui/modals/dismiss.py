"""``d``: dismiss findings; a reason is required, chosen by its letter."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Input, Label

from store.domain import DISMISS_REASONS
from store.review import DismissRequest
from tui.modals.base import DecisionModal
from tui.widgets.marks import ReasonPicker

# The letter that chooses each reason in the dialog (d, w, enter: within allowance).
REASON_LETTERS: dict[str, str] = {
    "false_positive": "f",
    "within_allowance": "w",
    "duplicate": "d",
    "out_of_scope": "s",
    "other": "o",
}


class Dismiss(DecisionModal[DismissRequest]):
    """Dismiss open findings with a reason code and text."""

    TITLE_TEXT = "Dismiss"
    AUTO_FOCUS = "#reason_code"

    def decision_fields(self) -> ComposeResult:
        yield Label("Reason (its letter, then enter)")
        yield ReasonPicker(DISMISS_REASONS, REASON_LETTERS, id="reason_code")
        yield Label("Explanation")
        yield Input(placeholder="required for 'Other'", id="reason_text", compact=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def result(self) -> DismissRequest | str:
        ids = self.chosen_ids()
        if self.findings and not ids:
            return "choose at least one finding"
        code = self.query_one(ReasonPicker).chosen
        if code is None:
            return "choose a reason: " + ", ".join(f"{REASON_LETTERS[c]} {label.lower()}"
                                                  for c, label in DISMISS_REASONS.items())
        text = self.query_one("#reason_text", Input).value.strip()
        if code == "other" and not text:
            self.query_one("#reason_text", Input).focus()
            return "explain the 'Other' reason"
        return DismissRequest(finding_ids=ids, reason_code=str(code), reason_text=text)
