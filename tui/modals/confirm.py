"""``v``: confirm a violation (category, severity, reason).

Category and severity start at "as detected": a confirmation keeps what the rules
found unless the reviewer picks another (and a change needs the reason, which
the log records with it)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Input, Label, Select

from store.domain import CATEGORIES, SEVERITIES
from store.review import ConfirmRequest
from tui.modals.base import DecisionModal

KEEP = "__detected__"


class ConfirmViolation(DecisionModal[ConfirmRequest]):
    """Confirm open findings as violations."""

    TITLE_TEXT = "Confirm violation"
    # The findings come chosen (all, or the one under the detail's cursor): enter
    # confirms them as detected; the reason is optional.
    AUTO_FOCUS = "#findings, #reason"

    def decision_fields(self) -> ComposeResult:
        yield Label("Category")
        yield Select(
            [("as detected", KEEP), *((label, cid) for cid, label in CATEGORIES.items())],
            value=KEEP, allow_blank=False, id="category", compact=True,
        )
        yield Label("Severity")
        yield Select(
            [("as detected", KEEP), *((s.capitalize(), s) for s in SEVERITIES)],
            value=KEEP, allow_blank=False, id="severity", compact=True,
        )
        yield Label("Reason")
        yield Input(placeholder="optional: without one, the rule and its figures are recorded", id="reason",
                    compact=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def result(self) -> ConfirmRequest | str:
        ids = self.chosen_ids()
        if self.findings and not ids:
            return "choose at least one finding"
        reason = self.query_one("#reason", Input).value.strip()
        category = self.query_one("#category", Select).value
        severity = self.query_one("#severity", Select).value
        return ConfirmRequest(
            finding_ids=ids,
            category=None if category == KEEP else str(category),
            severity=None if severity == KEEP else str(severity),
            reason=reason,
        )
