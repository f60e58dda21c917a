"""The TUI's side of a letter we can defend: the confirm dialog keeps what was
detected unless the reviewer picks another; twins are one entry; a ready note is
frozen (read-only in the editor, not handed to $EDITOR) and goes back to draft in
the log; every warning of an export is its own notification, under "Export"."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from textual.widgets import Input, Select, TextArea

from store import notes as notes_api
from store.config import NotesConfig
from store.db import connect
from tests.test_tui_review import (
    _confirm_case_finding,
    decisions,
    make_app,
    notifications,
    press,
    statuses,
)
from tests.tui_data import CLOCK, settle
from tui.modals.confirm import KEEP, ConfirmViolation
from tui.screens.review import ReviewScreen

pytestmark = pytest.mark.anyio


def severities(db: Path) -> dict[int, str]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT id, severity FROM finding ORDER BY id"))
    finally:
        conn.close()


def draft_note_for(conn: sqlite3.Connection, consumer_id: str = "northwind-analytics") -> notes_api.Note:
    return notes_api.draft_note(conn, consumer_id, reviewer="alice", clock=CLOCK, config=NotesConfig())


async def test_confirm_keeps_the_detected_severity_and_category_by_default(db: Path) -> None:
    # The defect: the dialog defaulted to High, so v, a reason and Enter turned critical
    # findings into high and a medium one into high, logged as the reviewer's choice.
    before = severities(db)
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "v")
        modal = app.screen
        assert isinstance(modal, ConfirmViolation)
        for field in ("#severity", "#category"):
            assert modal.query_one(field, Select).value == KEEP       # shown as "as detected"
        modal.query_one("#reason", Input).focus()
        await pilot.press(*"the case")
        await press(pilot, "enter")
        assert isinstance(app.screen, ReviewScreen)
    assert [statuses(db)[i] for i in (1, 2, 3)] == ["confirmed"] * 3
    assert severities(db) == before
    assert {(d["field"], d["old_value"] == d["new_value"]) for d in decisions(db) if d["field"] != "status"} == {
        ("severity", True), ("category", True)}




async def test_a_ready_note_goes_back_to_draft_in_the_log_before_it_is_edited(db: Path) -> None:
    from tui.screens.note import NoteEditor

    _confirm_case_finding(db)
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        editor = app.screen
        assert isinstance(editor, NoteEditor)
        await press(pilot, "ctrl+r")
        assert editor.note.status == "ready" and editor.query_one(TextArea).read_only
        await press(pilot, "ctrl+r")
        assert editor.note.status == "draft" and not editor.query_one(TextArea).read_only
        await pilot.press(*"AMENDED ")
        await press(pilot, "ctrl+s")
        await press(pilot, "escape")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status, substr(body, 1, 8) FROM note").fetchone() == ("draft", "AMENDED ")
    statuses_logged = [r[0] for r in conn.execute(
        "SELECT new_value FROM decision WHERE subject = 'note' AND field = 'status' ORDER BY id")]
    assert statuses_logged == ["draft", "ready", "draft"]
    conn.close()


async def test_a_ready_note_is_not_handed_to_the_editor(db: Path, monkeypatch, tmp_path: Path) -> None:
    _confirm_case_finding(db)
    conn = connect(db)
    note = draft_note_for(conn)
    notes_api.mark_ready(conn, note.id, reviewer="alice", clock=CLOCK)
    conn.close()
    touched = tmp_path / "editor-ran"
    monkeypatch.setenv("EDITOR", f"touch {touched}")
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "e")
        assert isinstance(app.screen, ReviewScreen)
        assert any("is ready, so its text is frozen" in n for n in notifications(app))
    assert not touched.exists()




async def test_twins_are_one_entry_of_the_dialog_and_decided_together(demo_copy: Path) -> None:
    app = make_app(demo_copy)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "v")
        modal = app.screen
        assert isinstance(modal, ConfirmViolation)
        assert modal.scope.startswith("Northwind Analytics Ltd")
        # 78 open findings, 30 of them circumvention twins: 48 entries, each twin named in its pair's.
        assert len(modal.findings) == 48
        paired = [o for o in modal.findings if o.twins]
        assert len(paired) == 30
        # Both ids first, where a narrow dialog does not cut them off.
        assert all(o.label.startswith(f"#{o.id} + #{o.twins[0]} ") and "+ circumvention" in o.label for o in paired)
        modal.query_one("#reason", Input).focus()
        await pilot.press(*"the case")
        await press(pilot, "enter")
        assert isinstance(app.screen, ReviewScreen)
    conn = sqlite3.connect(demo_copy)
    assert conn.execute("SELECT count(*) FROM finding WHERE consumer_id = 'northwind-analytics'"
                        " AND status = 'confirmed'").fetchone()[0] == 78
    conn.close()


async def test_every_export_warning_is_a_notification_of_its_own(db: Path, tmp_path: Path) -> None:
    from tui.modals.export import ExportNotes

    # The defect: the TUI showed the first summary line under "Decision recorded", never a warning.
    _confirm_case_finding(db)
    conn = connect(db)
    draft_note_for(conn)
    conn.execute("UPDATE consumer SET notice_contact = 'a@b.example, c@d.example' WHERE id = 'northwind-analytics'")
    conn.execute("UPDATE usage SET value = value + 7 WHERE app_id = 'northwind-analytics-app1'"
                 " AND day = '2022-03-01' AND metric = 'calls'")
    conn.close()
    out = tmp_path / "out"
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "x")
        modal = app.screen
        assert isinstance(modal, ExportNotes)
        modal.query_one("#out_dir", Input).value = str(out)
        modal.query_one("#ok").press()
        await settle(pilot)
        shown = notifications(app)
    exported = [n for n in shown if n.startswith("Exported: ")]
    warnings = [n for n in shown if n.startswith("Export warning: ")]
    assert exported == [f"Exported: md, html, eml, json, csv: 5 files and their manifests in {out}"]
    assert not any(n.startswith("Decision recorded") for n in shown)
    # Each its own: the recipient that is not one address, and each figure that changed (the app's
    # calls and the total, for 2022), every one said once although five formats were written.
    assert len(warnings) == 3, warnings
    assert sum("not exactly one e-mail address" in w for w in warnings) == 1
    changed = [w for w in warnings if "figure changed since it was drafted" in w]
    assert len(changed) == 2 and all(" then, " in w and " now" in w for w in changed)
