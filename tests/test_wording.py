"""The wording of a letter, word for word: counts and their nouns, dates, the
period a finding covers, id lists, and the sentence and table cells of each kind
of finding. Every expected text is written out here (read as a lawyer would read
the letter), never built from the module's own tables."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from store.cases import Finding
from store.notes.wording import (
    Period, count, finding_columns, finding_sentence, human_date, id_ranges, is_whole_months, metric_words,
    more_than, num, span_phrase, whole_months, worst_day,
)


def finding(category: str = "volume_cap", start: str = "2022-03-01", end: str = "2022-03-31", *,
            metric: str | None = "calls", actual: int | None = 5000, limit: int | None = 4000,
            ratio: float | None = 1.25, figures: dict[str, Any] | None = None) -> Finding:
    return Finding(id=1, consumer_id="c", category=category, period="p", period_start=start, period_end=end,
                   severity="high", status="confirmed", rule_id=category, metric=metric, actual=actual,
                   limit_value=limit, ratio=ratio, figures=figures or {}, evidence=None, detected_at="t",
                   updated_at="t", version=1)


# --- counts, figures, dates ------------------------------------------------------------

@pytest.mark.parametrize(("n", "expected"), [
    (0, "0 days"), (1, "1 day"), (2, "2 days"), (1234, "1,234 days"),
])
def test_a_count_takes_the_singular_for_one_only(n: int, expected: str) -> None:
    assert count(n, "day") == expected


def test_an_exact_figure_has_thousands_separators_and_none_is_blank() -> None:
    assert num(None) == ""
    assert num(0) == "0"
    assert num(999) == "999"
    assert num(1000) == "1,000"
    assert num(790123456) == "790,123,456"


@pytest.mark.parametrize(("day", "expected"), [
    (date(2026, 11, 27), "27 November 2026"),
    ("2022-01-05", "5 January 2022"),
    ("2021-12-31", "31 December 2021"),
])
def test_a_date_is_written_in_english_day_month_year(day: date | str, expected: str) -> None:
    assert human_date(day) == expected


# --- periods ---------------------------------------------------------------------------

@pytest.mark.parametrize(("start", "end", "expected"), [
    ("2022-03-04", "2022-03-04", "on 4 March 2022"),
    ("2022-01-01", "2022-12-31", "in 2022"),
    ("2021-01-01", "2022-12-31", "from 2021 to 2022"),
    ("2022-03-01", "2022-03-31", "in March 2022"),
    ("2022-01-01", "2022-03-31", "from January to March 2022"),
    ("2021-11-01", "2022-02-28", "from November 2021 to February 2022"),
    ("2021-12-01", "2022-12-31", "from December 2021 to December 2022"),
    # Not whole months: both days stated.
    ("2022-03-01", "2022-03-09", "from 1 March 2022 to 9 March 2022"),
    ("2022-03-02", "2022-03-31", "from 2 March 2022 to 31 March 2022"),
    ("2021-12-30", "2022-01-02", "from 30 December 2021 to 2 January 2022"),
    # February: its last day depends on the year.
    ("2024-02-01", "2024-02-29", "in February 2024"),
    ("2023-02-01", "2023-02-28", "in February 2023"),
    ("2024-02-01", "2024-02-28", "from 1 February 2024 to 28 February 2024"),
])
def test_a_findings_period_in_a_sentence(start: str, end: str, expected: str) -> None:
    assert span_phrase(start, end) == expected


@pytest.mark.parametrize(("start", "end", "whole"), [
    (date(2022, 1, 1), date(2022, 1, 31), True),
    (date(2022, 1, 1), date(2022, 4, 30), True),
    (date(2022, 1, 2), date(2022, 1, 31), False),
    (date(2022, 1, 1), date(2022, 1, 30), False),
    (date(2022, 4, 1), date(2022, 4, 30), True),
    (date(2022, 4, 1), date(2022, 4, 29), False),
    (date(2023, 2, 1), date(2023, 2, 28), True),
    (date(2024, 2, 1), date(2024, 2, 28), False),
])
def test_whole_months_begin_on_a_first_and_end_on_a_last_day(start: date, end: date, whole: bool) -> None:
    assert is_whole_months(start, end) is whole


def test_whole_months_widen_a_span_to_the_months_it_touches() -> None:
    assert whole_months(date(2022, 3, 15), date(2022, 4, 10)) == Period(date(2022, 3, 1), date(2022, 4, 30))
    assert whole_months(date(2024, 2, 29), date(2024, 2, 29)) == Period(date(2024, 2, 1), date(2024, 2, 29))
    assert whole_months(date(2021, 12, 31), date(2022, 1, 1)) == Period(date(2021, 12, 1), date(2022, 1, 31))


# --- id lists, metrics -----------------------------------------------------------------

@pytest.mark.parametrize(("ids", "expected"), [
    ([], ""),
    ([5], "5"),
    ([1, 3], "1, 3"),
    ([10, 9], "9–10"),
    ([3, 1, 2, 2], "1–3"),
    ([1, 2, 3, 7, 9, 10], "1–3, 7, 9–10"),
    ([4, 6, 7, 8, 12], "4, 6–8, 12"),
])
def test_id_lists_are_compact_exact_and_sorted(ids: list[int], expected: str) -> None:
    assert id_ranges(ids) == expected


def test_metrics_in_words() -> None:
    assert metric_words("calls") == "API calls"
    assert metric_words("records") == "records retrieved"
    assert metric_words("tokens") == "tokens"
    assert metric_words(None) == ""


# --- what a finding found, in a sentence ---------------------------------------------

@pytest.mark.parametrize(("f", "expected"), [
    (finding("rate_limit", figures={"limit": {"period": "day"}}),
     "as many as 5,000 API calls on one UTC day, against a limit of 4,000 per day (1.25 times the limit), "
     "in March 2022"),
    (finding("rate_limit", figures={"worst_day": {"day": "2022-03-04"}, "days_over": [{"day": "2022-03-04"}]},
             ratio=None),
     "as many as 5,000 API calls on one UTC day (4 March 2022), against a limit of 4,000 per day; "
     "the daily limit was exceeded on 1 day(s) in March 2022"),
    (finding("circumvention", figures={"limit": {"period": "day"}, "apps": ["a", "b", "c"]}),
     "as many as 5,000 API calls on one UTC day in March 2022, spread over 3 applications each under the "
     "limit of 4,000 per day that binds the agreement as a whole (1.25 times the limit)"),
    (finding("circumvention", "2022-01-01", "2022-12-31", figures={"limit": {"period": "year"}}, metric="records"),
     "5,000 records retrieved in 2022, spread over several applications each under the limit of 4,000 per "
     "year that binds the agreement as a whole (1.25 times the limit)"),
    (finding("missing_use_case", "2022-01-01", "2022-12-31", actual=3, limit=None, ratio=None,
             figures={"apps_with_usage": 8}),
     "3 of the 8 applications that used the API in 2022 declared no use case"),
    (finding("missing_use_case", "2022-01-01", "2022-12-31", actual=3, limit=None, ratio=None, metric=None),
     "3 applications that used the API in 2022 declared no use case"),
    (finding("endpoint_outside", limit=None, ratio=None,
             figures={"endpoints": [{"endpoint": f"/e{i}"} for i in range(1, 6)]}),
     "5,000 API calls in March 2022 to endpoints outside the agreement (/e1, /e2, /e3, /e4, /e5)"),
    (finding("endpoint_outside", limit=None, ratio=None,
             figures={"endpoints": [{"endpoint": f"/e{i}"} for i in range(1, 7)]}),
     "5,000 API calls in March 2022 to endpoints outside the agreement (/e1, /e2, /e3, /e4, /e5 and 1 more)"),
    (finding("endpoint_outside", limit=None, ratio=None,
             figures={"endpoints": ["/not-a-record", {"endpoint": "/e1"}, *({"endpoint": f"/e{i}"}
                                                                           for i in range(2, 9))]}),
     "5,000 API calls in March 2022 to endpoints outside the agreement (/e1, /e2, /e3, /e4, /e5 and 3 more)"),
    (finding("endpoint_outside", limit=None, ratio=None),
     "5,000 API calls in March 2022 to endpoints outside the agreement"),
    (finding(metric="records", figures={"limit": {"period": "month"}}),
     "5,000 records retrieved in March 2022, against a limit of 4,000 per month (1.25 times the limit)"),
    (finding(figures={"limit": "4000"}, ratio=1.2345),
     "5,000 API calls in March 2022, against a limit of 4,000 (1.23 times the limit)"),
    (finding("rate_limit", limit=None, ratio=None), "5,000 API calls in March 2022"),
    (finding(actual=None, limit=None, ratio=None), "identified in March 2022"),
    (finding(metric=None, limit=None, ratio=None), "identified in March 2022"),
    (finding("missing_use_case", actual=None, limit=None, ratio=None), "identified in March 2022"),
    (finding("endpoint_outside", "2022-03-04", "2022-03-04", actual=None, limit=None, ratio=None),
     "identified on 4 March 2022"),
])
def test_a_findings_sentence_says_what_was_measured(f: Finding, expected: str) -> None:
    assert finding_sentence(f) == expected


def test_a_findings_sentence_states_the_days_its_figures_cover() -> None:
    from_october = Period(date(2022, 1, 1), date(2022, 12, 31), first=date(2022, 10, 1), last=date(2022, 12, 31),
                          days=92)
    apps = finding("missing_use_case", "2022-01-01", "2022-12-31", actual=3, limit=None, ratio=None,
                   figures={"apps_with_usage": 8})
    assert finding_sentence(apps, from_october) == (
        "3 of the 8 applications that used the API from 1 October 2022, the first day we hold figures for, "
        "to 31 December 2022, declared no use case")
    cap = finding("volume_cap", "2022-01-01", "2022-12-31", figures={"limit": {"period": "year"}})
    assert finding_sentence(cap, from_october) == (
        "5,000 API calls from 1 October 2022, the first day we hold figures for, to 31 December 2022, "
        "against a limit of 4,000 per year (1.25 times the limit)")
    # Figures for every day of the span: the span as it is.
    whole = Period(date(2022, 1, 1), date(2022, 12, 31), first=date(2022, 1, 1), last=date(2022, 12, 31), days=365)
    assert finding_sentence(apps, whole) == "3 of the 8 applications that used the API in 2022 declared no use case"


# --- a finding in a table's cells ----------------------------------------------------

@pytest.mark.parametrize(("f", "expected"), [
    (finding("volume_cap", "2022-01-01", "2022-12-31", figures={"limit": {"period": "year"}}),
     {"period_label": "2022", "measured": "5,000 API calls", "limit_text": "4,000 per year", "ratio_text": "1.25×"}),
    (finding("rate_limit", "2022-03-04", "2022-03-04", figures={"worst_day": {"day": "2022-03-04"}},
             ratio=1.2345),
     {"period_label": "4 March 2022", "measured": "5,000 API calls on the worst day (4 March 2022)",
      "limit_text": "4,000", "ratio_text": "1.23×"}),
    (finding("volume_cap", "2022-03-01", "2022-03-09", figures={"limit": {"period": "day"}}, metric="records"),
     {"period_label": "1 March 2022 – 9 March 2022", "measured": "5,000 records retrieved on the worst day",
      "limit_text": "4,000 per day", "ratio_text": "1.25×"}),
    (finding("missing_use_case", actual=3, limit=None, ratio=None, figures={"apps_with_usage": 8}),
     {"period_label": "March 2022", "measured": "3 of 8 apps without a declared use case", "limit_text": "",
      "ratio_text": ""}),
    (finding("missing_use_case", actual=3, limit=None, ratio=None),
     {"period_label": "March 2022", "measured": "3 apps without a declared use case", "limit_text": "",
      "ratio_text": ""}),
    (finding("endpoint_outside", "2022-01-01", "2022-03-31", metric=None, actual=12, limit=None, ratio=None),
     {"period_label": "January–March 2022", "measured": "12", "limit_text": "", "ratio_text": ""}),
    # No limit figure: no limit cell, even where the rule's limit had a period.
    (finding("volume_cap", actual=None, limit=None, ratio=None, figures={"limit": {"period": "year"}}),
     {"period_label": "March 2022", "measured": "", "limit_text": "", "ratio_text": ""}),
    (finding(actual=None, limit=0, ratio=None, figures={"limit": 7}),
     {"period_label": "March 2022", "measured": "", "limit_text": "0", "ratio_text": ""}),
])
def test_a_findings_table_cells(f: Finding, expected: dict[str, str]) -> None:
    assert finding_columns(f) == expected


# --- "more than": only a whole count can be rounded down into words ---------------------

@pytest.mark.parametrize(("value", "kind"), [(True, "bool"), (5.0, "float"), ("1200", "str"), (None, "NoneType")])
def test_more_than_names_what_it_was_given_instead_of_a_count(value: object, kind: str) -> None:
    with pytest.raises(TypeError) as refused:
        more_than(value)  # type: ignore[arg-type]
    assert str(refused.value) == f"more_than() needs an int, not {kind}"


@pytest.mark.parametrize(("n", "expected"), [
    # Rounded down exactly onto a unit: the unit's word, not the digits.
    (1_000_001, "1 million"), (1_000_000, "990,000"),
    (1_000_000_001, "1 billion"), (1_000_000_000_001, "1 trillion"),
])
def test_more_than_on_a_unit_says_its_word(n: int, expected: str) -> None:
    assert more_than(n) == expected


@pytest.mark.parametrize("n", [0, -5])
def test_more_than_nothing_says_there_is_nothing_to_state(n: int) -> None:
    with pytest.raises(ValueError) as refused:
        more_than(n)
    assert str(refused.value) == f"more_than({n}): there is no round figure below {n} worth stating"


# --- a period as the letter states it, and what its figures cover ---------------------
# (Period's properties are not mutated: mutmut leaves @property bodies alone. These
# known answers are what guards them.)

D = date


@pytest.mark.parametrize(("period", "calendar", "label"), [
    (Period(D(2022, 1, 1), D(2022, 12, 31)), "2022", "2022"),
    (Period(D(2021, 1, 1), D(2022, 12, 31)), "2021–2022", "2021–2022"),
    (Period(D(2022, 3, 1), D(2022, 3, 31)), "March 2022", "March 2022"),
    (Period(D(2022, 1, 1), D(2022, 3, 31)), "January–March 2022", "January–March 2022"),
    (Period(D(2021, 11, 1), D(2022, 2, 28)), "November 2021–February 2022", "November 2021–February 2022"),
    (Period(D(2021, 11, 5), D(2021, 11, 20)), "5–20 November 2021", "5–20 November 2021"),
    (Period(D(2021, 11, 5), D(2021, 11, 5)), "5 November 2021", "5 November 2021"),
    (Period(D(2021, 11, 5), D(2021, 12, 20)), "5 November 2021 – 20 December 2021",
     "5 November 2021 – 20 December 2021"),
    # Figures for only part of the span: the label says which part.
    (Period(D(2022, 1, 1), D(2022, 12, 31), first=D(2022, 1, 1), last=D(2022, 12, 31)), "2022", "2022"),
    (Period(D(2021, 1, 1), D(2021, 12, 31), first=D(2021, 10, 1), last=D(2021, 12, 31)), "2021",
     "2021 (figures from 1 October)"),
    (Period(D(2022, 3, 1), D(2022, 3, 31), first=D(2022, 3, 1), last=D(2022, 3, 15)), "March 2022",
     "March 2022 (figures to 15 March)"),
    (Period(D(2022, 3, 1), D(2022, 3, 31), first=D(2022, 3, 3), last=D(2022, 3, 15)), "March 2022",
     "March 2022 (figures 3–15 March)"),
    (Period(D(2022, 1, 1), D(2022, 12, 31), first=D(2022, 2, 10), last=D(2022, 11, 20)), "2022",
     "2022 (figures 10 February – 20 November)"),
    (Period(D(2022, 3, 1), D(2022, 3, 31), first=D(2022, 3, 9), last=D(2022, 3, 9)), "March 2022",
     "March 2022 (figures for 9 March only)"),
])
def test_a_periods_label(period: Period, calendar: str, label: str) -> None:
    assert (period.calendar_label, period.label) == (calendar, label)


@pytest.mark.parametrize(("period", "phrase"), [
    (Period(D(2022, 1, 1), D(2022, 12, 31), first=D(2022, 1, 1), last=D(2022, 12, 31)), "in 2022"),
    (Period(D(2022, 3, 1), D(2022, 3, 31), first=D(2022, 3, 9), last=D(2022, 3, 9)),
     "on 9 March 2022, the only day of March 2022 we hold figures for"),
    (Period(D(2021, 1, 1), D(2021, 12, 31), first=D(2021, 10, 1), last=D(2021, 12, 31)),
     "from 1 October 2021, the first day we hold figures for, to 31 December 2021"),
    (Period(D(2022, 3, 1), D(2022, 3, 31), first=D(2022, 3, 1), last=D(2022, 3, 15)),
     "from 1 March 2022 to 15 March 2022, the last day we hold figures for"),
    (Period(D(2022, 3, 1), D(2022, 3, 31), first=D(2022, 3, 3), last=D(2022, 3, 15)),
     "from 3 March 2022, the first day we hold figures for, to 15 March 2022, the last day we hold figures for"),
])
def test_a_periods_phrase_states_the_days_it_holds_figures_for(period: Period, phrase: str) -> None:
    assert period.phrase == phrase


@pytest.mark.parametrize(("period", "extent"), [
    (Period(D(2022, 1, 1), D(2022, 12, 31)), "2022-01-01 to 2022-12-31, UTC days"),
    (Period(D(2022, 1, 1), D(2022, 12, 31), first=D(2022, 1, 1), last=D(2022, 12, 31), days=365),
     "2022-01-01 to 2022-12-31, UTC days; figures for each of its 365 days"),
    (Period(D(2022, 1, 1), D(2022, 12, 31), first=D(2022, 2, 1), last=D(2022, 12, 31), days=12),
     "2022-02-01 to 2022-12-31, UTC days; figures for 12 of its 334 days"),
    (Period(D(2022, 3, 1), D(2022, 3, 31), first=D(2022, 3, 9), last=D(2022, 3, 9), days=1),
     "2022-03-09 to 2022-03-09, UTC days; figures for it"),
    (Period(D(2020, 1, 1), D(2023, 12, 31), days=1461),
     "2020-01-01 to 2023-12-31, UTC days; figures for each of its 1,461 days"),
    (Period(D(2020, 1, 1), D(2023, 12, 31), days=1460),
     "2020-01-01 to 2023-12-31, UTC days; figures for 1,460 of its 1,461 days"),
])
def test_a_periods_extent_counts_its_days(period: Period, extent: str) -> None:
    assert period.extent == extent


@pytest.mark.parametrize(("f", "day"), [
    (finding("rate_limit", figures={"worst_day": {"day": "2022-10-02", "total": 9}}), "2022-10-02"),
    (finding("volume_cap", figures={"limit": {"period": "day"}, "worst_day": {"day": "2022-10-02"}}), "2022-10-02"),
    # A period's total has no worst day, whatever its figures hold.
    (finding("volume_cap", figures={"limit": {"period": "year"}, "worst_day": {"day": "2022-10-02"}}), None),
    (finding("volume_cap", figures={"limit": "day", "worst_day": {"day": "2022-10-02"}}), None),
    (finding("rate_limit"), None),
    (finding("rate_limit", figures={"worst_day": "2022-10-02"}), None),
    (finding("rate_limit", figures={"worst_day": {"day": ""}}), None),
    (finding("rate_limit", figures={"worst_day": {"total": 9}}), None),
])
def test_the_worst_day_of_a_finding_against_a_daily_limit(f: Finding, day: str | None) -> None:
    assert worst_day(f) == day


@pytest.mark.parametrize(("f", "expected"), [
    # A limit but no measured figure: nothing to state but the period, whatever the kind.
    (finding("rate_limit", actual=None, ratio=None), "identified in March 2022"),
    (finding("circumvention", actual=None, ratio=None, figures={"limit": {"period": "year"}}),
     "identified in March 2022"),
    (finding("volume_cap", actual=None, ratio=None, figures={"limit": {"period": "month"}}),
     "identified in March 2022"),
    # The count of apps with usage is the count stated, not the apps listed.
    (finding("circumvention", figures={"limit": {"period": "month"}, "apps_with_usage": 4, "apps": ["a", "b", "c"]}),
     "5,000 API calls in March 2022, spread over 4 applications each under the limit of 4,000 per month that "
     "binds the agreement as a whole (1.25 times the limit)"),
])
def test_a_findings_sentence_without_a_figure_or_with_a_count_of_apps(f: Finding, expected: str) -> None:
    assert finding_sentence(f) == expected


def test_a_findings_sentence_keeps_its_own_days_when_its_figures_cover_all_of_them() -> None:
    days = finding("volume_cap", "2022-03-05", "2022-03-20", ratio=None)
    every_day = Period(date(2022, 3, 5), date(2022, 3, 20), first=date(2022, 3, 5), last=date(2022, 3, 20), days=16)
    assert finding_sentence(days, every_day) == (
        "5,000 API calls from 5 March 2022 to 20 March 2022, against a limit of 4,000")
