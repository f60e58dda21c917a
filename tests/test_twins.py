"""Twins: a volume-cap or rate-limit finding and the circumvention finding over the
same figures are one matter for the reviewer (one row in the queue's count, decided
together) while the log records each finding's decision; and a confirmation keeps
each finding's severity and category as detected."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from store.clock import fixed_clock
from store.db import connect
from store.review import ConfirmRequest, DismissRequest, decide, undo_last
from store.twins import pair_twins, twins_of
from store.cases import list_findings
from store.verify import verify_log
from tui.cli import main as cli_main

CLOCK = fixed_clock(datetime(2023, 5, 2, 9, 0, tzinfo=timezone.utc))
CASE = "northwind-analytics"


def _finding(conn: sqlite3.Connection, category: str, period: str, limit_period: str = "month",
             metric: str = "calls") -> int:
    return conn.execute(
        "SELECT id FROM finding WHERE consumer_id = ? AND category = ? AND period = ? AND metric = ?"
        " AND json_extract(figures, '$.limit.period') = ?", (CASE, category, period, metric, limit_period)
    ).fetchone()[0]


def _state(conn: sqlite3.Connection, fid: int) -> tuple[str, str, str]:
    return tuple(conn.execute("SELECT status, severity, category FROM finding WHERE id = ?", (fid,)).fetchone())


def test_the_demo_case_has_thirty_twins_counted_once_in_the_queue(small_demo_db: Path) -> None:
    conn = connect(small_demo_db, readonly=True)
    findings = list_findings(conn, consumer_id=CASE)
    # The demo's case: 15 months (October 2021 to December 2022), each over the monthly
    # calls limit and the daily calls limit with every app under them: 2 x 15 twins.
    assert len(findings) == 78
    pairs = pair_twins(findings)
    assert len(pairs) == 30
    by_id = {f.id: f for f in findings}
    for twin, primary in pairs.items():
        t, p = by_id[twin], by_id[primary]
        assert t.category == "circumvention" and p.category in ("volume_cap", "rate_limit")
        assert (t.period, t.metric, t.actual, t.limit_value) == (p.period, p.metric, p.actual, p.limit_value)
        assert p.category == ("rate_limit" if t.figures["limit"]["period"] == "day" else "volume_cap")
    assert twins_of(conn, [CASE]) == pairs
    assert conn.execute("SELECT open_findings FROM consumer WHERE id = ?", (CASE,)).fetchone()[0] == 78 - 30
    conn.close()


def test_deciding_one_twin_decides_the_other_and_the_log_records_each(demo_copy: Path) -> None:
    conn = connect(demo_copy)
    volume = _finding(conn, "volume_cap", "2022-07")
    twin = _finding(conn, "circumvention", "2022-07")
    before = {fid: _state(conn, fid) for fid in (volume, twin)}
    outcome = decide(conn, ConfirmRequest((volume,), None, None, "split across 8 apps"), [CASE],
                     versions={volume: 1}, reviewer="ana", clock=CLOCK)
    assert outcome.finding_ids == tuple(sorted((volume, twin)))
    for fid in (volume, twin):
        status, severity, category = _state(conn, fid)
        assert (status, severity, category) == ("confirmed", before[fid][1], before[fid][2])
        logged = conn.execute("SELECT field, old_value, new_value, reason FROM decision WHERE subject = 'finding'"
                              " AND subject_id = ? ORDER BY id", (fid,)).fetchall()
        assert [tuple(r) for r in logged] == [
            ("status", "candidate", "confirmed", "split across 8 apps"),
            ("severity", before[fid][1], before[fid][1], "split across 8 apps"),
            ("category", before[fid][2], before[fid][2], "split across 8 apps")]
    # One row fewer to decide in the queue (the pair counted once), and undo takes both back.
    assert conn.execute("SELECT open_findings FROM consumer WHERE id = ?", (CASE,)).fetchone()[0] == 47
    undo_last(conn, reviewer="ana", clock=CLOCK)
    assert {fid: _state(conn, fid) for fid in (volume, twin)} == before
    assert verify_log(conn).ok
    conn.close()


def test_dismissing_the_circumvention_twin_takes_the_overage_along(demo_copy: Path) -> None:
    conn = connect(demo_copy)
    rate = _finding(conn, "rate_limit", "2021-11", "day")
    twin = _finding(conn, "circumvention", "2021-11", "day")
    decide(conn, DismissRequest((twin,), "out_of_scope", "pilot agreement"), [CASE], versions={},
           reviewer="ana", clock=CLOCK)
    assert _state(conn, rate)[0] == _state(conn, twin)[0] == "dismissed"
    conn.close()


def test_a_twin_decided_on_its_own_earlier_is_not_dragged_along(demo_copy: Path) -> None:
    from store.review import mark_needs_info

    conn = connect(demo_copy)
    volume = _finding(conn, "volume_cap", "2022-03")
    twin = _finding(conn, "circumvention", "2022-03")
    mark_needs_info(conn, twin, reviewer="bo", reason="ask about app 3", clock=CLOCK)   # one finding, by hand
    decide(conn, ConfirmRequest((volume,), None, None, "over the cap"), [CASE], versions={}, reviewer="ana",
           clock=CLOCK)
    assert _state(conn, volume)[0] == "confirmed"
    assert _state(conn, twin)[0] == "needs_info"     # stood elsewhere: not decided for the reviewer
    conn.close()


def test_confirming_a_whole_case_keeps_every_detected_severity(demo_copy: Path) -> None:
    # The defect: the confirm dialog defaulted to "high", turning 23 critical findings
    # (up to 52.8x) and the medium ones into high.
    conn = connect(demo_copy)
    before = dict(conn.execute("SELECT id, severity FROM finding WHERE consumer_id = ?", (CASE,)).fetchall())
    assert sorted(set(before.values())) == ["critical", "high", "medium"]
    assert sum(1 for s in before.values() if s == "critical") == 17
    outcome = decide(conn, ConfirmRequest((), None, None, "the case"), [CASE], versions={}, reviewer="ana",
                     clock=CLOCK)
    assert len(outcome.finding_ids) == 78 and "severity and category as detected" in outcome.summary
    after = dict(conn.execute("SELECT id, severity FROM finding WHERE consumer_id = ?", (CASE,)).fetchall())
    assert after == before
    assert conn.execute("SELECT count(*) FROM finding WHERE consumer_id = ? AND status = 'confirmed'",
                        (CASE,)).fetchone()[0] == 78
    conn.close()


def test_warden_decide_and_findings_from_the_command_line(demo_copy: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    conn = connect(demo_copy)
    volume = _finding(conn, "volume_cap", "2022-07")
    twin = _finding(conn, "circumvention", "2022-07")
    severity = _state(conn, volume)[1]
    conn.close()
    db = ["--db", str(demo_copy), "--reviewer", "ana"]
    assert cli_main(["findings", "--consumer", CASE, "--json", *db]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(listed) == 78 and sum(1 for f in listed if f["twin_of"]) == 30
    assert next(f for f in listed if f["id"] == twin)["twin_of"] == volume
    assert cli_main(["decide", "confirm", CASE, "--finding", str(volume), "--reason", "far above", *db]) == 0
    assert f"#{volume}" in capsys.readouterr().err
    assert cli_main(["findings", "--consumer", CASE, "--status", "confirmed", *db]) == 0
    out = capsys.readouterr().out
    assert f"#{volume} " in out and f"#{twin} " in out and severity in out and f"twin of #{volume}" in out
    # Again: nothing to do (exit 1), nothing written.
    assert cli_main(["decide", "confirm", CASE, "--finding", str(volume), "--reason", "again", *db]) == 1
    assert "Nothing changed" in capsys.readouterr().err
    # Bad usage: a finding of another consumer, an unknown consumer, a dismissal for
    # "other" without its reason.
    assert cli_main(["decide", "confirm", "kestrel-media", "--finding", str(volume), "--reason", "x", *db]) == 2
    assert cli_main(["decide", "confirm", "nobody", "--reason", "x", *db]) == 2
    assert cli_main(["decide", "dismiss", CASE, "--code", "other", *db]) == 2
    assert "--code other needs --reason" in capsys.readouterr().err
    assert cli_main(["decide", "undo", *db]) == 0
    assert "Undone" in capsys.readouterr().err
    assert cli_main(["decide", "undo", *db]) == 1
    conn = connect(demo_copy)
    assert _state(conn, volume)[0] == _state(conn, twin)[0] == "candidate"
    conn.close()


def test_changing_a_severity_needs_a_reason(demo_copy: Path) -> None:
    from store.errors import DecisionRefused
    from store.review import change_finding

    conn = connect(demo_copy)
    volume = _finding(conn, "volume_cap", "2022-07")
    with pytest.raises(DecisionRefused, match="needs a reason"):
        change_finding(conn, volume, reviewer="ana", clock=CLOCK, reason=None, severity="low")
    assert _state(conn, volume)[1] != "low"
    change_finding(conn, volume, reviewer="ana", clock=CLOCK, reason="pilot agreement allows it", severity="low")
    assert conn.execute("SELECT reason FROM decision WHERE field = 'severity' ORDER BY id DESC").fetchone()[0] == (
        "pilot agreement allows it")
    conn.close()


def test_warden_decide_without_a_reason_logs_as_the_tui_does(demo_copy: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # The TUI confirms with v, Enter (issue 10); headless takes the same path: no
    # reason logs the rule and its figures, a regrade still needs the reviewer's own.
    conn = connect(demo_copy)
    volume = _finding(conn, "volume_cap", "2022-07")
    actual = conn.execute("SELECT actual FROM finding WHERE id = ?", (volume,)).fetchone()[0]
    conn.close()
    db = ["--db", str(demo_copy), "--reviewer", "ana"]
    assert cli_main(["decide", "confirm", CASE, "--finding", str(volume), "--severity", "low", *db]) == 1
    assert "needs a reason" in capsys.readouterr().err
    assert cli_main(["decide", "confirm", CASE, "--finding", str(volume), *db]) == 0
    conn = connect(demo_copy)
    reason = conn.execute("SELECT reason FROM decision WHERE subject = 'finding' AND subject_id = ? "
                          "AND field = 'status' ORDER BY id DESC", (volume,)).fetchone()[0]
    assert reason.startswith("as detected (rule volume_cap): ") and f"{actual:,}" in reason
    kestrel = conn.execute("SELECT id FROM finding WHERE consumer_id = 'kestrel-media' AND status = 'candidate' "
                           "ORDER BY id LIMIT 1").fetchone()[0]
    conn.close()
    assert cli_main(["decide", "dismiss", "kestrel-media", "--finding", str(kestrel), "--code", "duplicate",
                     *db]) == 0
    conn = connect(demo_copy)
    assert conn.execute("SELECT status FROM finding WHERE id = ?", (kestrel,)).fetchone()[0] == "dismissed"
    assert conn.execute("SELECT reason FROM decision WHERE subject_id = ? AND field = 'status' ORDER BY id DESC",
                        (kestrel,)).fetchone()[0] == "duplicate"
    conn.close()
