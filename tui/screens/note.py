"""The audit-request note editor: Markdown in a TextArea, saved as the reviewer types.

Each edit schedules a save half a second later (so a killed terminal loses at
most the last second); one save is in flight at a time and carries the version
it expects, so a re-draft or another reviewer's edit meanwhile is a conflict
shown to the reviewer, never overwritten. ``ctrl+s`` saves at once.

A ready note is frozen: the text is read-only (its SHA-256 is in the log);
``ctrl+r`` takes it back to draft, logged, before it can be edited again.
"""

from __future__ import annotations

from typing import Iterable

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Footer, Markdown, Static, TextArea
from textual.worker import Worker, WorkerState

from store import notes
from store.casework.followups import redraft
from store.text import visible
from tui.keys import palette
from tui.messages import NoteRedrafted, NoteSaved, NoteStatusChanged
from tui.screens.base import WardenScreen
from tui.session import Session
from tui.text import literal

AUTOSAVE_DELAY = 0.5  # seconds after the last keystroke


def editable(body: str) -> str:
    """The body with control characters as visible pictures, lines and tabs kept:
    a pasted escape sequence must show as characters, never reach the terminal."""
    return "\n".join("\t".join(visible(part) for part in line.split("\t")) for line in body.split("\n"))


class NoteEditor(WardenScreen[None]):
    """Edit one note; ``escape`` saves and goes back to the queue."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save now", id="note.save"),
        Binding("ctrl+r", "toggle_ready", "Mark ready / back to draft", id="note.ready"),
        Binding("ctrl+o", "toggle_preview", "Preview", id="note.preview"),
        Binding("ctrl+t", "redraft", "Re-draft from the template", id="note.redraft"),
        Binding("escape", "close", "Back", id="note.close"),
    ]

    def __init__(self, session: Session, note: notes.Note) -> None:
        super().__init__(session)
        self.note = note
        self.version = note.version
        self.saved_text = note.body
        self._timer: Timer | None = None
        self._saving = False
        self._close_after_save = False

    def compose(self) -> ComposeResult:
        with Vertical(id="note-head"):
            yield Static(id="note-title")
            yield Static(id="note-state")
        with Horizontal(id="note-panes"):
            yield TextArea(editable(self.note.body), soft_wrap=True, show_line_numbers=False, id="note-body",
                           read_only=self.note.status != "draft")
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
        if self.note.status == "ready":
            line.append("  ■ frozen: read-only (ctrl+r back to draft to edit)", "bold")
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

    @work(thread=True, group="note-save", exit_on_error=False)
    def _save(self, note_id: int, text: str, version: int) -> None:
        new_version = notes.save_body(self.session.connections.get(), note_id, text, expected_version=version,
                                      clock=self.session.clock)
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

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # A save, status change or re-draft that failed (the App says why): the
        # text stays as typed, and the header says it is not saved.
        if event.state is WorkerState.ERROR:
            self._saving = False
            self._close_after_save = False
            self._show_state("NOT SAVED")

    # --- status --------------------------------------------------------------------

    def action_toggle_ready(self) -> None:
        if self.note.status == "draft":
            self.action_save()
        target = "draft" if self.note.status == "ready" else "ready"
        self._set_status(self.note.id, target, self.version)

    @work(thread=True, group="note-status", exit_on_error=False)
    def _set_status(self, note_id: int, status: str, version: int) -> None:
        session = self.session
        conn = session.connections.get()
        warnings: list[str] = []
        if status == "ready":
            note, warnings = notes.mark_ready(conn, note_id, reviewer=session.reviewer, clock=session.clock)
        else:
            note = notes.reopen_for_editing(conn, note_id, reviewer=session.reviewer, clock=session.clock,
                                            expected_version=version)
        self.post_message(NoteStatusChanged(note, tuple(warnings)))

    def on_note_status_changed(self, message: NoteStatusChanged) -> None:
        self.note = message.note
        self.version = message.note.version
        self.query_one(TextArea).read_only = self.note.status != "draft"
        self._show_state(f"marked {message.note.status}")
        frozen = " Its text is frozen." if self.note.status == "ready" else ""
        self.notify(f"Note #{self.note.id} is now {self.note.status}.{frozen}", title="Note", markup=False)
        for warning in message.warnings:
            self.notify(visible(warning), title="Note", severity="warning", timeout=20, markup=False)

    def action_redraft(self) -> None:
        """Render the template again from the current findings (replaces the text)."""
        self._redraft(self.note, self.version)

    @work(thread=True, group="note-status", exit_on_error=False)
    def _redraft(self, note: notes.Note, version: int) -> None:
        session = self.session
        # From the note's own template: a follow-up stays that follow-up.
        note = redraft(session.connections.get(), note, reviewer=session.reviewer, clock=session.clock,
                       config=session.config.notes, expected_version=version)
        self.post_message(NoteRedrafted(note))

    def on_note_redrafted(self, message: NoteRedrafted) -> None:
        self.note = message.note
        self.version = message.note.version
        self.saved_text = message.note.body
        self.query_one(TextArea).text = editable(message.note.body)
        self.query_one(TextArea).read_only = self.note.status != "draft"
        self._show_state("re-drafted")
        self.notify(f"Note #{self.note.id} re-drafted from the template.", title="Note", markup=False)

    def palette_commands(self) -> Iterable[SystemCommand]:
        return palette(self, ((b.description, b.key, b.id or "", b.action)
                              for b in self.BINDINGS if isinstance(b, Binding)))

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
