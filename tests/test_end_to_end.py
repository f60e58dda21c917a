"""From ``warden demo --headless`` to the letter, by the command line only:
``warden decide confirm``, ``warden note draft``, ``warden note ready``, ``warden
export --format all``; then the letter is read as the lawyer who signs it reads it,
and each figure, period and severity it states is checked against the database
with SQL of this test's own."""

from __future__ import annotations

import calendar
import csv
import email
import email.policy
import io
import json
import re
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from letter_check import MONTHS, label_span, number, schedules, section, stated_periods
from tui.cli import main

CASE = "northwind-analytics"


def _sum(db: sqlite3.Connection, metric: str, first: str, last: str) -> int:
    return db.execute("SELECT sum(value) FROM usage JOIN app USING (source, app_id) WHERE consumer_id = ? AND metric = ?"
                      " AND day BETWEEN ? AND ?", (CASE, metric, first, last)).fetchone()[0]


@pytest.fixture(scope="module")
def exported(small_demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from conftest import copy_db

    folder = tmp_path_factory.mktemp("e2e")
    db = copy_db(small_demo_db, folder)
    out = folder / "letters"
    common = ["--db", str(db), "--reviewer", "ana"]
    assert main(["decide", "confirm", CASE, "--reason", "far over the caps, split across apps", *common]) == 0
    assert main(["note", "draft", CASE, *common]) == 0
    assert main(["note", "ready", CASE, *common]) == 0
    assert main(["export", "--format", "all", "--out", str(out), *common]) == 0
    return db, out


def test_the_letter_states_the_headline_figures_of_the_database(exported: tuple[Path, Path]) -> None:
    db_path, out = exported
    md = (out / "note-1-northwind-analytics.md").read_text()
    flat = " ".join(md.split())
    db = sqlite3.connect(db_path)
    calls, records = _sum(db, "calls", "2022-01-01", "2022-12-31"), _sum(db, "records", "2022-01-01", "2022-12-31")
    assert 780_000_000 < calls < 790_000_000 and 26_000_000_000 < records < 27_000_000_000
    assert "accessed the API more than 780 million times and retrieved more than 26 billion records" in flat
    assert f"| **Total** | **{calls:,}** | **{records:,}** |" in md
    calls21 = _sum(db, "calls", "2021-10-01", "2021-12-31")
    assert 190_000_000 < calls21 < 200_000_000 and "accessed the API more than 190 million times" in flat
    db.close()


def test_every_schedule_row_is_the_databases_figure(exported: tuple[Path, Path]) -> None:
    db_path, out = exported
    md = (out / "note-1-northwind-analytics.md").read_text()
    db = sqlite3.connect(db_path)
    tables = schedules(md)
    assert sorted(tables) == ["A", "B", "C"]
    for letter, rows in tables.items():
        for row in rows:
            if "Worst day" in row:              # days over a daily limit, by month
                start, end = label_span(row["Month"])
                limit = 1_000_000
                days = db.execute(
                    "SELECT day, sum(value) FROM usage JOIN app USING (source, app_id) WHERE consumer_id = ? AND"
                    " metric = 'calls' AND day BETWEEN ? AND ? GROUP BY day", (CASE, start.isoformat(),
                                                                              end.isoformat())).fetchall()
                over = [(d, v) for d, v in days if v > limit]
                worst_day, worst = max(over, key=lambda dv: (dv[1], [-ord(c) for c in dv[0]]))
                assert number(row["Days over the limit"]) == len(over)
                day = date.fromisoformat(worst_day)
                assert row["Worst day"] == f"{day.day} {MONTHS[day.month - 1]} {day.year}"
                assert number(row["API calls that day"]) == worst
                assert row["Times the limit"] == f"{worst / limit:.2f}"
                continue
            metric = "calls" if "API calls" in row else "records"
            measured = number(row["API calls" if metric == "calls" else "Records retrieved"])
            start, end = label_span(row["Period"])
            assert measured == _sum(db, metric, start.isoformat(), end.isoformat()), row
            limit = number(row["Limit"].split()[0])
            assert row["Times the limit"] == f"{measured / limit:.2f}"
    db.close()


def test_every_period_lies_within_the_days_the_database_holds(exported: tuple[Path, Path]) -> None:
    db_path, out = exported
    db = sqlite3.connect(db_path)
    first, last = db.execute("SELECT min(day), max(day) FROM usage JOIN app USING (source, app_id)"
                             " WHERE consumer_id = ?", (CASE,)).fetchone()
    db.close()
    for name in ("note-1-northwind-analytics.md",):
        stated = list(stated_periods((out / name).read_text()))
        assert stated and all(date.fromisoformat(first) <= s and e <= date.fromisoformat(last)
                              for _text, s, e in stated), [t for t in stated if not (
                                  date.fromisoformat(first) <= t[1] and t[2] <= date.fromisoformat(last))]


def test_each_finding_keeps_its_detected_severity(exported: tuple[Path, Path]) -> None:
    db_path, out = exported
    md = (out / "note-1-northwind-analytics.md").read_text()
    db = sqlite3.connect(db_path)
    rows = db.execute("SELECT f.id, f.severity, (SELECT d.old_value FROM decision d WHERE d.subject = 'finding'"
                      " AND d.subject_id = f.id AND d.field = 'severity' ORDER BY d.id LIMIT 1)"
                      " FROM finding f WHERE consumer_id = ?", (CASE,)).fetchall()
    db.close()
    shown = dict(re.findall(r"#(\d+) [a-z ]+? \((\w+)\)", md)) | dict(re.findall(r"\(Finding #(\d+), severity (\w+)", md))
    assert len(rows) == len(shown) == 78
    for fid, severity, detected in rows:
        assert shown[str(fid)] == severity == detected


def test_the_manifests_and_bundle_carry_a_head_verify_accepts(exported: tuple[Path, Path],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    db_path, out = exported
    heads = set()
    for manifest in sorted(out.glob("manifest-*.json")):
        heads.add(json.loads(manifest.read_text())["decision_log"]["head"])
    bundle = json.loads((out / "note-1-northwind-analytics.json").read_text())
    # Written after the Markdown, which marked the note exported.
    assert bundle["decision_log"]["head"] in heads and bundle["note"]["status"] == "exported"
    for head in heads:
        assert main(["verify", "--db", str(db_path), "--head", head]) == 0
    assert main(["verify", "--db", str(db_path), "--head", "f" * 64]) == 1
    assert "is not in the log" in capsys.readouterr().err


def test_the_other_formats_say_the_same(exported: tuple[Path, Path]) -> None:
    _db, out = exported
    mail = email.message_from_bytes((out / "note-1-northwind-analytics.eml").read_bytes(),
                                    policy=email.policy.default)
    text = mail.get_body(("plain",)).get_content()
    assert "**" not in text and "|" not in text
    assert "more than 780 million times and retrieved more than 26 billion records" in " ".join(text.split())
    findings = list(csv.DictReader(io.StringIO((out / "findings.csv").read_text(), newline="")))
    assert len(findings) == 78 and {r["Verified"] for r in findings} == {"True"}
    html = (out / "note-1-northwind-analytics.html").read_text()
    assert "Schedule A" in html and "more than 780 million" in html
