"""The review screen's notes and exports: ``c`` drafts the audit-request note and
opens the editor, ``e`` edits it in ``$EDITOR``, ``x`` exports it.

A base of :class:`tui.screens.review.ReviewScreen` (the queue and the decisions
live there); the work runs in thread workers through ``store.notes`` and
``store.export``, as the rest of the screen's does.
"""

from __future__ import annotations

from pathlib import Path

from textual import work

from store import notes
from store.text import visible
from tui.editor import edit_externally
from tui.export import export_note
from tui.messages import Decided, ExportFinished, NoteOpened, Problem
from tui.modals.export import ExportChoice, ExportNotes
from tui.screens.base import WardenScreen
from tui.screens.note import NoteEditor
from tui.widgets.queue import QueueView


class NotesAndExports(WardenScreen[None]):
    """The note keys of the review screen, for the consumer under the cursor."""

    def action_refresh(self) -> None:
        """Read the queue and the detail again (the review screen's own)."""

    def action_draft_note(self) -> None:
        row = self.query_one(QueueView).current
        if row is not None:
            self._open_note(row.consumer_id, "app")

    def action_edit_note(self) -> None:
        row = self.query_one(QueueView).current
        if row is not None:
            self._open_note(row.consumer_id, "external")

    @work(thread=True, group="note", exit_on_error=False)
    def _open_note(self, consumer_id: str, where: str) -> None:
        """The consumer's open note, drafted from the template if there is none."""
        session = self.session
        conn = session.connections.get()
        note = notes.note_for(conn, consumer_id)
        drafted = note is None or note.status == "exported"
        if drafted:
            note = notes.draft_note(conn, consumer_id, reviewer=session.reviewer, clock=session.clock,
                                    config=session.config.notes)
        self.post_message(NoteOpened(note, drafted, where))

    def on_note_opened(self, message: NoteOpened) -> None:
        note = message.note
        if note.warning:
            self.notify(visible(note.warning), title="Note", severity="warning", timeout=10, markup=False)
        if message.where == "external":
            if message.drafted:
                self.notify(f"Drafted note #{note.id} from the template.", title="Note", markup=False)
            if note.status == "ready":
                self.notify(f"Note #{note.id} is ready, so its text is frozen. Open it with c and press ctrl+r "
                            "to take it back to draft (logged) before editing it.", title="Note is ready",
                            severity="warning", timeout=10, markup=False)
                return
            edited = edit_externally(self.app, note.body, prefix=f"warden-note-{note.id}-")
            if edited.message:
                self.notify(edited.message, title="Note", severity=edited.severity, timeout=edited.timeout,
                            markup=False)
            if not edited.in_app:
                if edited.body is None:
                    return
                if edited.body != note.body:
                    self._save_note(note.id, edited.body, note.version)
                else:
                    self.notify("No change to the note.", title="Note", markup=False)
                return
        # In the editor its header says it was drafted: a toast would cover the text.
        self.app.push_screen(NoteEditor(self.session, note, drafted=message.drafted), lambda _: self.action_refresh())

    @work(thread=True, group="note", exit_on_error=False)
    def _save_note(self, note_id: int, body: str, version: int) -> None:
        session = self.session
        notes.save_body(session.connections.get(), note_id, body, expected_version=version, clock=session.clock)
        self.post_message(Decided(f"Saved note #{note_id} from the editor."))

    def action_export(self) -> None:
        row = self.query_one(QueueView).current
        if row is None:
            return
        scope = f"{visible(row.legal_name)} ({visible(row.consumer_id)}): its latest note"
        default = str(Path.cwd() / "warden-export")
        self.app.push_screen(
            ExportNotes(scope=scope, out_dir=default),
            lambda choice: choice and self._export(row.consumer_id, choice),
        )

    @work(thread=True, group="export", exit_on_error=False)
    def _export(self, consumer_id: str, choice: ExportChoice) -> None:
        exported = export_note(self.session, consumer_id, choice)
        if exported.failed:
            # One notification for the whole export, however many formats failed.
            self.app.post_message(Problem(exported.refusal(), screen=self))
        if exported.lines or exported.warnings:
            self.post_message(ExportFinished([exported.summary()] if exported.written else [], exported.warnings))

    def on_export_finished(self, message: ExportFinished) -> None:
        if message.lines:
            self.notify("\n".join(message.lines), title="Exported", markup=False)
        for warning in message.warnings:
            self.notify(visible(warning), title="Export warning", severity="warning", timeout=30, markup=False)
        self.action_refresh()
