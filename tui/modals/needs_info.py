"""``i``: mark findings as needing information."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Input, Label

from store.review import NeedsInfoRequest
from tui.modals.base import DecisionModal


class NeedsInfo(DecisionModal[NeedsInfoRequest]):
    """Park open findings until someone answers a question."""

    TITLE_TEXT = "Needs information"
    AUTO_FOCUS = "#reason"

    def decision_fields(self) -> ComposeResult:
        yield Label("What is missing")
        yield Input(placeholder="question or missing fact (required)", id="reason", compact=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def result(self) -> NeedsInfoRequest | str:
        ids = self.chosen_ids()
        if self.findings and not ids:
            return "choose at least one finding"
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            return "say what information is missing"
        return NeedsInfoRequest(finding_ids=ids, reason=reason)
