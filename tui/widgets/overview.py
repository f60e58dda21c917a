"""The lead's overview drawn as text, every number a link to the queue filter
that lists what it counts.

:func:`overview_lines` lays a :class:`~store.report.LeadOverview` out for a
width (two columns at the bottom when there is room, one otherwise) as lines of
Rich text and the positions of its links; :class:`OverviewView` draws those
lines and highlights the link under its cursor. It never reads the database.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from store.deadlines import due_short
from store.report import Count, LeadOverview, quoted
from store.text import month_short, ratio_text, visible
from tui.widgets.queue import case_cell, case_text

CELL = 5            # a month's (or a week's) column
LABEL = 15          # the row labels of the tables
CHART_ROWS = 2      # height of the findings chart, in lines of eighths
EIGHTHS = " ▁▂▃▄▅▆▇█"
TWO_COLUMNS = 78    # from this width, the last two sections side by side
SECOND_COLUMN = 40


@dataclass(frozen=True)
class Link:
    """A number on line ``line``, cells ``start`` to ``end``, and its queue filter."""

    line: int
    start: int
    end: int
    filter: str
    label: str


class _Lines:
    """Lines of text being laid out, with the links on them."""

    def __init__(self) -> None:
        self.lines: list[Text] = [Text(no_wrap=True, end="")]
        self.links: list[Link] = []

    @property
    def col(self) -> int:
        return self.lines[-1].cell_len

    def text(self, value: str, style: str = "") -> None:
        self.lines[-1].append(value, style)

    def pad(self, column: int) -> None:
        if self.col < column:
            self.text(" " * (column - self.col))

    def link(self, value: str, count: Count, *, style: str = "") -> None:
        start = self.col
        self.text(value, style)
        self.links.append(Link(len(self.lines) - 1, start, self.col, count.filter, count.label))

    def newline(self) -> None:
        self.lines.append(Text(no_wrap=True, end=""))

    def title(self, value: str, *, gap: bool = False) -> None:
        if self.col:
            self.newline()
        if gap:
            self.newline()
        self.text(value, "bold underline")
        self.newline()

    def merged(self, right: _Lines, at: int, first: int | None = None) -> None:
        """Put ``right``'s lines from line ``first`` (default: the last), column ``at``."""
        first = len(self.lines) - 1 if first is None else first
        while len(self.lines) - first < len(right.lines):
            self.newline()
        for n, line in enumerate(right.lines):
            target = self.lines[first + n]
            if target.cell_len < at:
                target.append(" " * (at - target.cell_len))
            target.append_text(line)
        self.links += [replace(k, line=k.line + first, start=k.start + at, end=k.end + at) for k in right.links]


def overview_lines(o: LeadOverview, width: int) -> tuple[list[Text], list[Link]]:
    """The overview laid out for ``width`` cells: lines and links (see module docstring)."""
    out = _Lines()
    today = date.fromisoformat(o.today)
    out.title(f"Cases ({o.today}, UTC)")
    for count in o.cases:
        chip = f"{count.label} "
        if out.col and out.col + len(chip) + len(f"{count.value:,}") + 3 > width:
            out.newline()
        out.text("  " if out.col else "", "")
        out.text(chip, "dim")
        out.link(f"{count.value:,}", count, style="bold" if count.value else "")
    out.newline()
    out.newline()
    out.text("Replies", "bold underline")
    out.text("  awaiting ", "dim")
    out.link(f"{o.awaiting.value:,}", o.awaiting, style="bold")
    out.text("  overdue ", "dim")
    out.link(f"{o.overdue.value:,}", o.overdue, style="bold")
    for d in o.overdue_cases[:3]:
        out.newline()
        out.text("  ")
        out.link(due_short(d.due_date, today), Count(d.consumer_id, d.days_left, f"id:{quoted(d.consumer_id)}"),
                 style="bold")
        out.text(f"  {visible(d.legal_name)[:max(8, width - 48)]}  case #{d.case_id}, "
                 f"{d.items_pending} of {d.items} items open")
    _findings(out, o)
    left, right = _top(o), _reviewers(o)
    out.newline()
    out.newline()
    if width >= TWO_COLUMNS:
        first = len(out.lines) - 1
        out.merged(left, at=0, first=first)
        out.merged(right, at=SECOND_COLUMN, first=first)
    else:
        out.merged(left, at=0)
        out.newline()
        out.merged(right, at=0)
    while out.lines and not out.lines[-1].cell_len:
        out.lines.pop()
    out.links.sort(key=lambda k: (k.line, k.start))
    return out.lines, out.links


def _findings(out: _Lines, o: LeadOverview) -> None:
    out.title("Findings per month (not dismissed)", gap=True)
    if not o.months:
        out.text("no findings yet", "dim")
        return
    most = max(c.value for c in o.month_totals) or 1
    levels = CHART_ROWS * 8
    heights = [round(c.value * levels / most) if c.value else 0 for c in o.month_totals]
    for row in range(CHART_ROWS - 1, -1, -1):
        out.text(" " * LABEL)
        for h in heights:
            part = min(8, max(0, h - row * 8))
            out.text(f"{'':1}{EIGHTHS[part] * 3:<3}{'':1}")
        out.newline()
    out.text(f"{'':<{LABEL}}", "dim")
    for m in o.months:
        out.text(f"{month_short(m):>{CELL - 1}} ", "dim")
    out.newline()
    out.text(f"{'all':<{LABEL}}", "bold")
    for count in o.month_totals:
        out.text(" " * (CELL - 1 - len(_short(count.value))))
        out.link(_short(count.value), count, style="bold")
        out.text(" ")
    for cat in o.categories:
        out.newline()
        label = cat.category.replace("_", " ")
        out.text(f"{label if len(label) < LABEL else label[:LABEL - 2] + '…':<{LABEL}}")
        for count in cat.counts:
            out.text(" " * (CELL - 1 - len(_short(count.value))))
            out.link(_short(count.value), count, style="" if count.value else "dim")
            out.text(" ")


def _short(n: int) -> str:
    """A count in at most four cells: 812, 9999, 12k, 3.4M."""
    if n < 10_000:
        return str(n)
    if n < 1_000_000:
        return f"{n // 1000}k"
    return f"{n / 1_000_000:.1f}M" if n < 10_000_000 else f"{n // 1_000_000}M"


def _top(o: LeadOverview) -> _Lines:
    part = _Lines()
    today = date.fromisoformat(o.today)
    part.title("Largest overage")
    if not o.top:
        part.text("no consumer over a limit", "dim")
    for t in o.top:
        part.link(f"{ratio_text(t.worst_ratio):>8}", Count(t.consumer_id, 0, t.filter), style="bold")
        part.text(f" {visible(t.legal_name)[:20]:<20} ")
        part.text(case_cell(t.case_state, None, today) or case_text(t.case_state), "dim")
        part.newline()
    return part


def _reviewers(o: LeadOverview) -> _Lines:
    part = _Lines()
    part.title("Decisions per reviewer per week")
    part.text(f"{'':<12}", "dim")
    for w in o.weeks:
        part.text(f"{'W' + w[-2:]:>{CELL}}", "dim")
    part.newline()
    if not o.reviewers:
        part.text("no decisions in these weeks", "dim")
    for r in o.reviewers[:6]:
        part.text(f"{visible(r.reviewer)[:11]:<12}")
        for count in r.counts:
            part.text(" " * (CELL - len(_short(count.value))))
            part.link(_short(count.value), count, style="" if count.value else "dim")
        part.newline()
    return part


class OverviewView(ScrollView, can_focus=True):
    """The overview's lines, a cursor on one of its links."""

    DEFAULT_CSS = """
    OverviewView { overflow-x: hidden; overflow-y: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.overview: LeadOverview | None = None
        self.lines: list[Text] = []
        self.links: list[Link] = []
        self.cursor = 0

    def show(self, overview: LeadOverview) -> None:
        self.overview = overview
        self._lay_out()

    def _lay_out(self) -> None:
        if self.overview is None:
            return
        width = max(40, self.scrollable_content_region.width)
        self.lines, self.links = overview_lines(self.overview, width)
        self.cursor = min(self.cursor, max(0, len(self.links) - 1))
        self.virtual_size = Size(width, len(self.lines))
        self.refresh()

    def on_resize(self) -> None:
        self._lay_out()

    @property
    def current(self) -> Link | None:
        return self.links[self.cursor] if 0 <= self.cursor < len(self.links) else None

    def move_link(self, step: int) -> None:
        if self.links:
            self.cursor = (self.cursor + step) % len(self.links)
            self._follow()

    def move_line(self, step: int) -> None:
        """To the link on the next (previous) line with links, nearest in column."""
        here = self.current
        if here is None:
            return
        lines = sorted({k.line for k in self.links})
        at = lines.index(here.line) + step
        if not 0 <= at < len(lines):
            return
        candidates = [n for n, k in enumerate(self.links) if k.line == lines[at]]
        self.cursor = min(candidates, key=lambda n: abs(self.links[n].start - here.start))
        self._follow()

    def _follow(self) -> None:
        here = self.current
        if here is not None:
            self.scroll_to_region_line(here.line)
        self.refresh()

    def scroll_to_region_line(self, line: int) -> None:
        height = max(1, self.scrollable_content_region.height)
        top = round(self.scroll_y)
        if line < top:
            self.scroll_to(y=line, animate=False)
        elif line >= top + height:
            self.scroll_to(y=line - height + 1, animate=False)

    def render_line(self, y: int) -> Strip:
        index = round(self.scroll_y) + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if index >= len(self.lines):
            return Strip.blank(width, base)
        line = self.lines[index]
        here = self.current
        if here is not None and here.line == index and self.has_focus:
            line = line.copy()
            line.stylize("reverse bold", here.start, here.end)
        return Strip(list(line.render(self.app.console))).crop_extend(0, width, base).apply_style(base)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
