"""Time is UTC whatever the host's zone."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest

from store.clock import day, fixed_clock, iso


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_naive_moment_is_utc_in_iso_and_day_as_in_fixed_clock(new_york: None) -> None:
    naive = datetime(2022, 12, 31, 23, 30)
    assert iso(naive) == "2022-12-31T23:30:00Z"
    assert day(naive) == "2022-12-31"
    assert iso(fixed_clock(naive)()) == iso(naive)


def test_an_aware_moment_is_converted_to_utc(new_york: None) -> None:
    east = datetime(2022, 12, 31, 20, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert iso(east) == "2023-01-01T01:30:00Z"
    assert day(east) == "2023-01-01"
