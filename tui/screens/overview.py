"""``L``: the lead's overview (store.report): cases by state, overdue cases,
findings per month, the largest overage, decisions per reviewer per week. Every
number is a link: ``enter`` goes back to the queue filtered to what it counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from store.report import LeadOverview, lead_overview
from tui.keys import palette, shown
from tui.screens.base import WardenScreen
from tui.text import literal
from tui.widgets.overview import OverviewView


@dataclass
class OverviewLoaded(Message):
    overview: LeadOverview


class OverviewScreen(WardenScreen[str]):
    """The overview; returns the queue filter of the number chosen (None: back)."""

    BINDINGS = [
        Binding("j,down", "line(1)", "Next line", show=False, id="overview.down"),
        Binding("k,up", "line(-1)", "Previous line", show=False, id="overview.up"),
        Binding("l,right,tab", "link(1)", "Next number", show=False, id="overview.next"),
        Binding("h,left,shift+tab", "link(-1)", "Previous number", show=False, id="overview.previous"),
        Binding("enter", "open", "Queue of this number", id="overview.open"),
        Binding("r", "refresh", "Refresh", id="overview.refresh"),
        Binding("escape,q", "back", "Back", id="overview.back"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="overview-head")
        yield OverviewView(id="overview")
        yield Footer()

    def on_mount(self) -> None:
        self._head("reading…")
        self.query_one(OverviewView).focus()
        self.action_refresh()

    def _head(self, what: str) -> None:
        line = Text(no_wrap=True, end="")
        line.append(" warden ", "bold reverse")
        line.append(" overview ", "bold")
        current = self.query_one(OverviewView).current
        if current is not None:
            line.append(" enter: the queue with ")
            line.append_text(literal(current.filter, "bold"))
        else:
            line.append(f" {what}")
        self.query_one("#overview-head", Static).update(line)

    def action_refresh(self) -> None:
        self._read()

    @work(thread=True, exclusive=True, group="overview", exit_on_error=False)
    def _read(self) -> None:
        overview = lead_overview(self.session.connections.get(), self.session.clock().date())
        if not get_current_worker().is_cancelled:
            self.post_message(OverviewLoaded(overview))

    def on_overview_loaded(self, message: OverviewLoaded) -> None:
        self.query_one(OverviewView).show(message.overview)
        self._head("")

    def action_line(self, step: int) -> None:
        self.query_one(OverviewView).move_line(step)
        self._head("")

    def action_link(self, step: int) -> None:
        self.query_one(OverviewView).move_link(step)
        self._head("")

    def action_open(self) -> None:
        current = self.query_one(OverviewView).current
        if current is not None:
            self.dismiss(current.filter)

    def action_back(self) -> None:
        self.dismiss(None)

    def reload(self) -> None:
        self.action_refresh()

    def palette_commands(self) -> Iterable[SystemCommand]:
        keymap = dict(self.session.config.keymap)
        return palette(self, ((str(b.description), shown(keymap.get(b.id or "", b.key)), b.id or "", b.action)
                              for b in self.BINDINGS if isinstance(b, Binding)))
