"""Due dates: a letter's deadline counted in calendar or business days, and how
far a due date is from today, in words.

Business days are Monday to Friday, less the configured holidays. A deadline of
N business days from a date is the N-th business day after it (the date itself
never counts): 1 business day from a Friday is the Monday after. Days left and
overdue are calendar days (what a reader counts on a calendar), UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterable

from store.domain import DEADLINE_KINDS
from store.errors import ConfigError

SATURDAY = 5   # date.weekday(): Monday 0 ... Sunday 6


@dataclass(frozen=True)
class DeadlineRule:
    """How many days a consumer has to answer, and how they are counted."""

    days: int = 21
    kind: str = "calendar"                       # one of store.domain.DEADLINE_KINDS
    holidays: frozenset[date] = frozenset()      # business days only: days that do not count

    def __post_init__(self) -> None:
        if self.kind not in DEADLINE_KINDS:
            raise ConfigError(f"unknown deadline kind {self.kind!r} (one of {', '.join(DEADLINE_KINDS)})")
        if self.days < 1:
            raise ConfigError(f"a deadline is at least 1 day, not {self.days}")

    def due_from(self, start: date, days: int | None = None) -> date:
        """The due date ``days`` (default: the rule's) calendar or business days after ``start``."""
        return add_days(start, self.days if days is None else days, business=self.kind == "business",
                        holidays=self.holidays)

    def words(self, days: int | None = None) -> str:
        """``21 days`` / ``15 business days``."""
        n = self.days if days is None else days
        unit = "business day" if self.kind == "business" else "day"
        return f"{n} {unit}{'s' if n != 1 else ''}"


def add_days(start: date, days: int, *, business: bool = False, holidays: Iterable[date] = ()) -> date:
    """``start`` plus ``days`` calendar days, or the ``days``-th business day after it."""
    if not business:
        return start + timedelta(days=days)
    off = frozenset(holidays)
    day = start
    left = days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < SATURDAY and day not in off:
            left -= 1
    return day


def days_left(due: date, today: date) -> int:
    """Calendar days from ``today`` to ``due``: negative once it is overdue."""
    return (due - today).days


def due_short(due: date | str | None, today: date) -> str:
    """As the queue shows it: ``due 3d``, ``due today``, ``overdue 2d`` (empty without
    a due date); from 100 days on in whole weeks (``overdue 14w``), from 100 weeks
    on in whole years (``overdue 2y``), so it fits the queue's case column."""
    if due is None:
        return ""
    left = days_left(_day(due), today)
    if left == 0:
        return "due today"
    n = abs(left)
    span = f"{n}d" if n < 100 else f"{n // 7}w" if n < 700 else f"{n // 365}y"
    return f"due {span}" if left > 0 else f"overdue {span}"


def due_long(due: date | str | None, today: date) -> str:
    """As a listing says it: ``due in 3 days``, ``due today``, ``overdue by 2 days``."""
    if due is None:
        return "no due date"
    left = days_left(_day(due), today)
    if left == 0:
        return "due today"
    n = abs(left)
    days = f"{n} day{'s' if n != 1 else ''}"
    return f"due in {days}" if left > 0 else f"overdue by {days}"


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)
