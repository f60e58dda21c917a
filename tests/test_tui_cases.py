"""The case after its letter in the TUI, driven by Pilot: the checklist in the
detail, ``a`` marking items, ``A`` recording a reply from a path, ``L`` the
overview and its links back to the filtered queue; each change checked in the
database and the log."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from textual.widgets import Input, OptionList, Static

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


async def test_A_shows_the_folder_paths_are_relative_to_literally(letter_db: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "[reverse]x replies"   # markup, never read as such
    folder.mkdir()
    (folder / "reply.pdf").write_bytes(b"holding reply")
    monkeypatch.chdir(folder)
    app = make_app(letter_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "A")
        shown = str(app.screen.query_one(".modal-body .modal-scope", Static).render())
        assert shown == f"relative to {folder}"
        app.screen.query_one("#paths", Input).value = "reply.pdf"
        await press(pilot, "enter")
        conn = sqlite3.connect(letter_db)
        assert conn.execute("SELECT name FROM response_file").fetchall() == [("reply.pdf",)]


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


# --- C: an outcome, or an escalation -------------------------------------------------------------

def _new_entries(db: Path, after: int) -> list[tuple[object, ...]]:
    """The log's entries after entry ``after``, without their time and hashes (a CLI run has its own clock)."""
    conn = sqlite3.connect(db)
    try:
        return [tuple(r) for r in conn.execute(
            "SELECT reviewer, subject, subject_id, field, old_value, new_value, reason, action_id - ? FROM decision"
            " WHERE id > ? ORDER BY id", (after, after))]
    finally:
        conn.close()


def _head(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT max(id) FROM decision").fetchone()[0])
    finally:
        conn.close()


async def _fill_outcome(pilot, outcome: str, reason: str, to: str = "") -> None:
    """Press C, fill the dialog in, and press enter in its reason."""
    from textual.widgets import Select

    from tui.modals.outcome import CaseOutcome

    app = pilot.app
    await press(pilot, "C")
    assert isinstance(app.screen, CaseOutcome)
    if outcome:
        app.screen.query_one("#outcome", Select).value = outcome
    app.screen.query_one("#to", Input).value = to
    app.screen.query_one("#reason", Input).value = reason
    app.screen.query_one("#reason", Input).focus()
    await press(pilot, "enter")


async def _record_outcome(db: Path, outcome: str, reason: str, to: str = "") -> list[str]:
    """The messages shown after the dialog is filled in and sent."""
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await _fill_outcome(pilot, outcome, reason, to)
        assert isinstance(app.screen, ReviewScreen)
        return messages(app)


@pytest.mark.parametrize(("outcome", "state", "cli"), [
    ("within_limits", "resolved", ["close", "--outcome", "within_limits", "--reason", "back under the cap"]),
    ("referred_to_counsel", "closed", ["close", "--outcome", "referred_to_counsel", "--reason",
                                       "back under the cap"]),
])
async def test_C_closes_the_case_with_the_log_entries_of_warden_case_close(letter_db: Path, tmp_path: Path,
                                                                           outcome: str, state: str,
                                                                           cli: list[str]) -> None:
    import shutil

    from tui.cli import main

    twin = tmp_path / "twin.db"
    shutil.copy(letter_db, twin)
    before = _head(letter_db)
    shown = await _record_outcome(letter_db, outcome, "back under the cap")
    assert f"Case closed: Case #1 of northwind-analytics is {state}" in "\n".join(shown)
    conn = sqlite3.connect(letter_db)
    assert conn.execute("SELECT state, outcome FROM case_file").fetchone() == (state, outcome)
    assert conn.execute("SELECT count(*) FROM finding WHERE status = 'audit_requested'").fetchone()[0] == 0
    conn.close()
    assert main(["case", cli[0], "northwind-analytics", *cli[1:], "--db", str(twin), "--reviewer", "bob"]) == 0
    tui_entries, cli_entries = _new_entries(letter_db, before), _new_entries(twin, before)
    assert tui_entries == cli_entries and tui_entries[0][1:6] == ("case", 1, "state", "letter_sent", state)
    assert main(["verify", "--db", str(letter_db)]) == 0


async def test_C_escalates_to_whom_with_the_log_entries_of_warden_case_escalate(letter_db: Path,
                                                                               tmp_path: Path) -> None:
    import shutil

    from tui.cli import main

    twin = tmp_path / "twin.db"
    shutil.copy(letter_db, twin)
    before = _head(letter_db)
    shown = await _record_outcome(letter_db, "escalate", "no reply in three weeks", to="General Counsel")
    assert "Case escalated: Case #1 of northwind-analytics is escalated to General Counsel." in shown
    assert main(["case", "escalate", "northwind-analytics", "--to", "General Counsel", "--reason",
                 "no reply in three weeks", "--db", str(twin), "--reviewer", "bob"]) == 0
    assert _new_entries(letter_db, before) == _new_entries(twin, before) == [
        ("bob", "case", 1, "state", "letter_sent", "escalated", "no reply in three weeks", 1),
        ("bob", "case", 1, "escalated_to", None, "General Counsel", "no reply in three weeks", 1)]


@pytest.mark.parametrize(("outcome", "reason", "to", "problem"), [
    ("", "why", "", "choose an outcome, or escalate"),
    ("escalate", "why", "", "say to whom the case is escalated"),
    ("escalate", "", "Counsel", "give the reason for the escalation"),
    ("tier_changed", "", "", "give the reason for the outcome"),
    ("tier_changed", "why", "Counsel", "'to whom' is for an escalation"),
])
async def test_C_records_nothing_until_the_dialog_is_complete(letter_db: Path, outcome: str, reason: str, to: str,
                                                              problem: str) -> None:
    app = make_app(letter_db)
    before = _head(letter_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await _fill_outcome(pilot, outcome, reason, to)
        assert problem in str(app.screen.query_one("#problem").render())
        await press(pilot, "escape")
    assert _head(letter_db) == before


@pytest.mark.parametrize(("meanwhile", "said", "after"), [
    ("close", "case #1 of northwind-analytics is resolved (Tier changed); there is no case under way",
     ("resolved", "tier_changed", None)),
    ("escalate", "case #1 changed since you looked (you saw version 2): it is now escalated by carol (moved up), "
                 "version 3",
     ("escalated", None, "Counsel")),
])
async def test_C_refuses_a_case_changed_meanwhile(letter_db: Path, meanwhile: str, said: str,
                                                  after: tuple[str, str | None, str | None]) -> None:
    from store.casework.state import close_case, escalate_case

    app = make_app(letter_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        other = connect(letter_db)
        if meanwhile == "close":
            close_case(other, "northwind-analytics", outcome="tier_changed", reason="moved up", reviewer="carol",
                       clock=CLOCK)
        else:
            escalate_case(other, "northwind-analytics", to="Counsel", reason="moved up", reviewer="carol",
                          clock=CLOCK)
        other.close()
        # The detail still shows the case as it was: the dialog records against what the reviewer saw.
        await _fill_outcome(pilot, "access_suspended", "no answer")
        assert any(said in m for m in messages(app)), messages(app)
    conn = sqlite3.connect(letter_db)
    assert conn.execute("SELECT state, outcome, escalated_to FROM case_file").fetchone() == after
    conn.close()


async def test_C_refuses_a_consumer_without_a_letter(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "C")
        assert isinstance(app.screen, ReviewScreen)
        assert any("northwind-analytics has no letter sent: no case to close or escalate" in m for m in messages(app))
