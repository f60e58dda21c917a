"""NO_COLOR as no-color.org means it (issue 10, defect 11): not a single colour
reaches the terminal, not even 256-colour greys; and focus shows without colour,
as reverse (a dialog's focused field, a focused list's highlighted line, the
queue's cursor), in every dialog."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual.containers import VerticalScroll
from textual.geometry import Region

from tests.cases_data import review_db_with_letter
from tests.test_tui_review import make_app, press
from tests.tui_data import settle
from tui.modals.confirm import ConfirmViolation
from tui.modals.dismiss import Dismiss
from tui.modals.export import ExportNotes
from tui.modals.followup import FollowupKind
from tui.modals.items import RequestItems
from tui.modals.needs_info import NeedsInfo
from tui.modals.outcome import CaseOutcome
from tui.modals.response import AddResponse

pytestmark = pytest.mark.anyio

# SGR parameters that set a colour: 30-37, 38;..., 39 is "default" (allowed), 40-47,
# 48;..., 49 default (allowed), 90-97, 100-107.
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|4[0-8]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")


def record_frames(app) -> list[str]:
    """What the app writes to its terminal, frame by frame (headless Textual skips
    turning a frame into escape sequences; this does it as a real driver would)."""
    frames: list[str] = []
    original = app._display

    def display(screen, renderable) -> None:
        from textual._compositor import CompositorUpdate

        if isinstance(renderable, CompositorUpdate):
            frames.append(renderable.render_segments(app.console))
        original(screen, renderable)

    app._display = display
    return frames


def sgr_colours(frames: list[str]) -> set[str]:
    return {m.group(0) for frame in frames for m in COLOUR.finditer(frame)}


def test_the_colour_pattern_finds_greys_and_lets_defaults_through() -> None:
    assert sgr_colours(["\x1b[38;5;253mx", "\x1b[48;5;233m", "\x1b[1;31m", "\x1b[0;38;2;1;2;3m"]) == {
        "\x1b[38;5;253m", "\x1b[48;5;233m", "\x1b[1;31m", "\x1b[0;38;2;1;2;3m"}
    assert sgr_colours(["\x1b[39m\x1b[49m\x1b[1;7m\x1b[0m\x1b[2m"]) == set()


async def test_no_color_writes_no_colour_at_all(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(db)
    frames = record_frames(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for keys in (["v"], ["escape", "d"], ["escape", "c"], ["escape", "question_mark"], ["escape", "t"]):
            await press(pilot, *keys)
    assert frames and sgr_colours(frames) == set()
    reverse = re.compile(r"\x1b\[(?:[0-9;]*;)?7(?:;[0-9;]*)?m")
    assert any(reverse.search(frame) for frame in frames)     # reverse carries the cursor


async def test_without_no_color_colours_are_drawn(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    app = make_app(db)
    frames = record_frames(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
    assert sgr_colours(frames)          # the pattern would see them


def reversed_somewhere(widget) -> bool:
    """Whether ``widget`` (or a widget inside it) draws a reversed cell."""
    for w in [widget, *widget.query("*")]:
        if not w.size.area:
            continue
        for strip in w.render_lines(Region(0, 0, w.size.width, w.size.height)):
            if any(segment.style is not None and segment.style.reverse for segment in strip):
                return True
    return False


@pytest.mark.parametrize("key, dialog", [("v", ConfirmViolation), ("d", Dismiss), ("i", NeedsInfo),
                                         ("x", ExportNotes)])
async def test_every_focus_stop_of_a_dialog_is_reversed(db: Path, monkeypatch: pytest.MonkeyPatch, key: str,
                                                       dialog: type) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    await each_focus_stop_reversed(make_app(db), key, dialog)


@pytest.mark.parametrize("key, dialog", [("a", RequestItems), ("A", AddResponse), ("f", FollowupKind),
                                         ("C", CaseOutcome)])
async def test_every_focus_stop_of_a_case_dialog_is_reversed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            key: str, dialog: type) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    await each_focus_stop_reversed(make_app(review_db_with_letter(tmp_path / "review.db")), key, dialog)


async def each_focus_stop_reversed(app, key: str, dialog: type) -> None:
    """``key`` opens ``dialog``; tab walks its focus stops, each reversed, no other."""
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, key)
        modal = app.screen
        assert isinstance(modal, dialog)
        stops = [w for w in modal.query("*") if w.focusable and w.display and not isinstance(w, VerticalScroll)]
        assert len(stops) >= 3
        seen = []
        for _ in stops:
            focused = modal.focused
            assert focused is not None
            seen.append(focused)
            assert reversed_somewhere(focused), f"{focused!r} has focus but nothing shows it without colour"
            others = [w for w in stops if w is not focused]
            for other in others:
                if not hasattr(other, "cursor_blink"):      # an unfocused input draws no cursor either
                    assert not reversed_somewhere(other), f"{other!r} looks focused but is not"
            await press(pilot, "tab")
        assert len({id(w) for w in seen}) == len(stops)


async def test_one_reversed_cursor_shows_where_the_keys_go(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_tui_review import review_screen
    from tui.widgets.detail import DetailPane
    from tui.widgets.queue import QueueView

    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = review_screen(app)
        queue, pane = screen.query_one(QueueView), screen.query_one(DetailPane)

        def cursor_style():
            return next(s.style for s in queue.render_line(0) if s.text.strip())

        assert queue.has_focus and cursor_style().reverse and not reversed_somewhere(pane)
        await press(pilot, "tab")
        assert pane.has_focus and reversed_somewhere(pane)
        assert not cursor_style().reverse and cursor_style().underline
        await press(pilot, "escape")
        assert queue.has_focus and cursor_style().reverse and not reversed_somewhere(pane)
