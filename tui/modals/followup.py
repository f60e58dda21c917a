"""``f``: which follow-up to draft: a reminder, an overdue notice or a final notice."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from store.domain import FOLLOWUP_KINDS
from tui.modals.base import FormModal
from tui.widgets.marks import CursorList


@dataclass(frozen=True)
class FollowupChoice:
    """The kind of follow-up chosen (store.domain.FOLLOWUP_KINDS)."""

    kind: str


class FollowupKind(FormModal[FollowupChoice]):
    """Returns the kind of follow-up chosen (``enter`` on one, or OK)."""

    TITLE_TEXT = "Draft a follow-up"
    OK_LABEL = "Draft"
    AUTO_FOCUS = "#kinds"

    def __init__(self, *, scope: str, suggested: str) -> None:
        super().__init__(scope=scope)
        self.suggested = suggested

    def fields(self) -> ComposeResult:
        yield Label("It cites the letter, the due date and the items still open")
        kinds = CursorList(*(Option(label, id=kind) for kind, label in FOLLOWUP_KINDS.items()), id="kinds",
                           compact=True)
        kinds.highlighted = list(FOLLOWUP_KINDS).index(self.suggested)
        yield kinds

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.submit()

    def result(self) -> FollowupChoice:
        index = self.query_one("#kinds", OptionList).highlighted
        return FollowupChoice(list(FOLLOWUP_KINDS)[index or 0])
