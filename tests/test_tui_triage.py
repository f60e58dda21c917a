"""Faster triage (issue 10), keys counted as a reviewer presses them: confirm with
the defaults in 2 keys, dismiss with a reason in 3, ``a`` / ``n`` in every decision
dialog, the finding under the detail's cursor preselected, one finding among 78 in
under 10 keys, 20 consumers in at most 60 keys, and bulk decisions over tagged
consumers (space, ``*``) in one dialog, one transaction, one log entry per finding."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from store.db import connect, transaction
from store.decision_log import verify_chain
from store.queue_summary import refresh_all
from tests.test_tui_review import current_id, decisions, make_app, notifications, review_screen, statuses
from tests.tui_data import CLOCK, seed_review_db, settle
from tui.modals.ask import Ask
from tui.modals.confirm import ConfirmViolation
from tui.modals.dismiss import Dismiss
from tui.modals.needs_info import NeedsInfo
from tui.screens.review import ReviewScreen
from tui.widgets.detail import DetailPane
from tui.widgets.queue import QueueView

pytestmark = pytest.mark.anyio


class Keys:
    """Presses keys as a reviewer does (each handled before the next) and counts them."""

    def __init__(self, pilot) -> None:
        self.pilot = pilot
        self.count = 0

    async def __call__(self, *keys: str) -> None:
        for key in keys:
            await self.pilot.press(key)
            self.count += 1
            await settle(self.pilot)


def status_entries(db: Path) -> list[sqlite3.Row]:
    return [d for d in decisions(db) if d["field"] == "status"]


async def test_confirm_with_the_defaults_takes_two_keys(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        keys = Keys(pilot)
        await keys("v", "enter")
        assert isinstance(app.screen, ReviewScreen)
        assert keys.count == 2
    assert [statuses(db)[i] for i in (1, 2, 3)] == ["confirmed"] * 3
    entries = sorted(status_entries(db), key=lambda e: e["subject_id"])
    assert [e["subject_id"] for e in entries] == [1, 2, 3]
    # No reason typed: the finding's rule and figures are recorded as the reason.
    assert entries[0]["reason"] == ("as detected (rule volume_cap): 780,412,345 API calls in 2022, against a limit "
                                    "of 200,000,000 (3.90 times the limit)")
    assert entries[2]["reason"].startswith("as detected (rule missing_use_case)")


async def test_dismiss_with_a_reason_takes_three_keys(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await Keys(pilot)("j", "j")
        assert current_id(app) == "contoso-borderline"
        keys = Keys(pilot)
        await keys("d", "w", "enter")
        assert isinstance(app.screen, ReviewScreen)
        assert keys.count == 3
    assert statuses(db)[4] == "dismissed"
    assert status_entries(db)[-1]["reason"] == "within_allowance"


async def test_dismiss_without_a_reason_is_not_sent_and_other_needs_words(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        keys = Keys(pilot)
        await keys("d", "enter")
        assert isinstance(app.screen, Dismiss)
        assert "choose a reason" in str(app.screen.query_one("#problem").render())
        await keys("o", "enter")      # Other: the explanation is required, and focused
        assert isinstance(app.screen, Dismiss)
        await pilot.press(*"test account")
        await keys("enter")
        assert isinstance(app.screen, ReviewScreen)
    assert {statuses(db)[i] for i in (1, 2, 3)} == {"dismissed"}
    assert status_entries(db)[-1]["reason"] == "other: test account"


@pytest.mark.parametrize("key, dialog", [("v", ConfirmViolation), ("d", Dismiss), ("i", NeedsInfo)])
async def test_a_and_n_choose_all_or_none_in_every_decision_dialog(db: Path, key: str, dialog: type) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        keys = Keys(pilot)
        await keys(key)
        modal = app.screen
        assert isinstance(modal, dialog)
        picker = modal.query_one("#findings")
        picker.focus()
        await settle(pilot)
        await keys("n")
        assert list(picker.selected) == []
        await keys("a")
        assert sorted(picker.selected) == [1, 2, 3]
        await keys("n", "down", "space")            # the second as listed: #1 (#2 has the larger overage)
        assert list(picker.selected) == [1]


async def test_the_finding_under_the_details_cursor_is_preselected(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        keys = Keys(pilot)
        await keys("tab")                       # into the detail: the cursor on its first open finding
        pane = review_screen(app).query_one(DetailPane)
        assert pane.findings_order() == [2, 1, 3]   # as the pane lists them: the largest overage first
        assert pane.has_focus and pane.finding_id == 2
        await keys("j")
        assert pane.finding_id == 1
        assert review_screen(app).query_one(QueueView).cursor == 0     # j moved in the detail, not the queue
        await keys("v")
        modal = app.screen
        assert isinstance(modal, ConfirmViolation)
        assert list(modal.query_one("#findings").selected) == [1]
        await keys("enter")
    assert statuses(db) == {1: "confirmed", 2: "candidate", 3: "candidate", 4: "candidate", 5: "candidate",
                            6: "dismissed"}


async def test_the_details_cursor_is_visible_and_esc_goes_back_to_the_queue(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        keys = Keys(pilot)
        await keys("tab", "G")
        pane = review_screen(app).query_one(DetailPane)
        assert pane.finding_id == 3
        line = pane.cursor_line
        assert line is not None and "#3 " in pane.lines[line]
        assert pane.scroll_y <= line < pane.scroll_y + pane.size.height     # scrolled into view
        strip = pane.render_line(line - round(pane.scroll_y))
        assert any(segment.style is not None and segment.style.reverse for segment in strip)
        await keys("escape")
        assert review_screen(app).query_one(QueueView).has_focus
        await keys("j")
        assert review_screen(app).query_one(QueueView).cursor == 1


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    from store.demo import DEMO_TOKEN, DEMO_TOKEN_ENV, DemoEndpoint
    from store.demo.config import demo_config
    from store.sync.engine import sync_all

    os.environ.setdefault(DEMO_TOKEN_ENV, DEMO_TOKEN)
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    with DemoEndpoint(consumers=300, seed=7) as endpoint:
        config = demo_config(endpoint, db_path=path)
        sync_all(path, config, clock=CLOCK)
    return path, config


async def test_one_finding_among_78_is_confirmed_in_under_ten_keys(demo_db: tuple[Path, object],
                                                                   tmp_path: Path) -> None:
    from store.demo import CASE_ID
    from tui.app import WardenApp

    source, config = demo_db
    db = tmp_path / "case.db"
    with sqlite3.connect(source) as a, sqlite3.connect(db) as b:
        a.backup(b)
    conn = sqlite3.connect(db)
    open_ids = [r[0] for r in conn.execute("SELECT id FROM finding WHERE consumer_id = ? AND status = 'candidate'"
                                           " ORDER BY id", (CASE_ID,))]
    conn.close()
    assert len(open_ids) == 78
    app = WardenApp(db_path=db, config=config, reviewer="alice", clock=CLOCK, mouse=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert current_id(app) == CASE_ID
        keys = Keys(pilot)
        await keys("tab", "pagedown", "pagedown", "pagedown", "pagedown", "j")   # the 42nd open finding
        pane = review_screen(app).query_one(DetailPane)
        wanted = pane.finding_id
        assert wanted == pane.findings_order()[41]
        # Its twin (the circumvention finding over the same figures) is decided with it.
        twins = next(f.twins for f in review_screen(app).detail.open_findings if f.id == wanted)
        await keys("v", "enter")
        assert keys.count < 10
    conn = sqlite3.connect(db)
    confirmed = [r[0] for r in conn.execute("SELECT id FROM finding WHERE consumer_id = ? AND status = 'confirmed'",
                                            (CASE_ID,))]
    conn.close()
    assert sorted(confirmed) == sorted([wanted, *twins]) and wanted in open_ids


def twenty_open_db(tmp_path: Path) -> Path:
    """The seeded review database with 17 more consumers given a candidate each: 20 to decide."""
    db = seed_review_db(tmp_path / "twenty.db")
    conn = connect(db)
    with transaction(conn):
        for n in range(17):
            conn.execute(
                "INSERT INTO finding (consumer_id, category, period, period_start, period_end, severity, status,"
                " rule_id, metric, actual, limit_value, ratio, figures, detected_at, updated_at) VALUES"
                " (?, 'volume_cap', '2022-06', '2022-06-01', '2022-06-30', 'high', 'candidate', 'volume_cap',"
                " 'calls', ?, 20000000, ?, '{}', 't', 't')",
                (f"consumer-{n:03d}", 20_000_000 + (n + 1) * 10_000, 1 + (n + 1) * 0.0005))
        refresh_all(conn)
    conn.close()
    return db


async def test_twenty_consumers_take_at_most_sixty_keys(tmp_path: Path) -> None:
    db = twenty_open_db(tmp_path)
    app = make_app(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        keys = Keys(pilot)
        for _ in range(20):
            await keys("right_square_bracket", "v", "enter")
        assert keys.count <= 60
    conn = sqlite3.connect(db)
    left = conn.execute("SELECT count(*) FROM finding WHERE status = 'candidate'").fetchone()[0]
    confirmed = conn.execute("SELECT count(DISTINCT consumer_id) FROM finding WHERE status = 'confirmed'").fetchone()[0]
    conn.close()
    assert (left, confirmed) == (0, 20)
    # Each finding has exactly one entry saying it was confirmed.
    entries = status_entries(db)
    assert len(entries) == len({e["subject_id"] for e in entries}) == 22


async def test_tagged_consumers_are_decided_in_one_dialog_and_one_transaction(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        keys = Keys(pilot)
        await keys("space", "space")             # northwind (3 open) and hostile-co (1 open)
        screen = review_screen(app)
        assert set(screen.query_one(QueueView).selected) == {"northwind-analytics", "hostile-co"}
        await keys("v")
        modal = app.screen
        assert isinstance(modal, ConfirmViolation)
        assert modal.scope == "2 tagged consumers: their 4 open findings"
        await keys("enter")
        assert not screen.query_one(QueueView).selected
    entries = status_entries(db)
    assert sorted(e["subject_id"] for e in entries) == [1, 2, 3, 5]
    assert len({e["action_id"] for e in entries}) == 1         # one action: one undo takes it back
    assert len({e["at"] for e in entries}) == 1
    conn = connect(db)
    assert verify_chain(conn).ok
    conn.close()


async def test_star_tags_what_the_filter_shows_and_asks_past_a_hundred(db: Path, tmp_path: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        keys = Keys(pilot)
        await keys("slash")
        await pilot.press(*"state:open")
        await keys("enter", "asterisk")
        q = review_screen(app).query_one(QueueView)
        assert set(q.selected) == {"northwind-analytics", "hostile-co", "contoso-borderline"}
        assert "3 tagged" in str(review_screen(app).query_one("#status-line").render())
        assert notifications(app)[-1] == "Queue: Tagged the 3 consumers the filter shows."
        await keys("escape")                     # untags first
        assert not q.selected


@pytest.mark.parametrize("consumers, asked", [(100, False), (101, True)])
async def test_star_asks_before_tagging_more_than_a_hundred(tmp_path: Path, consumers: int, asked: bool) -> None:
    db = seed_review_db(tmp_path / "many.db", filler=consumers - 5)
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        keys = Keys(pilot)
        q = review_screen(app).query_one(QueueView)
        await keys("asterisk")
        if asked:
            assert isinstance(app.screen, Ask)
            assert f"Tag all {consumers} consumers" in str(app.screen.query_one("#question").render())
            await keys("n")
            assert not q.selected and isinstance(app.screen, ReviewScreen)
            await keys("asterisk", "y")
        assert isinstance(app.screen, ReviewScreen)
        assert len(q.selected) == consumers
        await keys("d")
        assert app.screen.scope == f"{consumers} tagged consumers: their 5 open findings"
