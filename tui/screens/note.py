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

from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import Footer, Static, TextArea
from textual.worker import Worker, WorkerState, get_current_worker

from store import notes
from store.casework.followups import redraft
from store.text import visible
from tui.keys import palette
from tui.messages import NoteRedrafted, NoteSaved, NoteStatusChanged, PreviewDrawn
from tui.screens.base import WardenScreen
from tui.session import Session
from tui.text import glued, literal
from tui.widgets.pairs import fit_pairs, pair
from tui.widgets.preview import NotePreview, draw_markdown

AUTOSAVE_DELAY = 0.5  # seconds after the last keystroke
PREVIEW_DELAY = 0.2   # the preview follows the text once typing pauses this long


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
        Binding("ctrl+home", "go(0)", "Start of the note", id="note.start", show=False),
        Binding("ctrl+end", "go(1)", "End of the note", id="note.end", show=False),
        Binding("escape", "close", "Back", id="note.close"),
    ]

    def __init__(self, session: Session, note: notes.Note, *, drafted: bool = False) -> None:
        super().__init__(session)
        self.note = note
        self.version = note.version
        self.saved_text = note.body
        self._timer: Timer | None = None
        self._preview_timer: Timer | None = None
        self._saving = False
        self._close_after_save = False
        self._state = "drafted from the template" if drafted else "saved"

    def compose(self) -> ComposeResult:
        yield Static(id="note-head")
        with Horizontal(id="note-panes"):
            yield TextArea(editable(self.note.body), soft_wrap=True, show_line_numbers=False, id="note-body",
                           read_only=self.note.status != "draft")
            yield NotePreview(id="note-preview")
        yield Footer()

    def on_mount(self) -> None:
        self._show_state(self._state)
        self.query_one("#note-preview").display = False
        self.query_one(TextArea).focus()
        self.call_after_refresh(self._draw_preview)   # ready before ctrl+o asks for it

    def on_resize(self) -> None:
        self._show_state(self._state)
        self.call_after_refresh(self._draw_preview)

    def _show_state(self, what: str) -> None:
        """The one-line header: the note, its status and version, whether the text is
        saved; then the subject, cut to fit (the keys are in the footer)."""
        self._state = what
        pairs = [pair("", f"Note #{self.note.id}", style="bold"), pair("", self.note.status, style="bold")]
        if self.note.status == "ready":
            pairs.append(pair("", "■ frozen: read-only (ctrl+r back to draft to edit)", style="bold",
                              short="■ frozen, read-only"))
        pairs += [pair("", f"version {self.version}", short=f"v{self.version}"), pair("", what)]
        if self.note.warning:
            pairs.append(pair("", "⚠ template warning (see the notification)", short="⚠"))
        pairs.append(pair("", literal(self.note.subject), cut=True))
        self.query_one("#note-head", Static).update(glued(fit_pairs(pairs, max(1, self.size.width - 2))))

    # --- autosave ------------------------------------------------------------------

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(AUTOSAVE_DELAY, self.action_save)
        self._show_state("saving…" if self._saving else "editing…")
        # Drawn again once typing pauses (in a thread: a letter takes about 100 ms to draw).
        if self._preview_timer is not None:
            self._preview_timer.stop()
        self._preview_timer = self.set_timer(PREVIEW_DELAY, self._draw_preview)

    def action_save(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        text = self.query_one(TextArea).text
        if self._saving or text == self.saved_text:
            return
        self._saving = True
        self._show_state("saving…")
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
        if event.state is WorkerState.ERROR and event.worker.group != "note-preview":
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
        # Said in the header (a toast would cover the text at 80x24); warnings are toasts.
        self._show_state(f"marked {message.note.status}")
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
        self._show_state("re-drafted from the template")

    def palette_commands(self) -> Iterable[SystemCommand]:
        return palette(self, ((b.description, b.key, b.id or "", b.action)
                              for b in self.BINDINGS if isinstance(b, Binding)))

    def action_go(self, end: int) -> None:
        """ctrl+home / ctrl+end: the start or the end of the note."""
        area = self.query_one(TextArea)
        if end:
            last = area.document.line_count - 1
            area.move_cursor((last, len(area.document.get_line(last))), center=True)
        else:
            area.move_cursor((0, 0))
            area.scroll_home(animate=False)

    def action_toggle_preview(self) -> None:
        preview = self.query_one(NotePreview)
        preview.display = not preview.display
        if preview.display:
            self.call_after_refresh(self._draw_preview)   # drawn already unless its width changed

    def _preview_width(self) -> int:
        """The preview's width: its own when shown, else what it gets beside the text
        (half the panes, less its border and scrollbar)."""
        preview = self.query_one(NotePreview)
        if preview.display:
            return preview.width_wanted
        panes = self.query_one("#note-panes").size.width
        return max(1, panes - panes // 2 - 1 - preview.styles.scrollbar_size_vertical)

    def _draw_preview(self) -> None:
        self._preview_timer = None
        text = self.query_one(TextArea).text
        width = self._preview_width()
        preview = self.query_one(NotePreview)
        if width > 1 and not (text == preview.source and width == preview.drawn_width):
            self._draw(text, width, self.app.console.color_system)

    @work(thread=True, exclusive=True, group="note-preview", exit_on_error=False)
    def _draw(self, text: str, width: int, color_system: str | None) -> None:
        lines = draw_markdown(text, width, color_system=color_system)
        if not get_current_worker().is_cancelled:
            self.post_message(PreviewDrawn(text, width, lines))

    def on_preview_drawn(self, message: PreviewDrawn) -> None:
        self.query_one(NotePreview).set_lines(message.text, message.width, message.lines)

    def action_close(self) -> None:
        text = self.query_one(TextArea).text
        if text == self.saved_text and not self._saving:
            self.dismiss(None)
            return
        self._close_after_save = True
        self.action_save()
