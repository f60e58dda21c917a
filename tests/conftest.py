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


@pytest.fixture(scope="session")
def small_demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``warden demo --headless --consumers 12``: the Northwind case (78 findings,
    30 of them circumvention twins) and a dozen others. Read it, or write to a
    :func:`copy_db` of it."""
    from tui.cli import main

    db = tmp_path_factory.mktemp("small-demo") / "demo.db"
    assert main(["demo", "--headless", "--consumers", "12", "--db", str(db)]) == 0
    return db


def copy_db(db: Path, folder: Path, name: str = "copy.db") -> Path:
    """A private copy of ``db`` in ``folder`` (VACUUM INTO: consistent, WAL included)."""
    import sqlite3

    copy = folder / name
    source = sqlite3.connect(db)
    source.execute(f"VACUUM INTO '{copy}'")
    source.close()
    copy.chmod(0o600)
    return copy


@pytest.fixture
def demo_copy(small_demo_db: Path, tmp_path: Path) -> Path:
    """A fresh copy of the small demo database for a test that writes."""
    return copy_db(small_demo_db, tmp_path)
