"""A case after its letter: opened by the export with its due date and items,
closed with an outcome, escalated, each change in the decision log; the
consumer's case columns the queue reads; a database from before cases migrated
with its log intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store.casework.state import change_case, close_case, escalate_case, get_case, latest_case, open_case
from store.casework.timeline import case_view, timeline
from store.config import NotesConfig
from store.db import connect
from store.decision_log import verify_chain
from store.errors import ConflictError, DecisionRefused
from tests.cases_data import DUE, ITEM_IDS, at, case_columns, log, send_letter, sent_case
from tests.notes_case import CASE_ID, HOSTILE_ID, seed


def test_exporting_the_letter_opens_the_case_due_21_days_later(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    case = latest_case(conn, CASE_ID)
    assert case is not None
    assert (case.id, case.state, case.letter_note_id, case.letter_sent_at, case.due_date) == \
        (1, "letter_sent", 1, "2023-05-02T09:30:00Z", DUE)
    reason = "note #1 exported as md (export #1)"
    assert log(conn, "case") == [
        (1, "state", None, "letter_sent", reason),
        (1, "letter", None, "1", f"{reason}; response due {DUE} (21 days)"),
        (1, "due_date", None, DUE, f"{reason}; response due {DUE} (21 days)"),
    ]
    view = case_view(conn, CASE_ID)
    assert view is not None and [(i.number, i.item, i.state) for i in view.items] == \
        [(n, item, "open") for n, item in enumerate(ITEM_IDS, start=1)]
    assert [(sid, field, old, new) for sid, field, old, new, _ in log(conn, "item")] == \
        [(n, "state", None, "open") for n in range(1, 7)]
    assert case_columns(conn) == ("letter_sent", DUE)
    assert verify_chain(conn).ok


def test_business_days_and_a_later_export_move_the_due_date(tmp_path: Path) -> None:
    conn = seed(tmp_path / "w.db")
    notes = NotesConfig(deadline_days=5, business_days=True)
    # Drafted on Thursday 4 May, exported on Friday 5 May: 5 business days from the export.
    from store.notes import draft_note
    from store.export import export_notes

    draft_note(conn, CASE_ID, reviewer="ana", clock=at("2023-05-04"), config=notes)
    result = export_notes(conn, fmt="md", out_dir=tmp_path / "out", consumer_id=CASE_ID, reviewer="ana",
                          clock=at("2023-05-05"), config=notes)
    assert latest_case(conn, CASE_ID).due_date == "2023-05-12"
    # The letter drafted on the 4th says the 11th: the export says so.
    assert result.warnings == ("note #1 states a response date of 2023-05-11; exported today its case is due "
                               "2023-05-12 (export date + the deadline): re-draft it so the letter states the "
                               "date the case tracks",)


def test_the_second_format_of_one_export_does_not_send_the_letter_again(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    from store.export import export_notes

    export_notes(conn, fmt="html", out_dir=tmp_path / "out", note_ids=[1], reviewer="ana", clock=at("2023-05-03"),
                 config=NotesConfig())
    assert conn.execute("SELECT count(*) FROM case_file").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM case_item").fetchone()[0] == 6
    assert latest_case(conn, CASE_ID).due_date == DUE


def test_closing_needs_an_outcome_and_a_reason_and_resolves_the_findings(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    with pytest.raises(DecisionRefused, match="closing a case needs a reason"):
        close_case(conn, CASE_ID, outcome="within_limits", reason=" ", reviewer="bo", clock=at("2023-05-30"))
    with pytest.raises(DecisionRefused, match="unknown outcome 'fixed'"):
        close_case(conn, CASE_ID, outcome="fixed", reason="ok", reviewer="bo", clock=at("2023-05-30"))
    case = close_case(conn, CASE_ID, outcome="within_limits", reason="usage under the cap since June",
                      reviewer="bo", clock=at("2023-05-30"))
    assert (case.state, case.outcome) == ("resolved", "within_limits")
    assert dict(conn.execute("SELECT id, status FROM finding WHERE consumer_id = ?", (CASE_ID,)).fetchall()) == \
        {1: "resolved", 2: "resolved", 3: "candidate", 4: "resolved"}
    words = "Usage brought within limits: usage under the cap since June"
    assert log(conn, "case")[-2:] == [(1, "state", "letter_sent", "resolved", words),
                                      (1, "outcome", None, "within_limits", words)]
    assert log(conn, "finding")[-3:] == [(fid, "status", "audit_requested", "resolved", f"case #1 resolved: {words}")
                                         for fid in (1, 2, 4)]
    # One action: the case and its findings together.
    actions = {r[0] for r in conn.execute("SELECT action_id FROM decision WHERE at = '2023-05-30T10:00:00Z'")}
    assert len(actions) == 1
    # The candidate still stands, so the consumer is open again; the case itself stays resolved.
    assert case_columns(conn) == ("open", None)
    with pytest.raises(DecisionRefused, match="case #1 of northwind-analytics is resolved"):
        close_case(conn, CASE_ID, outcome="other", reason="again", reviewer="bo", clock=at("2023-05-31"))


@pytest.mark.parametrize(("outcome", "state"), [
    ("within_limits", "resolved"), ("tier_changed", "resolved"), ("access_suspended", "closed"),
    ("referred_to_counsel", "closed"), ("other", "closed"),
])
def test_the_outcome_decides_resolved_or_closed(tmp_path: Path, outcome: str, state: str) -> None:
    conn = sent_case(tmp_path)
    assert close_case(conn, CASE_ID, outcome=outcome, reason="r", reviewer="bo", clock=at("2023-05-30")).state == state


def test_data_deleted_needs_the_evidence_first(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    with pytest.raises(DecisionRefused, match="needs the evidence of the deletion"):
        close_case(conn, CASE_ID, outcome="data_deleted", reason="they say so", reviewer="bo", clock=at("2023-05-30"))
    from store.casework.responses import add_response

    proof = tmp_path / "deletion-log.csv"
    proof.write_text("table,rows,deleted_at\nposts,120000,2023-05-20\n")
    add_response(conn, CASE_ID, [proof], reviewer="bo", clock=at("2023-05-22"), max_bytes=1 << 20)
    assert close_case(conn, CASE_ID, outcome="data_deleted", reason="log attached", reviewer="bo",
                      clock=at("2023-05-30")).state == "resolved"


def test_escalating_records_to_whom_and_a_closed_case_cannot_be_escalated(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    with pytest.raises(DecisionRefused, match="needs to whom"):
        escalate_case(conn, CASE_ID, to="", reason="no answer", reviewer="bo", clock=at("2023-05-24"))
    case = escalate_case(conn, CASE_ID, to="Outside counsel", reason="no answer by the due date", reviewer="bo",
                         clock=at("2023-05-24"))
    assert (case.state, case.escalated_to) == ("escalated", "Outside counsel")
    assert log(conn, "case")[-2:] == [(1, "state", "letter_sent", "escalated", "no answer by the due date"),
                                      (1, "escalated_to", None, "Outside counsel", "no answer by the due date")]
    # Escalated: no reply is awaited from the consumer any more.
    assert case_columns(conn) == ("escalated", None)
    assert close_case(conn, CASE_ID, outcome="referred_to_counsel", reason="filed", reviewer="bo",
                      clock=at("2023-06-01")).state == "closed"
    with pytest.raises(DecisionRefused, match="is closed"):
        escalate_case(conn, CASE_ID, to="CEO", reason="x", reviewer="bo", clock=at("2023-06-02"))


def test_no_case_before_a_letter(tmp_path: Path) -> None:
    conn = seed(tmp_path / "w.db")
    for act in (lambda: close_case(conn, CASE_ID, outcome="other", reason="r", reviewer="a", clock=at("2023-05-02")),
                lambda: escalate_case(conn, CASE_ID, to="x", reason="r", reviewer="a", clock=at("2023-05-02"))):
        with pytest.raises(DecisionRefused, match="no audit request has been sent to northwind-analytics"):
            act()
    with pytest.raises(DecisionRefused, match="there is no consumer 'nobody'"):
        close_case(conn, "nobody", outcome="other", reason="r", reviewer="a", clock=at("2023-05-02"))


def test_a_case_changed_by_someone_else_is_refused_with_its_state_now(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    seen = latest_case(conn, CASE_ID).version
    other = connect(tmp_path / "w.db")
    escalate_case(other, CASE_ID, to="Counsel", reason="late", reviewer="bo", clock=at("2023-05-24"))
    with pytest.raises(ConflictError) as caught:
        close_case(conn, CASE_ID, outcome="other", reason="r", reviewer="ana", clock=at("2023-05-24"),
                   expected_version=seen)
    assert "it is now escalated by bo" in str(caught.value)
    assert caught.value.current["state"] == "escalated"
    assert get_case(conn, 1).state == "escalated"


def test_the_timeline_holds_the_case_letters_and_log_in_order(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    found = timeline(conn, CASE_ID)
    assert [c.case.id for c in found.cases] == [1]
    assert [(n.note_id, n.kind, n.status, n.exported_at, n.stated_due) for n in found.letters] == \
        [(1, "audit request", "exported", "2023-05-02T09:30:00Z", DUE)]
    assert [d.id for d in found.log] == sorted(d.id for d in found.log)
    assert {(d.subject, d.field) for d in found.log} >= {("note", "status"), ("case", "state"), ("item", "state"),
                                                         ("finding", "status")}
    text = "\n".join(found.lines(at("2023-05-25")().date()))
    assert "northwind-analytics): letter sent, overdue by 2 days (2023-05-23)" in text
    assert "    1. purpose        open" in text
    with pytest.raises(DecisionRefused):
        timeline(conn, "nobody")


def test_hostile_text_in_a_case_is_printed_inert(tmp_path: Path) -> None:
    conn = seed(tmp_path / "w.db")
    send_letter(conn, tmp_path / "out", consumer_id=HOSTILE_ID)
    escalate_case(conn, HOSTILE_ID, to="\x1b]52;c;aGk=\x07 counsel\u202e", reason="r", reviewer="bo",
                  clock=at("2023-05-24"))
    text = "\n".join(timeline(conn, HOSTILE_ID).lines(at("2023-05-25")().date()))
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "\\u001b]52;c;aGk=\\u0007 counsel\\u202e" in text


def test_a_database_from_before_cases_is_migrated_with_its_log_intact(tmp_path: Path) -> None:
    """A database of main's schema before cases (issue 12's MIGRATION_FINDING_KEYS
    the last one, the name index and the rules' marks in place): a finding
    confirmed with the severity and category it kept, a note drafted and marked
    ready with its text's SHA-256 at each status change, an export that carries the
    head; a retired consumer. MIGRATION_CASES rebuilds the log's table: the same
    rows and hashes, columns, indexes and triggers, and verify replays it whole;
    the name index, the finding keys and the rules' pending marks carry over."""
    import hashlib

    from store.decision_log import record_decision
    from store.schema import KEYS_OF_FINDING, MIGRATION_CASES, MIGRATION_FINDING_KEYS, MIGRATIONS
    from store.verify import verify_log

    assert MIGRATIONS[-2:] == [MIGRATION_FINDING_KEYS, MIGRATION_CASES]
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:-1]:       # as main's warden left it
        migration(old) if callable(migration) else old.executescript(migration)
    old.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")
    old.execute("INSERT INTO consumer (id, legal_name) VALUES ('c1', 'One')")
    old.execute("INSERT INTO consumer (id, legal_name, origin, retired_at) VALUES ('c2', 'Two', 'auto', 't')")
    for consumer, status in (("c1", "confirmed"), ("c2", "candidate")):
        old.execute("INSERT INTO finding (consumer_id, category, period, period_start, period_end, severity, status,"
                    " detected_at, updated_at) VALUES (?, 'volume_cap', '2022-07', '2022-07-01', '2022-07-31',"
                    " 'critical', ?, 't', 't')", (consumer, status))
    body = "# Audit request: One\n"
    old.execute("INSERT INTO note (consumer_id, template, subject, body, status, created_at, updated_at)"
                " VALUES ('c1', 'audit_request.md.j2', 'Audit request: One', ?, 'ready', 't', 't')", (body,))
    digest = hashlib.sha256(body.encode()).hexdigest()
    entries = [("finding", "status", "candidate", "confirmed"), ("finding", "severity", "critical", "critical"),
               ("finding", "category", "volume_cap", "volume_cap"), ("note", "status", None, "draft"),
               ("note", "body_sha256", None, digest), ("note", "status", "draft", "ready"),
               ("note", "body_sha256", digest, digest)]
    for n, (subject, field, was, now) in enumerate(entries, start=1):
        record_decision(old, subject=subject, subject_id=1, field=field, old=was, new=now, reason=f"r{n}",
                        reviewer="ana", clock=at("2023-01-0%d" % min(n, 9)))
    head = old.execute("SELECT hash FROM decision ORDER BY id DESC LIMIT 1").fetchone()[0]
    old.execute("INSERT INTO export (at, reviewer, format, out_dir, tool_version, status, log_head, action_id)"
                " VALUES ('t', 'ana', 'md', '/x', '0', 'completed', ?, 6)", (head,))
    old.execute(KEYS_OF_FINDING)           # as main's queue summary keeps them
    pending = [tuple(r) for r in old.execute("SELECT kind, subject FROM rules_pending ORDER BY id")]
    assert pending == []                     # consumers added by hand: nothing marked
    old.execute("INSERT INTO rules_pending (kind, subject) VALUES ('tier', 'gold')")
    keys = [tuple(r) for r in old.execute("SELECT key, consumer_id FROM consumer_finding_key ORDER BY 1, 2")]
    assert ("s=confirmed", "c1") in keys and ("s=candidate c=volume_cap v=critical", "c2") in keys
    before = [tuple(r) for r in old.execute("SELECT * FROM decision ORDER BY id")]
    columns = [tuple(r) for r in old.execute("PRAGMA table_info(decision)")]
    indexes = {r[1] for r in old.execute("PRAGMA index_list(decision)")}
    old.close()

    conn = connect(path)      # migrates
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert [tuple(r) for r in conn.execute("SELECT * FROM decision ORDER BY id")] == before
    assert [tuple(r) for r in conn.execute("PRAGMA table_info(decision)")] == columns
    assert {r[1] for r in conn.execute("PRAGMA index_list(decision)")} == indexes | {"decision_by_time"}
    report = verify_log(conn, head=head, evidence_root=tmp_path / "old.db-evidence")
    assert (report.ok, report.checked, report.head, report.problems) == (True, 7, head, ())
    assert tuple(conn.execute("SELECT status, log_head, action_id FROM export").fetchone()) == ("completed", head, 6)
    # The retired consumer keeps its finding but has no case to open.
    assert [tuple(r) for r in conn.execute("SELECT id, case_state FROM consumer ORDER BY id")] == \
        [("c1", "open"), ("c2", None)]
    assert [tuple(r) for r in conn.execute("SELECT category, month, findings FROM finding_month")] == \
        [("volume_cap", "2022-07", 2)]
    # Main's indexes carry over: the name index (kept by its triggers through the
    # new columns), the finding keys, the marks the rules have yet to look at.
    assert [r[0] for r in conn.execute("SELECT id FROM consumer WHERE rowid IN"
                                       " (SELECT rowid FROM consumer_fts WHERE consumer_fts MATCH 'Two')")] == ["c2"]
    assert [tuple(r) for r in conn.execute("SELECT key, consumer_id FROM consumer_finding_key ORDER BY 1, 2")] == keys
    assert ("tier", "gold") in [tuple(r) for r in conn.execute("SELECT kind, subject FROM rules_pending")]
    conn.execute("UPDATE consumer SET legal_name = 'Onesie' WHERE id = 'c1'")
    assert [r[0] for r in conn.execute("SELECT rowid FROM consumer_fts WHERE consumer_fts MATCH 'nesie'")] == \
        [conn.execute("SELECT rowid FROM consumer WHERE id = 'c1'").fetchone()[0]]
    # Still append-only, and its subjects still checked.
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE decision SET reason = 'x'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM decision")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO decision (id, at, reviewer, subject, subject_id, field, prev_hash, hash) "
                     "VALUES (9, 't', 'r', 'elsewhere', 1, 'f', 'p', 'h')")


def test_a_stale_case_is_refused_word_for_word_with_what_it_is_now(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    # Opened (version 1), then its letter and due date set (version 2).
    assert latest_case(conn, CASE_ID).version == 2
    other = connect(tmp_path / "w.db")
    escalate_case(other, CASE_ID, to="Counsel", reason="late", reviewer="bo", clock=at("2023-05-24"))
    for act in (lambda: close_case(conn, CASE_ID, outcome="other", reason="r", reviewer="ana",
                                   clock=at("2023-05-24"), expected_version=2),
                lambda: escalate_case(conn, CASE_ID, to="CEO", reason="r", reviewer="ana", clock=at("2023-05-24"),
                                      expected_version=2)):
        with pytest.raises(ConflictError) as caught:
            act()
        assert str(caught.value) == ("case #1 changed since you looked (you saw version 2): it is now escalated "
                                     "by bo (late), version 3")
        assert caught.value.current == {"case_id": 1, "state": "escalated", "version": 3, "reviewer": "bo",
                                        "reason": "late", "at": "2023-05-24T10:00:00Z"}
    case = get_case(conn, 1)
    assert (case.state, case.escalated_to, case.version) == ("escalated", "Counsel", 3)
    assert log(conn, "case")[-1] == (1, "escalated_to", None, "Counsel", "late")


def test_escalating_is_refused_word_for_word(tmp_path: Path) -> None:
    conn = seed(tmp_path / "w.db")
    with pytest.raises(DecisionRefused) as caught:
        escalate_case(conn, CASE_ID, to="Counsel", reason="no reply", reviewer="bo", clock=at("2023-05-24"))
    assert str(caught.value) == ("no audit request has been sent to northwind-analytics (no letter exported): "
                                 "there is no case for an escalation")
    send_letter(conn, tmp_path / "out")
    for to, reason, message in ((" ", "no reply", "escalating a case needs to whom (--to)"),
                                ("Counsel", "", "escalating a case needs a reason"),
                                ("Counsel", " \t", "escalating a case needs a reason")):
        with pytest.raises(DecisionRefused) as caught:
            escalate_case(conn, CASE_ID, to=to, reason=reason, reviewer="bo", clock=at("2023-05-24"))
        assert str(caught.value) == message
    assert latest_case(conn, CASE_ID).state == "letter_sent"
    assert [e[1] for e in log(conn, "case")] == ["state", "letter", "due_date"]


def _refused(act) -> str:  # noqa: ANN001
    with pytest.raises(DecisionRefused) as refused:
        act()
    return str(refused.value)


def test_the_case_refusals_word_for_word(tmp_path: Path) -> None:
    conn = seed(tmp_path / "w.db")
    day = at("2023-05-24")
    assert _refused(lambda: close_case(conn, CASE_ID, outcome="other", reason="r", reviewer="a", clock=day)) == \
        "no audit request has been sent to northwind-analytics (no letter exported): there is no case for an outcome"
    assert _refused(lambda: close_case(conn, "nobody", outcome="other", reason="r", reviewer="a", clock=day)) == \
        "there is no consumer 'nobody'"
    send_letter(conn, tmp_path / "out")
    assert _refused(lambda: get_case(conn, 2)) == "there is no case #2"
    assert _refused(lambda: close_case(conn, CASE_ID, outcome="fixed", reason="r", reviewer="a", clock=day)) == \
        ("unknown outcome 'fixed'; valid: within_limits, tier_changed, data_deleted, access_suspended, "
         "referred_to_counsel, other")
    assert _refused(lambda: close_case(conn, CASE_ID, outcome="other", reason=" \n", reviewer="a", clock=day)) == \
        "closing a case needs a reason"
    assert _refused(lambda: close_case(conn, CASE_ID, outcome="other", reason="", reviewer="a", clock=day)) == \
        "closing a case needs a reason"
    assert _refused(lambda: close_case(conn, CASE_ID, outcome="data_deleted", reason="r", reviewer="a",
                                       clock=day)) == \
        ("'Data deleted, with evidence' needs the evidence of the deletion: add it to case #1 first "
         "(warden response add northwind-analytics FILE...)")
    assert _refused(lambda: open_case(conn, CASE_ID, "escalated", reason="r", reviewer="a", clock=day)) == \
        "a case cannot open as escalated"
    assert _refused(lambda: change_case(conn, get_case(conn, 1), reason="r", reviewer="a", clock=day,
                                        state="reopened")) == "case #1 is letter sent; it cannot become reopened"
    assert [e[1] for e in log(conn, "case")] == ["state", "letter", "due_date"]
    close_case(conn, CASE_ID, outcome="within_limits", reason="under the cap", reviewer="bo", clock=day)
    assert _refused(lambda: escalate_case(conn, CASE_ID, to="CEO", reason="r", reviewer="a", clock=day)) == \
        ("case #1 of northwind-analytics is resolved (Usage brought within limits); there is no case under way "
         "for an escalation")
    assert _refused(lambda: change_case(conn, get_case(conn, 1), reason="r", reviewer="a", clock=day,
                                        state="response_received")) == \
        "case #1 is resolved; it cannot become response received"


def test_a_case_read_before_someone_changed_it_is_not_written_over(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    seen = get_case(conn, 1)
    other = connect(tmp_path / "w.db")
    escalate_case(other, CASE_ID, to="Counsel", reason="late", reviewer="bo", clock=at("2023-05-24"))
    with pytest.raises(ConflictError) as caught:
        change_case(conn, seen, reason="a new date", reviewer="ana", clock=at("2023-05-24"), due_date="2023-06-30")
    assert str(caught.value) == "case #1 changed since you looked (version 2): it is now escalated by bo (late), version 3"
    assert get_case(conn, 1).due_date == DUE
    # Nothing to change: nothing written, the same case and action back.
    assert change_case(conn, seen, reason="r", reviewer="ana", clock=at("2023-05-24"), due_date=DUE,
                       action_id=7) == (seen, 7)


def test_a_letter_sent_again_to_an_escalated_case_keeps_it_escalated(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    escalate_case(conn, CASE_ID, to="Counsel", reason="no answer", reviewer="bo", clock=at("2023-05-24"))
    send_letter(conn, tmp_path / "again", clock=at("2023-05-25"))
    case = latest_case(conn, CASE_ID)
    # The same case, still with counsel, now citing the new letter: due 21 days after 25 May.
    assert (case.id, case.state, case.letter_note_id, case.due_date) == (1, "escalated", 2, "2023-06-15")
    assert [e[1:4] for e in log(conn, "case")[-2:]] == [("letter", "1", "2"), ("due_date", DUE, "2023-06-15")]
