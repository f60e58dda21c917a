"""The note editor never freezes (issue 10, defect 1: ``NoteEditor`` once assigned
``self._closing``, a name Textual's message pump reads, and every message to the
screen was dropped after a fast Esc): Esc at once after typing, Esc while a save
is in flight, quitting with a save in flight; and its keys (ctrl+home / ctrl+end,
the preview, a one-line header at 80x24)."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from pathlib import Path

import pytest
from textual.widgets import TextArea

from store import notes
from tests.test_tui_review import current_id, make_app, press, review_screen
from tests.tui_data import settle
from tui.screens.note import NoteEditor
from tui.screens.review import ReviewScreen
from tui.widgets.preview import NotePreview
from tui.widgets.queue import QueueView

pytestmark = pytest.mark.anyio


def note_body(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT body FROM note ORDER BY id DESC").fetchone()[0]
    finally:
        conn.close()


class HeldSaves:
    """``notes.save_body`` held until released: a save in flight for as long as a test wants."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.calls = 0
        real = notes.save_body

        def held(*args, **kwargs):
            self.calls += 1
            self.entered.set()
            self.release.wait(20)
            return real(*args, **kwargs)

        monkeypatch.setattr(notes, "save_body", held)

    async def in_flight(self, pilot) -> None:
        """Wait (polling, at most 2 s) until a save has reached the database call and waits there."""
        for _ in range(100):
            if self.entered.is_set():
                return
            await pilot.pause(0.02)
        raise AssertionError("no save started")


def unfrozen(scenario):
    """Run the test's ``scenario`` (the whole ``run_test`` block) with a time limit: a
    screen that stopped taking messages makes the app wait for ever, even to exit,
    so a freeze fails the test instead of hanging the run."""

    @functools.wraps(scenario)
    async def limited(*args, **kwargs) -> None:
        try:
            await asyncio.wait_for(scenario(*args, **kwargs), FREEZE_SECONDS)
        except asyncio.TimeoutError:
            raise AssertionError(f"the app froze: still not done after {FREEZE_SECONDS:g} s") from None

    return limited


FREEZE_SECONDS = 90.0


@unfrozen
async def test_esc_at_once_after_typing_saves_and_goes_back_and_every_key_works(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        assert isinstance(app.screen, NoteEditor)
        drafted = note_body(db)
        # One character and Esc in the same moment: no pause for the autosave.
        await pilot.press("x", "escape")
        await settle(pilot)
        assert isinstance(app.screen, ReviewScreen)
        assert note_body(db) == "x" + drafted
        # The screen takes messages and keys again: the queue moves, the editor reopens.
        q = review_screen(app).query_one(QueueView)
        await press(pilot, "j")
        assert q.cursor == 1
        await press(pilot, "k", "c")
        assert isinstance(app.screen, NoteEditor)
        assert app.screen.query_one(TextArea).text.startswith("x")
        await press(pilot, "escape")
        assert isinstance(app.screen, ReviewScreen)
        await press(pilot, "q")
    assert app.return_code == 0


@unfrozen
async def test_esc_during_a_save_waits_for_it_then_saves_what_came_after(db: Path, monkeypatch) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        editor = app.screen
        drafted = note_body(db)
        saves = HeldSaves(monkeypatch)
        await pilot.press("a", "ctrl+s")
        await saves.in_flight(pilot)                # the save of "a" is in flight
        await pilot.press("b", "escape")             # typed during it, then Esc
        await pilot.pause(0.1)
        assert app.screen is editor                  # still here: "ab" is not saved yet
        assert "saving" in str(editor.query_one("#note-head").render())
        saves.release.set()
        await settle(pilot)
        assert isinstance(app.screen, ReviewScreen)
        assert note_body(db) == "ab" + drafted
        assert saves.calls == 2
        assert current_id(app) == "northwind-analytics"
        await press(pilot, "j")
        assert review_screen(app).query_one(QueueView).cursor == 1


@unfrozen
async def test_quitting_with_a_save_in_flight_exits_and_the_note_holds_a_saved_state(db: Path, monkeypatch) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        drafted = note_body(db)
        saves = HeldSaves(monkeypatch)
        await pilot.press(*"late", "ctrl+s")
        await saves.in_flight(pilot)
        threading.Timer(0.3, saves.release.set).start()
        await pilot.press("ctrl+q")
    assert app.return_code == 0
    saves.release.wait(5)
    for _ in range(100):
        if note_body(db) != drafted:
            break
        await asyncio.sleep(0.02)
    assert note_body(db) == "late" + drafted


async def test_ctrl_home_and_ctrl_end_go_to_the_start_and_end_of_the_note(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        area = app.screen.query_one(TextArea)
        await press(pilot, "ctrl+end")
        last = area.document.line_count - 1
        assert area.cursor_location == (last, len(area.document.get_line(last)))
        await press(pilot, "ctrl+home")
        assert area.cursor_location == (0, 0)
        assert area.scroll_y == 0


async def test_the_preview_shows_the_note_as_typed(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        editor = app.screen
        await press(pilot, "ctrl+o")
        preview = editor.query_one(NotePreview)
        assert preview.display
        assert preview.source == editor.query_one(TextArea).text
        shown = "\n".join(preview.lines)
        assert "Audit request" in shown and "**Date:**" not in shown and "Date:" in shown   # drawn, not raw
        await pilot.press(*"# NEW ")
        await settle(pilot)
        await pilot.pause(0.3)      # the preview follows once typing pauses
        await settle(pilot)
        assert preview.source.startswith("# NEW ")
        await press(pilot, "ctrl+o")
        assert not preview.display


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_editor_header_is_one_line(db: Path, size: tuple[int, int]) -> None:
    app = make_app(db)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        head = app.screen.query_one("#note-head")
        assert head.size.height == 1
        line = str(head.render())
        assert line.startswith("Note #1  draft  ") and "drafted from the template" in line
        # The keys are in the footer, not the header.
        assert "ctrl+s save" not in line
