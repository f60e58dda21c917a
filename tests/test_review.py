"""Review decisions: what each action writes, the hash chain, undo, conflicts, bulk, detail."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from store import decision_log
from store import review
from store.cases import ChartWindow, chart_of, read_case, usage_series
from store.clock import fixed_clock
from store.db import connect, transaction
from store.decision_log import verify_chain
from store.errors import ConflictError, DecisionRefused, StoreError
from store.review import (
    bulk_decide,
    confirm_violation,
    dismiss,
    mark_needs_info,
    open_manual_finding,
    undo_last,
)

CLOCK = fixed_clock(datetime(2023, 1, 2, 9, 30, tzinfo=timezone.utc))
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Two consumers: ``north`` (two apps, three findings) and ``south`` (one finding)."""
    path = tmp_path / "review.db"
    c = connect(path)
    with transaction(c):
        c.execute("INSERT INTO tier (id, name, agreement_version) VALUES ('gold', 'Gold', 'v2')")
        c.executemany("INSERT INTO tier_limit VALUES ('gold', ?, ?, ?)",
                      [("calls", "day", 1000), ("calls", "month", 20000), ("records", "year", 10**9)])
        c.execute("INSERT INTO tier_clause VALUES ('gold', 'volume_cap', '§3.1')")
        c.execute("INSERT INTO consumer (id, legal_name, tier_id, notice_contact) VALUES"
                  " ('north', 'North Ltd', 'gold', 'legal@north.example'), ('south', 'South Ltd', 'gold', NULL)")
        c.executemany("INSERT INTO app VALUES ('feed', ?, ?, ?, ?)", [
            ("a1", "north", "App one", "Dashboards"), ("a2", "north", "App two", None), ("s1", "south", "S", None)])
        c.executemany("INSERT INTO usage VALUES ('feed', ?, ?, ?, ?, 1, 1)", [
            ("a1", "2022-01-01", "calls", 5000), ("a1", "2022-01-02", "calls", 700),
            ("a2", "2022-01-01", "calls", 100), ("a2", "2022-02-01", "calls", 50),
            ("a1", "2022-01-01", "records", 9), ("a2", "2021-12-31", "calls", 1)])
        for consumer, category, ratio in [("north", "volume_cap", 5.0), ("north", "rate_limit", 3.0),
                                          ("north", "missing_use_case", None), ("south", "volume_cap", 1.2)]:
            c.execute(
                "INSERT INTO finding (consumer_id, category, period, period_start, period_end, rule_id, metric,"
                " actual, limit_value, ratio, figures, detected_at, updated_at)"
                " VALUES (?, ?, '2022', '2022-01-01', '2022-12-31', ?, 'calls', 10, 2, ?, ?, 't0', 't0')",
                (consumer, category, category, ratio, json.dumps({"apps": {"a1": 10}})))
        from store.queue_summary import refresh_all
        refresh_all(c)
    c.close()
    return path


@pytest.fixture
def conn(db: Path) -> sqlite3.Connection:
    c = connect(db)
    yield c
    c.close()


def finding_row(conn: sqlite3.Connection, fid: int) -> dict[str, object]:
    return dict(conn.execute("SELECT status, severity, category, version FROM finding WHERE id = ?",
                             (fid,)).fetchone())


def log(conn: sqlite3.Connection) -> list[dict[str, object]]:
    return [dict(r) for r in conn.execute("SELECT * FROM decision ORDER BY id")]


def summary(conn: sqlite3.Connection, cid: str) -> tuple[float, int, str]:
    return tuple(conn.execute("SELECT worst_ratio, open_findings, review_state FROM consumer WHERE id = ?",
                              (cid,)).fetchone())  # type: ignore[return-value]


# --- actions ----------------------------------------------------------------


def test_confirm_writes_the_finding_and_one_entry_per_field(conn: sqlite3.Connection) -> None:
    written = confirm_violation(conn, 1, reviewer="alice", severity="critical", reason="8x the cap",
                                clock=CLOCK, category="circumvention", expected_version=1)
    assert finding_row(conn, 1) == {"status": "confirmed", "severity": "critical", "category": "circumvention",
                                    "version": 2}
    entries = log(conn)
    assert [(e["field"], e["old_value"], e["new_value"]) for e in entries] == [
        ("status", "candidate", "confirmed"), ("severity", "medium", "critical"),
        ("category", "volume_cap", "circumvention")]
    assert {e["reviewer"] for e in entries} == {"alice"}
    assert {e["reason"] for e in entries} == {"8x the cap"}
    assert {e["at"] for e in entries} == {"2023-01-02T09:30:00Z"}
    assert {e["action_id"] for e in entries} == {entries[0]["id"]}
    assert [d.id for d in written] == [e["id"] for e in entries]
    # Confirming keeps the consumer's place in the queue; two findings still open.
    assert summary(conn, "north") == (5.0, 2, "open")


def test_dismiss_needs_a_reason_and_other_needs_text(conn: sqlite3.Connection) -> None:
    with pytest.raises(DecisionRefused, match="valid: false_positive"):
        dismiss(conn, 4, reviewer="bob", reason_code="because", clock=CLOCK)
    with pytest.raises(DecisionRefused, match="written out"):
        dismiss(conn, 4, reviewer="bob", reason_code="other", reason_text="  ", clock=CLOCK)
    assert log(conn) == []
    dismiss(conn, 4, reviewer="bob", reason_code="other", reason_text="test account", clock=CLOCK)
    assert finding_row(conn, 4)["status"] == "dismissed"
    assert log(conn)[0]["reason"] == "other: test account"
    assert summary(conn, "south") == (0.0, 0, "decided")


def test_needs_info_keeps_the_consumer_open_and_waiting(conn: sqlite3.Connection) -> None:
    mark_needs_info(conn, 1, reviewer="carol", reason="asked the account team", clock=CLOCK)
    assert summary(conn, "north") == (5.0, 3, "open")          # two candidates still to decide
    for fid in (2, 3):
        mark_needs_info(conn, fid, reviewer="carol", reason="asked the account team", clock=CLOCK)
    assert summary(conn, "north") == (5.0, 3, "info")          # nothing to decide until the answer
    assert [(e["field"], e["new_value"]) for e in log(conn)] == [("status", "needs_info")] * 3


def test_needs_info_records_the_question_asked_trimmed_or_none(conn: sqlite3.Connection) -> None:
    mark_needs_info(conn, 1, reviewer="carol", reason="  asked the account team for the roster \n", clock=CLOCK)
    mark_needs_info(conn, 2, reviewer="carol", reason="   ", clock=CLOCK)
    reasons = {e["subject_id"]: e["reason"] for e in log(conn)}
    assert reasons == {1: "asked the account team for the roster", 2: None}


def test_a_confirmation_with_a_bad_severity_is_refused(conn: sqlite3.Connection) -> None:
    with pytest.raises(DecisionRefused, match="valid: info"):
        confirm_violation(conn, 1, reviewer="a", severity="urgent", reason="x", clock=CLOCK)
    assert log(conn) == [] and finding_row(conn, 1)["version"] == 1


def test_a_confirmation_without_a_reason_logs_the_rule_and_its_figures(conn: sqlite3.Connection) -> None:
    # A regrade still needs the reviewer's own reason; nothing is written.
    with pytest.raises(DecisionRefused, match="changing the severity of finding #1 needs a reason"):
        confirm_violation(conn, 1, reviewer="a", severity="critical", reason=" ", clock=CLOCK)
    with pytest.raises(DecisionRefused, match="changing the severity of finding #2 needs a reason"):
        bulk_decide(conn, action="confirm", finding_ids=[2], severity="critical", reviewer="a", clock=CLOCK)
    assert log(conn) == []
    confirm_violation(conn, 1, reviewer="a", reason=" ", clock=CLOCK)
    bulk_decide(conn, action="confirm", finding_ids=[2], reviewer="a", clock=CLOCK)
    f = open_manual_finding(conn, "south", category="restricted_use", severity="low", evidence="seen on a forum",
                            reviewer="a", clock=CLOCK)
    bulk_decide(conn, action="confirm", finding_ids=[f.id], severity="low", reason="", reviewer="a", clock=CLOCK)
    reasons = [e["reason"] for e in log(conn) if e["new_value"] == "confirmed"]
    assert reasons == [
        "as detected (rule volume_cap): 10 API calls in 2022, against a limit of 2 (5.00 times the limit)",
        "as detected (rule rate_limit): as many as 10 API calls on one UTC day, against a limit of 2 per day "
        "(3.00 times the limit), in 2022",
        "as opened by hand: seen on a forum",
    ]


def test_a_status_that_cannot_follow_is_refused(conn: sqlite3.Connection) -> None:
    dismiss(conn, 1, reviewer="a", reason_code="duplicate", clock=CLOCK)
    with pytest.raises(DecisionRefused, match="dismissed; it cannot become needs_info"):
        mark_needs_info(conn, 1, reviewer="a", clock=CLOCK, expected_version=2)
    # Without a version the reviewer most likely saw an older state: a conflict.
    with pytest.raises(ConflictError):
        mark_needs_info(conn, 1, reviewer="a", clock=CLOCK)
    assert len(log(conn)) == 1


# --- conflicts ----------------------------------------------------------------


def test_second_reviewer_is_told_it_changed_under_them(db: Path) -> None:
    alice, bob = connect(db), connect(db)
    seen = finding_row(alice, 1)["version"]
    dismiss(bob, 1, reviewer="bob", reason_code="within_allowance", clock=CLOCK, expected_version=seen)
    with pytest.raises(ConflictError) as info:
        confirm_violation(alice, 1, reviewer="alice", severity="high", reason="over", clock=CLOCK,
                          expected_version=seen)
    current = info.value.current
    assert current["status"] == "dismissed" and current["reviewer"] == "bob"
    assert current["reason"] == "within_allowance" and current["version"] == 2
    assert "bob" in str(info.value) and "dismissed" in str(info.value)
    assert [e["reviewer"] for e in log(alice)] == ["bob"]
    assert finding_row(alice, 1)["status"] == "dismissed"
    alice.close(), bob.close()


RACE = textwrap.dedent("""
    import sys, time, os
    from datetime import datetime, timezone
    sys.path.insert(0, {root!r})
    from store.clock import fixed_clock
    from store.db import connect, transaction
    from store.errors import ConflictError
    from store.decision_log import record_decision
    from store.review import dismiss
    db, who, go = sys.argv[1], sys.argv[2], sys.argv[3]
    clock = fixed_clock(datetime(2023, 1, 2, tzinfo=timezone.utc))
    conn = connect(db)
    while not os.path.exists(go):
        time.sleep(0.005)
    for i in range(40):
        with transaction(conn):
            record_decision(conn, subject="note", subject_id=i, field="status", old="draft", new="ready",
                            reason=who, reviewer=who, clock=clock)
    try:
        dismiss(conn, 2, reviewer=who, reason_code="duplicate", clock=clock, expected_version=1)
        print("won")
    except ConflictError as exc:
        print("conflict", exc.current["reviewer"])
""")


def test_two_processes_neither_fork_the_chain_nor_both_win(db: Path, tmp_path: Path) -> None:
    script = tmp_path / "race.py"
    script.write_text(RACE.format(root=str(ROOT)))
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, str(script), str(db), who, str(go)], stdout=subprocess.PIPE,
                              text=True) for who in ("alice", "bob")]
    go.touch()
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(o[0] for o in outs) == ["conflict", "won"]
    winner = "alice" if outs[0][0] == "won" else "bob"
    loser_out = outs[1] if winner == "alice" else outs[0]
    assert loser_out == ["conflict", winner]
    conn = connect(db)
    report = verify_chain(conn)
    assert report.ok and report.checked == 81
    assert [e["id"] for e in log(conn)] == list(range(1, 82))
    conn.close()


# --- undo ---------------------------------------------------------------------


def test_an_export_cannot_be_undone(conn: sqlite3.Connection) -> None:
    confirm_violation(conn, 1, reviewer="alice", severity="high", reason="over", clock=CLOCK)
    review.set_finding_status(conn, 1, "audit_requested", reviewer="alice", clock=CLOCK, reason="note #1 exported")
    before = log(conn)
    with pytest.raises(DecisionRefused, match="export cannot be undone"):
        undo_last(conn, reviewer="alice", clock=CLOCK)
    assert log(conn) == before
    assert finding_row(conn, 1)["status"] == "audit_requested"


def test_undo_restores_the_action_as_new_entries(conn: sqlite3.Connection) -> None:
    dismiss(conn, 2, reviewer="alice", reason_code="duplicate", clock=CLOCK)
    confirm_violation(conn, 1, reviewer="alice", severity="high", reason="over", clock=CLOCK)
    dismiss(conn, 4, reviewer="bob", reason_code="duplicate", clock=CLOCK)
    first = undo_last(conn, reviewer="alice", clock=CLOCK)
    assert first is not None and first.undoes == 2 and first.field == "status"
    assert finding_row(conn, 1) == {"status": "candidate", "severity": "medium", "category": "volume_cap",
                                    "version": 3}
    undo_entries = [e for e in log(conn) if e["undoes"]]
    assert [(e["undoes"], e["field"], e["old_value"], e["new_value"]) for e in undo_entries] == [
        (2, "status", "confirmed", "candidate"), (3, "severity", "high", "medium"),
        (4, "category", "volume_cap", "volume_cap")]
    # Undoing again does not undo the undo: it reaches alice's earlier dismissal.
    second = undo_last(conn, reviewer="alice", clock=CLOCK)
    assert second is not None and second.undoes == 1
    assert finding_row(conn, 2)["status"] == "candidate"
    assert finding_row(conn, 1)["status"] == "candidate"
    # Nothing left for alice; bob's decision is untouched.
    assert undo_last(conn, reviewer="alice", clock=CLOCK) is None
    assert finding_row(conn, 4)["status"] == "dismissed"
    assert summary(conn, "north") == (5.0, 3, "open")
    assert verify_chain(conn).ok


def test_undo_refuses_when_someone_changed_it_since(conn: sqlite3.Connection) -> None:
    mark_needs_info(conn, 1, reviewer="alice", clock=CLOCK)
    confirm_violation(conn, 1, reviewer="bob", severity="high", reason="seen", clock=CLOCK)
    with pytest.raises(ConflictError, match="bob"):
        undo_last(conn, reviewer="alice", clock=CLOCK)
    assert finding_row(conn, 1)["status"] == "confirmed"
    assert len(log(conn)) == 4          # needs info; confirmed with its severity and category


# --- manual findings ----------------------------------------------------------


def test_open_a_finding_by_hand(conn: sqlite3.Connection) -> None:
    with pytest.raises(DecisionRefused, match="evidence"):
        open_manual_finding(conn, "south", category="government_end_user", severity="high", evidence=" ",
                            reviewer="alice", clock=CLOCK)
    with pytest.raises(DecisionRefused, match="cannot be opened by hand"):
        open_manual_finding(conn, "south", category="volume_cap", severity="high", evidence="x",
                            reviewer="alice", clock=CLOCK)
    with pytest.raises(DecisionRefused, match="no consumer"):
        open_manual_finding(conn, "nobody", category="restricted_use", severity="high", evidence="x",
                            reviewer="alice", clock=CLOCK)
    f = open_manual_finding(conn, "south", category="government_end_user", severity="high",
                            evidence="Press release: data shared with a ministry", reviewer="alice", clock=CLOCK,
                            period_start="2022-03-01", period_end="2022-03-31")
    assert (f.status, f.rule_id, f.manual, f.period) == ("candidate", None, True, "2022-03-01..2022-03-31")
    assert f.evidence == "Press release: data shared with a ministry"
    entry = log(conn)[-1]
    assert (entry["subject_id"], entry["old_value"], entry["new_value"]) == (f.id, None, "candidate")
    assert entry["reason"].endswith("evidence: Press release: data shared with a ministry")
    with pytest.raises(DecisionRefused, match="not a date"):
        open_manual_finding(conn, "south", category="restricted_use", severity="high", evidence="x",
                            reviewer="alice", clock=CLOCK, period_start="last spring")
    assert summary(conn, "south")[1:] == (2, "open")
    # Undoing the opening dismisses it (nothing is deleted).
    undo_last(conn, reviewer="alice", clock=CLOCK)
    assert finding_row(conn, f.id)["status"] == "dismissed"
    assert verify_chain(conn).ok


# --- bulk -----------------------------------------------------------------------


def test_bulk_decides_a_consumers_open_findings_as_one_action(conn: sqlite3.Connection) -> None:
    written = bulk_decide(conn, action="dismiss", consumer_ids=["north"], reason_code="out_of_scope",
                          reviewer="alice", clock=CLOCK)
    assert [d.subject_id for d in written] == [1, 2, 3]
    assert {d.action_id for d in written} == {written[0].id}
    assert summary(conn, "north") == (0.0, 0, "decided")
    undo_last(conn, reviewer="alice", clock=CLOCK)
    assert [finding_row(conn, i)["status"] for i in (1, 2, 3)] == ["candidate"] * 3


def test_an_undo_is_one_new_action_numbered_by_its_first_entry(conn: sqlite3.Connection) -> None:
    bulk_decide(conn, action="dismiss", consumer_ids=["north"], reason_code="out_of_scope",
                reviewer="alice", clock=CLOCK)
    first = undo_last(conn, reviewer="alice", clock=CLOCK)
    undo = [dict(r) for r in conn.execute("SELECT id, action_id, undoes FROM decision WHERE undoes IS NOT NULL "
                                          "ORDER BY id")]
    assert first is not None and first.id == undo[0]["id"]
    assert [u["action_id"] for u in undo] == [undo[0]["id"]] * 3       # the same integer, a new action
    assert [u["undoes"] for u in undo] == [1, 2, 3]


@pytest.mark.parametrize("action", ["dismiss", "needs_info"])
def test_bulk_dismiss_or_needs_info_leaves_severity_and_category_as_detected(conn: sqlite3.Connection,
                                                                            action: str) -> None:
    # Only a confirmation regrades: a severity or category sent with another action is not written.
    bulk_decide(conn, action=action, finding_ids=[1], reason_code="out_of_scope", reason="asked",
                severity="critical", category="circumvention", reviewer="alice", clock=CLOCK)
    row = finding_row(conn, 1)
    assert (row["severity"], row["category"]) == ("medium", "volume_cap")
    assert [r[0] for r in conn.execute("SELECT field FROM decision ORDER BY id")] == ["status"]


def test_bulk_confirm_regrading_the_category_without_a_reason_is_refused(conn: sqlite3.Connection) -> None:
    with pytest.raises(DecisionRefused, match=r"^changing the category of finding #1 needs a reason "
                                              r"\(it was category volume_cap as detected\)$"):
        bulk_decide(conn, action="confirm", finding_ids=[1], category="circumvention", reviewer="alice",
                    clock=CLOCK)
    assert log(conn) == [] and finding_row(conn, 1)["status"] == "candidate"


def test_a_confirmation_regrading_both_without_a_reason_names_both(conn: sqlite3.Connection) -> None:
    with pytest.raises(DecisionRefused) as caught:
        confirm_violation(conn, 1, reviewer="alice", severity="critical", category="circumvention", clock=CLOCK)
    assert str(caught.value) == ("changing the severity and category of finding #1 needs a reason "
                                 "(it was severity medium, category volume_cap as detected)")
    assert log(conn) == []


def _regraded_by_the_rules(db: Path, fid: int, at: str) -> None:
    """The rules re-grade a finding (severity, version, updated_at) and log nothing, as a rules run does."""
    raw = sqlite3.connect(db, isolation_level=None)
    raw.execute("UPDATE finding SET severity = 'high', version = version + 1, updated_at = ? WHERE id = ?", (at, fid))
    raw.close()


def _confirmed_as_seen_at_version_1(db: Path) -> ConflictError:
    """alice confirms finding #1 as she saw it (version 1); it has changed since."""
    conn = connect(db)
    try:
        with pytest.raises(ConflictError) as caught:
            confirm_violation(conn, 1, reviewer="alice", severity="critical", reason="8x", clock=CLOCK,
                              expected_version=1)
    finally:
        conn.close()
    return caught.value


def test_a_conflict_on_a_finding_no_reviewer_touched_names_nobody(db: Path) -> None:
    _regraded_by_the_rules(db, 1, "2023-01-01T08:00:00Z")
    conflict = _confirmed_as_seen_at_version_1(db)
    assert str(conflict) == ("finding #1 changed since you opened it (you saw version 1): it is now candidate, "
                             "version 2")
    assert conflict.current == {"finding_id": 1, "status": "candidate", "severity": "high",
                                "category": "volume_cap", "version": 2, "reviewer": None, "reason": None,
                                "at": "2023-01-01T08:00:00Z"}


def test_a_conflict_names_who_decided_last_without_a_reason_and_when(db: Path) -> None:
    conn = connect(db)
    mark_needs_info(conn, 1, reviewer="carol", clock=CLOCK)      # no reason given: none shown
    conn.close()
    _regraded_by_the_rules(db, 1, "2023-01-05T07:00:00Z")          # later, and not in the log
    conflict = _confirmed_as_seen_at_version_1(db)
    assert str(conflict) == ("finding #1 changed since you opened it (you saw version 1): it is now needs_info "
                             "by carol, version 3")
    assert conflict.current == {"finding_id": 1, "status": "needs_info", "severity": "high",
                                "category": "volume_cap", "version": 3, "reviewer": "carol", "reason": None,
                                "at": "2023-01-02T09:30:00Z"}     # when carol decided, from the log


def test_bulk_with_one_conflict_changes_nothing(conn: sqlite3.Connection) -> None:
    dismiss(conn, 2, reviewer="bob", reason_code="duplicate", clock=CLOCK)
    before = len(log(conn))
    with pytest.raises(ConflictError):
        bulk_decide(conn, action="confirm", finding_ids=[1, 2, 4], severity="high", reason="over",
                    reviewer="alice", clock=CLOCK, expected_versions={1: 1, 2: 1, 4: 1})
    assert len(log(conn)) == before
    assert finding_row(conn, 1)["status"] == "candidate" and finding_row(conn, 4)["status"] == "candidate"
    # Without a reason a confirmation logs the rule and its figures; a regrade needs one.
    with pytest.raises(DecisionRefused, match="needs a reason"):
        bulk_decide(conn, action="confirm", finding_ids=[1], severity="critical", reason=" ", reviewer="a",
                    clock=CLOCK)


# --- the chain ------------------------------------------------------------------


def _fill(conn: sqlite3.Connection) -> None:
    confirm_violation(conn, 1, reviewer="alice", severity="high", reason="over", clock=CLOCK)
    dismiss(conn, 4, reviewer="bob", reason_code="duplicate", clock=CLOCK)
    mark_needs_info(conn, 2, reviewer="carol", clock=CLOCK)
    undo_last(conn, reviewer="bob", clock=CLOCK)     # entries 1..6 (the confirmation logs the category kept)


def _raw(db: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection with the append-only triggers dropped, as a tamperer would."""
    raw = sqlite3.connect(db, isolation_level=None)
    raw.execute("DROP TRIGGER decision_no_update")
    raw.execute("DROP TRIGGER decision_no_delete")
    return raw


def test_chain_verifies_and_starts_from_zeros(conn: sqlite3.Connection) -> None:
    assert verify_chain(conn) == decision_log.ChainReport(True, 0)
    _fill(conn)
    entries = log(conn)
    assert entries[0]["prev_hash"] == "0" * 64
    for before, after in zip(entries, entries[1:]):
        assert after["prev_hash"] == before["hash"]
    canonical = json.dumps({k: entries[2][k] for k in HASHED}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    assert entries[2]["hash"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert verify_chain(conn) == decision_log.ChainReport(True, 6, head=entries[-1]["hash"])


def test_the_log_refuses_updates_and_deletes(conn: sqlite3.Connection) -> None:
    _fill(conn)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE decision SET reason = 'x' WHERE id = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM decision WHERE id = 1")


@pytest.mark.parametrize("field, value", [("reason", "nothing to see"), ("new_value", "resolved"),
                                          ("reviewer", "mallory"), ("at", "2022-01-01T00:00:00Z")])
def test_an_edited_entry_is_named(db: Path, field: str, value: str) -> None:
    conn = connect(db)
    _fill(conn)
    conn.close()
    raw = _raw(db)
    raw.execute(f"UPDATE decision SET {field} = ? WHERE id = 3", (value,))
    raw.close()
    conn = connect(db)
    report = verify_chain(conn)
    assert (report.ok, report.first_bad_id, report.checked) == (False, 3, 2)
    assert "edited" in (report.why or "")
    conn.close()


def test_a_rewritten_hash_is_named(db: Path) -> None:
    conn = connect(db)
    _fill(conn)
    entry = log(conn)[2]
    conn.close()
    entry["reason"] = "forged"
    raw = _raw(db)
    raw.execute("UPDATE decision SET reason = 'forged', hash = ? WHERE id = 3", (decision_log.entry_hash(entry),))
    raw.close()
    conn = connect(db)
    report = verify_chain(conn)
    assert (report.ok, report.first_bad_id) == (False, 3)
    assert report.why == ("entry #3's stored hash was rewritten (its fields edited and its hash recomputed); "
                          "entry #4 still carries the original. (Or an entry after #3 was removed and the later "
                          "ones renumbered.)")
    conn.close()


def test_a_removed_entry_is_named(db: Path) -> None:
    conn = connect(db)
    _fill(conn)
    conn.close()
    raw = _raw(db)
    raw.execute("DELETE FROM decision WHERE id = 2")
    raw.close()
    conn = connect(db)
    report = verify_chain(conn)
    assert (report.ok, report.first_bad_id) == (False, 3)
    assert "#2" in (report.why or "") and "missing" in (report.why or "")
    conn.close()


def _tampered(db: Path, *statements: str) -> decision_log.ChainReport:
    """The chain report after running ``statements`` on the file with the triggers dropped."""
    raw = _raw(db)
    for statement in statements:
        raw.execute(statement)
    raw.close()
    conn = connect(db)
    try:
        return verify_chain(conn)
    finally:
        conn.close()


def test_an_entry_whose_link_was_edited_is_named_not_its_neighbour(db: Path) -> None:
    # The defect: #3's prev_hash edited (nothing else) was reported as "entry #2's stored hash was
    # rewritten": the auditor was sent to an entry nobody touched.
    conn = connect(db)
    _fill(conn)
    conn.close()
    report = _tampered(db, f"UPDATE decision SET prev_hash = '{'1' * 64}' WHERE id = 3")
    assert (report.ok, report.first_bad_id, report.checked) == (False, 3, 2)
    assert report.why == ("its recorded fields no longer match its hash: the entry was edited after it was "
                          "written (now: 2023-01-02T09:30:00Z alice finding #1 category: volume_cap -> volume_cap "
                          "(over))")


# Each tampering of _fill's log (1-3 alice's confirmation of finding 1, one action; 4 bob's
# dismissal; 5 carol's needs-info; 6 bob's undo of 4) and what verify says, word for word.
REMOVED_1 = ("an entry was removed between the start of the log and #1, and the entries after it renumbered "
             "to close the gap: #1 is chained to an entry no longer in the log")
RENUMBERED = " as its own action or one it undoes: a number after its own, so it was renumbered)"
TAMPERED = [
    pytest.param(["DELETE FROM decision WHERE id IN (2, 3)"],
                 4, "entry #2..#3 before it is missing (removed from the log)", id="two-removed"),
    pytest.param(["DELETE FROM decision WHERE id = 1", "UPDATE decision SET id = id - 1"],
                 1, REMOVED_1 + " (entry #3 names entry #4" + RENUMBERED, id="first-removed-renumbered"),
    pytest.param(["DELETE FROM decision WHERE id = 4", "UPDATE decision SET id = id - 1 WHERE id > 4"],
                 4, "an entry was removed between #3 and #4, and the entries after it renumbered to close the "
                    "gap: #4 is chained to an entry no longer in the log (entry #4 names entry #5" + RENUMBERED,
                 id="middle-removed-renumbered"),
    pytest.param(["UPDATE decision SET id = -1 WHERE id = 1", "UPDATE decision SET id = 1 WHERE id = 2",
                  "UPDATE decision SET id = 2 WHERE id = -1"],
                 1, "entries #1 and #2 were swapped: #2 is chained after the start of the log and #1 after #2",
                 id="first-two-swapped"),
    pytest.param(["UPDATE decision SET id = -id WHERE id IN (2, 3, 4)", "UPDATE decision SET id = 2 WHERE id = -4",
                  "UPDATE decision SET id = 1 - id WHERE id < 0"],
                 2, "entry #2 was moved: it is chained after #4, a later number", id="moved-earlier"),
]


@pytest.mark.parametrize("statements, bad_id, why", TAMPERED)
def test_each_tampering_is_named_word_for_word(db: Path, statements: list[str], bad_id: int, why: str) -> None:
    conn = connect(db)
    _fill(conn)
    conn.close()
    report = _tampered(db, *statements)
    assert (report.ok, report.first_bad_id, report.why) == (False, bad_id, why)


@pytest.mark.parametrize("statements, bad_id, checked, why", [
    (["UPDATE decision SET id = id + 1000 WHERE id > 4"], 1005, 4,
     "entries from #1005 on were renumbered: the numbers #5..#1004 are missing, yet #1005 is chained directly after "
     "#4 (nothing was removed there)"),
    (["UPDATE decision SET id = -id", "UPDATE decision SET id = 1 - id"], 2, 0,
     "entries from #2 on were renumbered: the numbers #1 are missing, yet #2 is chained directly after the start of "
     "the log (nothing was removed there)"),
    (["UPDATE decision SET reason = 'forged' WHERE id = 6"], 6, 5,
     "its recorded fields no longer match its hash: the entry was edited after it was written (now: "
     "2023-01-02T09:30:00Z bob finding #4 status: dismissed -> candidate (forged) [undoes #4])"),
    (["UPDATE decision SET old_value = NULL, new_value = NULL WHERE id = 5"], 5, 4,
     "its recorded fields no longer match its hash: the entry was edited after it was written (now: "
     "2023-01-02T09:30:00Z carol finding #2 status: - -> -)"),
], ids=["renumbered-after-4", "renumbered-from-the-start", "undo-edited", "values-emptied"])
def test_the_report_counts_and_heads_what_was_checked(db: Path, statements: list[str], bad_id: int, checked: int,
                                                      why: str) -> None:
    conn = connect(db)
    _fill(conn)
    hashes = [e["hash"] for e in log(conn)]
    conn.close()
    report = _tampered(db, *statements)
    assert report == decision_log.ChainReport(False, checked, bad_id, why,
                                              head=hashes[checked - 1] if checked else None)


def test_a_whole_log_of_one_action_with_its_first_entry_removed_is_named(db: Path) -> None:
    # No entry left names a later one, so nothing says which were renumbered: no hint.
    conn = connect(db)
    confirm_violation(conn, 1, reviewer="alice", severity="high", reason="over", clock=CLOCK)
    conn.close()
    report = _tampered(db, "DELETE FROM decision WHERE id = 1", "UPDATE decision SET id = id - 1")
    assert (report.ok, report.first_bad_id, report.checked, report.why) == (False, 1, 0, REMOVED_1)


def test_an_entry_that_undoes_its_own_new_number_shows_the_renumbering(db: Path) -> None:
    # An entry of action 1 undoing #2 is #3; with #1 removed and the rest moved down it is
    # #2 undoing #2: nothing can undo itself, so it was renumbered.
    conn = connect(db)
    for undoes in (None, None, 2):
        decision_log.record_decision(conn, subject="finding", subject_id=1, field="status", old="candidate",
                                     new="confirmed", reason=None, reviewer="alice", clock=CLOCK, undoes=undoes,
                                     action_id=1)
    conn.close()
    report = _tampered(db, "DELETE FROM decision WHERE id = 1", "UPDATE decision SET id = id - 1")
    assert (report.first_bad_id, report.why) == (1, REMOVED_1 + " (entry #2 names entry #2" + RENUMBERED)


def test_an_entry_inserted_with_a_valid_hash_is_named(db: Path) -> None:
    # A forged entry chained properly after #3 and given number 4, the later ones moved up.
    conn = connect(db)
    _fill(conn)
    third = log(conn)[2]
    conn.close()
    forged = {"at": "2023-01-02T09:31:00Z", "reviewer": "mallory", "subject": "finding", "subject_id": 3,
              "field": "status", "old_value": "candidate", "new_value": "dismissed", "reason": "test account",
              "undoes": None, "action_id": 4, "prev_hash": third["hash"]}
    digest = hashlib.sha256(json.dumps({k: forged[k] for k in HASHED}, sort_keys=True,
                                       separators=(",", ":")).encode()).hexdigest()
    report = _tampered(db, "UPDATE decision SET id = id + 100 WHERE id > 3",
                       "UPDATE decision SET id = id - 99 WHERE id > 100",
                       "INSERT INTO decision (id, at, reviewer, subject, subject_id, field, old_value, new_value,"
                       " reason, undoes, action_id, prev_hash, hash) VALUES (4, '2023-01-02T09:31:00Z', 'mallory',"
                       " 'finding', 3, 'status', 'candidate', 'dismissed', 'test account', NULL, 4,"
                       f" '{third['hash']}', '{digest}')")
    assert (report.ok, report.first_bad_id, report.checked) == (False, 5, 4)
    assert report.why == ("entry #5 is chained after #3, not after #4: the entries between them were moved or "
                          "inserted")


# --- known answers for the log's hash ---------------------------------------------
#
# Written out here, never taken from store.decision_log: removing a field from the
# hash, reordering the canonical JSON or changing its encoding turns these red.
# The digests were computed once, independently, from the canonical JSON below
# (``printf '%s' '<json>' | sha256sum``).

HASHED = ("at", "reviewer", "subject", "subject_id", "field", "old_value", "new_value",
          "reason", "undoes", "action_id", "prev_hash")
VECTORS = [
    ({"at": "2023-01-01T00:00:00Z", "reviewer": "alice", "subject": "finding", "subject_id": 1,
      "field": "status", "old_value": "candidate", "new_value": "confirmed", "reason": "over the cap",
      "undoes": None, "action_id": 1, "prev_hash": "0" * 64},
     b'{"action_id":1,"at":"2023-01-01T00:00:00Z","field":"status","new_value":"confirmed",'
     b'"old_value":"candidate","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
     b'"reason":"over the cap","reviewer":"alice","subject":"finding","subject_id":1,"undoes":null}',
     "ff5b118aae1d16950ed16f07374be0a08566a360bbd383606ed988cbf68ce64e"),
    ({"at": "2023-01-02T09:30:00Z", "reviewer": "bob", "subject": "finding", "subject_id": 7,
      "field": "severity", "old_value": "high", "new_value": "critical", "reason": "d\u00e9passement \u00d73",
      "undoes": None, "action_id": 2, "prev_hash": "ff5b118aae1d16950ed16f07374be0a08566a360bbd383606ed988cbf68ce64e"},
     b'{"action_id":2,"at":"2023-01-02T09:30:00Z","field":"severity","new_value":"critical","old_value":"high",'
     b'"prev_hash":"ff5b118aae1d16950ed16f07374be0a08566a360bbd383606ed988cbf68ce64e",'
     b'"reason":"d\xc3\xa9passement \xc3\x973","reviewer":"bob","subject":"finding","subject_id":7,"undoes":null}',
     "2f7901335572776976e481ac4ec77f55403f4cc50a7d190ba417483a0799f40a"),
    ({"at": "2023-01-02T10:00:00Z", "reviewer": "alice", "subject": "finding", "subject_id": 7,
      "field": "severity", "old_value": "critical", "new_value": "high", "reason": None,
      "undoes": 2, "action_id": 3, "prev_hash": "2f7901335572776976e481ac4ec77f55403f4cc50a7d190ba417483a0799f40a"},
     b'{"action_id":3,"at":"2023-01-02T10:00:00Z","field":"severity","new_value":"high","old_value":"critical",'
     b'"prev_hash":"2f7901335572776976e481ac4ec77f55403f4cc50a7d190ba417483a0799f40a","reason":null,'
     b'"reviewer":"alice","subject":"finding","subject_id":7,"undoes":2}',
     "2975f2600a59702889bc7fb63950eeb52fb9fdb8266d249627e882a687c9d3f8"),
]


def test_the_hash_covers_exactly_these_fields() -> None:
    assert decision_log.HASHED_FIELDS == HASHED
    assert decision_log.GENESIS_HASH == "0" * 64


@pytest.mark.parametrize("entry, canonical, digest", VECTORS)
def test_an_entrys_hash_is_the_sha256_of_its_canonical_json(entry: dict, canonical: bytes, digest: str) -> None:
    assert hashlib.sha256(canonical).hexdigest() == digest     # the vector itself is consistent
    assert decision_log.entry_hash(entry) == digest
    # Fields that are not hashed (the row's id, its own hash) change nothing.
    assert decision_log.entry_hash({**entry, "id": 99, "hash": "f" * 64}) == digest


@pytest.mark.parametrize("field", HASHED)
def test_every_hashed_field_changes_the_hash(field: str) -> None:
    entry, _, digest = VECTORS[0]
    changed = dict(entry, **{field: 2 if isinstance(entry[field], int) else "other"})
    assert decision_log.entry_hash(changed) != digest


def test_recorded_entries_carry_the_known_hashes(tmp_path: Path) -> None:
    conn = connect(tmp_path / "w.db")
    for entry, _, digest in VECTORS:
        moment = datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
        recorded = decision_log.record_decision(
            conn, subject=entry["subject"], subject_id=entry["subject_id"], field=entry["field"],
            old=entry["old_value"], new=entry["new_value"], reason=entry["reason"], reviewer=entry["reviewer"],
            clock=fixed_clock(moment), undoes=entry["undoes"])   # each its own action: action_id = its id
        assert (recorded.prev_hash, recorded.hash) == (entry["prev_hash"], digest)
    assert [row["hash"] for row in log(conn)] == [digest for _, _, digest in VECTORS]
    assert verify_chain(conn) == decision_log.ChainReport(True, 3, head=VECTORS[-1][2])
    conn.close()


def test_a_value_is_logged_as_text_or_null_within_the_action_given(tmp_path: Path) -> None:
    # The canonical JSON and its SHA-256 written out (``printf '%s' '<json>' | sha256sum``).
    canonical = (b'{"action_id":1,"at":"2023-01-03T08:00:00Z","field":"letter","new_value":"12","old_value":null,'
                 b'"prev_hash":"ff5b118aae1d16950ed16f07374be0a08566a360bbd383606ed988cbf68ce64e","reason":null,'
                 b'"reviewer":"carol","subject":"case","subject_id":4,"undoes":null}')
    digest = "a985562456868ecdcf71472a602c359d67dcddec0b42b17daf592fffc3d2e60b"
    assert hashlib.sha256(canonical).hexdigest() == digest
    conn = connect(tmp_path / "w.db")
    assert decision_log.log_head(conn) is None                  # an empty log has no head
    first, _, first_digest = VECTORS[0]
    decision_log.record_decision(
        conn, subject=first["subject"], subject_id=first["subject_id"], field=first["field"],
        old=first["old_value"], new=first["new_value"], reason=first["reason"], reviewer=first["reviewer"],
        clock=fixed_clock(datetime(2023, 1, 1, tzinfo=timezone.utc)))
    recorded = decision_log.record_decision(
        conn, subject="case", subject_id=4, field="letter", old=None, new=12, reason=None, reviewer="carol",
        clock=fixed_clock(datetime(2023, 1, 3, 8, tzinfo=timezone.utc)), action_id=1)
    assert recorded == decision_log.Decision(2, "2023-01-03T08:00:00Z", "carol", "case", 4, "letter", None, "12",
                                             None, None, 1, first_digest, digest)
    assert log(conn)[1] == {"id": 2, "at": "2023-01-03T08:00:00Z", "reviewer": "carol", "subject": "case",
                            "subject_id": 4, "field": "letter", "old_value": None, "new_value": "12",
                            "reason": None, "undoes": None, "action_id": 1, "prev_hash": first_digest,
                            "hash": digest}
    assert decision_log.log_head(conn) == {"head": digest, "entries": 2}
    conn.close()


# --- the detail pane --------------------------------------------------------------


def test_read_case(conn: sqlite3.Connection) -> None:
    confirm_violation(conn, 1, reviewer="alice", severity="high", reason="over", clock=CLOCK)
    with transaction(conn):
        conn.execute("INSERT INTO note (consumer_id, template, subject, body, created_at, updated_at)"
                     " VALUES ('north', 't', 'Audit request', ?, 't1', 't1')",
                     ("# Audit request\n\nDear North,\n\nline 3\nline 4\nline 5\nline 6\nline 7\n",))
    d = read_case(conn, "north")
    assert d is not None
    assert (d.legal_name, d.tier_id, d.notice_contact, d.review_state) == ("North Ltd", "gold",
                                                                           "legal@north.example", "open")
    assert d.tier is not None and d.tier.limit("calls", "day") == 1000 and d.tier.clauses == {"volume_cap": "§3.1"}
    apps = {a.app_id: a for a in d.apps}
    assert (apps["a1"].calls, apps["a1"].records, apps["a1"].declared_use_case) == (5700, 9, "Dashboards")
    assert (apps["a2"].calls, apps["a2"].records, apps["a2"].first_day) == (151, None, "2021-12-31")
    assert d.totals == {"calls": 5851, "records": 9}
    assert [f.id for f in d.findings] == [2, 3, 1]      # open ones first, worst first
    assert d.findings[0].figures == {"apps": {"a1": 10}}
    assert [x.field for x in d.decisions] == ["category", "severity", "status"]   # newest first
    assert d.note is not None and d.note.first_lines[:2] == ["# Audit request", "Dear North,"]
    assert len(d.note.first_lines) == 6
    within = read_case(conn, "north", start="2022-01-01", end="2022-01-31")
    assert within is not None and within.totals["calls"] == 5800
    assert read_case(conn, "nobody") is None


def test_usage_series_per_day_and_month_with_the_limit(conn: sqlite3.Connection) -> None:
    days = usage_series(conn, "north", "calls", "2022-01-01", "2022-12-31")
    assert days.points == [("2022-01-01", 5100), ("2022-01-02", 700), ("2022-02-01", 50)]
    assert days.limit == 1000
    months = usage_series(conn, "north", "calls", "2022-01-01", "2022-12-31", grain="month")
    assert months.points == [("2022-01", 5800), ("2022-02", 50)] and months.limit == 20000
    years = usage_series(conn, "north", "records", "2021-01-01", "2022-12-31", grain="year")
    assert years.points == [("2022", 9)] and years.limit == 10**9
    assert usage_series(conn, "south", "calls", "2022-01-01", "2022-12-31").points == []
    with pytest.raises(StoreError, match="unknown grain 'week'"):
        usage_series(conn, "north", "calls", "2022-01-01", "2022-12-31", grain="week")  # type: ignore[arg-type]


TODAY = date(2030, 6, 1)


def test_the_chart_lands_on_the_latest_figures_with_the_cap_per_bar_and_per_period(conn: sqlite3.Connection) -> None:
    case = read_case(conn, "north")
    assert case is not None
    months = chart_of(conn, case, ChartWindow(), today=TODAY)
    assert months.window == ChartWindow("month", "calls", 2022, None)
    assert months.metrics == ("calls", "records")
    assert months.points == [("2022-01", 5800), ("2022-02", 50)]
    assert (months.limit, months.period_total, months.period_cap) == (20000, 5850, None)   # no yearly cap on calls
    days = chart_of(conn, case, ChartWindow().toggled_grain(), today=TODAY)
    assert days.window == ChartWindow("day", "calls", 2022, 12)   # the month asked for: December
    assert days.points == [] and days.period_total is None
    february = chart_of(conn, case, ChartWindow(grain="day"), today=TODAY)
    assert february.window == ChartWindow("day", "calls", 2022, 2)   # no month asked: the latest figures'
    assert (february.points, february.limit, february.period_total, february.period_cap) == (
        [("2022-02-01", 50)], 1000, 50, 20000)
    december = chart_of(conn, case, february.window.shifted(-2), today=TODAY)
    assert december.window.year == 2021 and december.points == [("2021-12-31", 1)]
    records = chart_of(conn, case, ChartWindow(metric="records", year=2022), today=TODAY)
    assert (records.points, records.limit, records.period_cap) == ([("2022-01", 9)], None, 10**9)
    unknown = chart_of(conn, case, ChartWindow(metric="input_tokens"), today=TODAY)
    assert unknown.window.metric == "calls"


def test_a_consumer_without_usage_charts_this_year_empty(conn: sqlite3.Connection) -> None:
    case = read_case(conn, "south")
    assert case is not None
    chart = chart_of(conn, case, ChartWindow(), today=TODAY)
    assert chart.window == ChartWindow("month", "calls", 2030, None) and chart.metrics == ("calls",)
    assert (chart.points, chart.period_total) == ([], None)


def test_chart_window_moves_by_years_months_and_metrics() -> None:
    assert ChartWindow(year=2022).shifted(1) == ChartWindow(year=2023)
    assert ChartWindow("day", year=2022, month=1).shifted(-1) == ChartWindow("day", year=2021, month=12)
    assert ChartWindow("day", year=2022, month=12).shifted(1) == ChartWindow("day", year=2023, month=1)
    assert ChartWindow().shifted(5) == ChartWindow()      # not resolved yet: nothing to move
    assert ChartWindow("day", month=3).toggled_grain() == ChartWindow("month", month=3)
    assert ChartWindow().next_metric(("calls", "records")).metric == "records"
    assert ChartWindow(metric="records").next_metric(("calls", "records")).metric == "calls"
    assert ChartWindow(metric="x").next_metric(("calls", "records")).metric == "calls"


# --- requests: decide() says what it did --------------------------------------------


def test_decide_confirms_dismisses_and_undoes_in_words(conn: sqlite3.Connection) -> None:
    def run(request: review.Request, ids: list[str] = ["north"], versions: dict[int, int] = {}) -> review.Outcome:
        return review.decide(conn, request, ids, versions=versions, reviewer="alice", clock=CLOCK)

    assert run(review.ConfirmRequest((1,), None, "high", "over"), versions={1: 1}) == review.Outcome(
        "Confirmed 1 finding #1; severity set to high; category as detected", finding_ids=(1,))
    assert run(review.DismissRequest((), "duplicate", "")) == review.Outcome("Dismissed 2 findings #2, #3",
                                                                             finding_ids=(2, 3))
    assert run(review.UndoRequest()) == review.Outcome(
        "Undone: 2 findings of North Ltd back to candidate", keep_place=False, consumer_id="north", title="Undo",
        finding_ids=(2, 3))
    assert run(review.NeedsInfoRequest((), "which app?"), ids=["north", "south"]) == review.Outcome(
        "Needs info: 3 findings #2, #3, #4", finding_ids=(2, 3, 4))
    assert run(review.NeedsInfoRequest((2,), "again")) == review.Outcome("Nothing changed (already decided).")
    run(review.UndoRequest())
    run(review.UndoRequest())
    assert run(review.UndoRequest()) == review.Outcome("Nothing of yours to undo.", keep_place=False, title="Undo")


def test_decide_refuses_a_finding_changed_since_the_reviewer_saw_it(conn: sqlite3.Connection) -> None:
    dismiss(conn, 2, reviewer="bob", reason_code="duplicate", clock=CLOCK)
    with pytest.raises(ConflictError, match="finding #2"):
        review.decide(conn, review.ConfirmRequest((2,), None, "low", "over"), ["north"], versions={2: 1},
                      reviewer="alice", clock=CLOCK)


def test_an_undone_finding_opened_by_hand_is_dismissed_and_names_are_shown_literally(
        conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.execute("UPDATE consumer SET legal_name = 'North\x1b[2J Ltd' WHERE id = 'north'")
    opened = review.decide(conn, review.ManualRequest("use_case_deviation", "high", "seen crawling"), ["north"],
                           versions={}, reviewer="alice", clock=CLOCK)
    assert opened == review.Outcome("Opened finding #5 (Use-case deviation)", keep_place=False, consumer_id="north",
                                    finding_ids=(5,))
    undone = review.decide(conn, review.UndoRequest(), [], versions={}, reviewer="alice", clock=CLOCK)
    assert undone.summary == "Undone: opening finding #5 of North␛[2J Ltd (now dismissed)"


def test_store_review_never_needs_a_terminal() -> None:
    out = subprocess.run([sys.executable, "-c", "import sys, store.review, store.queue;"
                          "print(any(m.split('.')[0] in ('textual', 'tui') for m in sys.modules))"],
                         cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "False"


def test_an_entry_edited_in_the_file_itself_is_named(db: Path) -> None:
    conn = connect(db)
    _fill(conn)
    dismiss(conn, 3, reviewer="dave", reason_code="other", reason_text="distinctive-reason-text", clock=CLOCK)
    target = log(conn)[-1]["id"]
    confirm_violation(conn, 2, reviewer="erin", severity="low", reason="a later entry", clock=CLOCK)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    # No SQL at all: flip bytes in the database file, as an editor or a disk would.
    raw = db.read_bytes()
    assert raw.count(b"distinctive-reason-text") == 1
    db.write_bytes(raw.replace(b"distinctive-reason-text", b"distinctive-reason-TEXT"))
    conn = connect(db)
    report = verify_chain(conn)
    assert (report.ok, report.first_bad_id) == (False, target)
    assert "distinctive-reason-TEXT" in (report.why or "")
    conn.close()


def test_reasons_and_evidence_are_stored_literally(conn: sqlite3.Connection) -> None:
    hostile = "[bold red]x[/] \x1b[31mred\x1b[0m'; DROP TABLE decision; --"
    confirm_violation(conn, 1, reviewer="alice", severity="high", reason=hostile, clock=CLOCK)
    f = open_manual_finding(conn, "north", category="restricted_use", severity="low", evidence=hostile,
                            reviewer=hostile, clock=CLOCK)
    assert log(conn)[0]["reason"] == hostile
    assert f.evidence == hostile and log(conn)[-1]["reviewer"] == hostile
    assert verify_chain(conn).ok


def test_deciding_a_finding_that_does_not_exist_is_refused(conn: sqlite3.Connection) -> None:
    with pytest.raises(DecisionRefused, match="no finding #99"):
        dismiss(conn, 99, reviewer="a", reason_code="duplicate", clock=CLOCK)
    assert log(conn) == []


def test_a_locked_database_is_a_readable_error(db: Path) -> None:
    from store.errors import StoreError

    holder, conn = connect(db), connect(db)
    conn.execute("PRAGMA busy_timeout = 50")
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="database is locked; nothing was changed"):
            dismiss(conn, 1, reviewer="alice", reason_code="duplicate", clock=CLOCK)
    finally:
        holder.execute("ROLLBACK")
    assert not conn.in_transaction
    dismiss(conn, 1, reviewer="alice", reason_code="duplicate", clock=CLOCK)
    assert verify_chain(conn).checked == 1
    holder.close(), conn.close()


def test_warden_verify_passes_then_names_the_edited_entry(db: Path, tmp_path: Path) -> None:
    conn = connect(db)
    _fill(conn)
    conn.close()
    run = [sys.executable, "-c", "import sys; from tui.cli import main; raise SystemExit(main(sys.argv[1:]))",
           "verify", "--db", str(db)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env.update(PYTHONPATH=str(ROOT), HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    ok = subprocess.run(run, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "6 entries" in ok.stdout + ok.stderr
    raw = _raw(db)
    raw.execute("UPDATE decision SET new_value = 'dismissed' WHERE id = 1")
    raw.close()
    broken = subprocess.run(run, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert broken.returncode == 1
    assert "entry 1" in broken.stdout + broken.stderr


# --- what a conflict and an undo say, word for word ----------------------------------


def test_a_finding_the_rules_changed_meanwhile_is_a_conflict_carrying_it_as_it_is_now(
        conn: sqlite3.Connection) -> None:
    # The rules re-detected finding #1 with new figures after the reviewer opened it:
    # version + 1 and a new updated_at, no log entry (store.candidates does so for a candidate).
    with transaction(conn):
        conn.execute("UPDATE finding SET actual = 12, updated_at = '2023-01-02T08:00:00Z', version = version + 1"
                     " WHERE id = 1")
    with pytest.raises(ConflictError) as info:
        confirm_violation(conn, 1, reviewer="alice", reason="over", clock=CLOCK, expected_version=1)
    assert str(info.value) == ("finding #1 changed since you opened it (you saw version 1): it is now candidate, "
                               "version 2")
    # No one decided it: when it changed is the finding's own time.
    assert info.value.current == {"finding_id": 1, "status": "candidate", "severity": "medium",
                                  "category": "volume_cap", "version": 2, "reviewer": None, "reason": None,
                                  "at": "2023-01-02T08:00:00Z"}
    assert log(conn) == []


def test_undoing_a_regrade_names_no_status(conn: sqlite3.Connection) -> None:
    confirm_violation(conn, 1, reviewer="alice", reason="over", clock=CLOCK)
    confirm_violation(conn, 1, reviewer="alice", severity="critical", reason="worse than it looked", clock=CLOCK)
    undone = review.decide(conn, review.UndoRequest(), ["north"], versions={}, reviewer="alice", clock=CLOCK)
    assert undone == review.Outcome("Undone: finding #1 of North Ltd", keep_place=False, consumer_id="north",
                                    title="Undo", finding_ids=(1,))
    assert finding_row(conn, 1) == {"status": "confirmed", "severity": "medium", "category": "volume_cap",
                                    "version": 4}


def test_undoing_findings_of_two_consumers_names_each_state_they_went_back_to(conn: sqlite3.Connection) -> None:
    mark_needs_info(conn, 1, reviewer="bob", reason="which app?", clock=CLOCK)
    bulk_decide(conn, action="dismiss", consumer_ids=["north", "south"], reason_code="duplicate",
                reviewer="alice", clock=CLOCK)
    undone = review.decide(conn, review.UndoRequest(), ["north"], versions={}, reviewer="alice", clock=CLOCK)
    assert undone == review.Outcome("Undone: 4 findings of 2 consumers back to needs info / candidate",
                                    keep_place=False, consumer_id="north", title="Undo", finding_ids=(1, 2, 3, 4))
    assert [finding_row(conn, i)["status"] for i in (1, 2, 3, 4)] == ["needs_info", "candidate", "candidate",
                                                                     "candidate"]


def _by_hand(conn: sqlite3.Connection, *, consumer: str = "south", **changed: str) -> object:
    """Open a restricted-use finding of high severity by hand, as reviewer "a", but for ``changed``."""
    return open_manual_finding(conn, consumer, **{"category": "restricted_use", "severity": "high", "evidence": "x",
                                                  **changed}, reviewer="a", clock=CLOCK)


REFUSALS = [
    (lambda c: dismiss(c, 99, reviewer="a", reason_code="duplicate", clock=CLOCK), "there is no finding #99"),
    (lambda c: review.change_finding(c, 1, reviewer="a", clock=CLOCK, reason="r", severity="severe"),
     "unknown severity 'severe'; valid: info, low, medium, high, critical"),
    (lambda c: review.change_finding(c, 1, reviewer="a", clock=CLOCK, reason="r", category="spam"),
     "unknown category 'spam'; valid: volume_cap, rate_limit, circumvention, missing_use_case, endpoint_outside, "
     "use_case_deviation, government_end_user, restricted_use, redistribution, storage_deletion"),
    (lambda c: review.change_finding(c, 1, reviewer="a", clock=CLOCK, reason=" ", severity="high",
                                     category="circumvention"),
     "changing the severity and category of finding #1 needs a reason (it was severity medium, category "
     "volume_cap as detected)"),
    (lambda c: confirm_violation(c, 2, reviewer="a", clock=CLOCK, category="circumvention"),
     "changing the category of finding #2 needs a reason (it was category rate_limit as detected)"),
    (lambda c: review.set_finding_status(c, 1, "resolved", reviewer="a", clock=CLOCK, expected_version=1),
     "finding #1 is candidate; it cannot become resolved"),
    (lambda c: dismiss(c, 1, reviewer="a", reason_code="spam", clock=CLOCK),
     "unknown dismissal reason 'spam'; valid: false_positive, within_allowance, duplicate, out_of_scope, other"),
    (lambda c: dismiss(c, 1, reviewer="a", reason_code="other", clock=CLOCK),
     "dismissing for an 'other' reason needs the reason written out"),
    (lambda c: bulk_decide(c, action="resolve", finding_ids=[1], reviewer="a", clock=CLOCK),
     "unknown bulk action 'resolve'; valid: confirm, dismiss, needs_info"),
    (lambda c: _by_hand(c, category="volume_cap"),
     "category 'volume_cap' cannot be opened by hand; valid: use_case_deviation, government_end_user, "
     "restricted_use, redistribution, storage_deletion"),
    (lambda c: _by_hand(c, severity="severe"),
     "unknown severity 'severe'; valid: info, low, medium, high, critical"),
    (lambda c: _by_hand(c, evidence=" \n"),
     "a finding opened by hand needs evidence text"),
    (lambda c: _by_hand(c, period_start="2022-03-01", period_end="March"),
     "period day 'March' is not a date like 2022-03-01"),
    (lambda c: _by_hand(c, period_start="2022-03-02", period_end="2022-03-01"),
     "the period ends (2022-03-01) before it starts (2022-03-02)"),
    (lambda c: _by_hand(c, consumer="nobody"),
     "there is no consumer 'nobody'"),
    (lambda c: _by_hand(c, evidence=""),
     "a finding opened by hand needs evidence text"),
    (lambda c: review.change_finding(c, 1, reviewer="a", clock=CLOCK, reason=None, severity="high"),
     "changing the severity of finding #1 needs a reason (it was severity medium as detected)"),
    (lambda c: bulk_decide(c, action="dismiss", finding_ids=[1], reviewer="a", clock=CLOCK),
     "unknown dismissal reason ''; valid: false_positive, within_allowance, duplicate, out_of_scope, other"),
]


@pytest.mark.parametrize(("act", "message"), REFUSALS, ids=[m[:40] for _a, m in REFUSALS])
def test_each_refusal_says_why_word_for_word_and_changes_nothing(conn: sqlite3.Connection, act, message: str) -> None:  # noqa: ANN001
    with pytest.raises(DecisionRefused) as refused:
        act(conn)
    assert str(refused.value) == message
    assert log(conn) == []
    assert [finding_row(conn, i)["version"] for i in (1, 2, 3, 4)] == [1, 1, 1, 1]


def test_undo_and_its_refusals_word_for_word(conn: sqlite3.Connection) -> None:
    mark_needs_info(conn, 1, reviewer="alice", reason="which app?", clock=CLOCK)
    confirm_violation(conn, 1, reviewer="bob", severity="high", reason="seen", clock=CLOCK)
    with pytest.raises(ConflictError) as conflict:
        undo_last(conn, reviewer="alice", clock=CLOCK)
    assert str(conflict.value) == ("finding #1 changed after your decision (status needs_info -> confirmed): "
                                   "it is now confirmed by bob (seen), version 3")
    # Without a version, a status that cannot follow is a conflict too: the reviewer saw an older state.
    with pytest.raises(ConflictError) as conflict:
        review.set_finding_status(conn, 1, "candidate", reviewer="carol", clock=CLOCK)
    assert str(conflict.value) == "finding #1 cannot become candidate: it is now confirmed by bob (seen), version 3"
    review.set_finding_status(conn, 1, "audit_requested", reviewer="bob", clock=CLOCK, reason="note #1 exported")
    with pytest.raises(DecisionRefused) as refused:
        undo_last(conn, reviewer="bob", clock=CLOCK)
    assert str(refused.value) == ("your last action exported a note (its findings are audit_requested); an export "
                                  "cannot be undone, nothing was changed")
    # An undo logs which action it undid.
    dismiss(conn, 2, reviewer="carol", reason_code="duplicate", clock=CLOCK)
    action = log(conn)[-1]["action_id"]
    undo_last(conn, reviewer="carol", clock=CLOCK)
    assert [(e["field"], e["old_value"], e["new_value"], e["reason"], e["undoes"]) for e in log(conn)[-1:]] == [
        ("status", "dismissed", "candidate", f"undo of #{action}", action)]


def test_a_finding_opened_by_hand_logs_its_category_and_evidence(conn: sqlite3.Connection) -> None:
    f = open_manual_finding(conn, "south", category="storage_deletion", severity="high",
                            evidence="  Kept the records after the contract ended  ", reviewer="alice", clock=CLOCK)
    # One day, today by the clock, unless the reviewer says otherwise.
    assert (f.period, f.period_start, f.period_end, f.evidence) == (
        "2023-01-02", "2023-01-02", "2023-01-02", "Kept the records after the contract ended")
    assert log(conn)[-1]["reason"] == ("opened by hand: Storage / deletion non-compliance; evidence: Kept the records "
                                      "after the contract ended")
    one_day = open_manual_finding(conn, "south", category="redistribution", severity="low", evidence="resold",
                                  reviewer="alice", clock=CLOCK, period_start="2022-05-01")
    assert (one_day.period, one_day.period_start, one_day.period_end) == ("2022-05-01", "2022-05-01", "2022-05-01")


def test_decide_names_at_most_six_findings_and_what_it_set(conn: sqlite3.Connection) -> None:
    def run(request: review.Request, ids: list[str], versions: dict[int, int] = {}) -> str:
        return review.decide(conn, request, ids, versions=versions, reviewer="alice", clock=CLOCK).summary

    for _ in range(3):
        open_manual_finding(conn, "north", category="redistribution", severity="low", evidence="resold",
                            reviewer="bob", clock=CLOCK)
    assert run(review.NeedsInfoRequest((), "which app?"), ["north"]) == \
        "Needs info: 6 findings #1, #2, #3, #5, #6, #7"
    run(review.UndoRequest(), [])
    assert run(review.NeedsInfoRequest((), "which app?"), ["north", "south"]) == \
        "Needs info: 7 findings #1, #2, #3, #4, #5, #6 …"
    assert {e["reason"] for e in log(conn) if e["new_value"] == "needs_info"} == {"which app?"}
    assert run(review.ConfirmRequest((4,), "circumvention", "high", "split over apps"), ["south"]) == \
        "Confirmed 1 finding #4; severity set to high; category set to circumvention"
    assert finding_row(conn, 4) == {"status": "confirmed", "severity": "high", "category": "circumvention",
                                    "version": 3}
    assert [(e["field"], e["new_value"], e["reason"]) for e in log(conn) if e["subject_id"] == 4][-3:] == [
        ("status", "confirmed", "split over apps"), ("severity", "high", "split over apps"),
        ("category", "circumvention", "split over apps")]
    assert run(review.ConfirmRequest((), None, None, ""), ["north"]) == \
        "Confirmed 6 findings #1, #2, #3, #5, #6, #7; severity and category as detected"
    assert run(review.DismissRequest((1,), "other", "test account"), ["north"]) == "Dismissed 1 finding #1"


def test_every_decision_passes_the_kill_tests_fault_point_once_on_each_side_of_its_commit(
        conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    # tests/test_kill.py stops the process at "decision:before-commit" / ":after-commit"; each
    # decision must pass there exactly once, whatever action wrote it.
    passed: list[str] = []
    monkeypatch.setattr("store.db.reach", lambda point, side, known=None: passed.append(f"{point}:{side}"))
    actions = [
        lambda: confirm_violation(conn, 1, reviewer="a", reason="over", clock=CLOCK),
        lambda: dismiss(conn, 2, reviewer="a", reason_code="duplicate", clock=CLOCK),
        lambda: mark_needs_info(conn, 3, reviewer="a", clock=CLOCK),
        lambda: bulk_decide(conn, action="dismiss", consumer_ids=["south"], reason_code="duplicate", reviewer="a",
                            clock=CLOCK),
        lambda: open_manual_finding(conn, "south", category="restricted_use", severity="low", evidence="seen",
                                    reviewer="a", clock=CLOCK),
        lambda: undo_last(conn, reviewer="a", clock=CLOCK),
    ]
    for act in actions:
        passed.clear()
        act()
        assert passed == ["decision:before-commit", "decision:after-commit"]


def test_parking_a_finding_without_a_reason_logs_none_and_says_so(conn: sqlite3.Connection) -> None:
    mark_needs_info(conn, 1, reviewer="carol", clock=CLOCK)
    mark_needs_info(conn, 2, reviewer="carol", reason="  ", clock=CLOCK)
    assert [(e["subject_id"], e["new_value"], e["reason"]) for e in log(conn)] == [(1, "needs_info", None),
                                                                                   (2, "needs_info", None)]
    with pytest.raises(ConflictError) as conflict:
        dismiss(conn, 1, reviewer="dave", reason_code="duplicate", clock=CLOCK, expected_version=1)
    assert str(conflict.value) == ("finding #1 changed since you opened it (you saw version 1): it is now needs_info "
                                   "by carol, version 2")
