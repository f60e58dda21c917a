"""The audit-request note editor: Markdown in a TextArea, saved as the reviewer types.

Each edit schedules a save half a second later (so a killed terminal loses at
most the last second); one save is in flight at a time and carries the version
it expects, so a re-draft or another reviewer's edit meanwhile is a conflict
shown to the reviewer, never overwritten. ``ctrl+s`` saves at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Markdown, Static, TextArea

from store import notes
from store.errors import ConflictError, WardenError
from tui.text import literal, visible

if TYPE_CHECKING:
    from tui.app import WardenApp

AUTOSAVE_DELAY = 0.5  # seconds after the last keystroke


@dataclass
class NoteSaved(Message):
    version: int
    text: str


@dataclass
class NoteSaveFailed(Message):
    title: str
    message: str
    current: dict[str, Any]


@dataclass
class NoteRedrafted(Message):
    note: Any


@dataclass
class NoteStatusChanged(Message):
    note: Any


def editable(body: str) -> str:
    """The body with control characters as visible pictures, lines and tabs kept:
    a pasted escape sequence must show as characters, never reach the terminal."""
    return "\n".join("\t".join(visible(part) for part in line.split("\t")) for line in body.split("\n"))


class NoteEditor(Screen[None]):
    """Edit one note; ``escape`` saves and goes back to the queue."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save now", id="note.save"),
        Binding("ctrl+r", "toggle_ready", "Mark ready / back to draft", id="note.ready"),
        Binding("ctrl+o", "toggle_preview", "Preview", id="note.preview"),
        Binding("ctrl+t", "redraft", "Re-draft from the template", id="note.redraft"),
        Binding("escape", "close", "Back", id="note.close"),
    ]

    def __init__(self, note: notes.Note) -> None:
        super().__init__()
        self.note = note
        self.version = note.version
        self.saved_text = note.body
        self._timer: Timer | None = None
        self._saving = False
        self._close_after_save = False

    @property
    def warden(self) -> WardenApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="note-head"):
            yield Static(id="note-title")
            yield Static(id="note-state")
        with Horizontal(id="note-panes"):
            yield TextArea(editable(self.note.body), soft_wrap=True, show_line_numbers=False, id="note-body")
            yield Markdown(id="note-preview")
        yield Footer()

    def on_mount(self) -> None:
        title = Text(end="")
        title.append(f"Note #{self.note.id} ", "bold")
        title.append_text(literal(self.note.subject))
        self.query_one("#note-title", Static).update(title)
        self._show_state("saved")
        self.query_one("#note-preview").display = False
        self.query_one(TextArea).focus()

    def _show_state(self, what: str) -> None:
        line = Text(end="")
        line.append(f"status: {self.note.status}", "bold")
        line.append(f"  version {self.version}  {what}")
        if self.note.warning:
            line.append("  ⚠ ")
            line.append_text(literal(self.note.warning))
        line.append("  ctrl+s save · ctrl+r ready · ctrl+o preview · ctrl+t re-draft · esc back", "dim")
        self.query_one("#note-state", Static).update(line)

    # --- autosave ------------------------------------------------------------------

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(AUTOSAVE_DELAY, self.action_save)
        self._show_state("editing…")
        if self.query_one("#note-preview").display:
            self.query_one("#note-preview", Markdown).update(event.text_area.text)

    def action_save(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        text = self.query_one(TextArea).text
        if self._saving or text == self.saved_text:
            return
        self._saving = True
        self._save(self.note.id, text, self.version)

    @work(thread=True, group="note-save")
    def _save(self, note_id: int, text: str, version: int) -> None:
        conn = self.warden.connections.get()
        try:
            new_version = notes.save_body(conn, note_id, text, expected_version=version,
                                          clock=self.warden.clock)
        except ConflictError as exc:
            self.post_message(NoteSaveFailed("Changed under you", visible(str(exc)), exc.current))
            return
        except WardenError as exc:
            self.post_message(NoteSaveFailed(exc.title, visible(str(exc)), {}))
            return
        self.post_message(NoteSaved(new_version, text))

    def on_note_saved(self, message: NoteSaved) -> None:
        self._saving = False
        self.version = message.version
        self.saved_text = message.text
        self._show_state("saved")
        if self.query_one(TextArea).text != self.saved_text:
            self.action_save()  # typed while the save ran
        elif self._close_after_save:
            self.dismiss(None)

    def on_note_save_failed(self, message: NoteSaveFailed) -> None:
        self._saving = False
        self._close_after_save = False
        self.notify(message.message, title=message.title, severity="error", timeout=10, markup=False)
        self._show_state("NOT SAVED")

    # --- status --------------------------------------------------------------------

    def action_toggle_ready(self) -> None:
        self.action_save()
        target = "draft" if self.note.status == "ready" else "ready"
        self._set_status(self.note.id, target)

    @work(thread=True, group="note-status")
    def _set_status(self, note_id: int, status: str) -> None:
        conn = self.warden.connections.get()
        try:
            note = notes.set_note_status(conn, note_id, status, reviewer=self.warden.reviewer,
                                         clock=self.warden.clock)
        except WardenError as exc:
            self.post_message(NoteSaveFailed(exc.title, visible(str(exc)), {}))
            return
        self.post_message(NoteStatusChanged(note))

    def on_note_status_changed(self, message: NoteStatusChanged) -> None:
        self.note = message.note
        self.version = message.note.version
        self._show_state(f"marked {message.note.status}")
        self.notify(f"Note #{self.note.id} is now {self.note.status}.", title="Note", markup=False)

    def action_redraft(self) -> None:
        """Render the template again from the current findings (replaces the text)."""
        self._redraft(self.note.consumer_id, self.version)

    @work(thread=True, group="note-status")
    def _redraft(self, consumer_id: str, version: int) -> None:
        app = self.warden
        try:
            note = notes.draft_note(app.connections.get(), consumer_id, reviewer=app.reviewer,
                                    clock=app.clock, config=app.config.notes, expected_version=version)
        except ConflictError as exc:
            self.post_message(NoteSaveFailed("Changed under you", visible(str(exc)), exc.current))
            return
        except WardenError as exc:
            self.post_message(NoteSaveFailed(exc.title, visible(str(exc)), {}))
            return
        self.post_message(NoteRedrafted(note))

    def on_note_redrafted(self, message: NoteRedrafted) -> None:
        self.note = message.note
        self.version = message.note.version
        self.saved_text = message.note.body
        self.query_one(TextArea).text = editable(message.note.body)
        self._show_state("re-drafted")
        self.notify(f"Note #{self.note.id} re-drafted from the template.", title="Note", markup=False)

    def palette_commands(self) -> Iterable[SystemCommand]:
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            yield SystemCommand(binding.description, f"{binding.key}  ({binding.id})",
                                self._runner(binding.action))

    def _runner(self, action: str) -> Callable[[], Any]:
        return lambda: self.run_action(action)

    def action_toggle_preview(self) -> None:
        preview = self.query_one("#note-preview", Markdown)
        preview.display = not preview.display
        if preview.display:
            preview.update(self.query_one(TextArea).text)

    def action_close(self) -> None:
        text = self.query_one(TextArea).text
        if text == self.saved_text and not self._saving:
            self.dismiss(None)
            return
        self._close_after_save = True
        self.action_save()
