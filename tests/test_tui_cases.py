"""The case after its letter in the TUI, driven by Pilot: the checklist in the
detail, ``a`` marking items, ``A`` recording a reply from a path, ``L`` the
overview and its links back to the filtered queue; each change checked in the
database and the log."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from textual.widgets import Input, OptionList

from store.casework.items import ItemChange, mark_items
from store.db import connect
from tests.cases_data import review_db_with_letter
from tests.tui_data import CLOCK, settle, shown_notifications
from tui.app import WardenApp
from tui.modals.items import RequestItems
from tui.modals.response import AddResponse
from tui.screens.overview import OverviewScreen
from tui.screens.review import ReviewScreen
from tui.widgets.detail import DetailPane
from tui.widgets.overview import OverviewView
from tui.widgets.queue import QueueView

pytestmark = pytest.mark.anyio


@pytest.fixture
def letter_db(tmp_path: Path) -> Path:
    return review_db_with_letter(tmp_path / "review.db")


def make_app(db: Path) -> WardenApp:
    return WardenApp(db_path=db, reviewer="bob", clock=CLOCK, mouse=False)


async def press(pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


def items(db: Path) -> list[tuple[str, str, str | None]]:
    conn = sqlite3.connect(db)
    try:
        return [tuple(r) for r in conn.execute("SELECT item, state, comment FROM case_item ORDER BY position")]
    finally:
        conn.close()


def review(app: WardenApp) -> ReviewScreen:
    return next(s for s in app.screen_stack if isinstance(s, ReviewScreen))


def messages(app: WardenApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in shown_notifications(app)]


async def test_the_detail_shows_the_case_and_its_checklist(letter_db: Path) -> None:
    app = make_app(letter_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        text = app.screen.query_one(DetailPane).text
        assert "#1 ✉ letter sent  letter note #1 sent 2023-01-02, due 2023-01-23 (due 21d)" in text
        assert "  ○ 1. Purpose: open" in text and "  ○ 6. Signed report: open" in text
        assert "responses (A adds one)" in text
        row = app.screen.query_one(QueueView).current
        assert (row.consumer_id, row.case_state, row.case_due) == ("northwind-analytics", "letter_sent",
                                                                   "2023-01-23")


async def test_a_marks_items_with_the_comment_in_the_log(letter_db: Path) -> None:
    app = make_app(letter_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "a")
        assert isinstance(app.screen, RequestItems)
        await press(pilot, "space", "down", "p", "down", "f", "f")
        options = app.screen.query_one(OptionList)
        assert "✓ answered" in str(options.get_option_at_index(0).prompt)
        await press(pilot, "tab")
        app.screen.query_one("#comment", Input).value = "reply of 10 January, section 2"
        await press(pilot, "enter")
        assert isinstance(app.screen, ReviewScreen)
        assert items(letter_db)[:3] == [("purpose", "answered", "reply of 10 January, section 2"),
                                        ("storage", "partly_answered", "reply of 10 January, section 2"),
                                        ("deletion", "refused", "reply of 10 January, section 2")]
        conn = sqlite3.connect(letter_db)
        logged = conn.execute("SELECT reviewer, field, old_value, new_value, reason FROM decision "
                              "WHERE subject = 'item' AND old_value IS NOT NULL ORDER BY id").fetchall()
        assert logged == [("bob", "state", "open", state, "reply of 10 January, section 2")
                          for state in ("answered", "partly_answered", "refused")]
        assert "Items marked: Case #1: purpose answered, storage partly answered, deletion refused" in messages(app)
        assert "  ✓ 1. Purpose: answered — reply of 10 January, section 2" in app.screen.query_one(DetailPane).text


async def test_items_are_not_marked_without_a_comment(letter_db: Path) -> None:
    app = make_app(letter_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "a", "ctrl+s")
        assert isinstance(app.screen, RequestItems)
        assert "nothing changed" in str(app.screen.query_one("#problem").render())
        await press(pilot, "space", "ctrl+s")
        assert "write a comment" in str(app.screen.query_one("#problem").render())
        await press(pilot, "escape")
        assert {state for _item, state, _comment in items(letter_db)} == {"open"}


async def test_an_item_marked_meanwhile_in_another_session_is_not_overwritten(letter_db: Path) -> None:
    app = make_app(letter_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "a", "space")
        other = connect(letter_db)
        mark_items(other, 1, [ItemChange("purpose", "refused")], comment="they decline", reviewer="carol",
                   clock=CLOCK)
        other.close()
        await press(pilot, "tab")
        app.screen.query_one("#comment", Input).value = "looks answered"
        await press(pilot, "enter")
        assert items(letter_db)[0] == ("purpose", "refused", "they decline")
        assert any("Changed by someone else" in m and "it is now refused by carol (they decline)" in m
                   for m in messages(app))


async def test_A_records_a_reply_from_the_paths_typed(letter_db: Path, tmp_path: Path) -> None:
    reply = tmp_path / "reply to audit.pdf"
    reply.write_bytes(b"We will review these questions and respond appropriately.")
    app = make_app(letter_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "A")
        assert isinstance(app.screen, AddResponse)
        assert app.screen.query_one("#received", Input).value == "2023-01-02"
        app.screen.query_one("#paths", Input).value = f'"{reply}"'
        app.screen.query_one("#note", Input).value = "holding reply"
        await press(pilot, "enter")
        digest = hashlib.sha256(reply.read_bytes()).hexdigest()
        conn = sqlite3.connect(letter_db)
        assert conn.execute("SELECT name, sha256, bytes FROM response_file").fetchall() == \
            [("reply to audit.pdf", digest, 57)]
        assert conn.execute("SELECT state FROM case_file").fetchone()[0] == "response_received"
        assert any(m.startswith("Response recorded: Response #1 received 2023-01-02: case #1 is response received")
                   and digest[:16] in m for m in messages(app))
        assert "reply to audit.pdf  57 bytes  sha256 " + digest[:16] in app.screen.query_one(DetailPane).text


async def test_A_with_a_missing_file_records_nothing_and_says_why(letter_db: Path, tmp_path: Path) -> None:
    app = make_app(letter_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "A")
        app.screen.query_one("#paths", Input).value = str(tmp_path / "nowhere.pdf")
        await press(pilot, "enter")
        assert sqlite3.connect(letter_db).execute("SELECT count(*) FROM response").fetchone()[0] == 0
        assert any(f"{tmp_path}/nowhere.pdf: no such file" in m for m in messages(app))
        assert isinstance(app.screen, ReviewScreen)


async def test_no_items_before_a_letter(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "a")
        assert isinstance(app.screen, ReviewScreen)
        assert any("northwind-analytics has no letter sent: no requested items to mark" in m for m in messages(app))


async def test_L_opens_the_overview_and_enter_filters_the_queue(letter_db: Path) -> None:
    app = make_app(letter_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "L")
        assert isinstance(app.screen, OverviewScreen)
        view = app.screen.query_one(OverviewView)
        text = "\n".join(line.plain for line in view.lines)
        assert "letter sent 1" in text and "awaiting 1  overdue 0" in text
        assert max(line.cell_len for line in view.lines) <= 78
        # Walk to the "letter sent" number.
        while view.current is not None and view.current.filter != "case:letter-sent":
            await press(pilot, "l")
        await press(pilot, "enter")
        assert isinstance(app.screen, ReviewScreen)
        screen = review(app)
        assert screen.query_spec.filter.text == "case:letter-sent"
        assert screen.total == 1 and screen.query_one(QueueView).current.consumer_id == "northwind-analytics"


async def test_f_drafts_a_follow_up_and_opens_it_in_the_editor(letter_db: Path) -> None:
    from tui.modals.followup import FollowupKind
    from tui.screens.note import NoteEditor

    app = make_app(letter_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "f")
        assert isinstance(app.screen, FollowupKind)
        assert app.screen.query_one(OptionList).highlighted == 0          # not overdue: a reminder first
        await pilot.press("down", "enter")
        # The queue behind the editor reloads unseen (the dialog's return refreshed it): wait for the
        # editor and the draft's workers, not for the queue.
        for _ in range(400):
            if isinstance(app.screen, NoteEditor):
                break
            await pilot.pause(0.02)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, NoteEditor)
        assert app.screen.note.template == "followup_overdue.md.j2"
        assert app.screen.note.subject == "Overdue notice: Northwind Analytics Ltd, our letter of 2 January 2023"
        assert any("Follow-up: the reply is not overdue yet: it is due 2023-01-23" in m for m in messages(app))
        conn = sqlite3.connect(letter_db)
        assert conn.execute("SELECT template, status FROM note ORDER BY id").fetchall() == \
            [("audit_request.md.j2", "exported"), ("followup_overdue.md.j2", "draft")]
