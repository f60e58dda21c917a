"""The recurrence rule: a case resolved, then usage breaking the same limits
again reopens it, citing the earlier case; other limits, or a breach from before
it ended, do not. Through the rules as a sync runs them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store.casework.recurrence import RULES_REVIEWER, limit_of
from store.casework.state import close_case, latest_case
from store.config import NotesConfig
from store.export import export_notes
from store.notes import draft_note
from store.review import bulk_decide
from store.rules import run_rules
from tests.cases_data import at, case_columns, log
from tests.test_rules import conn, put  # noqa: F401 - the rules tests' database (fixture) and its usage writer


def _resolved_case(conn: sqlite3.Connection, tmp_path: Path, resolved: str = "2022-03-10") -> None:  # noqa: F811
    """Acme breaks calls_per_month in January 2022; a letter, then resolved on ``resolved``."""
    for d in range(1, 21):
        put(conn, "a1", f"2022-01-{d:02d}", "calls", 60)       # 1,200 in January, no day over 100
    run_rules(conn, clock=at("2022-02-02"))
    bulk_decide(conn, action="confirm", reviewer="ana", clock=at("2022-02-03"), consumer_ids=["acme"],
                severity="high", reason="over the monthly cap")
    notes = NotesConfig()
    draft_note(conn, "acme", reviewer="ana", clock=at("2022-02-03"), config=notes)
    export_notes(conn, fmt="md", out_dir=tmp_path / "out", consumer_id="acme", reviewer="ana",
                 clock=at("2022-02-03"), config=notes)
    close_case(conn, "acme", outcome="within_limits", reason="back under the cap", reviewer="ana",
               clock=at(resolved))


def test_a_finding_names_the_limit_it_breaks() -> None:
    assert limit_of("volume_cap", {"limit": {"metric": "calls", "period": "month", "max": 1}}) == "calls_per_month"
    assert limit_of("circumvention", '{"limit": {"metric": "calls", "period": "day", "max": 1}}') == "calls_per_day"
    assert limit_of("endpoint_outside", {}) == "allowed_endpoints"
    assert limit_of("missing_use_case", None) == "declared_use_case"
    assert limit_of("restricted_use", {}) is None
    assert limit_of("volume_cap", "not json") is None


@pytest.mark.parametrize("everything", [False, True], ids=["changed", "all"])
def test_the_same_limit_broken_after_the_resolution_reopens_the_case(conn: sqlite3.Connection,  # noqa: F811
                                                                     tmp_path: Path, everything: bool) -> None:
    """Whichever way the rules run: over the consumers whose figures changed (a
    sync's), or over every consumer (``warden rules --all``)."""
    _resolved_case(conn, tmp_path)
    assert latest_case(conn, "acme").state == "resolved"
    for d in range(1, 21):
        put(conn, "a2", f"2022-04-{d:02d}", "calls", 55)       # April: 1,100 against 1,000 a month
    result = run_rules(conn, clock=at("2022-05-02"), everything=everything)
    assert (result.mode, result.created) == ("full" if everything else "changed", 1)
    case = latest_case(conn, "acme")
    assert (case.id, case.state, case.reopens) == (2, "reopened", 1)
    april = conn.execute("SELECT id FROM finding WHERE consumer_id = 'acme' AND period = '2022-04'").fetchone()[0]
    reason = (f"usage broke the same limits again after case #1 was resolved on 2022-03-10: finding #{april} "
              "(calls_per_month 2022-04)")
    assert log(conn, "case")[-2:] == [(2, "state", None, "reopened", reason), (2, "reopens", None, "1", reason)]
    assert conn.execute("SELECT reviewer FROM decision WHERE subject = 'case' AND subject_id = 2").fetchone()[0] == \
        RULES_REVIEWER
    # The state and the case it reopens are one action of the rules, logged when they ran.
    opened = [tuple(r) for r in conn.execute("SELECT id, action_id, reviewer, at FROM decision WHERE subject = 'case'"
                                             " AND subject_id = 2 ORDER BY id")]
    assert [entry[1:] for entry in opened] == [(opened[0][0], RULES_REVIEWER, "2022-05-02T10:00:00Z")] * 2
    assert case_columns(conn, "acme") == ("reopened", None)
    # Running the rules again, either way, neither writes the finding nor opens a third case.
    entries = conn.execute("SELECT count(*) FROM decision").fetchone()[0]
    for again in (False, True):
        assert run_rules(conn, clock=at("2022-05-02"), everything=again).created == 0
    assert conn.execute("SELECT count(*) FROM decision").fetchone()[0] == entries
    assert (latest_case(conn, "acme").id, case_columns(conn, "acme")) == (2, ("reopened", None))
    # The next letter sends this case, not a third one.
    bulk_decide(conn, action="confirm", reviewer="ana", clock=at("2022-05-03"), consumer_ids=["acme"],
                severity="high", reason="again")
    draft_note(conn, "acme", reviewer="ana", clock=at("2022-05-03"), config=NotesConfig())
    export_notes(conn, fmt="md", out_dir=tmp_path / "out2", consumer_id="acme", reviewer="ana",
                 clock=at("2022-05-03"), config=NotesConfig())
    assert (latest_case(conn, "acme").id, latest_case(conn, "acme").state) == (2, "letter_sent")


def test_another_limit_does_not_reopen_it(conn: sqlite3.Connection, tmp_path: Path) -> None:  # noqa: F811
    _resolved_case(conn, tmp_path)
    put(conn, "a1", "2022-04-05", "calls", 150)                # one day over 100 a day: calls_per_day
    run_rules(conn, clock=at("2022-05-02"))
    assert conn.execute("SELECT category FROM finding WHERE consumer_id = 'acme' AND status = 'candidate'"
                        ).fetchall()[0][0] == "rate_limit"
    assert latest_case(conn, "acme").id == 1
    assert case_columns(conn, "acme") == ("open", None)        # a new matter, not a recurrence


@pytest.mark.parametrize(("month", "reopened"), [("2022-03", False), ("2022-04", True)])
def test_only_a_breach_starting_after_the_case_ended_counts(conn: sqlite3.Connection, tmp_path: Path,  # noqa: F811
                                                            month: str, reopened: bool) -> None:
    _resolved_case(conn, tmp_path)                              # resolved on 2022-03-10
    for d in range(11, 31):
        put(conn, "a1", f"{month}-{d:02d}", "calls", 60)        # the March breach starts before the 10th ends
    run_rules(conn, clock=at("2022-05-02"))
    assert (latest_case(conn, "acme").state == "reopened") is reopened


@pytest.mark.parametrize(("resolved", "reopened"), [("2022-03-31", True), ("2022-04-01", False)])
def test_a_period_starting_on_the_day_of_the_resolution_is_not_after_it(conn: sqlite3.Connection,  # noqa: F811
                                                                         tmp_path: Path, resolved: str,
                                                                         reopened: bool) -> None:
    _resolved_case(conn, tmp_path, resolved)
    for d in range(1, 21):
        put(conn, "a2", f"2022-04-{d:02d}", "calls", 55)       # April, from the 1st: 1,100 against 1,000
    run_rules(conn, clock=at("2022-05-02"))
    assert (latest_case(conn, "acme").state == "reopened") is reopened
