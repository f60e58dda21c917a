"""The letter a lawyer signs, drafted from the demo's case (every finding of
Northwind Analytics confirmed as detected): each provision in one paragraph whose
numbers are recomputed here from the schedule rows it cites; every period within
the days the database holds figures for; twins in one row citing both
provisions; each finding with its detected severity."""

from __future__ import annotations

import re
import sqlite3
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from letter_check import number, ratio_range, schedules, section, stated_periods
from store.clock import fixed_clock
from store.config import NotesConfig
from store.db import connect
from store.notes import draft_note
from store.review import ConfirmRequest, decide

CLOCK = fixed_clock(datetime(2023, 5, 2, 9, 0, tzinfo=timezone.utc))
CASE = "northwind-analytics"


@pytest.fixture(scope="module")
def case(small_demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from conftest import copy_db

    db = copy_db(small_demo_db, tmp_path_factory.mktemp("letter"))
    conn = connect(db)
    decide(conn, ConfirmRequest((), None, None, "over the caps"), [CASE], versions={}, reviewer="ana", clock=CLOCK)
    note = draft_note(conn, CASE, reviewer="ana", clock=CLOCK, config=NotesConfig(organisation="Demo Platform Inc."))
    conn.close()
    return db, note.body


def _sentences(md: str) -> list[str]:
    provisions = section(md, "Provisions at issue")
    return [" ".join(s.split()) for s in re.findall(r"^The (?:monthly|yearly|daily) limit .*?\(Schedule [A-Z]\)\.",
                                                      provisions, re.M)]


def test_every_summary_number_is_recomputed_from_the_schedule_rows(case: tuple[Path, str]) -> None:
    md = case[1]
    tables = schedules(md)
    sentences = _sentences(md)
    assert len(sentences) == 6          # calls/month, records/month, records/year, calls/day; twice for the twins
    for sentence in sentences:
        m = re.match(r"The (monthly|yearly|daily) limit of ([\d,]+) (API calls|records retrieved)"
                     r"(?:, which binds the agreement as a whole,)? was exceeded (.*) \(Schedule ([A-Z])\)\.$", sentence)
        assert m, sentence
        grain, limit, what, rest, letter = m.groups()
        per = {"monthly": "month", "yearly": "year", "daily": "day"}[grain]
        rows = [r for r in tables[letter] if per == "day" or r["Limit"] == f"{limit} per {per}"]
        assert rows, sentence
        ratios = [float(r["Times the limit"]) for r in rows]
        low, high = ratio_range(ratios)
        assert f"between {low} and {high} times the limit" in rest, (sentence, low, high)
        worst = max(rows, key=lambda r: float(r["Times the limit"]))       # max() keeps the earliest of equals
        first = rows[0]["Period"] if per != "day" else rows[0]["Month"]
        last = rows[-1]["Period"] if per != "day" else rows[-1]["Month"]
        if per == "day":
            days = sum(number(r["Days over the limit"]) for r in rows)
            assert rest.startswith(f"on {days:,} days, in every month from {first.replace(' 2021', ' 2021')} ") or \
                rest.startswith(f"on {days:,} days,"), rest
            assert f"({len(rows)} months)" in rest
            assert f"worst: {worst['Worst day']}, {worst[f'{what[0].upper()}{what[1:]} that day']} {what}" in rest
        elif per == "month":
            start, end = first.split(), last.split()
            span = (f"{start[0]} to {end[0]} {end[1]}" if start[1] == end[1] else f"{first} to {last}")
            assert rest.startswith(f"in every month from {span} ({len(rows)} months)"), rest
            assert f"worst: {worst['Period']}, {worst[f'{what[0].upper()}{what[1:]}']} {what}" in rest
        else:
            assert rest.startswith("in " + " and ".join(r["Period"] for r in rows)), rest
            assert f"worst: {worst['Period']}, {worst[f'{what[0].upper()}{what[1:]}']} {what}" in rest


def test_a_year_the_figures_cover_in_part_says_so(case: tuple[Path, str]) -> None:
    # The defect: "In 2021 (2021-01-01 to 2021-12-31, UTC days) ... more than 190 million times" and
    # "Period: 2021-01-01 to 2022-12-31" for figures that start on 1 October 2021.
    md = " ".join(case[1].split())
    assert ("From 1 October 2021, the first day we hold figures for, to 31 December 2021 (2021-10-01 to 2021-12-31, "
            "UTC days; figures for each of its 92 days), they accessed the API more than 190 million times") in md
    assert "Period: 2021-10-01 to 2022-12-31, UTC days; figures for each of its 457 days." in md
    assert ("In 2022 (2022-01-01 to 2022-12-31, UTC days; figures for each of its 365 days), the applications of "
            "Northwind Analytics Ltd accessed the API more than 780 million times and retrieved more than 26 billion "
            "records") in md
    assert "2021-01-01" not in md and "in 2021" not in md.lower().replace("in 2021 (figures", "")


def test_every_period_stated_lies_within_the_days_the_database_holds(case: tuple[Path, str]) -> None:
    db, md = case
    conn = sqlite3.connect(db)
    first, last = conn.execute("SELECT min(day), max(day) FROM usage JOIN app USING (source, app_id)"
                               " WHERE consumer_id = ?", (CASE,)).fetchone()
    conn.close()
    lo, hi = date.fromisoformat(first), date.fromisoformat(last)
    stated = list(stated_periods(md))
    assert len(stated) > 100
    outside = [(text, start, end) for text, start, end in stated if start < lo or end > hi]
    assert outside == []


def test_twins_share_one_row_citing_both_provisions(case: tuple[Path, str]) -> None:
    db, md = case
    tables = schedules(md)
    calls_month = tables["A"]
    assert len(calls_month) == 15 and len({r["Period"] for r in calls_month}) == 15     # one row a month
    for row in calls_month:
        assert re.fullmatch(r"#\d+ volume cap exceeded \(\w+\), #\d+ circumvention across apps \(\w+\)",
                            row["Findings"]), row
    daily = tables["C"]
    assert all("rate limit exceeded" in r["Findings"] and "circumvention across apps" in r["Findings"] for r in daily)
    # Every cited finding is in exactly one row, or in a paragraph of its own.
    conn = sqlite3.connect(db)
    cited = {fid for (fid,) in conn.execute("SELECT id FROM finding WHERE consumer_id = ? AND status = 'confirmed'",
                                            (CASE,))}
    conn.close()
    in_rows = [int(i) for rows in tables.values() for r in rows for i in re.findall(r"#(\d+)", r["Findings"])]
    in_paragraphs = {int(i) for i in re.findall(r"\(Finding #(\d+), severity", md)}
    assert len(in_rows) == len(set(in_rows)) and set(in_rows) | in_paragraphs == cited
    assert len(section(md, "Provisions at issue").splitlines()) < 40          # paragraphs, not a table of 78 rows


def test_schedules_are_chronological_with_each_year_after_its_months(case: tuple[Path, str]) -> None:
    periods = [r["Period"] for r in schedules(case[1])["B"]]
    assert periods[:4] == ["October 2021", "November 2021", "December 2021", "2021 (figures from 1 October)"]
    assert periods[4] == "January 2022" and periods[-2:] == ["December 2022", "2022"]
    assert len(periods) == 17


def test_each_finding_keeps_its_detected_severity_in_the_letter(case: tuple[Path, str]) -> None:
    db, md = case
    conn = sqlite3.connect(db)
    severity = dict(conn.execute("SELECT id, severity FROM finding WHERE consumer_id = ?", (CASE,)).fetchall())
    detected = dict(conn.execute(
        "SELECT subject_id, old_value FROM decision WHERE field = 'severity' AND subject = 'finding'").fetchall())
    conn.close()
    shown = {int(fid): sev for fid, sev in re.findall(r"#(\d+) [a-z ]+? \((info|low|medium|high|critical)\)", md)}
    shown |= {int(fid): sev for fid, sev in re.findall(r"\(Finding #(\d+), severity (\w+)\.\)", md)}
    assert len(shown) == 78
    assert all(shown[fid] == severity[fid] == detected[fid] for fid in shown)
    assert {"critical", "high", "medium"} == set(shown.values())
