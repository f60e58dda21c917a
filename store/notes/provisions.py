"""The provisions at issue, as a lawyer states them: one paragraph per provision
(how many periods broke which limit, the range, the worst case) and, at the end of
the letter, schedules with every period in full, in chronological order (a year's
row after its months).

Every number of a paragraph is computed from the schedule rows it cites, the
same rows the schedule prints: what the summary says can be checked line by line
against the table (``tests/test_letter.py`` recomputes them). A finding and its
circumvention twin (:mod:`store.twins`) share a row: one overage, two provisions.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Iterable

from store.cases import Finding, Tier
from store.domain import CATEGORIES, METRIC_CALLS, METRIC_RECORDS
from store.notes.evidence import Coverage
from store.notes.wording import (
    MONTH_NAMES,
    Period,
    count,
    finding_sentence,
    human_date,
    id_ranges,
    metric_words,
    num,
)

# Which schedule a finding's row goes to, by category.
_KIND = {"volume_cap": "volume", "rate_limit": "rate", "circumvention": None, "endpoint_outside": "endpoint"}
_GRAIN_ORDER = {"day": 0, "month": 1, "year": 2}
_PER = {"day": "daily", "month": "monthly", "year": "yearly"}


@dataclass
class Row:
    """One period of one schedule: what was measured against which limit, and the
    findings it is the evidence of."""

    period: Period                 # with the days that hold figures
    limit_period: str              # day | month | year (endpoint rows: month)
    metric: str
    measured: int                  # the period's total; for a daily limit, its worst day's
    limit: int | None
    ratio: float | None
    worst_day: date | None = None  # daily limit: the worst day of the month
    days_over: int | None = None   # daily limit: days over it in the month
    endpoints: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def sort_key(self) -> tuple[Any, ...]:
        # Chronological by the end of the period; a year after the months that end with it.
        return (self.period.end, _GRAIN_ORDER.get(self.limit_period, 1), self.period.start)

    def cells(self) -> dict[str, str]:
        return {
            "period": self.period.label,
            "measured": num(self.measured),
            "limit": f"{num(self.limit)} per {self.limit_period}" if self.limit is not None else "",
            "ratio": f"{self.ratio:.2f}" if self.ratio is not None else "",
            "worst_day": human_date(self.worst_day) if self.worst_day else "",
            "days_over": num(self.days_over) if self.days_over is not None else "",
            "endpoints": ", ".join(self.endpoints[:3]) + (f" and {len(self.endpoints) - 3} more"
                                                          if len(self.endpoints) > 3 else ""),
            "findings": ", ".join(f"#{f.id} {CATEGORIES.get(f.category, f.category).lower()} ({f.severity})"
                                  for f in sorted(self.findings, key=lambda f: (f.category == "circumvention",
                                                                                  f.id))),
        }


@dataclass
class Schedule:
    """One table at the end of the letter: a metric against one kind of limit."""

    kind: str                      # volume | rate | endpoint
    metric: str
    rows: list[Row] = field(default_factory=list)
    letter: str = ""

    @property
    def title(self) -> str:
        what = metric_words(self.metric)
        if self.kind == "rate":
            limit = next((r.limit for r in self.rows if r.limit is not None), None)
            return f"days over the daily limit of {num(limit)} {what}, by month"
        if self.kind == "endpoint":
            return "API calls to endpoints outside the agreement, by month"
        grains = sorted({r.limit_period for r in self.rows}, key=lambda g: _GRAIN_ORDER.get(g, 1))
        limits = " and ".join(f"the {_PER.get(g, g)} limit of {num(next(r.limit for r in self.rows if r.limit_period == g))}"
                              for g in grains)
        return f"{what} per {' and per '.join(grains)}, over {limits}"


def build(findings: list[Finding], tier: Tier | None, coverage: Coverage) -> tuple[list[dict[str, Any]],
                                                                               list[dict[str, Any]]]:
    """(provisions, schedules) for the template: see the module docstring."""
    schedules = _schedules(findings, coverage)
    provisions = []
    order = list(CATEGORIES)
    present = sorted({f.category for f in findings},
                     key=lambda c: (order.index(c) if c in order else len(order), c))
    for category in present:
        mine = [f for f in findings if f.category == category]
        paragraphs = _paragraphs(category, mine, schedules, coverage)
        provisions.append({
            "category": category, "category_label": CATEGORIES.get(category, category),
            "clause": tier.clauses.get(category) if tier is not None else None,
            "paragraphs": paragraphs,
            "finding_ids": [f.id for f in mine], "findings_text": _ids_text(f.id for f in mine),
            "schedules": [s.letter for s in schedules if any(f in r.findings for r in s.rows for f in mine)],
        })
        letters = provisions[-1]["schedules"]
        provisions[-1]["schedules_text"] = (f"Schedule {letters[0]}" if len(letters) == 1 else
                                            f"Schedules {', '.join(letters[:-1])} and {letters[-1]}" if letters
                                            else "")
    return provisions, [_schedule_vars(s) for s in schedules]


def _limit_of(f: Finding) -> tuple[str | None, str | None, int | None]:
    """(metric, limit period, limit) of a finding's limit."""
    limit = f.figures.get("limit") if isinstance(f.figures, dict) else None
    limit = limit if isinstance(limit, dict) else {}
    maximum = limit.get("max") if isinstance(limit.get("max"), int) else f.limit_value
    return limit.get("metric") or f.metric, limit.get("period"), maximum


def _schedules(findings: list[Finding], coverage: Coverage) -> list[Schedule]:
    by_key: dict[tuple[Any, ...], Row] = {}
    tables: dict[tuple[str, str], Schedule] = {}
    for f in sorted(findings, key=lambda f: (f.category == "circumvention", f.id)):
        metric, grain, limit = _limit_of(f)
        kind = _KIND.get(f.category, "missing")
        if f.category == "circumvention":
            kind = "rate" if grain == "day" else "volume"
        if kind not in ("volume", "rate", "endpoint") or metric is None or f.actual is None:
            continue
        if kind == "endpoint":
            metric, grain, limit = METRIC_CALLS, "month", None
        days = f.figures.get("days_over") if isinstance(f.figures.get("days_over"), list) else None
        key = (kind, metric, grain, limit, f.period, f.actual, len(days) if days is not None else None)
        row = by_key.get(key)
        if row is None:
            span = Period(date.fromisoformat(f.period_start), date.fromisoformat(f.period_end))
            worst = (f.figures.get("worst_day") or {}).get("day") if kind == "rate" else None
            endpoints = [str(e.get("endpoint")) for e in f.figures.get("endpoints") or [] if isinstance(e, dict)]
            row = by_key[key] = Row(
                period=coverage.of(span, metric) or span, limit_period=grain or "month", metric=metric,
                measured=f.actual, limit=limit, ratio=f.ratio,
                worst_day=date.fromisoformat(worst) if worst else None,
                days_over=len(days) if days is not None else None, endpoints=endpoints)
            tables.setdefault((kind, metric), Schedule(kind, metric)).rows.append(row)
        row.findings.append(f)
    ordered = sorted(tables.values(), key=lambda s: (("volume", "rate", "endpoint").index(s.kind),
                                                     (METRIC_CALLS, METRIC_RECORDS).index(s.metric)
                                                     if s.metric in (METRIC_CALLS, METRIC_RECORDS) else 2, s.metric))
    for letter, schedule in zip(string.ascii_uppercase, ordered):
        schedule.letter = letter
        schedule.rows.sort(key=lambda r: r.sort_key)
    return ordered


def _schedule_vars(s: Schedule) -> dict[str, Any]:
    return {"letter": s.letter, "kind": s.kind, "metric": s.metric, "metric_words": metric_words(s.metric),
            "title": s.title, "rows": [r.cells() for r in s.rows]}


# --- the paragraphs ---------------------------------------------------------------------


def ratio_range(ratios: list[float]) -> tuple[str, str]:
    """The lowest ratio rounded down and the highest rounded up, to one decimal: a
    range every ratio lies in ("between 3.0 and 3.4 times" for 3.03 .. 3.37)."""
    return f"{math.floor(min(ratios) * 10) / 10:.1f}", f"{math.ceil(max(ratios) * 10) / 10:.1f}"


def _when(rows: list[Row]) -> str:
    """"in every month from October 2021 to December 2022 (15 months)", "in July 2022",
    "in 4 months between January and November 2022", "in 2021 (from 1 October) and 2022"."""
    if len(rows) == 1:
        return rows[0].period.phrase if rows[0].period.partial else f"in {rows[0].period.label}"
    grains = {r.limit_period for r in rows}
    if grains <= {"month", "day"}:
        first, last = rows[0].period.start, rows[-1].period.start
        months = (last.year - first.year) * 12 + last.month - first.month + 1
        span = (f"{MONTH_NAMES[first.month]} to {MONTH_NAMES[last.month]} {last.year}" if first.year == last.year
                else f"{MONTH_NAMES[first.month]} {first.year} to {MONTH_NAMES[last.month]} {last.year}")
        if months == len({(r.period.start.year, r.period.start.month) for r in rows}):
            return f"in every month from {span} ({len(rows)} months)"
        return f"in {len(rows)} months between {span}"
    labels = [r.period.label for r in rows]
    return "in " + ", ".join(labels[:-1]) + f" and {labels[-1]}"


def _worst(rows: list[Row]) -> Row:
    return max(rows, key=lambda r: (r.ratio or 0, -r.sort_key[0].toordinal()))


def _paragraphs(category: str, mine: list[Finding], schedules: list[Schedule], coverage: Coverage) -> list[str]:
    paragraphs = []
    for s in schedules:
        rows = [r for r in s.rows if any(f in r.findings for f in mine)]
        if not rows:
            continue
        what = metric_words(s.metric)
        for grain in sorted({r.limit_period for r in rows}, key=lambda g: _GRAIN_ORDER.get(g, 1)):
            part = [r for r in rows if r.limit_period == grain]
            paragraphs.append(_sentence(category, s, part, grain, what))
    for f in mine:
        if not any(f in r.findings for s in schedules for r in s.rows):
            span = Period(date.fromisoformat(f.period_start), date.fromisoformat(f.period_end))
            covered = coverage.of(span, f.metric) if f.metric else coverage.of(span)
            text = f"{_upper_first(finding_sentence(f, covered))}."
            if f.evidence:
                text += f" {f.evidence}"
            paragraphs.append(f"{text} (Finding #{f.id}, severity {f.severity}.)")
    return paragraphs


def _sentence(category: str, s: Schedule, rows: list[Row], grain: str, what: str) -> str:
    where = f"(Schedule {s.letter})"
    if s.kind == "endpoint":
        total = sum(r.measured for r in rows)
        endpoints = sorted({e for r in rows for e in r.endpoints})
        named = ", ".join(endpoints[:5]) + (f" and {len(endpoints) - 5} more" if len(endpoints) > 5 else "")
        return (f"The applications called endpoints outside the agreement {_when(rows)}: {num(total)} API calls "
                f"to {len(endpoints)} endpoint(s) ({named}) {where}.")
    limit = rows[0].limit
    ratios = [r.ratio for r in rows if r.ratio is not None] or [0.0]
    worst = _worst(rows)
    if len(rows) == 1:
        by = f"{worst.ratio:.2f} times the limit" if worst.ratio is not None else "over the limit"
    else:
        low, high = ratio_range(ratios)
        by = f"between {low} and {high} times the limit" if low != high else f"{low} times the limit"
    whole = ", which binds the agreement as a whole," if category == "circumvention" else ""
    spread = (f" by traffic spread over {_apps(rows)} applications that each stayed under it"
              if category == "circumvention" else "")
    if s.kind == "rate":
        days = sum(r.days_over or 0 for r in rows)
        worst_text = (f"worst: {human_date(worst.worst_day)}, {num(worst.measured)} {what}" if worst.worst_day
                      else f"worst: {worst.period.label}, {num(worst.measured)} {what} on one day")
        each = "the worst day of each month was" if len(rows) > 1 else "the worst day was"
        return (f"The daily limit of {num(limit)} {what}{whole} was exceeded on {count(days, 'day')}, "
                f"{_when(rows)},{spread}; {each} {by}; {worst_text} {where}.".replace(",;", ";"))
    together = "together " if category == "circumvention" else ""
    if len(rows) == 1:
        return (f"The {_PER.get(grain, grain)} limit of {num(limit)} {what}{whole} was exceeded {_when(rows)}{spread}: "
                f"{num(worst.measured)} {what}, {together}{by} {where}.")
    return (f"The {_PER.get(grain, grain)} limit of {num(limit)} {what}{whole} was exceeded {_when(rows)}{spread}, "
            f"{together}by {by}; worst: {worst.period.label}, {num(worst.measured)} {what} {where}.")


def _apps(rows: list[Row]) -> str:
    counts = [f.figures.get("apps_with_usage") for r in rows for f in r.findings
              if f.category == "circumvention" and isinstance(f.figures.get("apps_with_usage"), int)]
    return f"{min(counts)}" if counts and min(counts) == max(counts) else (
        f"{min(counts)} to {max(counts)}" if counts else "several")


def _ids_text(ids: Iterable[int]) -> str:
    ordered = sorted(set(ids))
    return ("finding #" if len(ordered) == 1 else "findings #") + id_ranges(ordered).replace(", ", ", #").replace(
        "–", "–#")


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]
