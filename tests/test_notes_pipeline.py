"""From usage to letter through the real rules and review functions: the case's note and exports."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
from pathlib import Path

from notes_case import CASE_ID, CLOCK, seed
from store.config import NotesConfig
from store.export import export_notes
from store.notes import draft_note, save_body, set_note_status
from store.decision_log import verify_chain
from store.review import confirm_violation
from store.rules import run_rules


def test_rules_findings_confirmed_drafted_edited_and_exported(tmp_path: Path) -> None:
    conn = seed(tmp_path / "warden.db", findings=False)
    run_rules(conn, clock=CLOCK, consumer_ids=[CASE_ID])
    candidates = conn.execute("SELECT id, category, period FROM finding WHERE consumer_id = ? ORDER BY id",
                              (CASE_ID,)).fetchall()
    assert {c[1] for c in candidates} >= {"volume_cap"}
    for fid, _, _ in candidates:
        confirm_violation(conn, fid, reviewer="ana", severity="high", reason="over the cap", clock=CLOCK)

    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=NotesConfig())
    flat = " ".join(note.body.split())
    assert note.finding_ids == tuple(c[0] for c in candidates)
    assert "In 2022 (2022-01-01 to 2022-12-31, UTC days; figures for each of its 365 days)" in flat
    assert "accessed the API more than 790 million times and retrieved more than 26 billion records" in flat
    assert "| 100,000,000 per year |" in flat and "| 500,000,000 per month |" in flat

    version = save_body(conn, note.id, note.body.replace("Please respond by", "Kindly respond by"),
                        expected_version=note.version, clock=CLOCK)
    set_note_status(conn, note.id, "ready", reviewer="ana", clock=CLOCK, expected_version=version)
    out = tmp_path / "export"
    for fmt in ("md", "html", "eml", "json", "csv"):
        result = export_notes(conn, fmt=fmt, out_dir=out, consumer_id=CASE_ID, reviewer="ana", clock=CLOCK)
        manifest = json.loads((out / f"manifest-{fmt}.json").read_text())
        for entry in manifest["files"]:
            assert hashlib.sha256((out / entry["name"]).read_bytes()).hexdigest() == entry["sha256"]
        assert result.files[-1].name == f"manifest-{fmt}.json"
    assert "Kindly respond by" in (out / f"note-{note.id}-northwind-analytics.md").read_text()
    msg = email.message_from_bytes((out / f"note-{note.id}-northwind-analytics.eml").read_bytes(),
                                   policy=email.policy.default)
    assert msg["X-Unsent"] == "1" and "Kindly respond by" in msg.get_body(("plain",)).get_content()
    statuses = {r[0] for r in conn.execute("SELECT status FROM finding WHERE consumer_id = ?", (CASE_ID,))}
    assert statuses == {"audit_requested"}
    assert verify_chain(conn).ok
