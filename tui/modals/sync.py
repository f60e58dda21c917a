"""``R``: the sync's progress, with a cancel; hiding it leaves the sync running."""

from __future__ import annotations

from typing import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Log, ProgressBar, Static

from store.text import visible
from tui.text import literal


class SyncProgress(ModalScreen[None]):
    """Shows sources done / total, the latest events, and a Cancel button."""

    BINDINGS = [
        Binding("escape", "hide", "Hide (sync continues)", id="sync.hide"),
        Binding("c", "cancel_sync", "Cancel the sync", id="sync.cancel"),
    ]

    def __init__(self, *, sources: int, on_cancel: Callable[[], None], history: list[str] | None = None,
                 sources_done: int = 0) -> None:
        super().__init__()
        self.sources = max(1, sources)
        self.on_cancel = on_cancel
        self.finished = False
        self.history = list(history or [])   # events so far, when reopened during a sync
        self.sources_done = sources_done

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box sync-box"):
            yield Static("Sync", classes="modal-title")
            yield ProgressBar(total=self.sources, show_eta=False, id="progress")
            yield Static("starting…", id="status", classes="modal-scope")
            yield Log(id="events", max_lines=200, auto_scroll=True)
            with Horizontal(classes="modal-buttons"):
                yield Button("Cancel sync", variant="error", id="cancel", compact=True)
                yield Button("Hide", id="hide", compact=True)

    def on_mount(self) -> None:
        self.query_one("#progress", ProgressBar).update(progress=self.sources_done)
        log = self.query_one("#events", Log)
        for line in self.history:
            log.write_line(visible(line))

    def show_event(self, line: str, *, sources_done: int, status: str) -> None:
        """Called by the review screen for each sync event it receives."""
        self.query_one("#progress", ProgressBar).update(progress=sources_done)
        self.query_one("#status", Static).update(literal(status))
        self.query_one("#events", Log).write_line(visible(line))

    def show_finished(self, summary: str) -> None:
        self.finished = True
        self.query_one("#status", Static).update(literal(summary))
        self.query_one("#progress", ProgressBar).update(progress=self.sources)
        button = self.query_one("#cancel", Button)
        button.label = "Close"
        button.variant = "primary"

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "cancel" and not self.finished:
            self.action_cancel_sync()
        else:
            self.dismiss(None)

    def action_cancel_sync(self) -> None:
        if self.finished:
            self.dismiss(None)
            return
        self.on_cancel()
        self.query_one("#status", Static).update("cancelling after the page in hand…")

    def action_hide(self) -> None:
        self.dismiss(None)
