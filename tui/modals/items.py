"""``a``: the checklist of what the letter asked for: mark each item open,
answered, partly answered or refused, with a comment for the log."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from store.casework.items import CaseItem, ItemChange
from store.domain import ITEM_STATES
from tui.modals.base import FormModal
from tui.widgets.detail import item_text
from tui.widgets.marks import CursorList

# ``space`` walks an item through the states in this order.
CYCLE: tuple[str, ...] = tuple(ITEM_STATES)


@dataclass(frozen=True)
class ItemsChoice:
    """What the reviewer marked: the changes (with the versions they saw) and the comment."""

    case_id: int
    changes: tuple[ItemChange, ...]
    comment: str


class RequestItems(FormModal[ItemsChoice]):
    """The requested items of one case; ``space`` (or o / n / p / f) sets the
    highlighted one, the comment goes with every change."""

    TITLE_TEXT = "Requested items"
    OK_LABEL = "Save"
    AUTO_FOCUS = "#items"
    BINDINGS = [
        Binding("space", "cycle", "Next state", id="items.cycle"),
        Binding("o", "set('open')", "Open", id="items.open", show=False),
        Binding("n", "set('answered')", "Answered", id="items.answered", show=False),
        Binding("p", "set('partly_answered')", "Partly answered", id="items.partly", show=False),
        Binding("f", "set('refused')", "Refused", id="items.refused", show=False),
        Binding("ctrl+s", "save", "Save", id="items.save"),
    ]

    def __init__(self, *, scope: str, case_id: int, items: list[CaseItem]) -> None:
        super().__init__(scope=scope)
        self.case_id = case_id
        self.items = items
        self.marked: dict[str, str] = {item.item: item.state for item in items}

    def fields(self) -> ComposeResult:
        yield Label("space: next state · o open · n answered · p partly · f refused")
        yield CursorList(*(Option(self._prompt(item), id=item.item) for item in self.items), id="items",
                         compact=True)
        yield Label("Comment (what the reply says, where; logged with each change)")
        yield Input(placeholder="required", id="comment", compact=True)

    def _prompt(self, item: CaseItem) -> Text:
        state = self.marked[item.item]
        changed = " (was " + ITEM_STATES[item.state] + ")" if state != item.state else ""
        return Text.assemble((f"{item_text(state):<18}", "bold" if changed else ""),
                             f" {item.number}. {item.title}", (changed, "italic"))

    def _highlighted(self) -> int | None:
        return self.query_one("#items", OptionList).highlighted

    def action_cycle(self) -> None:
        index = self._highlighted()
        if index is not None:
            state = self.marked[self.items[index].item]
            self.action_set(CYCLE[(CYCLE.index(state) + 1) % len(CYCLE)])

    def action_set(self, state: str) -> None:
        index = self._highlighted()
        if index is None:
            return
        item = self.items[index]
        self.marked[item.item] = state
        self.query_one("#items", OptionList).replace_option_prompt_at_index(index, self._prompt(item))

    def action_save(self) -> None:
        self.submit()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def result(self) -> ItemsChoice | str:
        changes = tuple(ItemChange(item.item, self.marked[item.item], item.version) for item in self.items
                        if self.marked[item.item] != item.state)
        if not changes:
            return "nothing changed: space sets the highlighted item's state"
        comment = self.query_one("#comment", Input).value.strip()
        if not comment:
            return "write a comment: what the reply says about these items"
        return ItemsChoice(self.case_id, changes, comment)
