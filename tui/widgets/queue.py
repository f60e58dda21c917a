"""The review queue: a million consumers, of which only the visible lines are read.

The widget never touches the database. It knows the queue's length, keeps a
small LRU cache of pages of rows, and asks for a missing page with a
``PageWanted`` message; the screen reads the page in a thread worker and hands
it back with :meth:`QueueView.set_page`. Lines whose page has not arrived yet
show a placeholder, so scrolling never waits for SQLite (the same approach as
toolong's ``LogLines``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from math import ceil
from typing import Any

from rich.style import Style
from rich.text import Text
from textual import events
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar
from textual.strip import Strip

from store.deadlines import due_short
from store.domain import CASE_STATES
from store.text import ratio_text, visible
from tui.text import glue_spaces

PAGE_SIZE = 64


# A row's verdict (a word from store.queue.VERDICTS) is drawn as glyph + word so
# it reads without colour (NO_COLOR, 16 colours); the style only repeats it.
VERDICT_GLYPHS: dict[str, str] = {
    "open": "●",
    "info": "?",
    "violation": "▲",
    "decided": "✓",
    "clear": "·",
    "retired": "⊘",
}
_VERDICT_CLASSES: dict[str, str] = {
    "open": "queue--open",
    "info": "queue--info",
    "violation": "queue--violation",
    "decided": "queue--decided",
    "clear": "queue--clear",
    "retired": "queue--clear",
}


def verdict_text(verdict: str) -> str:
    """``"▲ violation"`` for the verdict ``"violation"``."""
    glyph = VERDICT_GLYPHS.get(verdict)
    return f"{glyph} {verdict}" if glyph else visible(verdict)


# A case's state as glyph + word (store.domain.CASE_STATES).
CASE_GLYPHS: dict[str, str] = {
    "open": "●", "reopened": "↺", "letter_sent": "✉", "response_received": "↩", "escalated": "⚑",
    "resolved": "✓", "closed": "■",
}
# The queue's case column when no reply is due: a short word per state ("open"
# says nothing the verdict does not).
_CASE_CELLS: dict[str, str] = {"reopened": "↺ reopened", "letter_sent": "✉ sent", "response_received": "↩ replied",
                               "escalated": "⚑ escalated", "resolved": "✓ resolved", "closed": "■ closed"}


def case_text(state: str | None) -> str:
    """``"✉ letter sent"`` for the case state ``"letter_sent"``; empty without a case."""
    if not state:
        return ""
    return f"{CASE_GLYPHS.get(state, '?')} {CASE_STATES.get(state, visible(state))}"


def case_cell(state: str | None, due: str | None, today: date) -> str:
    """The queue's case column: ``due 3d`` / ``overdue 2d`` while a reply is due,
    else the case's state in a word (``⚑ escalated``), else nothing."""
    if due:
        return due_short(due, today)
    return _CASE_CELLS.get(state or "", "")


def verdict_class(verdict: str) -> str:
    """The component class styling a verdict such as ``"violation"``."""
    return _VERDICT_CLASSES.get(verdict, "queue--clear")


@dataclass(frozen=True)
class Columns:
    """Cell widths of a queue line for a given widget width."""

    verdict: int
    name: int
    tier: int
    ratio: int
    open: int
    case: int = 12

    @classmethod
    def for_width(cls, width: int) -> Columns:
        tier = 12 if width >= 70 else 0
        ratio = 7
        open_ = 5
        verdict_ = 12
        case = 12
        name = max(8, width - 2 - verdict_ - case - tier - ratio - open_)
        return cls(verdict_, name, tier, ratio, open_, case)


def _cell(text: str, width: int, *, right: bool = False, gap: bool = False) -> str:
    """``text`` in ``width`` characters (cut with an ellipsis); ``gap``: its last
    one is a space, so a cut value never runs into the next column."""
    if width <= 0:
        return ""
    if gap:
        return _cell(text, width - 1, right=right) + " "
    if len(text) > width:
        text = text[: max(0, width - 1)] + "…"
    return text.rjust(width) if right else text.ljust(width)


def thumb_start(bar: ScrollBar, position: float) -> int:
    """Where a vertical scrollbar's thumb starts, in eighths of a cell, at
    ``position``: Textual's ScrollBarRender.render_bar (textual 8.2.8) draws the
    thumb from this and the sizes alone (its length depends on the sizes only)."""
    size = bar.size.height
    virtual = ceil(bar.window_virtual_size)
    window = ceil(bar.window_size if bar.window_size < bar.window_virtual_size else 0)
    if not (window and size and virtual and size != virtual):
        return 0
    thumb = max(1, window / (virtual / size))
    return int((size - thumb) * (position / (virtual - window)) * 8)


def header_text(width: int) -> Text:
    """The column titles above the queue."""
    cols = Columns.for_width(width)
    line = (
        "  "
        + _cell("verdict", cols.verdict)
        + _cell("consumer", cols.name, gap=True)
        + _cell("case", cols.case, gap=True)
        + _cell("tier", cols.tier, gap=True)
        + _cell("worst", cols.ratio, right=True)
        + _cell("open", cols.open, right=True)
    )
    return Text(line[:width], no_wrap=True, end="")


class QueueView(ScrollView, can_focus=True, inherit_bindings=False):
    """The consumer queue, rendered line by line from a page cache."""

    COMPONENT_CLASSES = {
        "queue--cursor",
        "queue--open",
        "queue--info",
        "queue--violation",
        "queue--decided",
        "queue--clear",
        "queue--selected",
        "queue--placeholder",
        "queue--due",
    }

    DEFAULT_CSS = """
    QueueView {
        scrollbar-gutter: stable;
        /* One column: the case column (issue 13) took the name's room. */
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
        overflow-y: auto;
    }
    /* The cursor is reversed while the queue has the focus; with the focus in the
       detail it is underlined, so one reversed line shows where the keys go. */
    QueueView > .queue--cursor { text-style: bold underline; }
    QueueView:focus > .queue--cursor { text-style: reverse bold; }
    QueueView > .queue--open { color: $warning; }
    QueueView > .queue--info { color: $accent; }
    QueueView > .queue--violation { color: $error; text-style: bold; }
    QueueView > .queue--decided { color: $success; }
    QueueView > .queue--clear { color: $text-muted; }
    QueueView > .queue--selected { text-style: bold; }
    QueueView > .queue--placeholder { color: $text-muted; }
    QueueView > .queue--due { text-style: bold; }
    """

    @dataclass
    class PageWanted(Message):
        """A page of rows is needed to draw the visible lines."""

        generation: int
        page: int

    @dataclass
    class CursorMoved(Message):
        """The cursor is on another line (row is None while its page loads)."""

        index: int
        row: Any | None

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.total = 0
        self.cursor = 0
        self.generation = 0
        self.selected: dict[str, int] = {}  # tagged: consumer_id -> its open findings, in tagging order
        self.today = date.today()            # due dates count from it (the screen sets the session's day)
        self._pages: LRUCache[int, list[Any]] = LRUCache(maxsize=32)
        # Rows of the previous generation keep drawing until their replacement
        # arrives, so a refresh does not flash placeholders.
        self._stale: dict[int, list[Any]] = {}
        self._wanted: set[int] = set()
        # Rendered lines: the screen repaints the whole queue whenever the detail
        # beside it changes, so a repaint must cost lookups, not rendering.
        self._strips: LRUCache[tuple[Any, ...], Strip] = LRUCache(maxsize=512)
        # (width, top line, focused, style) while a frame is drawn: see render_lines.
        self._frame: tuple[int, int, bool, Style] | None = None

    # --- data in -------------------------------------------------------------------

    def reset(self, total: int, *, cursor: int | None = None, keep_rows: bool = True) -> int:
        """Start a new generation of rows (filter changed, refresh); returns it."""
        self.generation += 1
        self._stale = {page: self._pages[page] for page in list(self._pages.keys())} if keep_rows else {}
        self._pages.clear()
        self._wanted.clear()
        self.total = max(0, total)
        self.virtual_size = Size(self.size.width, self.total)
        if cursor is not None:
            self.cursor = cursor
        self.cursor = min(max(0, self.cursor), max(0, self.total - 1))
        self._keep_cursor_visible()
        self.refresh()
        self._announce()
        return self.generation

    def set_page(self, generation: int, page: int, rows: list[Any]) -> None:
        """Rows of ``page`` read for ``generation`` (ignored if outdated)."""
        if generation != self.generation:
            return
        self._pages.set(page, rows)
        self._stale.pop(page, None)
        self._wanted.discard(page)
        self.refresh()
        if page == self.cursor // PAGE_SIZE:
            self._announce()

    def row_at(self, index: int) -> Any | None:
        """The row at ``index`` if its page is in hand (never reads)."""
        if not 0 <= index < self.total:
            return None
        page, offset = divmod(index, PAGE_SIZE)
        rows = self._pages.get(page)
        if rows is None:
            rows = self._stale.get(page)
        if rows is None or offset >= len(rows):
            return None
        return rows[offset]

    def is_fresh(self, index: int) -> bool:
        """True when the row at ``index`` was read for the current generation (not
        a stale row of the previous one, drawn while the new page loads)."""
        return index // PAGE_SIZE in self._pages

    @property
    def current(self) -> Any | None:
        return self.row_at(self.cursor)

    # --- cursor --------------------------------------------------------------------

    def move_to(self, index: int) -> None:
        """Put the cursor on line ``index`` (clamped) and scroll it into view."""
        if self.total == 0:
            return
        index = min(max(0, index), self.total - 1)
        if index == self.cursor:
            return
        old = self.cursor
        self.cursor = index
        self._keep_cursor_visible()
        self._refresh_index(old)
        self._refresh_index(index)
        self._announce()

    def move_by(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def toggle_selected(self) -> Any | None:
        """Tag or untag the row under the cursor; returns it (None if not loaded)."""
        row = self.current
        if row is None:
            return None
        if row.consumer_id in self.selected:
            del self.selected[row.consumer_id]
        else:
            self.selected[row.consumer_id] = row.open_findings
        self._refresh_index(self.cursor)
        return row

    def select(self, tagged: dict[str, int]) -> None:
        """Tag these consumers (consumer_id -> open findings) besides those tagged."""
        self.selected.update(tagged)
        self.refresh()

    def clear_selection(self) -> None:
        self.selected.clear()
        self.refresh()

    def _announce(self) -> None:
        self.post_message(self.CursorMoved(self.cursor, self.current))

    def _keep_cursor_visible(self) -> None:
        height = max(1, self.scrollable_content_region.height)
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """ScrollView's, except that the scrollbar is repainted only when its thumb
        moves. Over a million rows the thumb moves an eighth of a cell every few
        thousand; a step that scrolls by a line still told the scrollbar its new
        position, which repainted it whole (1 ms of the frame) to the same cells."""
        if self.show_vertical_scrollbar:
            bar = self.vertical_scrollbar
            position = bar.validate_position(new_value)
            if thumb_start(bar, position) == thumb_start(bar, bar.position):
                bar.set_reactive(ScrollBar.position, position)   # the same cells: kept, not drawn
            else:
                bar.position = new_value
        if round(old_value) != round(new_value):
            self.refresh(self.size.region)

    def _refresh_index(self, index: int) -> None:
        y = index - round(self.scroll_y)
        if 0 <= y < self.size.height:
            self.refresh_line(y)

    # --- rendering -----------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, self.total)
        self._keep_cursor_visible()

    def render_lines(self, crop: Region) -> list[Strip]:
        """The lines of a frame. What every line needs is worked out once for the
        frame, not once per line: the widget's style walks its ancestors, and that
        was half of what a scrolled queue's repaint cost."""
        self._frame = self._frame_values()
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def _frame_values(self) -> tuple[int, int, bool, Style]:
        return self.scrollable_content_region.width, round(self.scroll_y), self.has_focus, self.rich_style

    def render_line(self, y: int) -> Strip:
        width, top, focused, base = self._frame or self._frame_values()
        index = top + y
        if index >= self.total:
            return Strip.blank(width, base)
        page = index // PAGE_SIZE
        if page not in self._pages:
            self._want(page)  # stale rows (if any) draw until it arrives
        elif y == self.size.height - 1 or y == 0:
            # Read ahead at the edges of the view, so stepping past them does not
            # wait for a page.
            for near in (page - 1, page + 1):
                if 0 <= near * PAGE_SIZE < self.total and near not in self._pages:
                    self._want(near)
        row = self.row_at(index)
        is_cursor = index == self.cursor
        key = (row, width, is_cursor and focused, is_cursor, row is not None and row.consumer_id in self.selected,
               base, self.today)
        strip = self._strips.get(key)
        if strip is None:
            if row is None:
                text = Text(_cell("  …", width), style=self.get_component_rich_style("queue--placeholder"))
            else:
                text = self._line(row, width, is_cursor)
            if is_cursor:
                text.stylize(self.get_component_rich_style("queue--cursor"))
            segments = glue_spaces(text.render(self.app.console))
            strip = Strip(segments).crop_extend(0, width, base).apply_style(base)
            if row is not None:
                self._strips.set(key, strip)
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def _want(self, page: int) -> None:
        if page not in self._wanted:
            self._wanted.add(page)
            self.post_message(self.PageWanted(self.generation, page))

    def _line(self, row: Any, width: int, is_cursor: bool) -> Text:
        cols = Columns.for_width(width)
        mark = "*" if row.consumer_id in self.selected else " "
        text = Text(no_wrap=True, end="")
        text.append(mark, self.get_component_rich_style("queue--selected"))
        text.append("›" if is_cursor else " ")
        text.append(_cell(verdict_text(row.verdict), cols.verdict),
                    self.get_component_rich_style(verdict_class(row.verdict)))
        # Names come from remote data: shown literally, control characters made visible.
        text.append(_cell(visible(row.legal_name), cols.name, gap=True))
        text.append(_cell(case_cell(row.case_state, row.case_due, self.today), cols.case, gap=True),
                    self.get_component_rich_style("queue--due") if row.case_due else "")
        text.append(_cell(visible(row.tier_name or row.tier_id or "-"), cols.tier, gap=True))
        text.append(_cell(ratio_text(row.worst_ratio), cols.ratio, right=True))
        text.append(_cell(str(row.open_findings), cols.open, right=True))
        return text

    def on_click(self, event: events.Click) -> None:
        index = round(self.scroll_y) + event.y
        if 0 <= index < self.total:
            self.move_to(index)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.total
