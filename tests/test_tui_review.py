"""The review screen driven by Pilot: every action, checked in the database and the log."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from textual.widgets import Input, Select, SelectionList, TextArea

from store import review
from store.config import Config
from store.db import connect
from store.decision_log import verify_chain
from tests.tui_data import CLOCK, HOSTILE_NAME, seed_review_db, settle, shown_notifications
from tui.app import WardenApp
from tui.modals.confirm import ConfirmViolation
from tui.modals.dismiss import Dismiss
from tui.modals.filter import FilterInput
from tui.modals.help import Help
from tui.modals.manual import ManualFinding
from tui.modals.needs_info import NeedsInfo
from tui.keys import KEYS
from tui.screens.review import ReviewScreen
from tui.widgets.detail import DetailPane
from tui.widgets.marks import ReasonPicker
from tui.widgets.queue import QueueView


pytestmark = pytest.mark.anyio


def make_app(db: Path, *, reviewer: str = "alice", config: Config | None = None) -> WardenApp:
    return WardenApp(db_path=db, config=config, reviewer=reviewer, clock=CLOCK, mouse=False)



async def press(pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


def queue(app: WardenApp) -> QueueView:
    return app.screen.query_one(QueueView) if isinstance(app.screen, ReviewScreen) else app.get_screen(
        "_default").query_one(QueueView)


def review_screen(app: WardenApp) -> ReviewScreen:
    return next(s for s in app.screen_stack if isinstance(s, ReviewScreen))


def statuses(db: Path) -> dict[int, str]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT id, status FROM finding ORDER BY id"))
    finally:
        conn.close()


def decisions(db: Path) -> list[sqlite3.Row]:
    """The log entries the test wrote (not the seeded database's own)."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM decision WHERE reviewer != 'seed' ORDER BY id").fetchall()
    finally:
        conn.close()


def chain_ok(db: Path) -> bool:
    conn = connect(db)
    try:
        return verify_chain(conn).ok
    finally:
        conn.close()


def notifications(app: WardenApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in shown_notifications(app)]


def detail_text(app: WardenApp) -> str:
    return review_screen(app).query_one(DetailPane).text


def current_id(app: WardenApp) -> str:
    row = review_screen(app).query_one(QueueView).current
    assert row is not None
    return row.consumer_id


# --- opening and moving --------------------------------------------------------------


async def test_opens_with_the_case_consumer_on_top(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = review_screen(app)
        assert screen.total == 45
        assert current_id(app) == "northwind-analytics"
        status = str(screen.query_one("#status-line").render())
        assert "1 / 45" in status
        assert detail_text(app).startswith("Northwind Analytics Ltd  northwind-analytics")
        assert screen.detail is not None and screen.detail.chart.year == 2022


async def test_movement_keys(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        q = review_screen(app).query_one(QueueView)
        await press(pilot, "j")
        assert q.cursor == 1
        await press(pilot, "down", "down")
        assert q.cursor == 3
        await press(pilot, "k")
        assert q.cursor == 2
        await press(pilot, "G")
        assert q.cursor == 44 and current_id(app) == "tailspin"
        assert "45 / 45" in str(review_screen(app).query_one("#status-line").render())
        await press(pilot, "g")
        assert q.cursor == 0
        # ] and [ jump between consumers with findings waiting for a decision.
        await press(pilot, "right_square_bracket")
        assert q.cursor == 1
        await press(pilot, "right_square_bracket")
        assert q.cursor == 2
        await press(pilot, "right_square_bracket")
        assert q.cursor == 0      # wrapped (tests/test_tui_queue_keys.py)
        await press(pilot, "left_square_bracket")
        assert q.cursor == 2


async def test_detail_follows_the_cursor(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "j", "j")
        screen = review_screen(app)
        assert screen.detail.consumer.id == "contoso-borderline"
        assert detail_text(app).startswith("Contoso Borderline GmbH")


# --- decisions ----------------------------------------------------------------------


async def test_confirm_records_decisions_in_the_log(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "v")
        modal = app.screen
        assert isinstance(modal, ConfirmViolation)
        # Leave only the calls finding chosen.
        modal.query_one(SelectionList).deselect(2)
        modal.query_one(SelectionList).deselect(3)
        modal.query_one("#severity", Select).value = "high"
        modal.query_one("#reason", Input).focus()
        await pilot.press(*"over 3x the yearly cap")
        await press(pilot, "enter")
        assert isinstance(app.screen, ReviewScreen)
    assert statuses(db)[1] == "confirmed"
    assert statuses(db)[2] == "candidate"
    log = decisions(db)
    # The severity the reviewer picked is a change with its reason; the category kept is logged as kept.
    assert [(d["subject_id"], d["field"], d["old_value"], d["new_value"]) for d in log] == [
        (1, "status", "candidate", "confirmed"), (1, "severity", "critical", "high"),
        (1, "category", "volume_cap", "volume_cap"),
    ]
    assert {d["reason"] for d in log} == {"over 3x the yearly cap"}
    assert log[0]["reviewer"] == "alice" and log[0]["reason"] == "over 3x the yearly cap"
    assert log[0]["at"] == "2023-01-02T09:30:00Z"
    assert chain_ok(db)


async def test_confirm_without_a_finding_chosen_stays_open(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "v", "n", "enter")
        assert isinstance(app.screen, ConfirmViolation)
        assert "choose at least one finding" in str(app.screen.query_one("#problem").render())
        await press(pilot, "escape")
        assert isinstance(app.screen, ReviewScreen)
    assert decisions(db) == []


async def test_dismiss_needs_a_reason_code(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "j", "j", "d")  # contoso, the borderline one
        modal = app.screen
        assert isinstance(modal, Dismiss)
        modal.query_one("#reason_text", Input).focus()
        await press(pilot, "enter")
        assert isinstance(app.screen, Dismiss)  # no reason code yet
        modal.query_one("#reason_code", ReasonPicker).choose("within_allowance")
        await pilot.press(*"2% over, one month")
        await press(pilot, "enter")
        assert isinstance(app.screen, ReviewScreen)
    assert statuses(db)[4] == "dismissed"
    (entry,) = decisions(db)
    assert entry["reason"] == "within_allowance: 2% over, one month"


async def test_needs_info(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "j", "j", "i")
        assert isinstance(app.screen, NeedsInfo)
        app.screen.query_one("#reason", Input).focus()
        await pilot.press(*"ask for the March invoice")
        await press(pilot, "enter")
    assert statuses(db)[4] == "needs_info"
    assert decisions(db)[-1]["reason"] == "ask for the March invoice"


async def test_undo_restores_the_previous_status(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "v")
        app.screen.query_one("#reason", Input).focus()
        await pilot.press(*"clear overage")
        await press(pilot, "enter")
        assert statuses(db)[1] == "confirmed"
        await press(pilot, "u")
        assert statuses(db)[1] == "candidate"
        assert notifications(app) == [
            "Decision recorded: Confirmed 3 findings #1, #2, #3; severity and category as detected",
            "Undo: Undone: 3 findings of Northwind Analytics Ltd back to candidate"]
        # The detail shows the undo in the history.
        history = detail_text(app).split("Decisions")[1]
        assert "undoes" in history
    log = decisions(db)
    assert log[-1]["undoes"] is not None
    assert chain_ok(db)


async def test_bulk_decision_over_selected_consumers(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "j", "space", "space")  # selects hostile-co and contoso
        screen = review_screen(app)
        assert set(screen.query_one(QueueView).selected) == {"hostile-co", "contoso-borderline"}
        assert "2 tagged" in str(screen.query_one("#status-line").render())
        await press(pilot, "d")
        modal = app.screen
        assert isinstance(modal, Dismiss)
        assert not modal.query(SelectionList)  # bulk: every open finding of the selection
        modal.query_one("#reason_code", ReasonPicker).choose("out_of_scope")
        modal.query_one("#reason_text", Input).focus()
        await press(pilot, "enter")
        assert not screen.query_one(QueueView).selected
    assert statuses(db)[4] == "dismissed" and statuses(db)[5] == "dismissed"
    assert statuses(db)[1] == "candidate"
    log = decisions(db)
    assert len({d["action_id"] for d in log}) == 1  # one undoable action


async def test_manual_finding(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "m")
        modal = app.screen
        assert isinstance(modal, ManualFinding)
        modal.query_one("#category", Select).value = "government_end_user"
        modal.query_one(TextArea).focus()
        await pilot.press(*"press release names an agency")
        modal.query_one("#ok").press()
        await settle(pilot)
        assert isinstance(app.screen, ReviewScreen)
        assert "evidence: press release names an agency" in detail_text(app)
    conn = sqlite3.connect(db)
    row = conn.execute("SELECT consumer_id, category, evidence, status FROM finding WHERE id > 6").fetchone()
    assert row == ("northwind-analytics", "government_end_user", "press release names an agency", "candidate")


async def test_conflict_with_another_reviewer(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "j", "j")
        assert current_id(app) == "contoso-borderline"
        # Bob, in another session, decides the same finding meanwhile.
        other = connect(db)
        review.dismiss(other, 4, reviewer="bob", reason_code="duplicate", clock=CLOCK)
        other.close()
        await press(pilot, "v")
        app.screen.query_one("#reason", Input).focus()
        await pilot.press(*"over")
        await press(pilot, "enter")
        # One boundary: the error's own title, then the screen reloaded.
        assert "Changed by someone else: finding #4 changed since you opened it (you saw version 1): it is now" \
               " dismissed by bob (duplicate), version 2" in notifications(app)
        # The detail now shows Bob's decision.
        assert "✗ dismissed" in detail_text(app).split("Findings")[1]
    assert statuses(db)[4] == "dismissed"
    assert [d["reviewer"] for d in decisions(db)] == ["bob"]


async def test_refresh_shows_decisions_from_another_session(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        q = review_screen(app).query_one(QueueView)
        assert q.row_at(2).verdict == "open"
        other = connect(db)
        review.dismiss(other, 4, reviewer="bob", reason_code="duplicate", clock=CLOCK)
        other.close()
        await press(pilot, "r")
        contoso = [q.row_at(i) for i in range(q.total) if q.row_at(i) and q.row_at(i).consumer_id ==
                   "contoso-borderline"]
        assert contoso and contoso[0].verdict == "decided"


# --- filter -------------------------------------------------------------------------


async def test_filter_and_clear(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "slash")
        assert isinstance(app.screen, FilterInput)
        await pilot.press(*"state:open over:1.1")
        await press(pilot, "enter")
        screen = review_screen(app)
        assert screen.total == 2
        assert "state:open over:1.1" in str(screen.query_one("#status-line").render())
        await press(pilot, "escape")
        assert screen.total == 45


async def test_bad_filter_is_a_notification(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "slash")
        await pilot.press(*"colour:red")
        await press(pilot, "enter")
        problem = str(app.screen.query_one("#problem").render())
        assert "Bad filter" in problem and "colour" in problem
        await press(pilot, "escape")
        assert review_screen(app).total == 45


# --- the rest of the keys -------------------------------------------------------------


async def test_copy_id_toggle_detail_and_chart(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "y")
        assert app.clipboard == "northwind-analytics"
        screen = review_screen(app)
        await press(pilot, "p")
        assert screen.query_one(DetailPane).display is False
        await press(pilot, "p")
        assert screen.query_one(DetailPane).display is True
        await press(pilot, "J")
        assert screen.query_one(DetailPane).scroll_y > 0
        await press(pilot, "K")
        assert screen.query_one(DetailPane).scroll_y == 0
        await press(pilot, "t")
        assert screen.detail.chart.grain == "day" and screen.detail.chart.month == 12
        assert len(screen.detail.series) == 31
        await press(pilot, "less_than_sign")
        assert screen.detail.chart.month == 11
        await press(pilot, "s")
        assert screen.detail.chart.metric == "records"
        await press(pilot, "o")
        assert screen.query_spec.sort == "status"


async def test_help_lists_every_binding(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "question_mark")
        assert isinstance(app.screen, Help)
        ids = {row[2] for row in app.screen.rows}
        assert {k[3] for k in KEYS} <= ids
        await press(pilot, "escape")
        assert isinstance(app.screen, ReviewScreen)


async def test_palette_lists_every_action(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {k[2] for k in KEYS} <= titles
        # A palette command runs the action.
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Last consumer")
        app.call_later(command.callback)
        await settle(pilot)
        assert review_screen(app).query_one(QueueView).cursor == 44


async def test_keymap_from_config_remaps_by_binding_id(db: Path) -> None:
    # (C closes a case: taking it for confirm is refused, tests/test_keymap.py.)
    app = make_app(db, config=Config(keymap={"queue.down": "n", "review.confirm": "V"}))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "n")
        assert review_screen(app).query_one(QueueView).cursor == 1
        await press(pilot, "j")
        assert review_screen(app).query_one(QueueView).cursor == 1
        await press(pilot, "V")
        assert isinstance(app.screen, ConfirmViolation)
        help_rows = {row[2]: row[0] for row in review_screen(app).key_rows()}
        assert help_rows["queue.down"] == "n"


async def test_no_action_only_on_function_keys_alt_or_ctrl_enter() -> None:
    for key, *_ in KEYS:
        for k in key.split(","):
            assert not k.startswith(("f1", "alt+", "ctrl+enter")) and not (k[0] == "f" and k[1:].isdigit())


async def test_sync_without_sources_says_so(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "R")
        assert notifications(app) == ["Sync: No sources configured: add a [sources] table to the config file."]
        # Notifications carry data (names, reasons, errors): never read as markup.
        assert all(n.markup is False for n in shown_notifications(app))


async def test_quit(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "q")
    assert app.return_code == 0


# --- hostile text -------------------------------------------------------------------


async def test_hostile_name_is_shown_literally(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "j")
        screen = review_screen(app)
        plain = detail_text(app)
        assert plain.startswith("[bold red]x[/] ␛[31mRED␛[0m ␛]52;c;aGk=␇Corp")
        assert "\x1b" not in plain and "\x07" not in plain
        assert "use case: [link=https://evil.invalid]click[/link]" in plain
        # The queue line too: brackets kept, escapes made visible.
        line = "".join(seg.text for seg in screen.query_one(QueueView).render_line(1))
        assert "[bold red]x[/]" in line and "\x1b" not in line
        # And the decision dialog's scope line.
        await press(pilot, "v")
        scope = str(app.screen.query_one(".modal-scope").render())
        assert scope.startswith("[bold red]x[/] ␛[31mRED")


async def test_literal_text_function() -> None:
    from store.text import visible
    from tui.text import literal

    assert visible("a\x1b[31mb\x07") == "a␛[31mb␇"
    assert visible("rtl\u202eevil") == "rtl\\u202eevil"
    assert visible("\x9b31m") == "\\u009b31m"
    assert literal("[b]x[/b]").plain == "[b]x[/b]"
    assert literal(HOSTILE_NAME).plain.count("␛") == 3


def test_the_queue_draws_each_verdict_word_with_its_glyph() -> None:
    from tui.widgets.queue import verdict_class, verdict_text

    assert [verdict_text(v) for v in ("open", "violation", "decided", "clear")] == [
        "● open", "▲ violation", "✓ decided", "· clear"]
    assert verdict_class("violation") == "queue--violation" and verdict_class("clear") == "queue--clear"
    assert verdict_text("odd\x1b") == "odd␛"


# --- notes and exports --------------------------------------------------------------


def _confirm_case_finding(db: Path) -> None:
    conn = connect(db)
    review.confirm_violation(conn, 1, reviewer="alice", severity="critical", reason="3.9x the yearly cap",
                             clock=CLOCK)
    conn.close()


async def test_draft_edit_save_and_mark_ready(db: Path) -> None:
    from tui.screens.note import NoteEditor

    _confirm_case_finding(db)
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        editor = app.screen
        assert isinstance(editor, NoteEditor), notifications(app)
        assert "Northwind Analytics Ltd" in editor.query_one(TextArea).text
        await pilot.press(*"EDITED ")
        await press(pilot, "ctrl+s")
        await press(pilot, "ctrl+r")
        assert editor.note.status == "ready"
        # Ready means frozen: typing changes nothing (the defect: a ready note stayed editable).
        await pilot.press(*"SNEAKY ")
        await press(pilot, "ctrl+s")
        assert not editor.query_one(TextArea).text.startswith("SNEAKY")
        assert "frozen" in str(editor.query_one("#note-head").render())
        await press(pilot, "escape")
        assert isinstance(app.screen, ReviewScreen)
        assert detail_text(app).split("\nNote\n")[1].startswith("ready")
    conn = sqlite3.connect(db)
    body, status = conn.execute("SELECT body, status FROM note").fetchone()
    assert body.startswith("EDITED ") and status == "ready"
    note_log = conn.execute("SELECT field, new_value FROM decision WHERE subject = 'note' ORDER BY id").fetchall()
    digest = hashlib.sha256(body.encode()).hexdigest()
    assert [row[0] for row in note_log] == ["status", "body_sha256", "status", "body_sha256"]
    assert note_log[2:] == [("status", "ready"), ("body_sha256", digest)]     # the text as frozen
    assert chain_ok(db)


async def test_edit_without_a_terminal_falls_back_to_the_app_editor(db: Path, monkeypatch) -> None:
    from tui.screens.note import NoteEditor

    monkeypatch.setenv("EDITOR", "false")
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "e")
        assert isinstance(app.screen, NoteEditor)
        assert any("cites no confirmed finding" in n for n in notifications(app))


async def test_export_with_no_note_is_one_notification_naming_every_format(db: Path, tmp_path: Path) -> None:
    from tui.modals.export import ExportNotes

    app = make_app(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "x")
        modal = app.screen
        assert isinstance(modal, ExportNotes)
        modal.query_one("#out_dir", Input).value = str(tmp_path / "out")
        modal.query_one("#ok").press()
        await settle(pilot)
        shown = shown_notifications(app)
        assert len(shown) == 1
        assert shown[0].title == "Export refused: md, html, eml, json, csv"
        assert shown[0].severity == "error"
        assert shown[0].message == ("no note of consumer 'northwind-analytics' ready or exported to export; "
                                    "nothing written")


async def test_export_writes_files_and_marks_the_note(db: Path, tmp_path: Path) -> None:
    from tui.modals.export import ExportNotes

    _confirm_case_finding(db)
    out = tmp_path / "out"
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        await press(pilot, "escape")
        await press(pilot, "x")
        modal = app.screen
        assert isinstance(modal, ExportNotes)
        modal.query_one("#out_dir", Input).value = str(out)
        modal.query_one("#ok").press()
        await settle(pilot)
        assert isinstance(app.screen, ReviewScreen)
        # A second export refuses to overwrite and says so.
        await press(pilot, "x")
        app.screen.query_one("#out_dir", Input).value = str(out)
        app.screen.query_one("#ok").press()
        await settle(pilot)
        refused = [n for n in notifications(app) if n.startswith("Export refused")]
        files = {"md": "note-1-northwind-analytics.md", "html": "note-1-northwind-analytics.html",
                 "eml": "note-1-northwind-analytics.eml", "json": "note-1-northwind-analytics.json",
                 "csv": "findings.csv"}
        assert refused == ["Export refused: md, html, eml, json, csv: " + "\u240a".join(
            f"{fmt}: would overwrite 2 file(s) in {out}: {name}, manifest-{fmt}.json; nothing written "
            "(use --force to replace them)" for fmt, name in files.items())]
    names = sorted(p.name for p in out.iterdir())
    assert any(n.endswith(".md") for n in names) and "findings.csv" in names
    assert sum(n.startswith("manifest-") for n in names) == 5
    assert statuses(db)[1] == "audit_requested"
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status FROM note").fetchone() == ("exported",)


# --- sync from the screen -----------------------------------------------------------


async def test_sync_now_with_progress_failures_named_and_queue_refreshed(tmp_path: Path, monkeypatch) -> None:
    from store.demo import CASE_ID, DEMO_TOKEN, DEMO_TOKEN_ENV, DemoEndpoint
    from store.demo.config import demo_config
    from tui.modals.sync import SyncProgress

    monkeypatch.setenv(DEMO_TOKEN_ENV, DEMO_TOKEN)
    db = tmp_path / "synced.db"
    with DemoEndpoint(consumers=12, seed=3, faults=["usage_capped@/2/usage/tweets,times=0"]) as endpoint:
        app = make_app(db, config=demo_config(endpoint, db_path=db))
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            assert review_screen(app).total == 0
            assert "No consumers yet" in detail_text(app)
            await press(pilot, "R")
            modal = app.screen
            assert isinstance(modal, SyncProgress)
            await settle(pilot)
            assert modal.finished
            assert "1/2 sources synced" in str(modal.query_one("#status").render())
            assert notifications(app) == [
                "Sync failed: demo-x: source 'demo-x' stopped: usage capped (HTTP 429): Usage cap exceeded: "
                f"Monthly product cap; not retried ({endpoint.x_url}/2/usage/tweets?days=90&usage.fields="
                "cap_reset_day%2Cdaily_client_app_usage%2Cdaily_project_usage%2Cproject_cap%2Cproject_id"
                "%2Cproject_usage)",
                "Sync finished: 1/2 sources synced, 29,705 usage rows stored"]
            await press(pilot, "escape")
            screen = review_screen(app)
            assert screen.total > 12
            assert current_id(app) == CASE_ID
            assert "sync: 1/2 sources ok (demo-x failed)" in str(screen.query_one("#status-line").render())
    conn = sqlite3.connect(db)
    runs = dict(conn.execute("SELECT source, status FROM sync_run"))
    assert runs == {"demo-feed": "ok", "demo-x": "failed"}


async def test_a_partial_sync_is_called_partial_with_why(tmp_path: Path, monkeypatch) -> None:
    """Defect 10: a source that stored everything but a refused page is not "Sync
    failed": the notification says partial, and that the rest is stored, and why."""
    from store.demo import DEMO_TOKEN, DEMO_TOKEN_ENV, DemoEndpoint
    from store.demo.config import demo_config

    monkeypatch.setenv(DEMO_TOKEN_ENV, DEMO_TOKEN)
    db = tmp_path / "partial.db"
    with DemoEndpoint(consumers=12, seed=3, faults=["negative@/feed/v1/usage,query=shard=1,times=0"]) as endpoint:
        app = make_app(db, config=demo_config(endpoint, db_path=db))
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await press(pilot, "R")
            await settle(pilot)
            assert app.screen.finished
            shown = [n for n in shown_notifications(app) if "demo-feed" in (n.title or "")]
    assert [n.title for n in shown] == ["Sync partial: demo-feed"], shown
    assert shown[0].message.startswith("a page was refused; everything else is stored: source 'demo-feed'")
    assert "is negative" in shown[0].message and shown[0].severity == "warning"
    assert not any(n.title.startswith("Sync failed") for n in shown_notifications(app))


async def test_sync_cancel(tmp_path: Path, monkeypatch) -> None:
    from store.demo import DEMO_TOKEN, DEMO_TOKEN_ENV, DemoEndpoint
    from store.demo.config import demo_config
    from tui.modals.sync import SyncProgress

    monkeypatch.setenv(DEMO_TOKEN_ENV, DEMO_TOKEN)
    db = tmp_path / "cancelled.db"
    with DemoEndpoint(consumers=12, seed=3, faults=["stall@/feed/v1/usage,seconds=1,times=0"]) as endpoint:
        app = make_app(db, config=demo_config(endpoint, db_path=db))
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await pilot.press("R")
            assert isinstance(app.screen, SyncProgress)
            await pilot.press("c")  # cancel while the usage pages stall
            assert app.syncing is not None and app.syncing.is_set()
            await settle(pilot)
            assert app.screen.finished
    conn = sqlite3.connect(db)
    assert "cancelled" in {status for (status,) in conn.execute("SELECT status FROM sync_run")}


async def test_note_autosaves_while_typing(db: Path) -> None:
    """No ctrl+s: the edit reaches the database by itself (polled, never a fixed wait)."""
    from tui.screens.note import NoteEditor

    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        assert isinstance(app.screen, NoteEditor)
        await pilot.press(*"AUTO ")

        def body() -> str:
            conn = sqlite3.connect(db)
            try:
                return conn.execute("SELECT body FROM note").fetchone()[0]
            finally:
                conn.close()

        for _ in range(100):
            if body().startswith("AUTO "):
                break
            await pilot.pause(0.05)
        assert body().startswith("AUTO ")


async def test_note_edit_conflict_is_reported_not_overwritten(db: Path) -> None:
    from store import notes
    from tui.screens.note import NoteEditor

    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        editor = app.screen
        assert isinstance(editor, NoteEditor)
        other = connect(db)
        notes.save_body(other, editor.note.id, "Bob's version", expected_version=editor.version, clock=CLOCK)
        other.close()
        await pilot.press(*"mine ")
        await press(pilot, "ctrl+s")
        assert "Changed by someone else: note #1 changed (version 2, expected 1); reload it" in notifications(app)
        assert "NOT SAVED" in str(editor.query_one("#note-head").render())
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT body FROM note").fetchone() == ("Bob's version",)


async def test_changes_from_another_session_show_up_without_a_key(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = review_screen(app)
        screen._poll_changes()  # the timer's first tick: remembers the version
        await settle(pilot)
        other = connect(db)
        review.dismiss(other, 4, reviewer="bob", reason_code="duplicate", clock=CLOCK)
        other.close()
        screen._poll_changes()  # the next tick sees another connection committed
        await settle(pilot)
        q = screen.query_one(QueueView)
        rows = [q.row_at(i) for i in range(q.total)]
        assert next(r for r in rows if r.consumer_id == "contoso-borderline").verdict == "decided"


async def test_every_binding_has_a_unique_id(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        ids = [row[2] for row in review_screen(app).key_rows()]
        assert len(ids) == len(set(ids)) and all(ids)


# --- where the cursor goes after a decision ------------------------------------------


async def _dismiss_current(pilot, app: WardenApp) -> None:
    await press(pilot, "d")
    modal = app.screen
    assert isinstance(modal, Dismiss)
    modal.query_one("#reason_code", ReasonPicker).choose("within_allowance")
    modal.query_one("#reason_text", Input).focus()
    await press(pilot, "enter")
    assert isinstance(app.screen, ReviewScreen)


async def test_after_a_decision_the_cursor_keeps_its_place_in_the_queue(db: Path) -> None:
    """Like a mail reader: the decided consumer moves down the order, the cursor
    stays at its index and shows the consumer that moved up into it."""
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        q = review_screen(app).query_one(QueueView)
        await press(pilot, "j", "j")
        assert (q.cursor, current_id(app)) == (2, "contoso-borderline")
        await _dismiss_current(pilot, app)
        assert statuses(db)[4] == "dismissed"
        assert q.cursor == 2
        assert current_id(app) != "contoso-borderline"
        # The detail shows the consumer under the cursor, not the decided one.
        assert review_screen(app).detail.consumer.id == current_id(app)
        assert "3 / 45" in str(review_screen(app).query_one("#status-line").render())
        # The decided consumer is further down, not gone.
        ids = [q.row_at(i).consumer_id for i in range(q.total) if q.row_at(i) is not None]
        assert ids.index("contoso-borderline") > 2


async def test_undo_brings_the_cursor_back_to_the_undone_consumer(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        q = review_screen(app).query_one(QueueView)
        assert current_id(app) == "northwind-analytics"
        await _dismiss_current(pilot, app)  # its three open findings
        assert q.cursor == 0 and current_id(app) != "northwind-analytics"
        await press(pilot, "j", "j")
        await press(pilot, "u")
        assert statuses(db)[1] == statuses(db)[2] == statuses(db)[3] == "candidate"
        assert (q.cursor, current_id(app)) == (0, "northwind-analytics")
        assert review_screen(app).detail.consumer.id == "northwind-analytics"
        # The notification says how many findings and whose.
        assert "Undo: Undone: 3 findings of Northwind Analytics Ltd back to candidate" in \
            notifications(app)


async def test_undo_of_one_finding_names_it_and_its_consumer(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "j")  # hostile-co: its name is shown literally in the notification
        await press(pilot, "i")
        app.screen.query_one("#reason", Input).focus()
        await pilot.press(*"ask")
        await press(pilot, "enter")
        assert statuses(db)[5] == "needs_info"
        await press(pilot, "u")
        assert statuses(db)[5] == "candidate"
        assert current_id(app) == "hostile-co"
        undone = [n for n in notifications(app) if "Undone" in n]
        assert undone == ["Undo: Undone: finding #5 of [bold red]x[/] ␛[31mRED␛[0m ␛]52;c;aGk=␇Corp"
                          " back to candidate"]


async def test_a_refresh_still_follows_the_consumer_under_the_cursor(db: Path) -> None:
    """Another session's decision moves the consumer: a refresh keeps the cursor on it."""
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        q = review_screen(app).query_one(QueueView)
        await press(pilot, "j", "j")
        assert current_id(app) == "contoso-borderline"
        other = connect(db)
        review.dismiss(other, 4, reviewer="bob", reason_code="duplicate", clock=CLOCK)
        other.close()
        await press(pilot, "r")
        assert current_id(app) == "contoso-borderline" and q.cursor > 2


async def test_a_poll_while_a_decision_is_written_does_not_chase_the_consumer(db: Path) -> None:
    """The periodic check sees this session's own commit; the cursor still keeps its place."""
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = review_screen(app)
        screen._poll_changes()  # remembers the data version
        await settle(pilot)
        await press(pilot, "j", "j")
        await _dismiss_current(pilot, app)
        screen._poll_changes()  # sees the decision's commit
        await settle(pilot)
        assert screen.query_one(QueueView).cursor == 2
        assert current_id(app) != "contoso-borderline"


# --- the apps table ----------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_apps_show_their_names_and_ids(tmp_path: Path, size: tuple[int, int]) -> None:
    db = seed_review_db(tmp_path / "apps.db")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE app SET name = 'Northwind Social Listening', declared_use_case ="
                     " 'Brand sentiment dashboards for retail clients' WHERE app_id = 'northwind-analytics-app1'")
        conn.execute("UPDATE app SET name = NULL WHERE app_id = 'northwind-analytics-app3'")
    conn.close()
    app = make_app(db)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        apps = detail_text(app).split("\nApps\n")[1].split("\n\n")[0].splitlines()
        assert apps[1].startswith("Northwind Social Listening ")
        assert apps[2].strip() == "feed:northwind-analytics-app1"  # the id, on its own line
        assert apps[3].startswith("App 2 ") and apps[4].strip() == "feed:northwind-analytics-app2"
        # No name: the id stands in for it, once.
        assert apps[5].startswith("feed:northwind-analytics-app3 ") and len(apps) == 6
        # Every line fits the pane (a long use case is cut with an ellipsis, not by the edge).
        pane = review_screen(app).query_one(DetailPane)
        assert max(len(line) for line in apps) < pane.scrollable_content_region.width
        assert "Brand senti" in apps[1] and apps[1].endswith("…")
        # A resized terminal lays the table out again for the new width.
        await pilot.resize_terminal(*((120, 40) if size[0] == 80 else (80, 24)))
        await settle(pilot)
        apps = detail_text(app).split("\nApps\n")[1].split("\n\n")[0].splitlines()
        assert max(len(line) for line in apps) < pane.scrollable_content_region.width
        assert apps[1].startswith("Northwind Social Listening ")


async def test_undo_messages_for_bulk_manual_and_nothing(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "u")
        assert notifications(app)[-1] == "Undo: Nothing of yours to undo."
        # A bulk dismissal over two consumers, undone as one action.
        await press(pilot, "j", "space", "space")
        await _dismiss_current(pilot, app)
        await press(pilot, "u")
        assert notifications(app)[-1] == "Undo: Undone: 2 findings of 2 consumers back to candidate"
        assert statuses(db)[4] == statuses(db)[5] == "candidate"
        # A finding opened by hand: undoing it dismisses it, and says so.
        await press(pilot, "g", "m")
        modal = app.screen
        modal.query_one("#category", Select).value = "restricted_use"
        modal.query_one(TextArea).focus()
        await pilot.press(*"seen on a forum")
        modal.query_one("#ok").press()
        await settle(pilot)
        assert current_id(app) == "northwind-analytics"
        await press(pilot, "u")
        assert notifications(app)[-1] == "Undo: Undone: opening finding #7 of Northwind Analytics Ltd (now dismissed)"
        assert current_id(app) == "northwind-analytics"


async def test_a_decision_key_pressed_before_the_detail_arrives_waits_for_it(db: Path, monkeypatch) -> None:
    """``jjd`` in one read from the terminal: the dialog must offer Contoso's
    finding, not the findings of the consumer whose detail was still on screen (a
    decision on the wrong consumer), and the key must not be lost."""
    import threading

    from textual import events

    from store import cases

    gate = threading.Event()
    real = cases.read_case

    def held(conn, consumer_id, *args, **kwargs):
        if consumer_id == "contoso-borderline":
            gate.wait(10)
        return real(conn, consumer_id, *args, **kwargs)

    monkeypatch.setattr(cases, "read_case", held)
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        # The keys reach the app before the cursor's moves reach the screen.
        for key in "jjd":
            app.post_message(events.Key(key, key))
        for _ in range(10):
            await pilot.pause()
        assert isinstance(app.screen, ReviewScreen)  # Northwind's findings are on screen: no dialog yet
        assert review_screen(app).detail.consumer.id != "contoso-borderline"
        gate.set()
        await settle(pilot)
        modal = app.screen
        assert isinstance(modal, Dismiss)
        assert modal.scope == "Contoso Borderline GmbH (contoso-borderline)"
        assert [f.id for f in modal.findings] == [4]


def add_findings_to_the_top_consumer(db: Path, count: int) -> None:
    """``count`` candidate findings more for the consumer at the top of the queue."""
    conn = connect(db)
    conn.executemany(
        "INSERT INTO finding (consumer_id, category, period, period_start, period_end, severity, status, rule_id,"
        " metric, actual, limit_value, ratio, dedupe_key, detected_at, updated_at) VALUES ('northwind-analytics',"
        " 'rate_limit', ?, ?, ?, 'low', 'candidate', 'rate_limit', 'calls', 11, 10, 1.1, ?, 't', 't')",
        [(f"p{n:03d}", "2022-01-01", "2022-01-31", f"extra|{n}") for n in range(count)])
    conn.close()


async def test_a_long_case_renders_the_lines_the_pane_shows(db: Path) -> None:
    # 120 findings more for the consumer at the top: a detail of some 160 lines.
    add_findings_to_the_top_consumer(db, 120)
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        pane = review_screen(app).query_one(DetailPane)
        assert pane.text.count("\n") > 150
        drawn = pane.rendered
        assert 0 < drawn <= pane.size.height       # only what is on screen was rendered
        assert not any("p100" in pane.render_line(y).text for y in range(pane.size.height))
        await press(pilot, *["J"] * 40)
        assert pane.scroll_y > 0 and pane.rendered > drawn
        shown = "\n".join(pane.render_line(y).text for y in range(pane.size.height))
        assert "p100" in shown or "p110" in shown


async def test_a_step_to_a_shorter_case_moves_the_scrollbar_without_laying_out_the_screen(db: Path) -> None:
    """The detail's length changes from one consumer to the next: the scrollbar's
    thumb follows it, and the screen is not laid out again for that (which would
    repaint every widget on it); when the scrollbar comes or goes, it is."""
    from textual._compositor import Compositor

    add_findings_to_the_top_consumer(db, 120)
    app = make_app(db)
    layouts = []
    reflow = Compositor.reflow

    def counted(compositor, parent, size):
        layouts.append(parent)
        return reflow(compositor, parent, size)

    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        pane = review_screen(app).query_one(DetailPane)
        assert pane.container_size.height == 38
        # 288 lines (a multiple of 16 already).
        assert (len(pane.lines), pane.virtual_size.height) == (288, 288)
        assert pane.show_vertical_scrollbar and pane.vertical_scrollbar.window_virtual_size == 288
        Compositor.reflow = counted
        try:
            await press(pilot, "j")
            assert review_screen(app).detail.consumer.id == "hostile-co"
            assert (len(pane.lines), pane.virtual_size.height) == (39, 48)
            assert pane.show_vertical_scrollbar and pane.vertical_scrollbar.window_virtual_size == 48
            assert layouts == []
            await press(pilot, "j", "j")    # 39 lines again, then 23: fits, so 38 (the pane's height)
            assert (len(pane.lines), pane.virtual_size.height) == (23, 38)
            assert len(layouts) == 1
        finally:
            Compositor.reflow = reflow


async def test_start_up_objects_are_kept_out_of_the_collector_while_the_app_runs(db: Path) -> None:
    """What start-up made is frozen (gc.freeze) once the first frame is drawn, so
    the collector's full passes do not walk it during the session, and the young
    generation is collected less often; on exit both are undone, or every app a
    process runs would stay in memory."""
    import gc

    assert gc.get_freeze_count() == 0
    before = gc.get_threshold()
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert gc.get_freeze_count() > 10_000     # modules, classes, the screen's widgets
        assert gc.get_threshold() == (20_000, 10, 10)
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


async def test_a_step_starts_reading_the_detail_before_the_queue_s_message_arrives(db: Path) -> None:
    """The move key itself starts the detail's read (the queue's CursorMoved
    bubbles up later, often after a frame); the messages of two quick moves,
    arriving after both, leave the detail on where the cursor is, not where it was."""
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = review_screen(app)
        assert screen.detail_for == "northwind-analytics"
        screen.action_move(1)
        assert screen.detail_for == "hostile-co"         # no message handled yet
        screen.action_move(1)
        assert screen.detail_for == "contoso-borderline"
        await settle(pilot)
        assert queue(app).cursor == 2
        assert screen.detail.consumer.id == "contoso-borderline"
        assert str(screen.query_one("#status-line").render()).startswith(" warden   3 / ")


@pytest.mark.parametrize("env, fps", [({}, 250), ({"TEXTUAL_FPS": "60"}, 60)])
def test_frames_come_up_to_250_a_second_unless_the_user_says(env: dict[str, str], fps: int) -> None:
    """The tui package asks Textual for up to 250 frames a second (a change is
    painted at most 4 ms after the last frame); TEXTUAL_FPS, if set, wins."""
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if k != "TEXTUAL_FPS"}
    out = subprocess.run([sys.executable, "-c", "import tui, textual.constants as c; print(c.MAX_FPS)"],
                         env={**base, **env}, capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == str(fps)
