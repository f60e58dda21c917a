"""The queue's keys as a mutt user expects them (issue 10): ``]`` wraps, a consumer
waiting for information shows it and is skipped, the sort says its direction and
keeps the cursor on its consumer, a bad filter keeps what was typed."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from tests.test_tui_review import current_id, make_app, notifications, press, review_screen, statuses
from tests.tui_data import settle
from tui.modals.filter import FilterInput
from tui.modals.needs_info import NeedsInfo
from tui.screens.review import ReviewScreen
from tui.widgets.queue import QueueView

pytestmark = pytest.mark.anyio


def status_line(app) -> str:
    return str(review_screen(app).query_one("#status-line").render())


def queue_line(app, index: int) -> str:
    q = review_screen(app).query_one(QueueView)
    y = index - round(q.scroll_y)
    return "".join(segment.text for segment in q.render_line(y))


async def test_next_unreviewed_wraps_to_the_top_and_says_so(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        q = review_screen(app).query_one(QueueView)
        # The seeded queue: northwind, hostile-co, contoso open at 0, 1, 2.
        await press(pilot, "right_square_bracket", "right_square_bracket")
        assert q.cursor == 2
        await press(pilot, "G", "right_square_bracket")
        assert (q.cursor, current_id(app)) == (0, "northwind-analytics")
        assert notifications(app)[-1] == "Queue: Wrapped to the top."
        await press(pilot, "left_square_bracket")
        assert (q.cursor, current_id(app)) == (2, "contoso-borderline")
        assert notifications(app)[-1] == "Queue: Wrapped to the bottom."


async def test_the_only_consumer_left_to_decide_says_there_is_no_other(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "slash")
        await pilot.press(*"id:contoso")
        await press(pilot, "enter")
        await press(pilot, "right_square_bracket")
        assert current_id(app) == "contoso-borderline"
        assert notifications(app)[-1] == "Queue: No other consumer with findings to decide."


async def test_needs_info_shows_in_the_queue_and_next_skips_it(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "j", "j")
        assert current_id(app) == "contoso-borderline"
        await press(pilot, "i")
        assert isinstance(app.screen, NeedsInfo)
        await pilot.press(*"ask for the March invoice")
        await press(pilot, "enter")
        assert statuses(db)[4] == "needs_info"
        q = review_screen(app).query_one(QueueView)
        row = next(q.row_at(i) for i in range(q.total) if q.row_at(i).consumer_id == "contoso-borderline")
        assert row.verdict == "info"
        at = next(i for i in range(q.total) if q.row_at(i).consumer_id == "contoso-borderline")
        assert "? info" in queue_line(app, at) and "● open" not in queue_line(app, at)
        # ] goes round the open ones and never lands on it while they are left.
        await press(pilot, "g")
        seen = []
        for _ in range(4):
            await press(pilot, "right_square_bracket")
            seen.append(current_id(app))
        assert seen == ["hostile-co", "northwind-analytics", "hostile-co", "northwind-analytics"]
        # A filter finds it.
        await press(pilot, "slash")
        await pilot.press(*"state:info")
        await press(pilot, "enter")
        assert review_screen(app).total == 1 and current_id(app) == "contoso-borderline"


async def test_sort_shows_its_direction_and_keeps_the_cursor_on_its_consumer(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = review_screen(app)
        q = screen.query_one(QueueView)
        assert "sort: overage ↓" in status_line(app)
        await press(pilot, "j", "j")
        assert current_id(app) == "contoso-borderline"
        await press(pilot, "o")    # status
        assert screen.query_spec.sort == "status" and current_id(app) == "contoso-borderline"
        assert "sort: status ↓" in status_line(app)
        await press(pilot, "o")    # name A-Z
        assert screen.query_spec.sort == "name" and current_id(app) == "contoso-borderline"
        names = [q.row_at(i).legal_name for i in range(q.total)]
        assert names == sorted(names)
        assert "sort: name ↓" in status_line(app)
        await press(pilot, "O")    # name Z-A
        assert screen.query_spec.reverse and current_id(app) == "contoso-borderline"
        names = [q.row_at(i).legal_name for i in range(q.total)]
        assert names == sorted(names, reverse=True)
        assert "sort: name ↑" in status_line(app)
        await press(pilot, "o")    # due date (issue 13), the direction kept as chosen
        assert screen.query_spec.sort == "due" and current_id(app) == "contoso-borderline"
        assert screen.query_spec.reverse and "sort: due ↑" in status_line(app)
        await press(pilot, "o")    # back to overage, the direction kept as chosen
        assert screen.query_spec.sort == "overage" and current_id(app) == "contoso-borderline"
        await press(pilot, "O")
        assert not screen.query_spec.reverse
        await press(pilot, "g")
        # Largest overage first: the case consumer (5.2x) on top, those without one last.
        assert current_id(app) == "northwind-analytics"
        ratios = [q.row_at(i).worst_ratio for i in range(q.total)]
        assert ratios[:3] == [26_170_000_000 / 5_000_000_000, 1.5, 20_400_000 / 20_000_000]
        assert ratios == sorted(ratios, reverse=True) and ratios[-1] == 0
        assert "Queue: Sorted by overage, largest overage first" in notifications(app)


async def test_a_bad_filter_keeps_what_was_typed_with_the_cursor_at_the_error(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "slash")
        await pilot.press(*"state:open over:abc")
        await press(pilot, "enter")
        modal = app.screen
        assert isinstance(modal, FilterInput)
        field = modal.query_one(Input)
        assert field.value == "state:open over:abc"
        assert field.cursor_position == len("state:open over:")
        assert "over:abc is not a ratio" in str(modal.query_one("#problem").render())
        # Mended where the cursor is, and applied.
        for _ in range(3):
            await pilot.press("delete")
        await pilot.press(*"1.1")
        await press(pilot, "enter")
        assert isinstance(app.screen, ReviewScreen)
        assert review_screen(app).total == 2
        assert "filter: state:open over:1.1" in status_line(app)


@pytest.mark.parametrize("size, virtual, window", [(37, 1_000_000, 37), (37, 2_000, 37), (20, 45, 20), (10, 10, 10)])
def test_the_queue_s_thumb_start_match_textual_s_drawing_of_the_scrollbar(size: int, virtual: int,
                                                                           window: int) -> None:
    """thumb_start, by which the queue skips repainting a scrollbar whose thumb did
    not move, agrees with Textual's own renderer: two positions give the same
    start exactly when ScrollBarRender draws the same segments for them."""
    from types import SimpleNamespace

    from textual.scrollbar import ScrollBarRender

    from tui.widgets.queue import thumb_start

    def drawn(position: float) -> list:
        return list(ScrollBarRender.render_bar(size=size, virtual_size=virtual, window_size=window,
                                               position=position).segments)

    bar = SimpleNamespace(size=SimpleNamespace(height=size), window_virtual_size=virtual, window_size=window)
    top = max(0, virtual - window)
    positions = sorted({0, 1, 2, 3, 7, 8, 100, 101, top // 2, top // 2 + 1, top - 1, top} - {-1})
    positions = [p for p in positions if 0 <= p <= top]
    for a in positions:
        for b in positions:
            assert (thumb_start(bar, a) == thumb_start(bar, b)) == (drawn(a) == drawn(b)), (a, b)


async def test_a_scrolling_step_repaints_the_queue_s_scrollbar_when_its_thumb_moves(tmp_path: Path) -> None:
    """What the scrollbar shows after each step that scrolls the queue is what it
    would draw afresh at the queue's position (a thumb that did not move is kept,
    one that moved is drawn again), and its position follows the queue's (a drag
    starts from there). 3,000 consumers: the thumb moves every 20-odd lines."""
    from textual.geometry import Region

    from tests.tui_data import seed_review_db

    app = make_app(seed_review_db(tmp_path / "long.db", filler=3000))
    async with app.run_test(size=(100, 20)) as pilot:
        await settle(pilot)
        queue = review_screen(app).query_one(QueueView)
        bar = queue.vertical_scrollbar
        whole = Region(0, 0, bar.size.width, bar.size.height)
        for _ in range(40):
            await press(pilot, "j")
            shown = [repr(list(strip)) for strip in bar.render_lines(whole)]
            assert bar.position == queue.scroll_y
            bar.refresh()
            afresh = [repr(list(strip)) for strip in bar.render_lines(whole)]
            assert shown == afresh, queue.scroll_y
        assert queue.scroll_y > 20
