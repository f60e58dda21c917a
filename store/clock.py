"""Time: everything is UTC. Functions that need "now" take a ``Clock`` argument so
tests and snapshots can fix it."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Callable

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def fixed_clock(moment: datetime) -> Clock:
    """A clock that always answers ``moment`` (tests, snapshots, golden files)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return lambda: moment


def _utc(moment: datetime) -> datetime:
    # A naive datetime is UTC here, as in fixed_clock: astimezone() alone would
    # read it as the host's local time.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def iso(moment: datetime) -> str:
    """``2026-11-27T20:14:29Z``: the one timestamp format stored in the database."""
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def day(moment: datetime | date) -> str:
    """``2026-11-27``: the one day format stored in the database (UTC)."""
    if isinstance(moment, datetime):
        moment = _utc(moment).date()
    return moment.isoformat()
