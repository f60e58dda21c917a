"""Wording a letter can defend: figures rounded so "more than" stays true,
dates and periods in English whatever the locale, what each finding measured
in a sentence, compact id lists.

Deterministic: the same data gives the same words, byte for byte.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from typing import Iterable

from store.cases import Finding
from store.domain import METRIC_CALLS, METRIC_RECORDS

MONTH_NAMES = ("", "January", "February", "March", "April", "May", "June", "July",
           "August", "September", "October", "November", "December")


_UNITS = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"))


def more_than(n: int) -> str:
    """The largest round figure strictly below ``n``, in words: "more than X" stays true.

    Round means two significant digits: 790,123,456 -> "790 million",
    26,412,000,000 -> "26 billion", exactly 780,000,000 -> "770 million",
    1,000,000,000 -> "990 million", 12,345 -> "12,000", 100 -> "99".
    ``n`` must be at least 1 (nothing is "more than" a figure for zero usage).
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"more_than() needs an int, not {type(n).__name__}")
    if n < 1:
        raise ValueError(f"more_than({n}): there is no round figure below {n} worth stating")
    below = n - 1                      # the largest integer strictly less than n
    digits = len(str(below))
    step = 10 ** max(digits - 2, 0)
    rounded = below // step * step     # truncate to two significant digits
    for unit, word in _UNITS:
        if rounded >= unit:
            whole, rest = divmod(rounded, unit)
            if rest:
                # Two significant digits and whole < 10 here: exactly one decimal.
                return f"{whole:,}.{rest * 10 // unit} {word}"
            return f"{whole:,} {word}"
    return f"{rounded:,}"


def count(n: int, noun: str) -> str:
    """``1 day``, ``457 days``: a count with its noun."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def num(n: int | None) -> str:
    """An exact figure with thousands separators ("790,123,456")."""
    return "" if n is None else f"{n:,}"


def human_date(d: date | str) -> str:
    """``27 November 2026`` (English, locale-independent so output is deterministic)."""
    if isinstance(d, str):
        d = date.fromisoformat(d)
    return f"{d.day} {MONTH_NAMES[d.month]} {d.year}"


@dataclass(frozen=True)
class Period:
    """A period the letter states: a calendar span (whole months, a year) and,
    when known, the days in it that hold figures (``first`` to ``last``, ``days``
    of them). A letter states what its data covers: a year whose figures start
    on 1 October says so instead of claiming the whole year."""

    start: date
    end: date
    first: date | None = None      # first day with figures; None: the whole span (coverage not known)
    last: date | None = None       # last day with figures
    days: int | None = None        # days with figures

    @property
    def from_day(self) -> date:
        return self.first or self.start

    @property
    def to_day(self) -> date:
        return self.last or self.end

    @property
    def partial(self) -> bool:
        """True when the figures start after the span starts or end before it ends."""
        return self.from_day > self.start or self.to_day < self.end

    @property
    def span_days(self) -> int:
        """Days from the first to the last day with figures, both included."""
        return (self.to_day - self.from_day).days + 1

    @property
    def calendar_label(self) -> str:
        """"2022", "March 2022", "January–March 2022", "November 2021–February 2022";
        a span that is not whole months by its days: "5–20 November 2021"."""
        s, e = self.start, self.end
        if not is_whole_months(s, e):
            if s == e:
                return human_date(s)
            if (s.year, s.month) == (e.year, e.month):
                return f"{s.day}–{e.day} {MONTH_NAMES[e.month]} {e.year}"
            return f"{human_date(s)} – {human_date(e)}"
        if (s.month, s.day, e.month, e.day) == (1, 1, 12, 31):
            return str(s.year) if s.year == e.year else f"{s.year}–{e.year}"
        if (s.year, s.month) == (e.year, e.month):
            return f"{MONTH_NAMES[s.month]} {s.year}"
        if s.year == e.year:
            return f"{MONTH_NAMES[s.month]}–{MONTH_NAMES[e.month]} {s.year}"
        return f"{MONTH_NAMES[s.month]} {s.year}–{MONTH_NAMES[e.month]} {e.year}"

    @property
    def label(self) -> str:
        """The calendar label, with what the figures cover when that is less:
        "2022", "2021 (figures from 1 October)", "March 2022 (figures 3–15 March)"."""
        if not self.partial:
            return self.calendar_label
        f, t = self.from_day, self.to_day
        if f == t:
            return f"{self.calendar_label} (figures for {f.day} {MONTH_NAMES[f.month]} only)"
        if f > self.start and t < self.end:
            within = (f"{f.day}–{t.day} {MONTH_NAMES[t.month]}" if (f.year, f.month) == (t.year, t.month)
                      else f"{f.day} {MONTH_NAMES[f.month]} – {t.day} {MONTH_NAMES[t.month]}")
            return f"{self.calendar_label} (figures {within})"
        if f > self.start:
            return f"{self.calendar_label} (figures from {f.day} {MONTH_NAMES[f.month]})"
        return f"{self.calendar_label} (figures to {t.day} {MONTH_NAMES[t.month]})"

    @property
    def phrase(self) -> str:
        """The period in a sentence: "in 2022", "from January to March 2022", or
        what the figures cover: "from 1 October 2021, the first day we hold figures
        for, to 31 December 2021"."""
        if self.partial:
            f, t = self.from_day, self.to_day
            if f == t:
                return f"on {human_date(f)}, the only day of {self.calendar_label} we hold figures for"
            first = ", the first day we hold figures for," if f > self.start else ""
            last = ", the last day we hold figures for" if t < self.end else ""
            return f"from {human_date(f)}{first} to {human_date(t)}{last}"
        s, e = self.start, self.end
        if (s.month, s.day, e.month, e.day) == (1, 1, 12, 31):
            return f"in {s.year}" if s.year == e.year else f"from {s.year} to {e.year}"
        if (s.year, s.month) == (e.year, e.month):
            return f"in {MONTH_NAMES[s.month]} {s.year}"
        if s.year == e.year:
            return f"from {MONTH_NAMES[s.month]} to {MONTH_NAMES[e.month]} {s.year}"
        return f"from {MONTH_NAMES[s.month]} {s.year} to {MONTH_NAMES[e.month]} {e.year}"

    @property
    def extent(self) -> str:
        """The days stated, for a parenthesis: "2022-01-01 to 2022-12-31, UTC days; figures
        for each of its 365 days" (or "for 12 of its 335 days")."""
        span = f"{self.from_day.isoformat()} to {self.to_day.isoformat()}, UTC days"
        if self.days is None:
            return span
        if self.days == self.span_days:
            return f"{span}; figures for each of its {self.days:,} days" if self.days > 1 else f"{span}; figures for it"
        return f"{span}; figures for {self.days:,} of its {self.span_days:,} days"


def span_phrase(start: str, end: str) -> str:
    """A finding's own period in a sentence: "in 2022", "on 4 March 2022", "from 1 March 2022 to 9 March 2022"."""
    s, e = date.fromisoformat(start), date.fromisoformat(end)
    if s == e:
        return f"on {human_date(s)}"
    if is_whole_months(s, e):
        return Period(s, e).phrase
    return f"from {human_date(s)} to {human_date(e)}"


def is_whole_months(start: date, end: date) -> bool:
    """Whether ``start``..``end`` begins on a month's first day and ends on a month's last."""
    return start.day == 1 and end.day == calendar.monthrange(end.year, end.month)[1]


def whole_months(start: date, end: date) -> Period:
    last = calendar.monthrange(end.year, end.month)[1]
    return Period(start.replace(day=1), end.replace(day=last))


def id_ranges(ids: Iterable[int]) -> str:
    """``1, 2, 3, 7, 9, 10`` -> ``"1–3, 7, 9–10"``: a compact, exact list of ids."""
    ordered = sorted(set(ids))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}–{ordered[j]}")
        i = j + 1
    return ", ".join(parts)


_METRIC_WORDS = {METRIC_CALLS: "API calls", METRIC_RECORDS: "records retrieved"}


def metric_words(metric: str | None) -> str:
    """"API calls", "records retrieved", or the metric id for others."""
    return _METRIC_WORDS.get(metric or "", metric or "")


def finding_sentence(f: Finding, covered: Period | None = None) -> str:
    """What a finding found, as a plain-text sentence fragment for the letter.

    Reads the figures store.rules writes (limit period, worst day, days over,
    apps, endpoints) so the sentence says exactly what the numbers are: a yearly
    total, a worst day, a count of apps. ``covered``: the finding's period with
    the days that hold figures; a period they cover only in part is stated as
    what they cover.
    """
    figs = f.figures
    limit = figs.get("limit") if isinstance(figs.get("limit"), dict) else {}
    per = f" per {limit['period']}" if limit.get("period") else ""
    span = covered.phrase if covered is not None and covered.partial else span_phrase(f.period_start, f.period_end)
    what = metric_words(f.metric)
    ratio = f" ({f.ratio:.2f} times the limit)" if f.ratio else ""
    actual, cap, category = f.actual, f.limit_value, f.category
    if category == "rate_limit" and actual is not None and cap is not None:
        worst = (figs.get("worst_day") or {}).get("day")
        days = figs.get("days_over") or []
        text = f"as many as {num(actual)} {what} on one UTC day"
        text += f" ({human_date(worst)})" if worst else ""
        text += f", against a limit of {num(cap)} per day{ratio}"
        if days:
            return text + f"; the daily limit was exceeded on {len(days)} day(s) {span}"
        return text + f", {span}"
    if category == "circumvention" and actual is not None and cap is not None:
        apps = figs.get("apps_with_usage") or len(figs.get("apps") or []) or "several"
        if limit.get("period") == "day":
            return (f"as many as {num(actual)} {what} on one UTC day {span}, spread over {apps} applications "
                    f"each under the limit of {num(cap)} per day that binds the agreement as a whole{ratio}")
        return (f"{num(actual)} {what} {span}, spread over {apps} applications each under the limit of "
                f"{num(cap)}{per} that binds the agreement as a whole{ratio}")
    if category == "missing_use_case" and actual is not None:
        total = figs.get("apps_with_usage")
        of = f" of the {total}" if total else ""
        # A span stated as its figures cover it has commas inside: close the clause with one.
        close = "," if covered is not None and covered.partial else ""
        return f"{actual}{of} applications that used the API {span}{close} declared no use case"
    if category == "endpoint_outside" and actual is not None:
        endpoints = [str(e.get("endpoint")) for e in figs.get("endpoints") or [] if isinstance(e, dict)]
        named = ", ".join(endpoints[:5]) + (f" and {len(endpoints) - 5} more" if len(endpoints) > 5 else "")
        return f"{num(actual)} API calls {span} to endpoints outside the agreement" + (f" ({named})" if named else "")
    if actual is not None and cap is not None:
        return f"{num(actual)} {what} {span}, against a limit of {num(cap)}{per}{ratio}"
    if actual is not None and f.metric:
        return f"{num(actual)} {what} {span}"
    return f"identified {span}"


def worst_day(f: Finding) -> str | None:
    """The UTC day (``2022-10-02``) a finding against a daily limit measured, the
    worst of its period; None for a finding whose figure is a period's total."""
    figs = f.figures
    limit = figs.get("limit") if isinstance(figs.get("limit"), dict) else {}
    if f.category != "rate_limit" and limit.get("period") != "day":
        return None
    day = (figs.get("worst_day") or {}).get("day") if isinstance(figs.get("worst_day"), dict) else None
    return str(day) if day else None


def finding_columns(f: Finding) -> dict[str, str]:
    """Short cells for a table of many findings: period, what was measured, the limit, the ratio."""
    figs = f.figures
    limit = figs.get("limit") if isinstance(figs.get("limit"), dict) else {}
    s, e = date.fromisoformat(f.period_start), date.fromisoformat(f.period_end)
    period_label = Period(s, e).label if is_whole_months(s, e) else (human_date(s) if s == e else f"{human_date(s)} – {human_date(e)}")
    measured = ""
    if f.actual is not None:
        if f.category == "missing_use_case":
            total = figs.get("apps_with_usage")
            measured = f"{f.actual}{f' of {total}' if total else ''} apps without a declared use case"
        elif f.category in ("rate_limit",) or limit.get("period") == "day":
            worst = worst_day(f)
            measured = f"{num(f.actual)} {metric_words(f.metric)} on the worst day" + (
                f" ({human_date(worst)})" if worst else "")
        else:
            measured = f"{num(f.actual)} {metric_words(f.metric)}".strip()
    cap = f"{num(f.limit_value)}" + (f" per {limit['period']}" if limit.get("period") else "") \
        if f.limit_value is not None else ""
    return {"period_label": period_label, "measured": measured, "limit_text": cap,
            "ratio_text": f"{f.ratio:.2f}×" if f.ratio else ""}


