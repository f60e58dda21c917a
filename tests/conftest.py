"""Fixtures every test file may use.

- ``db``: the seeded review database of :mod:`tests.tui_data` (a test file that
  needs another database defines its own ``db``);
- autouse: no ``Input`` / ``TextArea`` cursor blinks, from before the app starts
  (snapshots are the same on a loaded machine), and every notification an app is
  asked to show is recorded for :func:`tests.tui_data.shown_notifications`;
- ``anyio_backend``: the Pilot tests run on asyncio.

The Hypothesis strategy for arbitrary JSON lives in :mod:`tests.strategies`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.tui_data import cursors_that_do_not_blink, notifications_recorded, seed_review_db


@pytest.fixture(autouse=True)
def no_cursor_blink() -> Iterator[None]:
    with cursors_that_do_not_blink():
        yield


@pytest.fixture(autouse=True)
def recorded_notifications() -> Iterator[None]:
    with notifications_recorded():
        yield


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return seed_review_db(tmp_path / "review.db")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
