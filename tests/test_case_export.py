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


def _after_recording(conn: sqlite3.Connection, export_id: int) -> list[tuple[object, ...]]:
    """(subject, subject id, field, old, new, reason, action id) of every log entry after
    the recording of export ``export_id``, in order."""
    last = conn.execute("SELECT max(id) FROM decision WHERE action_id = (SELECT action_id FROM export WHERE id = ?)",
                        (export_id,)).fetchone()[0]
    return [tuple(r) for r in conn.execute(
        "SELECT subject, subject_id, field, old_value, new_value, reason, action_id FROM decision WHERE id > ?"
        " ORDER BY id", (last,))]


def _taken_back(conn: sqlite3.Connection, export_id: int, note_id: int, step: str, *, after: int = 0
                ) -> list[tuple[object, ...]]:
    """(subject, subject id, field, old, new) of the case and item entries the take-back of
    export ``export_id`` wrote (from ``after`` entries past its recording on), having checked
    that it is one action, starting with the note's, whose every entry gives the reason."""
    entries = _after_recording(conn, export_id)[after:]
    assert entries[0][:3] == ("note", note_id, "status")
    assert {e[5] for e in entries} == {f"export #{export_id} could not be written ({step}); taken back"}
    assert {e[6] for e in entries} == {entries[0][6]}
    return [e[:5] for e in entries if e[0] in ("case", "item")]


def test_a_take_back_is_one_action_and_every_entry_gives_its_reason(tmp_path: Path) -> None:
    # A re-sent letter taken back: the case gets its due date, letter and state back.
    conn = sent_case(tmp_path)
    reply = tmp_path / "reply.txt"
    reply.write_text("we will look into it")
    add_response(conn, CASE_ID, [reply], reviewer="bo", clock=at("2023-05-10"), max_bytes=1000)
    draft_note(conn, CASE_ID, reviewer="ana", clock=at("2023-05-12"), config=NOTES)
    with pytest.raises(Interrupted):
        export_notes(conn, fmt="md", out_dir=tmp_path / "resent", consumer_id=CASE_ID, reviewer="ana",
                     clock=at("2023-05-12"), config=NOTES, on_step=_fail_at("moved note-2-northwind-analytics.md"))
    assert _taken_back(conn, 2, 2, "moved note-2-northwind-analytics.md") == [
        ("case", 1, "due_date", "2023-06-02", DUE), ("case", 1, "letter", "2", "1"),
        ("case", 1, "state", "letter_sent", "response_received")]
    # A final notice taken back: the notice and the due date it moved.
    draft_followup(conn, CASE_ID, "final", reviewer="bo", clock=at("2023-05-26"), config=NOTES)
    with pytest.raises(Interrupted):
        export_notes(conn, fmt="md", out_dir=tmp_path / "final", consumer_id=CASE_ID, reviewer="bo",
                     clock=at("2023-05-26"), config=NOTES, on_step=_fail_at("moved note-3-northwind-analytics.md"))
    assert _taken_back(conn, 3, 3, "moved note-3-northwind-analytics.md") == [
        ("case", 1, "due_date", "2023-06-02", DUE), ("case", 1, "followup", "final: note #3", None)]
    _verified(conn, tmp_path)


def test_one_case_changed_after_the_export_does_not_keep_the_others_it_opened(tmp_path: Path) -> None:
    from store.db import connect

    conn = seed(tmp_path / "w.db", consumers=1)
    draft_note(conn, CASE_ID, reviewer="ana", clock=at("2023-05-02"), config=NOTES)
    draft_note(conn, "bulk-00000", reviewer="ana", clock=at("2023-05-02"), config=NOTES)
    reply = tmp_path / "reply.txt"
    reply.write_text("answers")

    def replied() -> None:       # another reviewer records Northwind's reply before the export completes
        other = connect(tmp_path / "w.db")
        add_response(other, CASE_ID, [reply], reviewer="bo", clock=at("2023-05-03"), max_bytes=1000)
        other.close()

    with pytest.raises(Interrupted):
        export_notes(conn, fmt="md", out_dir=tmp_path / "out", note_ids=[1, 2], reviewer="ana",
                     clock=at("2023-05-03"), config=NOTES, on_step=_fail_at("recorded", replied))
    assert tuple(conn.execute("SELECT status, note FROM export").fetchone()) == (
        "rolled_back", "export #1 could not be written (recorded); taken back; case #1 of northwind-analytics "
        "changed after export; it is left as it is: check its letter, due date and state")
    # Northwind's case is left (it has a reply); bulk-00000's case #2 and its six items are gone.
    assert [tuple(r) for r in conn.execute("SELECT id, consumer_id, state FROM case_file")] == [
        (1, "northwind-analytics", "response_received")]
    assert [r[0] for r in conn.execute("SELECT DISTINCT case_id FROM case_item")] == [1]
    assert case_columns(conn, "bulk-00000") == ("open", None)
    assert _taken_back(conn, 1, 1, "recorded", after=3) == [      # after the reply's three entries
        ("item", n, "state", "open", None) for n in range(12, 6, -1)] + [("case", 2, "state", "letter_sent", None)]
    _verified(conn, tmp_path)


def _escalated(conn: sqlite3.Connection, tmp_path: Path) -> None:
    from store.casework.state import escalate_case

    escalate_case(conn, CASE_ID, to="Counsel", reason="no answers", reviewer="bo", clock=at("2023-05-20"))


def _item_answered(conn: sqlite3.Connection, tmp_path: Path) -> None:
    from store.casework.items import ItemChange, mark_items

    mark_items(conn, 1, [ItemChange("purpose", "answered")], comment="in the reply", reviewer="bo",
               clock=at("2023-05-20"))


def _second_reply(conn: sqlite3.Connection, tmp_path: Path) -> None:
    more = tmp_path / "more.txt"
    more.write_text("more answers")
    add_response(conn, CASE_ID, [more], reviewer="bo", clock=at("2023-05-20"), max_bytes=1000)


@pytest.mark.parametrize("change", [_escalated, _item_answered, _second_reply],
                         ids=["the case itself", "one of its items", "a reply only"])
def test_any_change_to_a_case_after_its_follow_up_was_recorded_keeps_it(tmp_path: Path, change) -> None:  # noqa: ANN001
    from store.db import connect

    conn = sent_case(tmp_path)
    reply = tmp_path / "reply.txt"
    reply.write_text("some answers")
    add_response(conn, CASE_ID, [reply], reviewer="bo", clock=at("2023-05-10"), max_bytes=1000)
    draft_followup(conn, CASE_ID, "reminder", reviewer="bo", clock=at("2023-05-20"), config=NOTES)

    def meanwhile() -> None:      # another reviewer's change, before the export's files are out
        other = connect(tmp_path / "w.db")
        change(other, tmp_path)
        other.close()

    with pytest.raises(Interrupted):
        export_notes(conn, fmt="md", out_dir=tmp_path / "reminder", consumer_id=CASE_ID, reviewer="bo",
                     clock=at("2023-05-20"), config=NOTES, on_step=_fail_at("recorded", meanwhile))
    assert conn.execute("SELECT note FROM export WHERE id = 2").fetchone()[0] == (
        "export #2 could not be written (recorded); taken back; case #1 of northwind-analytics changed after "
        "export; it is left as it is: check its letter, due date and state")
    # The reminder's entry on the case stays: the case was left as it is.
    assert [e[1:4] for e in log(conn, "case") if e[1] == "followup"] == [("followup", None, "reminder: note #2")]
    _verified(conn, tmp_path)
