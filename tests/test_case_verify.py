"""``warden verify`` on cases: each tampering with a case, an item, a response
or a stored file is named; an untouched database verifies."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from store.casework.evidence import evidence_dir, stored_path
from store.casework.items import ItemChange, mark_items
from store.casework.responses import add_response
from store.verify import case_problems
from store.db import connect
from tests.cases_data import at, sent_case
from tests.notes_case import CASE_ID
from tui.cli import main

REPLY = b"We will review these questions and respond appropriately."


@pytest.fixture
def replied(tmp_path: Path) -> Path:
    conn = sent_case(tmp_path)
    reply = tmp_path / "reply.pdf"
    reply.write_bytes(REPLY)
    add_response(conn, CASE_ID, [reply], reviewer="bo", clock=at("2023-05-20"), max_bytes=1000, note="holding")
    mark_items(conn, 1, [ItemChange("purpose", "answered")], comment="reply, page 1", reviewer="bo",
               clock=at("2023-05-21"))
    conn.close()
    return tmp_path / "w.db"


def _tamper(db: Path, sql: str) -> None:
    """Change a table behind the log's back (as someone with the file would)."""
    raw = sqlite3.connect(db)
    raw.execute(sql)
    raw.commit()
    raw.close()


def _messages(db: Path) -> list[str]:
    conn = connect(db)
    try:
        return [p.message for p in case_problems(conn, evidence_dir(db))]
    finally:
        conn.close()


def test_an_untouched_case_verifies(replied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _messages(replied) == []
    assert main(["verify", "--db", str(replied)]) == 0
    assert "decision log verified" in capsys.readouterr().err


def test_an_edited_evidence_file_is_named(replied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import hashlib

    digest = hashlib.sha256(REPLY).hexdigest()
    path = stored_path(evidence_dir(replied), digest)
    path.write_bytes(REPLY.replace(b"review", b"ignore"))
    edited = hashlib.sha256(REPLY.replace(b"review", b"ignore")).hexdigest()
    assert _messages(replied) == [f"evidence file {digest}: {path} was edited: its content now hashes to {edited} "
                                  "(57 bytes)"]
    assert main(["verify", "--db", str(replied)]) == 1
    err = capsys.readouterr().err
    assert f"warden: evidence store BROKEN: evidence file {digest}: {path} was edited" in err
    assert "warden: 1 problem(s) (32 entries checked)" in err


def test_a_removed_evidence_file_is_named(replied: Path) -> None:
    import hashlib

    digest = hashlib.sha256(REPLY).hexdigest()
    path = stored_path(evidence_dir(replied), digest)
    os.remove(path)
    assert _messages(replied) == [f"evidence file {digest}: {path} is missing (removed from the evidence store)"]


def test_an_item_changed_without_a_log_entry_is_named(replied: Path) -> None:
    _tamper(replied, "UPDATE case_item SET state = 'answered' WHERE item = 'storage'")
    assert _messages(replied) == ["item storage of case #1 state: the table says answered, the log says open "
                                  "(entry 21): changed without a log entry"]


def test_an_item_comment_rewritten_is_named(replied: Path) -> None:
    _tamper(replied, "UPDATE case_item SET comment = 'fully answered' WHERE item = 'purpose'")
    assert _messages(replied) == ["item purpose of case #1 comment: the table says 'fully answered', the log says "
                                  "'reply, page 1' (entry 32)"]


@pytest.mark.parametrize(("sql", "message"), [
    ("UPDATE case_file SET state = 'resolved'",
     "case #1 state: the table says resolved, the log says response_received (entry 31)"),
    ("UPDATE case_file SET due_date = '2023-06-30'",
     "case #1 due_date: the table says 2023-06-30, the log says 2023-05-23 (entry 19)"),
    ("UPDATE case_file SET outcome = 'within_limits'",
     "case #1 outcome: the table says within_limits, and the log has no entry for it"),
    ("UPDATE response SET received_on = '2023-05-10'",
     "response #1 received: the table says 2023-05-10, the log says 2023-05-20\n"
     "response #1 file {digest}: the table says 'reply.pdf; 57 bytes; received 2023-05-10', the log says "
     "'reply.pdf; 57 bytes; received 2023-05-20' (entry 30)"),
    ("UPDATE response_file SET name = 'other.pdf'",
     "response #1 file {digest}: the table says 'other.pdf; 57 bytes; received 2023-05-20', the log says "
     "'reply.pdf; 57 bytes; received 2023-05-20' (entry 30)"),
    ("DELETE FROM response_file",
     "response #1 file {digest}: in the log, not in the database (deleted)"),
])
def test_each_forged_case_row_is_named(replied: Path, sql: str, message: str) -> None:
    import hashlib

    _tamper(replied, sql)
    assert _messages(replied) == message.format(digest=hashlib.sha256(REPLY).hexdigest()).split("\n")


# --- the whole problem, as --json prints it ----------------------------------------


def _problems(db: Path, *, files: bool = True) -> list[dict[str, object]]:
    conn = connect(db)
    try:
        return [p.as_json() for p in case_problems(conn, evidence_dir(db) if files else None)]
    finally:
        conn.close()


def test_forged_case_rows_are_named_with_their_fields(replied: Path) -> None:
    for sql in ("UPDATE case_file SET state = 'closed', outcome = 'within_limits', escalated_to = 'legal'",
                "INSERT INTO case_file (consumer_id, state, opened_at, updated_at)"
                " VALUES ('northwind-analytics', 'reopened', 't', 't')",
                "UPDATE case_item SET state = 'refused', comment = 'no' WHERE item = 'storage'",
                "INSERT INTO case_item (case_id, item, position, state, updated_at)"
                " VALUES (1, 'extra', 7, 'open', 't')",
                "DELETE FROM case_item WHERE item IN ('deletion', 'workarounds')",
                "INSERT INTO response (id, case_id, received_on, recorded_at, reviewer)"
                " VALUES (2, 1, '2023-05-25', 't', 'x')",
                f"INSERT INTO response_file VALUES (1, '{'c' * 64}', 'extra.pdf', 3)"):
        _tamper(replied, sql)
    assert _problems(replied) == [
        {"kind": "case", "entry": 31, "subject_id": 1, "field": "state", "table": "closed",
         "logged": "response_received",
         "message": "case #1 state: the table says closed, the log says response_received (entry 31)"},
        {"kind": "case", "subject_id": 1, "field": "outcome", "table": "within_limits",
         "message": "case #1 outcome: the table says within_limits, and the log has no entry for it"},
        {"kind": "case", "subject_id": 1, "field": "escalated_to", "table": "legal",
         "message": "case #1 escalated_to: the table says legal, and the log has no entry for it"},
        {"kind": "case", "subject_id": 2, "field": "state", "table": "reopened",
         "message": "case #2 state: the table says reopened, and the log has no entry for it"},
        {"kind": "item", "entry": 21, "subject_id": 2, "field": "state", "table": "refused", "logged": "open",
         "message": "item storage of case #1 state: the table says refused, the log says open (entry 21): changed "
                    "without a log entry"},
        {"kind": "item", "subject_id": 7, "field": "state", "table": "open",
         "message": "item extra of case #1 is open and the log has no entry for it"},
        {"kind": "item", "subject_id": 3, "message": "item #3 is in the log but not in the database (deleted)"},
        {"kind": "item", "subject_id": 5, "message": "item #5 is in the log but not in the database (deleted)"},
        {"kind": "response", "subject_id": 2, "field": "received", "table": "2023-05-25",
         "message": "response #2 received: the table says 2023-05-25, the log says nothing"},
        {"kind": "response", "subject_id": 1, "field": "file", "table": "c" * 64,
         "message": f"response #1 file {'c' * 64}: in the table, not in the log"},
    ]


def test_forged_replies_and_files_are_named_with_their_fields(replied: Path) -> None:
    import hashlib

    digest = hashlib.sha256(REPLY).hexdigest()
    path = stored_path(evidence_dir(replied), digest)
    os.remove(path)
    _tamper(replied, "UPDATE response SET received_on = '2023-05-10'")
    _tamper(replied, "UPDATE case_item SET comment = 'all of it' WHERE item = 'purpose'")
    _tamper(replied, "DELETE FROM case_file")
    assert _problems(replied) == [
        {"kind": "case", "subject_id": 1, "message": "case #1 is in the log but not in the database (deleted)"},
        {"kind": "item", "entry": 32, "subject_id": 1, "field": "comment", "table": "all of it",
         "logged": "reply, page 1",
         "message": "item purpose of case #1 comment: the table says 'all of it', the log says 'reply, page 1' "
                    "(entry 32)"},
        {"kind": "response", "entry": 29, "subject_id": 1, "field": "received", "table": "2023-05-10",
         "logged": "2023-05-20",
         "message": "response #1 received: the table says 2023-05-10, the log says 2023-05-20"},
        {"kind": "response", "entry": 30, "subject_id": 1, "field": "file",
         "table": "reply.pdf; 57 bytes; received 2023-05-10", "logged": "reply.pdf; 57 bytes; received 2023-05-20",
         "message": f"response #1 file {digest}: the table says 'reply.pdf; 57 bytes; received 2023-05-10', the log "
                    "says 'reply.pdf; 57 bytes; received 2023-05-20' (entry 30)"},
        {"kind": "evidence", "field": "file", "logged": digest,
         "message": f"evidence file {digest}: {path} is missing (removed from the evidence store)"},
    ]
    assert _problems(replied, files=False) == _problems(replied)[:-1]     # no store given: files not checked
    _tamper(replied, "DELETE FROM response_file")
    assert _problems(replied)[-2] == {
        "kind": "response", "entry": 30, "subject_id": 1, "field": "file", "logged": digest,
        "message": f"response #1 file {digest}: in the log, not in the database (deleted)"}


def test_a_case_and_item_the_log_takes_back_are_not_missing(replied: Path) -> None:
    # A case withdrawn with its export: the log's last state of it and of its items is nothing.
    from store.clock import fixed_clock
    from store.decision_log import record_decision
    from datetime import datetime, timezone

    conn = connect(replied)
    clock = fixed_clock(datetime(2023, 5, 22, tzinfo=timezone.utc))
    record_decision(conn, subject="case", subject_id=1, field="state", old="response_received", new=None,
                    reason="export #1 taken back", reviewer="bo", clock=clock)
    record_decision(conn, subject="item", subject_id=2, field="state", old="open", new=None,
                    reason="export #1 taken back", reviewer="bo", clock=clock)
    conn.close()
    _tamper(replied, "DELETE FROM case_file")
    _tamper(replied, "DELETE FROM case_item WHERE item IN ('storage', 'deletion')")
    assert _problems(replied) == [
        {"kind": "item", "subject_id": 3, "message": "item #3 is in the log but not in the database (deleted)"}]


def test_subjects_missing_from_the_database_are_named_in_order(replied: Path) -> None:
    # Numbers whose set would not come out in order (10 before 3, 9 before 2).
    from store.clock import fixed_clock
    from store.decision_log import record_decision
    from datetime import datetime, timezone

    conn = connect(replied)
    clock = fixed_clock(datetime(2023, 5, 22, tzinfo=timezone.utc))
    for subject, subject_id in (("case", 10), ("case", 3), ("item", 9)):
        record_decision(conn, subject=subject, subject_id=subject_id, field="state", old=None, new="open",
                        reason=None, reviewer="bo", clock=clock)
    conn.close()
    _tamper(replied, "DELETE FROM case_item WHERE item = 'storage'")
    assert [p["message"] for p in _problems(replied)] == [
        "case #3 is in the log but not in the database (deleted)",
        "case #10 is in the log but not in the database (deleted)",
        "item #2 is in the log but not in the database (deleted)",
        "item #9 is in the log but not in the database (deleted)"]


def test_a_deleted_response_is_named(replied: Path) -> None:
    # The defect: a reply's row deleted behind the log's back was named only through its files
    # ("received ?"); a reply recorded with a note and no file vanished without a word.
    import hashlib

    digest = hashlib.sha256(REPLY).hexdigest()
    _tamper(replied, "DELETE FROM response")
    assert _problems(replied) == [
        {"kind": "response", "entry": 29, "subject_id": 1, "field": "received", "logged": "2023-05-20",
         "message": "response #1 is in the log but not in the database (deleted)"},
        {"kind": "response", "entry": 30, "subject_id": 1, "field": "file",
         "table": "reply.pdf; 57 bytes; received ?", "logged": "reply.pdf; 57 bytes; received 2023-05-20",
         "message": f"response #1 file {digest}: the table says 'reply.pdf; 57 bytes; received ?', the log says "
                    "'reply.pdf; 57 bytes; received 2023-05-20' (entry 30)"},
    ]


def test_a_deleted_reply_without_files_is_named(replied: Path) -> None:
    conn = connect(replied)
    added = add_response(conn, "northwind-analytics", [], reviewer="bo", clock=at("2023-05-22"), max_bytes=1000,
                         note="we will answer by June")
    conn.close()
    assert (added.response_id, _problems(replied)) == (2, [])
    _tamper(replied, "DELETE FROM response WHERE id = 2")
    assert _problems(replied) == [
        {"kind": "response", "entry": 33, "subject_id": 2, "field": "received", "logged": "2023-05-22",
         "message": "response #2 is in the log but not in the database (deleted)"}]


def test_items_after_an_unlogged_item_are_still_checked(replied: Path) -> None:
    from datetime import datetime, timezone

    from store.clock import fixed_clock
    from store.decision_log import record_decision

    conn = connect(replied)
    record_decision(conn, subject="item", subject_id=9, field="state", old=None, new="open", reason=None,
                    reviewer="bo", clock=fixed_clock(datetime(2023, 5, 22, tzinfo=timezone.utc)))
    conn.close()
    _tamper(replied, "INSERT INTO case_item (id, case_id, item, position, state, updated_at)"
                     " VALUES (8, 1, 'extra', 7, 'open', 't'), (9, 1, 'more', 8, 'refused', 't')")
    assert [p["message"] for p in _problems(replied)] == [
        "item extra of case #1 is open and the log has no entry for it",
        "item more of case #1 state: the table says refused, the log says open (entry 33): changed without a log "
        "entry"]
