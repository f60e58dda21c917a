"""Reading an exported letter as the lawyer who signs it does: its schedules as
rows, every period it states as a span of days, every summary sentence with its
numbers. Used by tests/test_letter.py and the end-to-end test; it knows nothing
of store.notes (what it reads is the letter's text)."""

from __future__ import annotations

import calendar
import math
import re
from datetime import date
from typing import Iterator

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
_MONTH = "|".join(MONTHS)


def number(text: str) -> int:
    return int(text.replace(",", ""))


def section(md: str, title: str) -> str:
    """The text of a ``## title`` section, up to the next ``## ``."""
    start = md.index(f"## {title}")
    end = md.find("\n## ", start + 3)
    return md[start:end if end != -1 else len(md)]


def schedules(md: str) -> dict[str, list[dict[str, str]]]:
    """Schedule letter -> its table rows, each a dict of header -> cell."""
    out: dict[str, list[dict[str, str]]] = {}
    for match in re.finditer(r"^### Schedule ([A-Z]): .*?\n\n(\|.*?)(?:\n\n|\Z)", md, re.M | re.S):
        lines = [line for line in match.group(2).splitlines() if line.startswith("|")]
        headers = [cell.strip() for cell in lines[0].strip("|").split("|")]
        out[match.group(1)] = [dict(zip(headers, (cell.strip() for cell in line.strip("|").split("|"))))
                               for line in lines[2:]]
    return out


def _month_index(name: str) -> int:
    return MONTHS.index(name) + 1


def label_span(label: str) -> tuple[date, date]:
    """The days a schedule or appendix period label stands for: "July 2022",
    "2022", "2021 (figures from 1 October)", "March 2022 (figures 3–15 March)"."""
    m = re.fullmatch(rf"(?:({_MONTH}) )?(\d{{4}})(?: \(figures (from|to|for) (\d+) ({_MONTH})(?: only)?\))?", label)
    if m is None:
        m2 = re.fullmatch(rf"({_MONTH})–({_MONTH}) (\d{{4}})(?: \(figures for (\d+) ({_MONTH}) only\))?", label)
        assert m2 is not None, f"cannot read the period label {label!r}"
        year = int(m2.group(3))
        start, end = date(year, _month_index(m2.group(1)), 1), date(year, _month_index(m2.group(2)), 1)
        end = end.replace(day=calendar.monthrange(year, end.month)[1])
        if m2.group(4):
            day = date(year, _month_index(m2.group(5)), int(m2.group(4)))
            return day, day
        return start, end
    month, year = m.group(1), int(m.group(2))
    if month:
        start = date(year, _month_index(month), 1)
        end = start.replace(day=calendar.monthrange(year, start.month)[1])
    else:
        start, end = date(year, 1, 1), date(year, 12, 31)
    if m.group(3):
        day = date(year, _month_index(m.group(5)), int(m.group(4)))
        if m.group(3) == "from":
            start = day
        elif m.group(3) == "to":
            end = day
        else:
            start = end = day
    return start, end


def stated_periods(md: str) -> Iterator[tuple[str, date, date]]:
    """Every period the letter states about usage, as (text, first day, last day):
    from "Observed activity" on, leaving out the request, deadline and reservation
    (dates of the letter, not of usage) and the fetch times of the appendix."""
    text = md[md.index("## Observed activity"):]
    text = text[:text.index("## Our request")] + text[text.index("## Schedules"):text.index("### Sync runs")]
    # 1 October 2021 ... to 31 December 2021
    for m in re.finditer(rf"\b(\d{{1,2}}) ({_MONTH}) (\d{{4}})\b", text):
        day = date(int(m.group(3)), _month_index(m.group(2)), int(m.group(1)))
        yield m.group(0), day, day
    text = re.sub(rf"\b\d{{1,2}} ({_MONTH}) \d{{4}}\b", " ", text)
    for m in re.finditer(r"\b(\d{4})-(\d{2})-(\d{2})\b(?!T)", text):
        day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        yield m.group(0), day, day
    text = re.sub(r"\b\d{4}-\d{2}-\d{2}\b", " ", text)
    # Table labels, with their coverage: "2021 (figures from 1 October)", "July 2022".
    for m in re.finditer(rf"\| ((?:(?:{_MONTH})(?:–(?:{_MONTH}))? )?\d{{4}}(?: \(figures [^)]*\))?) \|", text):
        start, end = label_span(m.group(1))
        yield m.group(1), start, end
    text = re.sub(rf"\| ((?:(?:{_MONTH})(?:–(?:{_MONTH}))? )?\d{{4}}(?: \(figures [^)]*\))?) \|", "| |", text)
    # "from October 2021 to December 2022", "in July 2022"
    for m in re.finditer(rf"\b({_MONTH}) (\d{{4}})\b", text):
        start = date(int(m.group(2)), _month_index(m.group(1)), 1)
        yield m.group(0), start, start.replace(day=calendar.monthrange(start.year, start.month)[1])
    text = re.sub(rf"\b({_MONTH}) (\d{{4}})\b", " ", text)
    # A bare year stands for all of it, unless "(figures from ...)" follows.
    for m in re.finditer(r"(?<![\d,.#§-])(20\d\d)(?![\d,-])( \(figures (?:from|to) \d+ \w+\))?", text):
        start, end = label_span(m.group(0).strip())
        yield m.group(0), start, end


def ratio_range(ratios: list[float]) -> tuple[str, str]:
    """What the summary must say: the lowest rounded down and the highest rounded up."""
    return f"{math.floor(min(ratios) * 10) / 10:.1f}", f"{math.ceil(max(ratios) * 10) / 10:.1f}"
