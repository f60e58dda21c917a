"""``d``: dismiss findings; a reason is required."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Input, Label, Select

from store.domain import DISMISS_REASONS
from store.review import DismissRequest
from tui.modals.base import DecisionModal


class Dismiss(DecisionModal[DismissRequest]):
    """Dismiss open findings with a reason code and text."""

    TITLE_TEXT = "Dismiss"
    AUTO_FOCUS = "#reason_code"

    def decision_fields(self) -> ComposeResult:
        yield Label("Reason")
        yield Select([(label, code) for code, label in DISMISS_REASONS.items()],
                     prompt="choose a reason", id="reason_code", compact=True)
        yield Label("Explanation")
        yield Input(placeholder="required for 'Other'", id="reason_text", compact=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def result(self) -> DismissRequest | str:
        ids = self.chosen_ids()
        if self.findings and not ids:
            return "choose at least one finding"
        code = self.query_one("#reason_code", Select).value
        if code is Select.NULL or code is None:
            return "choose a reason"
        text = self.query_one("#reason_text", Input).value.strip()
        if code == "other" and not text:
            return "explain the 'Other' reason"
        return DismissRequest(finding_ids=ids, reason_code=str(code), reason_text=text)
