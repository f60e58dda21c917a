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
