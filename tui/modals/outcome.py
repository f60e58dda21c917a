"""``C``: end a case with an outcome, or escalate it to someone; a reason either way."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.widgets import Input, Label, Select

from store.domain import CASE_OUTCOMES, RESOLVING_OUTCOMES
from tui.modals.base import FormModal

# The choice that escalates instead of closing.
ESCALATE = "escalate"


def outcome_options() -> list[tuple[str, str]]:
    """(label, value) of the dialog's choices: each outcome saying whether it
    resolves or closes the case, then escalation."""
    options = [(f"{label} ({'resolves' if outcome in RESOLVING_OUTCOMES else 'closes'} the case)", outcome)
               for outcome, label in CASE_OUTCOMES.items()]
    return [*options, ("Escalate it (to someone)", ESCALATE)]


@dataclass(frozen=True)
class OutcomeChoice:
    """An outcome (store.domain.CASE_OUTCOMES) and its reason, or an escalation to
    someone; for the case version the reviewer saw."""

    case_id: int
    version: int
    reason: str
    outcome: str | None = None       # None: escalate
    to: str | None = None

    @property
    def escalates(self) -> bool:
        return self.outcome is None


class CaseOutcome(FormModal[OutcomeChoice]):
    """Close the case with an outcome and a reason, or escalate it to someone."""

    TITLE_TEXT = "Close or escalate the case"
    OK_LABEL = "Record"
    AUTO_FOCUS = "#outcome"

    def __init__(self, *, scope: str, case_id: int, version: int) -> None:
        super().__init__(scope=scope)
        self.case_id = case_id
        self.version = version

    def fields(self) -> ComposeResult:
        yield Label("Outcome")
        yield Select(outcome_options(), prompt="choose an outcome, or escalate", id="outcome", compact=True)
        yield Label("To whom (escalation only: counsel, a manager)")
        yield Input(id="to", compact=True)
        yield Label("Reason (logged)")
        yield Input(placeholder="required", id="reason", compact=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def result(self) -> OutcomeChoice | str:
        chosen = self.query_one("#outcome", Select).value
        if chosen is Select.NULL or chosen is None:
            return "choose an outcome, or escalate"
        reason = self.query_one("#reason", Input).value.strip()
        to = self.query_one("#to", Input).value.strip()
        if chosen == ESCALATE:
            if not to:
                return "say to whom the case is escalated"
            if not reason:
                return "give the reason for the escalation"
            return OutcomeChoice(self.case_id, self.version, reason, None, to)
        if to:
            return "'to whom' is for an escalation: choose Escalate, or clear it"
        if not reason:
            return "give the reason for the outcome"
        return OutcomeChoice(self.case_id, self.version, reason, str(chosen))
