"""From ``warden demo --headless`` to a closed case, headless all the way:
``warden decide confirm`` (each finding as detected), ``note draft``, ``note
ready`` and ``export --format all`` of the letter, ``warden due``, ``warden
response add``, items marked, a reminder drafted, frozen and exported, the case
closed with an outcome; ``warden case show``, ``warden report`` and ``warden
verify`` agree with what was done."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from store.db import connect
from tui.cli import main

CASE = "northwind-analytics"


def _run(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> tuple[str, str]:
    assert main(list(args)) == code, capsys.readouterr()
    captured = capsys.readouterr()
    return captured.out, captured.err


@pytest.mark.slow
def test_a_case_from_the_demo_to_its_outcome(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "demo.db")
    _run(capsys, "demo", "--headless", "--db", db)
    for command in (["decide", "confirm", CASE, "--reason", "over the monthly caps"], ["note", "draft", CASE],
                    ["note", "ready", CASE]):
        _run(capsys, *command, "--db", db, "--reviewer", "ana")
    today = datetime.now(timezone.utc).date()
    _, err = _run(capsys, "export", "--format", "all", "--out", str(tmp_path / "letter"), "--db", db,
                  "--reviewer", "ana")
    assert "warning" not in err
    assert sorted(p.suffix for p in (tmp_path / "letter").glob("note-1-*")) == [".eml", ".html", ".json", ".md"]
    conn = connect(db, readonly=True)
    # One letter sent, one case: the five formats are one letter.
    assert tuple(conn.execute("SELECT count(*), min(letter_note_id) FROM case_file").fetchone()) == (1, 1)
    conn.close()

    out, _ = _run(capsys, "due", "--json", "--db", db)
    listed = [json.loads(line) for line in out.splitlines()]
    assert [(c["consumer_id"], c["due_date"], c["days_left"], c["state"]) for c in listed] == \
        [(CASE, (today + timedelta(days=21)).isoformat(), 21, "letter_sent")]

    reply = tmp_path / "northwind-reply.pdf"
    reply.write_bytes(b"%PDF-1.7 We will review these questions and respond appropriately.")
    _run(capsys, "response", "add", CASE, str(reply), "--note", "holding reply", "--db", db, "--reviewer", "bo")
    out, _ = _run(capsys, "case", "show", CASE, "--json", "--db", db)
    shown = json.loads(out)
    digest = hashlib.sha256(reply.read_bytes()).hexdigest()
    assert shown["case_state"] == "response_received"
    assert shown["cases"][0]["responses"][0]["files"] == [{"name": "northwind-reply.pdf", "sha256": digest,
                                                            "bytes": 66}]

    _run(capsys, "case", "item", CASE, "purpose", "answered", "--comment", "reply, page 1", "--db", db,
         "--reviewer", "bo")
    _run(capsys, "case", "item", CASE, "signed_report", "refused", "--comment", "they will not sign", "--db", db,
         "--reviewer", "bo")
    _, err = _run(capsys, "followup", "draft", CASE, "--kind", "reminder", "--db", db, "--reviewer", "bo")
    assert "drafted note #2 (reminder)" in err
    _, err = _run(capsys, "note", "ready", CASE, "--db", db, "--reviewer", "bo")
    assert "note #2 of northwind-analytics (Reminder: Northwind Analytics Ltd, our letter of " in err
    _run(capsys, "export", "--format", "md", "--out", str(tmp_path / "reminder"), "--consumer", CASE, "--db", db,
         "--reviewer", "bo")
    reminder = (tmp_path / "reminder" / "note-2-northwind-analytics.md").read_text()
    assert f"Your response is due on\n**{today + timedelta(days=21):%-d %B %Y}**" in reminder
    assert "2. what data retrieved from the API is stored" in reminder and "\n1. the purpose" not in reminder

    _run(capsys, "case", "close", CASE, "--outcome", "within_limits", "--reason", "usage under the caps since",
         "--db", db, "--reviewer", "cy")
    out, _ = _run(capsys, "case", "show", CASE, "--db", db)
    assert out.startswith("Northwind Analytics Ltd (northwind-analytics): ")
    assert "outcome: Usage brought within limits" in out
    assert "    1. purpose        answered          reply, page 1" in out
    assert "note #2 reminder (exported" in out
    out, _ = _run(capsys, "due", "--db", db)
    assert out == ""
    html, _ = _run(capsys, "report", "--format", "html", "--db", db)
    assert "<td>resolved</td><td class=\"n\">1</td>" in html
    _, err = _run(capsys, "verify", "--db", db)
    assert "decision log verified" in err
    conn = connect(db)
    statuses = {r[0] for r in conn.execute("SELECT status FROM finding WHERE consumer_id = ? AND id IN "
                                           "(SELECT finding_id FROM note_finding WHERE note_id = 1)", (CASE,))}
    assert statuses == {"resolved"}
