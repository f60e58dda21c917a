"""Due dates: calendar and business days across weekends and holidays, the
words the queue and the listings use, and the [notes] / [evidence] keys."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from store.config import load_config
from store.deadlines import DeadlineRule, add_days, days_left, due_long, due_short
from store.errors import ConfigError

# 2023-05-05 is a Friday, 2023-05-06/07 the weekend.
FRIDAY = date(2023, 5, 5)


@pytest.mark.parametrize(("start", "days", "expected"), [
    (FRIDAY, 1, date(2023, 5, 8)),            # Friday + 1 business day: Monday
    (FRIDAY, 5, date(2023, 5, 12)),           # a whole week: the next Friday
    (FRIDAY, 6, date(2023, 5, 15)),           # one past: over the second weekend
    (date(2023, 5, 6), 1, date(2023, 5, 8)),  # from a Saturday: Monday
    (date(2023, 5, 7), 1, date(2023, 5, 8)),  # from a Sunday: Monday
    (date(2023, 5, 4), 1, date(2023, 5, 5)),  # Thursday + 1: Friday (no weekend crossed)
    (date(2023, 5, 4), 2, date(2023, 5, 8)),  # Thursday + 2: Monday
    (date(2023, 5, 2), 15, date(2023, 5, 23)),
    (date(2023, 5, 2), 21, date(2023, 5, 31)),
])
def test_business_days_skip_weekends(start: date, days: int, expected: date) -> None:
    assert add_days(start, days, business=True) == expected
    assert DeadlineRule(days, "business").due_from(start) == expected


@pytest.mark.parametrize(("start", "days", "expected"), [
    (FRIDAY, 1, date(2023, 5, 6)),            # calendar: Saturday counts
    (date(2023, 5, 2), 21, date(2023, 5, 23)),
    (date(2023, 12, 20), 21, date(2024, 1, 10)),   # across the year
    (date(2024, 2, 8), 21, date(2024, 2, 29)),     # leap day
])
def test_calendar_days_count_every_day(start: date, days: int, expected: date) -> None:
    assert DeadlineRule(days).due_from(start) == expected


def test_holidays_do_not_count_as_business_days() -> None:
    # Monday 2023-05-08 a holiday: Friday + 1 business day is Tuesday.
    rule = DeadlineRule(1, "business", frozenset({date(2023, 5, 8)}))
    assert rule.due_from(FRIDAY) == date(2023, 5, 9)
    # A holiday on a weekend changes nothing.
    assert DeadlineRule(1, "business", frozenset({date(2023, 5, 6)})).due_from(FRIDAY) == date(2023, 5, 8)
    # Holidays do not move calendar deadlines.
    assert DeadlineRule(1, "calendar", frozenset({date(2023, 5, 6)})).due_from(FRIDAY) == date(2023, 5, 6)


def test_a_rule_says_its_days_in_words() -> None:
    assert DeadlineRule(21).words() == "21 days"
    assert DeadlineRule(15, "business").words() == "15 business days"
    assert DeadlineRule(1, "business").words() == "1 business day"
    assert DeadlineRule(21).words(7) == "7 days"


@pytest.mark.parametrize(("kind", "days"), [("fortnightly", 21), ("calendar", 0), ("business", -1)])
def test_a_bad_rule_is_refused(kind: str, days: int) -> None:
    with pytest.raises(ConfigError):
        DeadlineRule(days, kind)


@pytest.mark.parametrize(("due", "short", "long"), [
    ("2023-05-26", "due 3d", "due in 3 days"),
    ("2023-05-24", "due 1d", "due in 1 day"),
    ("2023-05-23", "due today", "due today"),          # on the due date: not overdue yet
    ("2023-05-22", "overdue 1d", "overdue by 1 day"),  # one day past
    ("2023-05-21", "overdue 2d", "overdue by 2 days"),
    # The queue's case column holds 11 characters: weeks from 100 days, years from 100 weeks.
    ("2023-02-13", "overdue 99d", "overdue by 99 days"),
    ("2023-02-12", "overdue 14w", "overdue by 100 days"),
    ("2021-06-24", "overdue 99w", "overdue by 698 days"),
    ("2021-06-23", "overdue 99w", "overdue by 699 days"),
    ("2021-06-22", "overdue 1y", "overdue by 700 days"),
    ("2016-04-23", "overdue 7y", "overdue by 2586 days"),
    ("2023-08-30", "due 99d", "due in 99 days"),
    ("2023-08-31", "due 14w", "due in 100 days"),
])
def test_days_left_in_words(due: str, short: str, long: str) -> None:
    today = date(2023, 5, 23)
    assert due_short(due, today) == short
    assert due_long(due, today) == long
    assert due_short(None, today) == ""
    assert due_long(None, today) == "no due date"


def test_days_left_is_negative_once_overdue() -> None:
    assert days_left(date(2023, 5, 23), date(2023, 5, 23)) == 0
    assert days_left(date(2023, 5, 23), date(2023, 5, 24)) == -1
    assert days_left(date(2023, 5, 23), date(2023, 5, 20)) == 3


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "warden.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_notes_and_evidence_keys_are_read(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, "[notes]\ndeadline_days = 15\nbusiness_days = true\n"
                                           "holidays = [2023-05-08, 2023-05-08, 2023-12-25]\nfinal_notice_days = 5\n"
                                           "[evidence]\nmax_file_bytes = 1024\n"))
    assert config.notes.deadline == DeadlineRule(15, "business", frozenset({date(2023, 5, 8), date(2023, 12, 25)}))
    assert config.notes.holidays == (date(2023, 5, 8), date(2023, 12, 25))
    assert config.notes.final_notice_days == 5
    assert config.evidence.max_file_bytes == 1024
    default = load_config(_config(tmp_path, ""))
    assert default.notes.deadline == DeadlineRule(21, "calendar")
    assert default.evidence.max_file_bytes == 100 * 1024 * 1024


@pytest.mark.parametrize(("text", "message"), [
    ("[notes]\nbusiness_days = 'yes'\n", "'business_days' must be"),
    ("[notes]\nholidays = 2023-05-08\n", "'holidays' must be a list of dates"),
    ("[notes]\nholidays = ['May 8']\n", "'holidays' is not a date"),
    ("[notes]\nfinal_notice_days = 0\n", "final_notice_days"),
    ("[notes]\nfinal_notice_days = 366\n", "final_notice_days"),
    ("[evidence]\nmax_file_bytes = 0\n", "max_file_bytes"),
    ("[evidence]\nmax_bytes = 5\n", "unknown key 'max_bytes'; did you mean 'max_file_bytes'?"),
])
def test_bad_keys_are_refused_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, text))
    assert message in str(caught.value)


@pytest.mark.parametrize(("value", "ok"), [(1, True), (365, True)])
def test_final_notice_days_on_its_limits(tmp_path: Path, value: int, ok: bool) -> None:
    assert load_config(_config(tmp_path, f"[notes]\nfinal_notice_days = {value}\n")).notes.final_notice_days == value
