"""``m``: open a finding by hand for what no rule detects, with evidence."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Label, Select, TextArea

from store.domain import MANUAL_CATEGORIES, SEVERITIES
from store.review import ManualRequest
from tui.modals.base import DecisionModal


class ManualFinding(DecisionModal[ManualRequest]):
    """A finding opened by a reviewer: category, severity, evidence text."""

    TITLE_TEXT = "Open a finding by hand"
    AUTO_FOCUS = "#category"

    def decision_fields(self) -> ComposeResult:
        yield Label("Category")
        yield Select([(label, cid) for cid, label in MANUAL_CATEGORIES.items()],
                     prompt="choose a category", id="category", compact=True)
        yield Label("Severity")
        yield Select([(s.capitalize(), s) for s in SEVERITIES], value="medium",
                     allow_blank=False, id="severity", compact=True)
        yield Label("Evidence")
        yield TextArea(id="evidence", soft_wrap=True, show_line_numbers=False, compact=True)

    def result(self) -> ManualRequest | str:
        category = self.query_one("#category", Select).value
        if category is Select.NULL or category is None:
            return "choose a category"
        evidence = self.query_one("#evidence", TextArea).text.strip()
        if not evidence:
            return "evidence text is required"
        severity = self.query_one("#severity", Select).value
        return ManualRequest(category=str(category), severity=str(severity), evidence=evidence)
