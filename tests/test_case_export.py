"""The case takes its letter and follow-ups from the one export act
(store.export.act): recorded in the export's own transaction and action, once
for several formats, and taken back with the export when its files never got
out; a follow-up is frozen when ready, as the letter is."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store.casework.due import due_cases
from store.casework.followups import draft_followup
from store.casework.responses import add_response
from store.casework.state import latest_case
from store.config import NotesConfig
from store.errors import ConflictError
from store.export import export_notes
from store.notes import draft_note, mark_ready, save_body
from store.verify import verify_log
from tests.cases_data import DUE, at, case_columns, log, sent_case
from tests.notes_case import CASE_ID, seed

NOTES = NotesConfig(organisation="Example Platform")


class Interrupted(Exception):
    """Raised at an export's step: the process "fails" there."""


def _fail_at(point: str, then: object = None):   # noqa: ANN202 - a step hook
    def step(name: str) -> None:
        if name == point:
            if callable(then):
                then()
            raise Interrupted(name)
    return step


def _verified(conn: sqlite3.Connection, tmp_path: Path) -> None:
    report = verify_log(conn, evidence_root=tmp_path / "w.db-evidence")
    assert report.problems == ()


def test_the_letter_opens_its_case_in_the_exports_own_action(tmp_path: Path) -> None:
    conn = seed(tmp_path / "w.db")
    draft_note(conn, CASE_ID, reviewer="ana", clock=at("2023-05-02"), config=NOTES)
    first = export_notes(conn, fmt="md", out_dir=tmp_path / "out", consumer_id=CASE_ID, reviewer="ana",
                         clock=at("2023-05-02"), config=NOTES)
    # A second format of the same export (as --format md,html does) sends no second letter.
    export_notes(conn, fmt="html", out_dir=tmp_path / "out", reviewer="ana", clock=at("2023-05-02"), config=NOTES,
                 note_ids=first.note_ids)
    action = conn.execute("SELECT action_id FROM export WHERE id = 1").fetchone()[0]
    subjects = {tuple(r) for r in conn.execute("SELECT subject, field FROM decision WHERE action_id = ?", (action,))}
    assert {("note", "status"), ("case", "state"), ("case", "due_date"), ("case", "letter"), ("item", "state"),
            ("finding", "status")} <= subjects
    assert conn.execute("SELECT action_id FROM export WHERE id = 2").fetchone()[0] is None
    assert conn.execute("SELECT count(*) FROM case_file").fetchone()[0] == 1
    assert [e[1:] for e in log(conn, "case") if e[1] == "state"] == [
        ("state", None, "letter_sent", "note #1 exported as md (export #1)")]
    assert case_columns(conn) == ("letter_sent", DUE)
    _verified(conn, tmp_path)


def test_a_letter_taken_back_with_its_export_leaves_no_case(tmp_path: Path) -> None:
    conn = seed(tmp_path / "w.db")
    draft_note(conn, CASE_ID, reviewer="ana", clock=at("2023-05-02"), config=NOTES)
    with pytest.raises(Interrupted):
        export_notes(conn, fmt="md", out_dir=tmp_path / "out", consumer_id=CASE_ID, reviewer="ana",
                     clock=at("2023-05-02"), config=NOTES, on_step=_fail_at("moved note-1-northwind-analytics.md"))
    assert conn.execute("SELECT status FROM export").fetchone()[0] == "rolled_back"
    assert conn.execute("SELECT count(*) FROM case_file").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM case_item").fetchone()[0] == 0
    assert due_cases(conn, at("2023-05-30")().date()) == []
    assert case_columns(conn) == ("open", None)          # its findings are confirmed again, no letter sent
    # The log says the case and its six items went back to nothing, in the take-back's action.
    taken = [e for e in log(conn, "case") + log(conn, "item") if e[3] is None and e[2] is not None]
    assert [(e[1], e[2]) for e in taken] == [("state", "letter_sent")] + [("state", "open")] * 6
    _verified(conn, tmp_path)
    # Exported again, it opens a new case.
    export_notes(conn, fmt="md", out_dir=tmp_path / "again", consumer_id=CASE_ID, reviewer="ana",
                 clock=at("2023-05-03"), config=NOTES)
    case = latest_case(conn, CASE_ID)
    assert (case.id, case.state, case.due_date) == (2, "letter_sent", "2023-05-24")
    _verified(conn, tmp_path)


def test_a_resent_letter_taken_back_gives_the_case_its_letter_and_due_date_back(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    reply = tmp_path / "reply.txt"
    reply.write_text("we will look into it")
    add_response(conn, CASE_ID, [reply], reviewer="bo", clock=at("2023-05-10"), max_bytes=1000)
    before = latest_case(conn, CASE_ID)
    assert (before.state, before.letter_note_id, before.due_date) == ("response_received", 1, DUE)
    draft_note(conn, CASE_ID, reviewer="ana", clock=at("2023-05-12"), config=NOTES)
    with pytest.raises(Interrupted):
        export_notes(conn, fmt="md", out_dir=tmp_path / "resent", consumer_id=CASE_ID, reviewer="ana",
                     clock=at("2023-05-12"), config=NOTES, on_step=_fail_at("moved note-2-northwind-analytics.md"))
    after = latest_case(conn, CASE_ID)
    assert (after.id, after.state, after.letter_note_id, after.due_date, after.letter_sent_at) == \
        (1, "response_received", 1, DUE, before.letter_sent_at)
    assert [e[1:4] for e in log(conn, "case")[-3:]] == [
        ("due_date", "2023-06-02", DUE), ("letter", "2", "1"), ("state", "letter_sent", "response_received")]
    assert conn.execute("SELECT count(*) FROM case_item").fetchone()[0] == 6
    _verified(conn, tmp_path)


def test_a_final_notice_taken_back_gives_the_case_its_due_date_back(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    draft_followup(conn, CASE_ID, "final", reviewer="bo", clock=at("2023-05-26"), config=NOTES)
    with pytest.raises(Interrupted):
        export_notes(conn, fmt="md", out_dir=tmp_path / "final", consumer_id=CASE_ID, reviewer="bo",
                     clock=at("2023-05-26"), config=NOTES, on_step=_fail_at("moved note-2-northwind-analytics.md"))
    assert latest_case(conn, CASE_ID).due_date == DUE
    # Undone newest first: the due date the notice moved, then the notice itself.
    assert [e[1:4] for e in log(conn, "case")[-4:]] == [
        ("followup", None, "final: note #2"), ("due_date", DUE, "2023-06-02"),
        ("due_date", "2023-06-02", DUE), ("followup", "final: note #2", None)]
    assert case_columns(conn) == ("letter_sent", DUE)
    _verified(conn, tmp_path)


def test_a_case_changed_after_the_export_was_recorded_is_left_and_named(tmp_path: Path) -> None:
    from store.db import connect

    conn = seed(tmp_path / "w.db")
    draft_note(conn, CASE_ID, reviewer="ana", clock=at("2023-05-02"), config=NOTES)
    reply = tmp_path / "reply.txt"
    reply.write_text("answers")

    def replied() -> None:       # another reviewer records a reply before the export completes
        other = connect(tmp_path / "w.db")
        add_response(other, CASE_ID, [reply], reviewer="bo", clock=at("2023-05-03"), max_bytes=1000)
        other.close()

    with pytest.raises(Interrupted):
        export_notes(conn, fmt="md", out_dir=tmp_path / "out", consumer_id=CASE_ID, reviewer="ana",
                     clock=at("2023-05-03"), config=NOTES, on_step=_fail_at("recorded", replied))
    note = conn.execute("SELECT status, note FROM export").fetchone()
    assert note[0] == "rolled_back"
    assert "case #1 of northwind-analytics changed after export; it is left as it is" in note[1]
    assert latest_case(conn, CASE_ID).state == "response_received"
    _verified(conn, tmp_path)


def test_a_ready_follow_up_is_frozen_and_verify_catches_its_text_edited(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    note = draft_followup(conn, CASE_ID, "reminder", reviewer="bo", clock=at("2023-05-20"), config=NOTES).note
    ready, _ = mark_ready(conn, note.id, reviewer="bo", clock=at("2023-05-20"))
    assert log(conn, "note")[-1][:2] == (note.id, "body_sha256")
    with pytest.raises(ConflictError, match="is ready, so its text is frozen"):
        save_body(conn, note.id, ready.body + "\nOne more thing.", expected_version=ready.version)
    _verified(conn, tmp_path)
    conn.execute("UPDATE note SET body = body || 'edited' WHERE id = ?", (note.id,))
    problems = verify_log(conn).problems
    assert [(p.kind, p.subject_id, p.field) for p in problems] == [("note", note.id, "body_sha256")]
