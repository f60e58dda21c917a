"""Counts, ids and days as endpoints send them: known answers, every limit met
exactly on it and one past it, and the message a refused page carries (where and
why), written out in full. The limits are spelled here, not taken from the module."""

from __future__ import annotations

import json

import pytest

from store.errors import PageRejected
from store.sync.counts import parse_count, parse_day, parse_id

INT64_MAX = 9_223_372_036_854_775_807      # 2**63 - 1: SQLite's INTEGER
FLOAT_EXACT = 9_007_199_254_740_992        # 2**53: the first whole number a float may round


@pytest.mark.parametrize(("value", "count"), [
    (0, 0), (200, 200), ("200", 200), ("010", 10), ("100", 100), ("0", 0), ("000", 0),
    (" 7 ", 7), ("+5", 5), ("62.0", 62), ("62.", 62), ("62.000", 62), (".0", 0), ("+.0", 0), ("0.0", 0),
    (" 12.00 ", 12), (62.0, 62), (0.0, 0), (-0.0, 0),
    (INT64_MAX, INT64_MAX), (str(INT64_MAX), INT64_MAX), ("0" * 30 + "1", 1), ("0" * 30 + str(INT64_MAX), INT64_MAX),
    (str(INT64_MAX) + ".0", INT64_MAX),
    (float(FLOAT_EXACT - 1), FLOAT_EXACT - 1), (json.loads("9007199254740991.0"), FLOAT_EXACT - 1),
    ("9007199254740993.0", FLOAT_EXACT + 1),   # a string is exact: kept as written
])
def test_a_count_is_read_as_the_whole_number_it_spells(value: object, count: int) -> None:
    assert parse_count(value, "$.usage") == count
    assert type(parse_count(value, "$.usage")) is int


@pytest.mark.parametrize(("value", "why"), [
    (None, "expected a count, got None"),
    (True, "expected a count, got True"),
    (False, "expected a count, got False"),
    ([1], "expected a count, got [1]"),
    ({"n": 1}, "expected a count, got {'n': 1}"),
    (float("nan"), "expected a count, got nan"),
    (float("inf"), "expected a count, got inf"),
    (float("-inf"), "expected a count, got -inf"),
    (6.5, "count 6.5 is not a whole number"),
    (float(FLOAT_EXACT), "count 9007199254740992.0 is too large to be exact as a JSON float "
                         "(send it as an integer or a digit string)"),
    (-float(FLOAT_EXACT), "count -9007199254740992.0 is too large to be exact as a JSON float "
                          "(send it as an integer or a digit string)"),
    (-1, "count -1 is negative"),
    (-3.0, "count -3 is negative"),
    (INT64_MAX + 1, "count 9223372036854775808 does not fit in 64 bits"),
    (str(INT64_MAX + 1), "count '9223372036854775808' does not fit in 64 bits"),
    ("1" + "0" * 19, "count '10000000000000000000' does not fit in 64 bits"),
    ("9" * 5000, "count '" + "9" * 36 + "... does not fit in 64 bits"),            # shown cut to 40
    ("9" * 5000 + ".0", "count '" + "9" * 36 + "... does not fit in 64 bits"),
    ("62.5", "count '62.5' is not a whole number"),
    ("62.05", "count '62.05' is not a whole number"),
    ("-5", "count '-5' is not a whole number"),
    ("1e3", "count '1e3' is not a whole number"),
    ("", "count '' is not a whole number"),
    (".", "count '.' is not a whole number"),
    ("x" * 38, "count '" + "x" * 38 + "' is not a whole number"),                 # repr of 40: shown whole
    ("x" * 39, "count '" + "x" * 36 + "... is not a whole number"),              # repr of 41: cut to 40
])
def test_what_is_not_a_count_refuses_the_page_saying_where_and_why(value: object, why: str) -> None:
    with pytest.raises(PageRejected) as refused:
        parse_count(value, "$.data[3].usage")
    assert refused.value.why == why
    assert refused.value.path == "$.data[3].usage"
    assert str(refused.value) == f"at $.data[3].usage: {why}"


def test_a_count_just_inside_each_limit_is_kept_and_just_outside_refused() -> None:
    assert parse_count(INT64_MAX, "$") == INT64_MAX
    assert parse_count(str(INT64_MAX), "$") == INT64_MAX
    assert parse_count(float(FLOAT_EXACT - 1), "$") == FLOAT_EXACT - 1
    for outside in (INT64_MAX + 1, str(INT64_MAX + 1), float(FLOAT_EXACT), -1, "62.1"):
        with pytest.raises(PageRejected):
            parse_count(outside, "$")


@pytest.mark.parametrize(("value", "id_"), [
    ("1460981460981460981460", "1460981460981460981460"),   # X's 22-digit project ids stay text
    ("app-1", "app-1"), (" a ", " a "), (0, "0"), (123456789012345678901234567890, "123456789012345678901234567890"),
])
def test_an_id_is_kept_as_text_exactly(value: object, id_: str) -> None:
    assert parse_id(value, "$.id") == id_


@pytest.mark.parametrize(("value", "why"), [
    ("", "id is empty"), ("   ", "id is empty"), (None, "expected an id, got None"),
    (True, "expected an id, got True"), (1.0, "expected an id, got 1.0"), ([], "expected an id, got []"),
])
def test_what_is_not_an_id_refuses_the_page(value: object, why: str) -> None:
    with pytest.raises(PageRejected) as refused:
        parse_id(value, "$.data[0].client_app_id")
    assert (refused.value.why, refused.value.path) == (why, "$.data[0].client_app_id")


@pytest.mark.parametrize(("value", "day"), [
    ("2023-11-01", "2023-11-01"),
    (" 2023-11-01 ", "2023-11-01"),
    ("2023-11-01T00:00:00.000Z", "2023-11-01"),
    ("2023-11-01T23:59:59Z", "2023-11-01"),
    ("2023-11-01T23:30:00-01:00", "2023-11-02"),     # half past midnight in UTC
    ("2023-11-01T00:30:00+01:00", "2023-10-31"),     # half past eleven the day before in UTC
    ("2023-11-01T12:00:00", "2023-11-01"),           # no zone: UTC
    (1698796800, "2023-11-01"),                      # 2023-11-01T00:00:00Z
    (1698796799, "2023-10-31"),                      # one second before
    (0, "1970-01-01"),
])
def test_a_day_is_the_utc_day(value: object, day: str) -> None:
    assert parse_day(value, "$.date") == day


@pytest.mark.parametrize(("value", "why"), [
    ("2023-13-01", "'2023-13-01' is not a date"),
    ("2023-00-10", "'2023-00-10' is not a date"),
    ("2023-W44-3", "'2023-W44-3' is not a date"),          # an ISO week date is not a day as endpoints send it
    ("2023-11-01T00:00:00z", "'2023-11-01T00:00:00z' is not a date"),
    ("2023-11-1", "'2023-11-1' is not a date"),
    ("01/11/2023", "'01/11/2023' is not a date"),
    ("yesterday", "'yesterday' is not a date"),
    ("9999-12-31T23:00:00-05:00", "'9999-12-31T23:00:00-05:00' is out of range"),
    (10**12 * 1000, "timestamp 1000000000000000 is out of range"),
    (1.5, "expected a date, got 1.5"),
    (None, "expected a date, got None"),
    (True, "expected a date, got True"),
])
def test_what_is_not_a_day_refuses_the_page(value: object, why: str) -> None:
    with pytest.raises(PageRejected) as refused:
        parse_day(value, "$.usage[2].date")
    assert (refused.value.why, refused.value.path) == (why, "$.usage[2].date")


def test_a_day_from_epoch_seconds_is_the_utc_day_on_a_host_in_any_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_day(1698796800, "$") == "2023-11-01"     # 2023-10-31 20:00 in New York
        assert parse_day("2023-11-01T22:00:00", "$") == "2023-11-01"   # no zone: UTC, not New York's
        assert parse_day("2023-11-02T01:30:00+00:00", "$") == "2023-11-02"   # 21:30 the day before in New York
        assert parse_day("2023-11-01T23:30:00-05:00", "$") == "2023-11-02"   # 04:30 UTC
    finally:
        monkeypatch.undo()
        time.tzset()
