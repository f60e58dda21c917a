"""``warden verify`` against each way of tampering with a database: an edited entry,
a finding or note changed behind the log's back, entries removed, renumbered,
swapped, or cut from the end (caught with ``--head``). Each is named: which entry,
or which finding / note, which field, the value in the table and the one the log
gives; exit 1."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from store.clock import fixed_clock
from store.config import NotesConfig
from store.db import connect
from store.notes import draft_note, mark_exported, mark_ready
from store.review import ConfirmRequest, DismissRequest, decide, mark_needs_info, undo_last
from store.verify import verify_log
from tui.cli import main as cli_main

CLOCK = fixed_clock(datetime(2023, 5, 2, 9, 0, tzinfo=timezone.utc))
CASE = "northwind-analytics"


@pytest.fixture
def decided(demo_copy: Path) -> Path:
    """The demo case confirmed, another consumer's finding dismissed, one parked, and
    the case's note drafted and marked ready."""
    conn = connect(demo_copy)
    decide(conn, ConfirmRequest((), None, None, "far over the caps"), [CASE], versions={}, reviewer="ana",
           clock=CLOCK)
    decide(conn, DismissRequest((), "within_allowance", "agreed uplift"), ["kestrel-media"], versions={},
           reviewer="bo", clock=CLOCK)
    parked = conn.execute("SELECT id FROM finding WHERE consumer_id = 'fenwick-signal' ORDER BY id LIMIT 1"
                          ).fetchone()[0]
    mark_needs_info(conn, parked, reviewer="bo", reason="which app?", clock=CLOCK)
    note = draft_note(conn, CASE, reviewer="ana", clock=CLOCK, config=NotesConfig())
    mark_ready(conn, note.id, reviewer="ana", clock=CLOCK)
    assert verify_log(conn).ok
    conn.close()
    return demo_copy


def tamper(db: Path, *statements: str) -> None:
    """Run SQL on the file as someone with write access would, triggers dropped."""
    raw = sqlite3.connect(db, isolation_level=None)
    raw.execute("DROP TRIGGER IF EXISTS decision_no_update")
    raw.execute("DROP TRIGGER IF EXISTS decision_no_delete")
    for statement in statements:
        raw.execute(statement)
    raw.close()


def verify(db: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli_main(["verify", "--db", str(db), *args])
    return code, capsys.readouterr().err


def _head(db: Path) -> tuple[int, str]:
    conn = sqlite3.connect(db)
    row = conn.execute("SELECT id, hash FROM decision ORDER BY id DESC LIMIT 1").fetchone()
    conn.close()
    return row


def test_a_sound_database_verifies_and_json_prints_the_head(decided: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    last, head = _head(decided)
    assert cli_main(["verify", "--db", str(decided), "--json"]) == 0
    event = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert event["ok"] is True and event["head"] == head and event["checked"] == last


def test_a_finding_forged_to_confirmed_is_named(decided: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The defect: UPDATE finding SET status = 'confirmed' with no log entry passed draft, export and verify.
    conn = sqlite3.connect(decided)
    fid = conn.execute("SELECT id FROM finding WHERE consumer_id = 'quillmark-systems' AND status = 'candidate'"
                       " ORDER BY id LIMIT 1").fetchone()[0]
    conn.close()
    tamper(decided, f"UPDATE finding SET status = 'confirmed' WHERE id = {fid}")
    code, err = verify(decided, capsys=capsys)
    assert code == 1
    assert f"finding #{fid} status: the table says confirmed, the log says candidate" in err
    assert "chain" not in err.split("BROKEN", 1)[1].split("\n")[0]      # the chain itself is intact


@pytest.mark.parametrize("field, forged", [("severity", "low"), ("category", "restricted_use")])
def test_a_confirmed_findings_severity_or_category_changed_behind_the_log_is_named(
        decided: Path, field: str, forged: str, capsys: pytest.CaptureFixture[str]) -> None:
    conn = sqlite3.connect(decided)
    fid, was = conn.execute(f"SELECT id, {field} FROM finding WHERE consumer_id = ? AND period = '2022'"
                            " AND category = 'volume_cap' AND metric = 'records'", (CASE,)).fetchone()
    conn.close()
    tamper(decided, f"UPDATE finding SET {field} = '{forged}' WHERE id = {fid}")
    code, err = verify(decided, capsys=capsys)
    assert code == 1 and f"finding #{fid} {field}: the table says {forged}, the log says {was}" in err


def test_a_dismissal_rewritten_as_open_is_named(decided: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conn = sqlite3.connect(decided)
    fid = conn.execute("SELECT id FROM finding WHERE consumer_id = 'kestrel-media' LIMIT 1").fetchone()[0]
    conn.close()
    tamper(decided, f"UPDATE finding SET status = 'candidate' WHERE id = {fid}")
    code, err = verify(decided, capsys=capsys)
    assert code == 1 and f"finding #{fid} status: the table says candidate, the log says dismissed" in err


def test_a_ready_notes_text_edited_behind_the_log_is_named(decided: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    tamper(decided, "UPDATE note SET body = replace(body, 'more than', 'about') WHERE consumer_id = "
                    f"'{CASE}'")
    code, err = verify(decided, capsys=capsys)
    assert code == 1 and "note #1 text: its SHA-256 in the table is" in err and "became ready" in err


def test_a_note_status_forged_is_named(decided: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tamper(decided, "UPDATE note SET status = 'exported' WHERE id = 1")
    code, err = verify(decided, capsys=capsys)
    assert code == 1 and "note #1 status: the table says exported, the log says ready" in err


def test_an_edited_entry_is_named(decided: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tamper(decided, "UPDATE decision SET reason = 'nothing to see' WHERE id = 7")
    code, err = verify(decided, capsys=capsys)
    assert code == 1 and "entry 7:" in err and "edited" in err


def test_a_removed_entry_is_named(decided: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tamper(decided, "DELETE FROM decision WHERE id = 7")
    code, err = verify(decided, capsys=capsys)
    assert code == 1 and "entry #7 before it is missing" in err


def test_a_removed_entry_with_the_rest_renumbered_is_named(decided: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # Entry 240 (a note's status) removed, and every later entry moved down one to close the gap.
    tamper(decided, "DELETE FROM decision WHERE id = 240", "UPDATE decision SET id = id - 1 WHERE id > 240")
    code, err = verify(decided, capsys=capsys)
    assert code == 1
    assert "an entry was removed between #239 and #240" in err and "renumbered" in err


def test_swapped_entries_are_named(decided: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Two entries of different actions exchange their numbers (their order in the log).
    tamper(decided, "UPDATE decision SET id = -1 WHERE id = 100", "UPDATE decision SET id = 100 WHERE id = 101",
           "UPDATE decision SET id = 101 WHERE id = -1")
    code, err = verify(decided, capsys=capsys)
    assert code == 1 and "entries #100 and #101 were swapped" in err


def test_renumbered_entries_are_named(decided: Path, capsys: pytest.CaptureFixture[str]) -> None:
    last, _ = _head(decided)
    tamper(decided, f"UPDATE decision SET id = id + 1000 WHERE id > {last - 3}")
    code, err = verify(decided, capsys=capsys)
    assert code == 1 and f"entries from #{last - 2 + 1000} on were renumbered" in err
    assert "nothing was removed" in err


def test_a_truncated_tail_passes_alone_and_fails_against_the_head(decided: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    last, head = _head(decided)
    code, err = verify(decided, "--head", head, capsys=capsys)
    assert code == 0
    _, ancestor = sqlite3.connect(decided).execute("SELECT id, hash FROM decision WHERE id = ?",
                                                   (last - 5,)).fetchone()
    assert verify(decided, "--head", ancestor, capsys=capsys)[0] == 0      # the log grew since: fine
    # The note's "ready" (status and text hash: the last two entries) cut, and the note put back
    # as the shortened log says: the chain and the replay agree again.
    tamper(decided, f"DELETE FROM decision WHERE id > {last - 2}", "UPDATE note SET status = 'draft'")
    code, err = verify(decided, capsys=capsys)
    assert code == 0, err     # what is left is consistent: only a known head can tell
    code, err = verify(decided, "--head", head, capsys=capsys)
    assert code == 1 and f"head {head} is not in the log" in err and "removed from its end" in err


def test_a_head_that_is_not_a_hash_is_bad_usage(decided: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        cli_main(["verify", "--db", str(decided), "--head", "abc"])
    assert usage.value.code == 2 and "SHA-256" in capsys.readouterr().err


# --- every problem word for word, with the fields --json prints --------------------


def _report(db: Path, **kwargs: object) -> tuple[int, str | None, list[dict[str, object]]]:
    conn = connect(db)
    try:
        report = verify_log(conn, **kwargs)
    finally:
        conn.close()
    assert report.ok == (not report.problems)
    return report.checked, report.head, [p.as_json() for p in report.problems]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_every_kind_of_forgery_at_once_is_named_word_for_word(decided: Path) -> None:
    raw = sqlite3.connect(decided)
    sixth = raw.execute("SELECT hash FROM decision WHERE id = 6").fetchone()[0]
    body = raw.execute("SELECT body FROM note WHERE id = 1").fetchone()[0]
    raw.close()
    tamper(decided,
           "UPDATE decision SET reason = 'nothing to see' WHERE id = 7",          # ana's confirmation of #27
           "UPDATE finding SET status = 'confirmed' WHERE id IN (1, 2)",          # #1 parked by bo; #2 undecided
           "UPDATE finding SET status = 'candidate' WHERE id = 21",               # dismissed by bo
           "UPDATE finding SET severity = 'low', category = 'restricted_use' WHERE id = 25",
           "UPDATE finding SET severity = 'low' WHERE id = 22",    # dismissed: its severity was never decided
           "DELETE FROM finding WHERE id IN (181, 30)",     # a set of the two would give 181 first
           "UPDATE note SET status = 'exported', body = body || 'x'",
           "INSERT INTO note (consumer_id, template, subject, body, created_at, updated_at)"
           " VALUES ('kestrel-media', 't', 's', 'b', 't', 't')")
    checked, head, problems = _report(decided)
    assert (checked, head) == (6, sixth)          # the chain stops at the edited entry
    assert problems == [
        {"kind": "chain", "entry": 7,
         "message": "entry 7: its recorded fields no longer match its hash: the entry was edited after it was "
                    "written (now: 2023-05-02T09:00:00Z ana finding #27 status: candidate -> confirmed "
                    "(nothing to see))"},
        {"kind": "finding", "entry": 239, "subject_id": 1, "field": "status", "table": "confirmed",
         "logged": "needs_info",
         "message": "finding #1 status: the table says confirmed, the log says needs_info (entry 239)"},
        {"kind": "finding", "subject_id": 2, "field": "status", "table": "confirmed", "logged": "candidate",
         "message": "finding #2 status: the table says confirmed, the log says candidate (no decision recorded: a "
                    "finding starts as candidate)"},
        {"kind": "finding", "entry": 235, "subject_id": 21, "field": "status", "table": "candidate",
         "logged": "dismissed",
         "message": "finding #21 status: the table says candidate, the log says dismissed (entry 235)"},
        {"kind": "finding", "entry": 2, "subject_id": 25, "field": "severity", "table": "low", "logged": "high",
         "message": "finding #25 severity: the table says low, the log says high (entry 2)"},
        {"kind": "finding", "entry": 3, "subject_id": 25, "field": "category", "table": "restricted_use",
         "logged": "volume_cap",
         "message": "finding #25 category: the table says restricted_use, the log says volume_cap (entry 3)"},
        {"kind": "finding", "subject_id": 30,
         "message": "finding #30 is in the log but not in the database (deleted)"},
        {"kind": "finding", "subject_id": 181,
         "message": "finding #181 is in the log but not in the database (deleted)"},
        {"kind": "note", "entry": 242, "subject_id": 1, "field": "status", "table": "exported", "logged": "ready",
         "message": "note #1 status: the table says exported, the log says ready (entry 242)"},
        {"kind": "note", "entry": 242, "subject_id": 1, "field": "body_sha256", "table": _sha256(body + "x"),
         "logged": _sha256(body),
         "message": f"note #1 text: its SHA-256 in the table is {_sha256(body + 'x')}, the log says "
                    f"{_sha256(body)} (logged when it became ready, entry 242): the text was edited since"},
        {"kind": "note", "subject_id": 2, "field": "status", "table": "draft",
         "message": "note #2 has no entry in the log (every note's drafting is logged)"},
    ]


def test_a_note_put_back_to_draft_is_named_once_and_its_text_is_the_reviewers(decided: Path) -> None:
    tamper(decided, "UPDATE note SET status = 'draft', body = body || 'x'")
    assert _report(decided)[2] == [
        {"kind": "note", "entry": 242, "subject_id": 1, "field": "status", "table": "draft", "logged": "ready",
         "message": "note #1 status: the table says draft, the log says ready (entry 242)"}]


def test_a_deleted_note_is_named(decided: Path) -> None:
    tamper(decided, "DELETE FROM note")
    assert _report(decided)[2] == [
        {"kind": "note", "subject_id": 1, "message": "note #1 is in the log but not in the database (deleted)"}]


def test_a_head_from_elsewhere_is_named_with_both_hashes(decided: Path, tmp_path: Path) -> None:
    last, head = _head(decided)
    forged = "ab" * 32
    assert _report(decided, head=head) == (last, head, [])
    assert _report(decided, head=forged)[2] == [
        {"kind": "head", "field": "head", "table": head, "logged": forged,
         "message": f"head {forged} is not in the log (its head is now {head}): entries were removed from its end, "
                    "or the head is from another database"}]
    empty = connect(tmp_path / "empty.db")
    empty.close()
    assert _report(tmp_path / "empty.db", head=forged) == (0, None, [
        {"kind": "head", "field": "head", "logged": forged,
         "message": f"head {forged} is not in the log (its head is now empty): entries were removed from its end, "
                    "or the head is from another database"}])


def test_a_text_edited_after_an_export_of_several_notes_is_named(decided: Path) -> None:
    # An export marks its notes in one action begun by an earlier entry (here #235): the
    # text's hash is the one logged in that action, not under the status entry's own number.
    conn = connect(decided)
    body = conn.execute("SELECT body FROM note WHERE id = 1").fetchone()[0]
    mark_exported(conn, 1, reviewer="ana", clock=CLOCK, reason="exported as md (export #1)", action_id=235)
    conn.close()
    tamper(decided, "UPDATE note SET body = body || 'x'")
    assert _report(decided)[2] == [
        {"kind": "note", "entry": 244, "subject_id": 1, "field": "body_sha256", "table": _sha256(body + "x"),
         "logged": _sha256(body),
         "message": f"note #1 text: its SHA-256 in the table is {_sha256(body + 'x')}, the log says "
                    f"{_sha256(body)} (logged when it became exported, entry 244): the text was edited since"}]


def test_notes_after_an_unlogged_note_and_a_draft_are_still_checked(demo_copy: Path) -> None:
    # Note #1 slipped in with no log entry, #2 a draft (its text the reviewer's), #3 ready and
    # then edited: the first two must not stop the check of the third.
    tamper(demo_copy, "INSERT INTO note (consumer_id, template, subject, body, created_at, updated_at)"
                      " VALUES ('quillmark-systems', 't', 's', 'b', 't', 't')")
    conn = connect(demo_copy)
    draft_note(conn, "fenwick-signal", reviewer="bo", clock=CLOCK, config=NotesConfig())
    decide(conn, ConfirmRequest((), None, None, "far over the caps"), [CASE], versions={}, reviewer="ana",
           clock=CLOCK)
    ready = draft_note(conn, CASE, reviewer="ana", clock=CLOCK, config=NotesConfig())
    mark_ready(conn, ready.id, reviewer="ana", clock=CLOCK)
    entry, body = conn.execute("SELECT max(id), (SELECT body FROM note WHERE id = 3) FROM decision"
                               " WHERE subject = 'note' AND field = 'status'").fetchone()
    conn.close()
    tamper(demo_copy, "UPDATE note SET body = body || 'x' WHERE id IN (2, 3)")
    assert _report(demo_copy)[2] == [
        {"kind": "note", "subject_id": 1, "field": "status", "table": "draft",
         "message": "note #1 has no entry in the log (every note's drafting is logged)"},
        {"kind": "note", "entry": entry, "subject_id": 3, "field": "body_sha256", "table": _sha256(body + "x"),
         "logged": _sha256(body),
         "message": f"note #3 text: its SHA-256 in the table is {_sha256(body + 'x')}, the log says "
                    f"{_sha256(body)} (logged when it became ready, entry {entry}): the text was edited since"}]


def test_a_status_problem_names_the_findings_own_entry_not_the_action_it_was_part_of(decided: Path) -> None:
    # bo dismissed kestrel-media's findings in one action: the action is numbered by its
    # first entry, each finding's status by its own. Take a finding after the first.
    raw = sqlite3.connect(decided)
    fid, entry, action = raw.execute(
        "SELECT d.subject_id, d.id, d.action_id FROM decision AS d JOIN finding AS f ON f.id = d.subject_id"
        " WHERE d.subject = 'finding' AND d.field = 'status' AND f.consumer_id = 'kestrel-media'"
        " ORDER BY d.id DESC LIMIT 1").fetchone()
    raw.close()
    assert entry != action      # else the test could not tell them apart
    tamper(decided, f"UPDATE finding SET status = 'confirmed' WHERE id = {fid}")
    assert _report(decided)[2] == [
        {"kind": "finding", "entry": entry, "subject_id": fid, "field": "status", "table": "confirmed",
         "logged": "dismissed",
         "message": f"finding #{fid} status: the table says confirmed, the log says dismissed (entry {entry})"}]


def test_a_candidate_regraded_by_the_rules_after_an_undone_confirmation_is_no_problem(decided: Path) -> None:
    # ana's confirmation logged each finding's severity; undone, they are candidates
    # again, which the rules may re-grade without a decision: not a forgery.
    conn = connect(decided)
    undo_last(conn, reviewer="ana", clock=CLOCK)      # the note is ana's last action: not on findings
    fid, severity = conn.execute(
        "SELECT id, severity FROM finding WHERE consumer_id = ? AND status = 'candidate' ORDER BY id LIMIT 1",
        (CASE,)).fetchone()
    logged = conn.execute("SELECT new_value FROM decision WHERE subject = 'finding' AND subject_id = ?"
                          " AND field = 'severity' ORDER BY id DESC LIMIT 1", (fid,)).fetchone()
    conn.close()
    assert logged is not None and logged[0] == severity       # a severity is in the log for it
    regraded = "low" if severity != "low" else "critical"
    tamper(decided, f"UPDATE finding SET severity = '{regraded}' WHERE id = {fid}")
    assert _report(decided)[2] == []


def test_a_head_checked_beside_other_problems_keeps_them_all(decided: Path) -> None:
    last, head = _head(decided)
    tamper(decided, "UPDATE note SET status = 'draft'")
    forged = "cd" * 32
    problems = _report(decided, head=forged)[2]
    assert [p["kind"] for p in problems] == ["note", "head"]
    assert problems[0]["message"].startswith("note #1 status: the table says draft, the log says ready")
