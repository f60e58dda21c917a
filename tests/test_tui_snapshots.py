"""Snapshots of the review screen, every modal and the help, at 80x24 and 120x40,
and under NO_COLOR. Seeded database, fixed clock, workers awaited, no blinking
cursor. Update on purpose (``--snapshot-update``) and look at the SVGs first."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import pytest
from textual.widgets import Input, Select, TextArea

from tests.tui_data import CLOCK, settle
from tui.app import WardenApp
from tui.modals.sync import SyncProgress

SMALL = (80, 24)
LARGE = (120, 40)


def app_for(db: Path) -> WardenApp:
    return WardenApp(db_path=db, reviewer="alice", clock=CLOCK, mouse=False)


def steps(keys: Iterable[str] = (), *, then=None):
    """A run_before: wait for the first page and detail, press keys, clear the toasts.
    (No cursor blinks: the autouse fixture of conftest.py turns blinking off before the app starts.)"""

    async def run_before(pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        if then is not None:
            await then(pilot)
            await settle(pilot)
        pilot.app.clear_notifications()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_main_screen(snap_compare, db: Path, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(db), terminal_size=size, run_before=steps())


def test_main_screen_no_color(snap_compare, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(app_for(db), terminal_size=SMALL, run_before=steps())


def test_main_screen_no_color_large(snap_compare, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(app_for(db), terminal_size=LARGE, run_before=steps())


def test_detail_hidden_small(snap_compare, db: Path) -> None:
    assert snap_compare(app_for(db), terminal_size=SMALL, run_before=steps(["p"]))


def test_daily_chart(snap_compare, db: Path) -> None:
    assert snap_compare(app_for(db), terminal_size=LARGE, run_before=steps(["t"]))


def test_hostile_name(snap_compare, db: Path) -> None:
    """The consumer named ``[bold red]x[/]`` with escapes: brackets and ␛ visible."""
    assert snap_compare(app_for(db), terminal_size=LARGE, run_before=steps(["j"]))


def test_bulk_selection(snap_compare, db: Path) -> None:
    assert snap_compare(app_for(db), terminal_size=SMALL, run_before=steps(["space", "space"]))


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
@pytest.mark.parametrize("key", ["v", "d", "i", "m", "slash", "question_mark"],
                         ids=["confirm", "dismiss", "needs_info", "manual", "filter", "help"])
def test_modals(snap_compare, db: Path, key: str, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(db), terminal_size=size, run_before=steps([key]))


@pytest.mark.parametrize("key", ["v", "d", "question_mark"], ids=["confirm", "dismiss", "help"])
def test_modals_no_color(snap_compare, db: Path, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(app_for(db), terminal_size=SMALL, run_before=steps([key]))


def test_confirm_filled_in(snap_compare, db: Path) -> None:
    async def fill(pilot) -> None:
        modal = pilot.app.screen
        modal.query_one("#severity", Select).value = "critical"
        modal.query_one("#reason", Input).value = "780M calls against a 200M yearly cap"
        modal.query_one("#reason", Input).focus()

    assert snap_compare(app_for(db), terminal_size=LARGE, run_before=steps(["v"], then=fill))


def test_manual_filled_in(snap_compare, db: Path) -> None:
    async def fill(pilot) -> None:
        modal = pilot.app.screen
        modal.query_one("#category", Select).value = "government_end_user"
        modal.query_one(TextArea).text = "Press release of 2022-11-03 names a federal agency as a customer."

    assert snap_compare(app_for(db), terminal_size=SMALL, run_before=steps(["m"], then=fill))


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_sync_progress(snap_compare, db: Path, size: tuple[int, int]) -> None:
    async def show(pilot) -> None:
        modal = SyncProgress(sources=2, on_cancel=lambda: None)
        await pilot.app.push_screen(modal)
        await pilot.pause()
        modal.show_event("feed: started", sources_done=0, status="feed: fetching")
        modal.show_event("feed: usage/0 page 1 stored, 10,000 rows", sources_done=0, status="feed: 10,000 rows")
        modal.show_event("feed: finished ok, 20,000 rows in 2 pages", sources_done=1, status="x: starting")

    assert snap_compare(app_for(db), terminal_size=size, run_before=steps(then=show))


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_sync_progress_of_a_real_sync(snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      size: tuple[int, int]) -> None:
    """``R`` against the demo endpoint: the modal as the real sync left it, every
    event shown as it came (one chain at a time, so they come in one order)."""
    from store.clock import fixed_clock
    from store.demo import DEMO_TOKEN, DEMO_TOKEN_ENV, DemoEndpoint
    from store.demo.config import demo_config

    monkeypatch.setenv(DEMO_TOKEN_ENV, DEMO_TOKEN)
    db = tmp_path / "synced.db"
    with DemoEndpoint(consumers=6, seed=3, env_faults=False) as endpoint:
        config = demo_config(endpoint, db_path=db)
        config.sources["demo-feed"].options = {"shards": 1, "limit": 500}
        for source in config.sources.values():
            source.concurrency = 1
        # The demo's X endpoint counts its 90 days back from 2023-01-01: the sync's clock is that morning's.
        clock = fixed_clock(datetime(2023, 1, 1, 6, tzinfo=timezone.utc))
        app = WardenApp(db_path=db, reviewer="alice", clock=clock, mouse=False, config=config)

        async def synced(pilot) -> None:
            await pilot.press("R")
            await settle(pilot)
            assert isinstance(pilot.app.screen, SyncProgress) and pilot.app.screen.finished

        assert snap_compare(app, terminal_size=size, run_before=steps(then=synced))


def _confirmed(db: Path) -> Path:
    """The findings of the first consumer in the queue confirmed, as a reviewer does
    before drafting a letter."""
    from store.db import connect
    from store.review import confirm_violation

    conn = connect(db)
    for (finding,) in conn.execute("SELECT id FROM finding WHERE consumer_id = 'northwind-analytics' "
                                   "AND status = 'candidate'").fetchall():
        confirm_violation(conn, finding, reviewer="alice", severity="high", reason="over the agreed cap",
                          clock=CLOCK)
    conn.close()
    return db


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_note_editor(snap_compare, db: Path, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(db), terminal_size=size, run_before=steps(["c"]))


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_note_editor_with_a_real_letter(snap_compare, db: Path, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(_confirmed(db)), terminal_size=size, run_before=steps(["c"]))


def test_note_preview_of_a_real_letter(snap_compare, db: Path) -> None:
    assert snap_compare(app_for(_confirmed(db)), terminal_size=LARGE, run_before=steps(["c", "ctrl+o"]))


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_export_modal(snap_compare, db: Path, size: tuple[int, int]) -> None:
    async def fixed_folder(pilot) -> None:
        pilot.app.screen.query_one("#out_dir", Input).value = "/srv/warden/exports"

    assert snap_compare(app_for(db), terminal_size=size, run_before=steps(["x"], then=fixed_folder))


def test_detail_cursor_on_a_finding(snap_compare, db: Path) -> None:
    """tab: the cursor on the detail's second open finding, the queue's cursor underlined."""
    assert snap_compare(app_for(db), terminal_size=SMALL, run_before=steps(["tab", "j"]))


def test_confirm_one_finding_from_the_detail_no_color(snap_compare, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(app_for(db), terminal_size=SMALL, run_before=steps(["tab", "j", "v"]))


def test_hostile_name_in_dialog(snap_compare, db: Path) -> None:
    assert snap_compare(app_for(db), terminal_size=SMALL, run_before=steps(["j", "v"]))


# --- after the letter -----------------------------------------------------------------


@pytest.fixture
def letter_db(tmp_path: Path) -> Path:
    from tests.cases_data import review_db_with_letter

    return review_db_with_letter(tmp_path / "review.db")


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_case_checklist(snap_compare, letter_db: Path, size: tuple[int, int]) -> None:
    """The case in the detail: letter, due date, the checklist of requested items."""
    assert snap_compare(app_for(letter_db), terminal_size=size, run_before=steps(["J"] if size == SMALL else []))


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_items_modal(snap_compare, letter_db: Path, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(letter_db), terminal_size=size, run_before=steps(["a", "space", "down", "p"]))


def test_response_modal(snap_compare, letter_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Inbox(type(Path())):     # the folder the reviewer started warden in, the same on every machine
        @classmethod
        def cwd(cls) -> Path:
            return Path("/srv/warden/inbox")

    monkeypatch.setattr("tui.screens.casework.Path", Inbox)

    async def fill(pilot) -> None:
        pilot.app.screen.query_one("#paths", Input).value = "reply.pdf attachments/deletion-log.csv"

    assert snap_compare(app_for(letter_db), terminal_size=SMALL, run_before=steps(["A"], then=fill))


def test_outcome_modal(snap_compare, letter_db: Path) -> None:
    async def fill(pilot) -> None:
        from textual.widgets import Select

        pilot.app.screen.query_one("#outcome", Select).value = "escalate"
        pilot.app.screen.query_one("#to", Input).value = "General Counsel"
        pilot.app.screen.query_one("#reason", Input).value = "no reply after the final notice"
        await settle(pilot)

    assert snap_compare(app_for(letter_db), terminal_size=SMALL, run_before=steps(["C"], then=fill))


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_overview(snap_compare, letter_db: Path, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(letter_db), terminal_size=size, run_before=steps(["L"]))


def test_overview_no_color(snap_compare, letter_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(app_for(letter_db), terminal_size=SMALL, run_before=steps(["L", "l", "l"]))
