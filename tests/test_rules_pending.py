"""What changed since the rules last looked: every change the rules depend on
leaves the mark it should, no more; a run takes the marks it saw and leaves
those that arrive meanwhile; a figure fetched again unchanged updates a
finding's provenance without a new version."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from store import rules_pending
from store.clock import fixed_clock
from store.config import Config
from store.consumers import apply_config
from store.db import connect, transaction
from store.errors import ConflictError
from store.review import confirm_violation, dismiss, undo_last
from store.rules import run_rules
from store.rules_pending import mark_apps, needs_full_pass, pending_counts
from store.sync.writer import PageOutcome, RunWriter
from store.sync.adapter import ParsedPage

CLOCK = fixed_clock(datetime(2023, 1, 2, 9, 0, tzinfo=timezone.utc))
LATER = fixed_clock(datetime(2023, 1, 3, 9, 0, tzinfo=timezone.utc))


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    """Two consumers of tier 'basic' (calls: 100 a day), with apps; no marks yet."""
    c = connect(tmp_path / "w.db")
    with transaction(c):
        c.execute("INSERT INTO tier (id, name) VALUES ('basic', 'Basic'), ('gold', 'Gold')")
        c.execute("INSERT INTO tier_limit VALUES ('basic', 'calls', 'day', 100)")
        c.executemany("INSERT INTO consumer (id, legal_name, tier_id, declared_use_case) VALUES (?, ?, ?, 'x')",
                      [("acme", "Acme", "basic"), ("zeta", "Zeta", "basic"), ("gilt", "Gilt", "gold")])
        c.executemany("INSERT INTO app (source, app_id, consumer_id, name, declared_use_case) "
                      "VALUES ('s', ?, ?, ?, 'x')", [("a1", "acme", "A1"), ("z1", "zeta", "Z1")])
        c.execute("INSERT INTO sync_run (id, source, started_at, status) VALUES (1, 's', 't', 'ok')")
        c.execute("INSERT INTO usage VALUES ('s', 'a1', '2022-01-01', 'calls', 500, 1, 1)")
        c.execute("INSERT INTO endpoint_usage VALUES ('s', 'a1', '2022-01-01', '/x', 5, 1, 1)")
        c.execute("DELETE FROM rules_pending")
    return c


def marks(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    return sorted(tuple(r) for r in conn.execute("SELECT kind, subject, app_id FROM rules_pending"))


@pytest.mark.parametrize("change, expected", [
    ("UPDATE usage SET value = 501", [("figures", "s", "a1")]),
    ("UPDATE usage SET value = 500", []),                                 # the same figure: no change
    ("UPDATE usage SET run_id = 2", []),                                  # provenance is not a figure
    ("DELETE FROM usage", [("figures", "s", "a1")]),
    ("UPDATE endpoint_usage SET calls = 6", [("figures", "s", "a1")]),
    ("UPDATE endpoint_usage SET calls = 5", []),
    ("DELETE FROM endpoint_usage", [("figures", "s", "a1")]),
    ("INSERT INTO app VALUES ('s', 'a2', 'zeta', NULL, NULL)", [("consumer", "zeta", "")]),
    ("UPDATE app SET consumer_id = 'zeta' WHERE app_id = 'a1'", [("consumer", "acme", ""), ("consumer", "zeta", "")]),
    ("UPDATE app SET name = 'A one' WHERE app_id = 'a1'", [("consumer", "acme", "")]),
    ("UPDATE app SET declared_use_case = NULL WHERE app_id = 'a1'", [("consumer", "acme", "")]),
    ("UPDATE app SET name = 'A1' WHERE app_id = 'a1'", []),
    ("DELETE FROM app WHERE app_id = 'z1'", [("consumer", "zeta", "")]),
    ("UPDATE consumer SET tier_id = 'gold' WHERE id = 'acme'", [("consumer", "acme", "")]),
    ("UPDATE consumer SET declared_use_case = NULL WHERE id = 'acme'", [("consumer", "acme", "")]),
    ("UPDATE consumer SET legal_name = 'ACME', worst_ratio = 3 WHERE id = 'acme'", []),   # rules do not read these
    ("INSERT INTO tier_limit VALUES ('gold', 'calls', 'month', 9)", [("tier", "gold", "")]),
    ("UPDATE tier_limit SET max_value = 99", [("tier", "basic", "")]),
    ("DELETE FROM tier_limit", [("tier", "basic", "")]),
    ("UPDATE tier SET allowed_endpoints = '[\"/2/*\"]' WHERE id = 'gold'", [("tier", "gold", "")]),
    ("UPDATE tier SET name = 'Golden' WHERE id = 'gold'", []),
])
def test_each_change_leaves_its_mark(conn: sqlite3.Connection, change: str, expected: list[tuple[str, ...]]) -> None:
    with transaction(conn):
        conn.execute(change)
    assert marks(conn) == expected


def test_a_finding_back_to_candidate_marks_its_consumer(conn: sqlite3.Connection) -> None:
    run_rules(conn, clock=CLOCK)
    [(fid,)] = conn.execute("SELECT id FROM finding WHERE consumer_id = 'acme'").fetchall()
    dismiss(conn, fid, reviewer="rita", reason_code="duplicate", clock=CLOCK)
    assert marks(conn) == []       # deciding changes nothing the rules compute
    undo_last(conn, reviewer="rita", clock=CLOCK)
    assert marks(conn) == [("consumer", "acme", "")]


def test_marking_again_moves_a_mark_past_a_run_that_already_took_it(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        mark_apps(conn, "figures", "s", ["a1", "z1"])
    work = rules_pending.PendingWork(conn, everything=False)
    assert sorted(c for chunk in work.chunks(10) for c in chunk) == ["acme", "zeta"]
    with transaction(conn):      # a sync writes while the run evaluates
        mark_apps(conn, "figures", "s", ["z1"])
    work.done()
    work.close()
    assert marks(conn) == [("figures", "s", "z1")]   # kept for the next run


def test_the_first_run_is_a_full_pass_and_so_is_one_after_the_rules_changed(
        conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    assert needs_full_pass(conn)
    first = run_rules(conn, clock=CLOCK)
    assert (first.mode, first.consumers) == ("full", 3)
    assert not needs_full_pass(conn) and pending_counts(conn) == dict.fromkeys(rules_pending.MARK_KINDS, 0)
    assert run_rules(conn, clock=CLOCK).consumers == 0
    monkeypatch.setattr(rules_pending, "RULES_VERSION", rules_pending.RULES_VERSION + 1)
    monkeypatch.setattr("store.rules.RULES_VERSION", rules_pending.RULES_VERSION)
    assert needs_full_pass(conn)
    assert run_rules(conn, clock=CLOCK).mode == "full"


def test_only_the_consumers_marked_are_evaluated(conn: sqlite3.Connection) -> None:
    run_rules(conn, clock=CLOCK)
    with transaction(conn):
        conn.execute("UPDATE usage SET value = 900")
    result = run_rules(conn, clock=LATER)
    assert (result.mode, result.consumers, result.updated) == ("changed", 1, 1)
    with transaction(conn):
        conn.execute("UPDATE tier_limit SET max_value = 1000")   # every consumer of 'basic'
    result = run_rules(conn, clock=LATER)
    assert (result.consumers, result.no_longer_detected) == (2, 1)


def _page(rows: list[tuple[str, str, str, int]]) -> PageOutcome:
    return PageOutcome("usage/0", "http://127.0.0.1/u", "t", 200, "0" * 64, 1,
                       page=ParsedPage(usage=rows))


def test_the_writer_marks_new_and_changed_figures_and_provenance_where_findings_follow_it(
        conn: sqlite3.Connection) -> None:
    run_rules(conn, clock=CLOCK)     # acme (a1, 500 calls on a day of 100) has a finding; zeta none
    conn.execute("INSERT INTO sync_run (id, source, started_at, status) VALUES (2, 's', 't', 'running')")
    writer = RunWriter(conn, "s", 2)
    # A first page for a chain whose rows are all new: the plain INSERT path.
    writer.write(_page([("z1", "2022-01-01", "calls", 7), ("n1", "2022-01-01", "calls", 1)]))
    writer.commit()
    assert marks(conn) == [("figures", "s", "n1"), ("figures", "s", "z1")]
    conn.execute("DELETE FROM rules_pending")
    # Fetched again: a1 unchanged (its consumer has a candidate: provenance), z1
    # unchanged (no finding to follow it: nothing), n1 changed (figures).
    writer.write(_page([("a1", "2022-01-01", "calls", 500), ("z1", "2022-01-01", "calls", 7),
                        ("n1", "2022-01-01", "calls", 2)]))
    writer.commit()
    assert marks(conn) == [("figures", "s", "n1"), ("provenance", "s", "a1")]
    assert conn.execute("SELECT run_id FROM usage WHERE app_id = 'a1'").fetchone()[0] == 2


def test_newer_provenance_keeps_the_version_and_an_open_dialog_valid(conn: sqlite3.Connection) -> None:
    run_rules(conn, clock=CLOCK)
    before = conn.execute("SELECT id, version, figures, updated_at FROM finding").fetchone()
    assert json.loads(before["figures"])["runs"] == [1]
    # The same figure, fetched again by run 2 (page 7).
    with transaction(conn):
        conn.execute("UPDATE usage SET run_id = 2, page_id = 7")
        mark_apps(conn, "provenance", "s", ["a1"])
    result = run_rules(conn, clock=LATER)
    assert (result.provenance, result.updated, result.unchanged) == (1, 0, 0)
    after = conn.execute("SELECT id, version, figures, updated_at FROM finding").fetchone()
    assert (after["version"], after["updated_at"]) == (before["version"], before["updated_at"])
    figures = json.loads(after["figures"])
    assert (figures["runs"], figures["pages"]) == ([2], [7])
    # A reviewer who opened the finding before still confirms it.
    confirm_violation(conn, after["id"], reviewer="rita", severity="high", reason="over",
                      clock=LATER, expected_version=before["version"])


def test_a_changed_figure_bumps_the_version_and_refuses_an_old_dialog(conn: sqlite3.Connection) -> None:
    run_rules(conn, clock=CLOCK)
    before = conn.execute("SELECT id, version FROM finding").fetchone()
    with transaction(conn):
        conn.execute("UPDATE usage SET value = 501")
    assert run_rules(conn, clock=LATER).updated == 1
    assert conn.execute("SELECT version FROM finding").fetchone()[0] == before["version"] + 1
    with pytest.raises(ConflictError):
        confirm_violation(conn, before["id"], reviewer="rita", severity="high", reason="over",
                          clock=LATER, expected_version=before["version"])


def test_an_app_nobody_owns_keeps_its_mark_until_apply_config_gives_it_a_consumer(conn: sqlite3.Connection) -> None:
    run_rules(conn, clock=CLOCK)     # from now on apply_config reads the marks, not all usage
    with transaction(conn):
        conn.execute("INSERT INTO usage VALUES ('s', 'stray', '2022-01-01', 'calls', 5, 1, 1)")
        mark_apps(conn, "figures", "s", ["stray", "ghost"])      # ghost: marked, but no figure left
    run_rules(conn, clock=CLOCK)
    assert marks(conn) == [("figures", "s", "stray")]
    apply_config(conn, Config())
    assert conn.execute("SELECT consumer_id FROM app WHERE app_id = 'stray'").fetchone()[0] == "s:stray"
    result = run_rules(conn, clock=CLOCK)
    assert result.consumers == 1 and marks(conn) == []
    assert conn.execute("SELECT category FROM finding WHERE consumer_id = 's:stray'").fetchall()[0][0] == (
        "missing_use_case")


def test_figures_fetched_again_outside_every_finding_s_period_leave_no_mark(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.execute("INSERT INTO usage VALUES ('s', 'a1', '2022-02-03', 'calls', 5, 1, 1)")
    run_rules(conn, clock=CLOCK)     # acme's finding: rate limit, January 2022 (2022-01-01 at 500)
    conn.execute("INSERT INTO sync_run (id, source, started_at, status) VALUES (2, 's', 't', 'running')")
    writer = RunWriter(conn, "s", 2)
    writer.write(_page([("a1", "2022-02-03", "calls", 5)]))     # February, the same again
    writer.write(_page([("a1", "2022-02-03", "calls", 5)]))
    writer.commit()
    assert marks(conn) == []
    writer.write(_page([("a1", "2022-01-01", "calls", 500)]))   # January, the same again
    writer.commit()
    assert marks(conn) == [("provenance", "s", "a1")]


@pytest.mark.parametrize("count", [4999, 5000, 5001, 10001])
def test_a_run_clears_every_mark_it_took_across_its_batches(tmp_path: Path, count: int) -> None:
    """Marks 1..count are deleted 5,000 per transaction: each batch exactly on its
    limit and one past it, the first mark (id 1) included; the count is every one."""
    c = connect(tmp_path / "fresh.db")
    with transaction(c):
        c.executemany("INSERT INTO rules_pending (kind, subject) VALUES ('tier', ?)",
                      [(f"t{i:05d}",) for i in range(count)])
    assert tuple(c.execute("SELECT min(id), max(id) FROM rules_pending").fetchone()) == (1, count)
    work = rules_pending.PendingWork(c, everything=False)
    assert list(work.chunks(10)) == []          # no consumer of those tiers
    assert work.done() == count
    work.close()
    assert c.execute("SELECT count(*) FROM rules_pending").fetchone()[0] == 0


def test_the_consumers_come_a_chunk_at_a_time_in_id_order_whatever_their_first_character(
        conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.executemany("INSERT INTO consumer (id, legal_name, tier_id, declared_use_case) VALUES (?, ?, 'gold', 'x')",
                         [("7eleven", "7-Eleven"), ("Acme-EU", "Acme Europe")])
    work = rules_pending.PendingWork(conn, everything=True)
    assert list(work.chunks(2)) == [["7eleven", "Acme-EU"], ["acme", "gilt"], ["zeta"]]
    assert list(work.chunks(5)) == [["7eleven", "Acme-EU", "acme", "gilt", "zeta"]]
    work.close()


def test_listing_the_consumers_to_evaluate_does_not_wait_for_another_writer(
        conn: sqlite3.Connection, tmp_path: Path) -> None:
    """The list is a temporary table of the run's connection: building it takes no
    write lock, so a sync writing at the same time does not hold the rules up."""
    with transaction(conn):
        mark_apps(conn, "figures", "s", ["a1"])
    other = connect(tmp_path / "w.db")
    other.execute("PRAGMA busy_timeout = 0")
    other.execute("BEGIN IMMEDIATE")          # another process is writing
    try:
        conn.execute("PRAGMA busy_timeout = 0")
        work = rules_pending.PendingWork(conn, everything=False)
        assert list(work.chunks(10)) == [["acme"]]
        work.close()
    finally:
        other.rollback()
        other.close()
