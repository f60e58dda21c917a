"""The selected consumer: usage against its limits, apps, findings, decisions, note.

A worker reads the consumer's case and chart from :mod:`store.cases` (which
decides which period and which cap to chart) and hands them over as a
:class:`Detail` (plain values); :class:`DetailPane` only draws one. Every string
that came from data is drawn with :func:`tui.text.literal`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from store.cases import Case, Chart, ChartWindow, Finding
from store.casework.timeline import CaseView
from store.deadlines import due_short
from store.domain import CASE_OUTCOMES, CATEGORIES, ITEM_STATES, OPEN_STATUSES
from store.notes.wording import human_date, worst_day
from store.text import ratio_text, visible
from store.twins import pair_twins
from tui.text import glue_spaces, literal, number, wrap_lines
from tui.widgets.chart import day_columns, human, month_bars
from tui.widgets.pairs import pair, wrap_pairs
from tui.widgets.queue import case_text

# A requested item's state as glyph + word (the checklist; never colour alone).
ITEM_GLYPHS: dict[str, str] = {"open": "○", "answered": "✓", "partly_answered": "◐", "refused": "✗"}


def item_text(state: str) -> str:
    """``"◐ partly answered"`` for the item state ``"partly_answered"``."""
    return f"{ITEM_GLYPHS.get(state, '?')} {ITEM_STATES.get(state, visible(state))}"


# Finding statuses as glyph + word (never colour alone).
STATUS_GLYPHS: dict[str, str] = {
    "candidate": "● candidate",
    "needs_info": "? needs info",
    "confirmed": "▲ confirmed",
    "dismissed": "✗ dismissed",
    "audit_requested": "✉ audit requested",
    "resolved": "✓ resolved",
}


# A finding's entry in the pane: status (18 characters), severity (9), then its
# label, which starts with ``#id ``.
FINDING_LABEL_COLUMN = 27
_FINDING_ENTRY = re.compile(r"#(\d+) ")


@dataclass(frozen=True)
class OpenFinding:
    id: int
    label: str
    twins: tuple[int, ...] = ()     # circumvention findings over the same figures: one entry


@dataclass
class Detail:
    """Everything the pane draws for one consumer (read in a worker)."""

    consumer: Case
    chart: ChartWindow            # resolved: year (and month) filled in
    metrics: tuple[str, ...]
    series: list[tuple[str, int]]
    chart_limit: int | None       # cap per bar (month or day)
    period_total: int | None      # the whole chart period (year or month)
    period_cap: int | None
    open_findings: list[OpenFinding] = field(default_factory=list)
    versions: dict[int, int] = field(default_factory=dict)
    case_file: CaseView | None = None     # its latest case after a letter (store.casework)
    today: str = ""                       # for "due 3d" (the session's clock)

    @classmethod
    def of(cls, case: Case, chart: Chart, case_file: CaseView | None = None, today: str = "") -> Detail:
        """What the pane draws of ``case`` and its ``chart`` (from :mod:`store.cases`)
        and its latest case after a letter (:func:`store.casework.timeline.case_view`)."""
        return cls(
            consumer=case, chart=chart.window, metrics=chart.metrics, series=chart.points,
            chart_limit=chart.limit, period_total=chart.period_total, period_cap=chart.period_cap,
            open_findings=open_findings(case.findings),
            versions={f.id: f.version for f in case.findings}, case_file=case_file, today=today,
        )


def _fit(text: str, width: int, *, pad: bool = True) -> str:
    """``text`` cut to ``width`` terminal cells with an ellipsis (wide characters
    counted as two), padded to the width unless ``pad`` is False."""
    if cell_len(text) > width:
        text = set_cell_size(text, max(0, width - 1)).rstrip() + "…"
    return set_cell_size(text, width) if pad else text


def open_findings(findings: list[Finding]) -> list[OpenFinding]:
    """The open findings as the decision dialogs offer them: a finding and its open
    circumvention twin (store.twins) as one entry naming both."""
    waiting = [f for f in findings if f.status in OPEN_STATUSES]
    pairs = {twin: primary for twin, primary in pair_twins(waiting).items()}
    twins_of: dict[int, list[int]] = {}
    for twin, primary in pairs.items():
        twins_of.setdefault(primary, []).append(twin)
    entries = []
    for f in waiting:
        if f.id in pairs:
            continue
        twins = tuple(sorted(twins_of.get(f.id, ())))
        label = finding_label(f)
        if twins:
            # Both named first, where a narrow dialog does not cut them off.
            head = f"#{f.id} {CATEGORIES.get(f.category, f.category)}"
            label = (f"#{f.id}" + "".join(f" + #{t}" for t in twins) + f" {CATEGORIES.get(f.category, f.category)}"
                     + " + circumvention" + label[len(visible(head)):])
        entries.append(OpenFinding(f.id, label, twins))
    return entries


def finding_label(f: Finding) -> str:
    """``#12 Volume cap exceeded 2022: 780,123,456 / 120,000,000 calls (6.50x)``; a
    daily limit as the letter says it: ``#7 Rate limit exceeded, worst day 2
    October 2022: 2,272,400 / 1,000,000 calls a day (2.27x)``."""
    category = CATEGORIES.get(f.category, f.category)
    day = worst_day(f)
    if day is not None and f.actual is not None and f.limit_value:
        label = (f"#{f.id} {category}, worst day {human_date(day)}: {number(f.actual)} / "
                 f"{number(f.limit_value)} {f.metric or ''} a day ({ratio_text(f.ratio)})")
        return visible(label)
    label = f"#{f.id} {category} {f.period}"
    if f.actual is not None and f.limit_value:
        label += f": {number(f.actual)} / {number(f.limit_value)} {f.metric or ''}"
        label += f" ({ratio_text(f.ratio)})"
    return visible(label)


class DetailPane(ScrollView, can_focus=True):
    """The right-hand (or, when narrow, lower) pane.

    Drawn line by line: stepping to the next consumer changes only this
    widget's lines and virtual size, so the screen is not laid out again (a
    pane of Static children would be). A consumer's text is wrapped to the
    width once (which gives its height); a line is rendered to a strip only
    when it is first drawn, so a long case (dozens of findings, its decisions,
    the note) costs what the screen shows, not its length.

    Focused (``tab``), it has a cursor on the consumer's open findings, drawn
    reversed: ``j`` / ``k`` move it, ``pgdn`` / ``pgup`` by ten, ``g`` / ``G`` to
    the first and last; a decision key then offers the finding under it alone
    (:attr:`finding_id`). ``esc`` goes back to the queue.
    """

    BINDINGS = [
        Binding("j,down", "finding(1)", "Next open finding", id="detail.next_finding", show=False),
        Binding("k,up", "finding(-1)", "Previous open finding", id="detail.previous_finding", show=False),
        Binding("pagedown", "finding(10)", "Ten open findings on", id="detail.findings_down", show=False),
        Binding("pageup", "finding(-10)", "Ten open findings back", id="detail.findings_up", show=False),
        Binding("g,home", "finding_at(0)", "First open finding", id="detail.first_finding", show=False),
        Binding("G,end", "finding_at(-1)", "Last open finding", id="detail.last_finding", show=False),
        Binding("escape", "screen.focus_queue", "Back to the queue", id="detail.back", show=False),
    ]
    CURSOR = Style(reverse=True, bold=True)

    DEFAULT_CSS = """
    DetailPane {
        overflow-x: hidden;
        overflow-y: auto;
        /* The lines are laid out for the width: a scrollbar that comes and goes
           with the content would cut them. */
        scrollbar-gutter: stable;
    }
    """
    SECTION = "bold underline"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._text = Text("")
        self._lines: list[Text] = []               # the text wrapped to the width
        self._strips: dict[int, Strip] = {}        # the lines drawn so far, rendered
        self._base = Style()                       # the pane's own style, under every line
        self._width = 0
        self._detail: Detail | None = None
        self._open: list[int] = []              # the open findings' ids, in the order shown
        self._cursor = 0                        # index into _open
        self._finding_lines: dict[int, int] = {}   # open finding id -> the line its entry starts on
        self._entry_starts: set[int] = set()       # the lines where any finding's entry starts
        self._frame: tuple[int, int, range] | None = None   # while a frame is drawn: see render_lines

    @property
    def text(self) -> str:
        """What the pane shows, as plain text (for tests)."""
        return self._text.plain

    @property
    def lines(self) -> list[str]:
        """What the pane shows, line by line as laid out for its width (for tests)."""
        return [line.plain.rstrip() for line in self._lines]

    @property
    def rendered(self) -> int:
        """How many of its lines have been rendered so far (each when first drawn)."""
        return len(self._strips)

    @property
    def finding_id(self) -> int | None:
        """The open finding under the cursor (None: the consumer has none)."""
        return self._open[self._cursor] if self._open else None

    @property
    def cursor_line(self) -> int | None:
        """The line the cursor's finding starts on."""
        fid = self.finding_id
        return None if fid is None else self._finding_lines.get(fid)

    def _cursor_span(self) -> range:
        """The lines of the finding under the cursor: from its first to the line
        before the next entry or the blank line that ends the section."""
        start = self.cursor_line
        if start is None:
            return range(0)
        end = start + 1
        while end < len(self._lines) and end not in self._entry_starts and self._lines[end].plain.strip():
            end += 1
        return range(start, end)

    def findings_order(self) -> list[int]:
        """The open findings' ids in the order the cursor walks them."""
        return list(self._open)

    # --- the findings cursor -----------------------------------------------------------

    def action_finding(self, delta: int) -> None:
        self._move_cursor(self._cursor + delta)

    def action_finding_at(self, index: int) -> None:
        self._move_cursor(index if index >= 0 else len(self._open) + index)

    def _move_cursor(self, index: int) -> None:
        if not self._open:
            return
        self._cursor = min(max(0, index), len(self._open) - 1)
        line = self.cursor_line
        if line is not None:
            height = max(1, self.scrollable_content_region.height)
            if not self.scroll_y <= line < self.scroll_y + height - 1:
                self.scroll_to(y=max(0, line - height // 3), animate=False, immediate=True)
        self.refresh()

    def on_focus(self) -> None:
        self._move_cursor(self._cursor)

    def on_blur(self) -> None:
        self.refresh()

    def _put(self, text: Text, *, keep_place: bool = False) -> None:
        self._text = text
        self._layout_lines()
        if keep_place:
            self._move_cursor(self._cursor)
        else:
            self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()

    def _layout_lines(self) -> None:
        width = max(1, self.scrollable_content_region.width)
        self._width = width
        self._lines = wrap_lines(self._text, self.app.console, width)
        self._strips = {}
        self._base = self.rich_style
        # Where each open finding's entry starts (its label follows the status and
        # severity columns), for the cursor.
        wanted = set(self._open)
        self._finding_lines = {}
        self._entry_starts: set[int] = set()
        for line, text in enumerate(self._lines):
            found = _FINDING_ENTRY.match(text.plain[FINDING_LABEL_COLUMN:])
            if found:
                self._entry_starts.add(line)
                if int(found[1]) in wanted and int(found[1]) not in self._finding_lines:
                    self._finding_lines[int(found[1])] = line
        # Rounded up, so most steps keep the same virtual size (and scrollbar).
        height = max(self.size.height, -(-len(self._lines) // 16) * 16)
        self._set_virtual_size(Size(width, height))

    def _set_virtual_size(self, size: Size) -> None:
        """Set the scrollable size, laying out the screen only when that changes
        what the layout holds: whether the scrollbar shows, or the width.

        Assigning ``virtual_size`` lays out the whole screen (and repaints every
        widget whose geometry it touches): a step to the next consumer would pay
        for that. A scroll view's own virtual size is not part of the layout (the
        compositor sizes the pane by its CSS); only its scrollbar is, when it comes
        or goes. Otherwise the new height goes to the scrollbar's thumb alone.
        """
        if size == self.virtual_size:
            return
        bar = size.height > self.container_size.height  # overflow-y: auto
        if size.width != self.virtual_size.width or bar != self.show_vertical_scrollbar:
            self.virtual_size = size
            return
        self.set_reactive(DetailPane.virtual_size, size)
        if bar:
            self.vertical_scrollbar.window_virtual_size = size.height
        if self.scroll_y > self.max_scroll_y:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)

    def on_resize(self, event: events.Resize) -> None:
        if self.scrollable_content_region.width != self._width:
            if self._detail is not None:
                # The chart and the apps table are laid out for the width.
                self._text = self._body(self._detail)
            self._layout_lines()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self.is_mounted:
            self._layout_lines()  # the cached lines carry the old style

    def render_lines(self, crop: Region) -> list[Strip]:
        """The lines of a frame, with what every line needs worked out once for it."""
        self._frame = self._frame_values()
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def _frame_values(self) -> tuple[int, int, range]:
        """(width, top line, the cursor's lines when focused) for drawing a frame."""
        return (self.scrollable_content_region.width, round(self.scroll_y),
                self._cursor_span() if self.has_focus else range(0))

    def render_line(self, y: int) -> Strip:
        width, top, cursor = self._frame or self._frame_values()
        index = top + y
        if index >= len(self._lines):
            return Strip.blank(width, self._base)
        strip = self._strips.get(index)
        if strip is None:
            # Padded to the width and styled once, so a repaint is a dict lookup.
            line = Segment.adjust_line_length(glue_spaces(self._lines[index].render(self.app.console, end="")),
                                              self._width, style=self._base)
            strip = self._strips[index] = Strip(Segment.apply_style(line, self._base), self._width)
        if index in cursor:
            strip = Strip([Segment(seg.text, (seg.style or Style()) + self.CURSOR, seg.control) for seg in strip])
        return strip if strip.cell_length == width else strip.crop_extend(0, width, self._base)

    def show_empty(self, message: str) -> None:
        self._detail = None
        self._open = []
        self._put(Text(message))

    def show(self, d: Detail | None) -> None:
        if d is None:
            self.show_empty("This consumer is gone (deleted by another session?). Press r.")
            return
        same = self._detail is not None and self._detail.consumer.id == d.consumer.id
        under = self.finding_id
        self._open = [f.id for f in d.open_findings]
        # The same consumer again (after a decision): the cursor stays at its place.
        self._cursor = (self._open.index(under) if under in self._open else min(self._cursor, len(self._open) - 1)
                        ) if same and self._open else 0
        self._detail = d
        self._put(self._body(d), keep_place=same and self.has_focus)

    def _body(self, d: Detail) -> Text:
        c = d.consumer
        width = max(30, self.scrollable_content_region.width - 1)
        body = Text(end="")
        body.append_text(wrap_pairs([pair("", literal(c.legal_name, "bold")), pair("", literal(c.id, "dim"))],
                                    width))
        body.append("\n")

        def value(v: str | None) -> Text:
            return literal(v) if v else Text("none declared", "italic", end="")

        facts = [("tier", c.tier.name if c.tier else c.tier_id), ("agreement", c.agreement_version),
                 ("contact", c.notice_contact), ("use case", c.declared_use_case),
                 ("government end users", c.government_end_users)]
        body.append_text(wrap_pairs([pair(label, value(v)) for label, v in facts], width))
        body.append("\n")
        if c.tier and c.tier.limits:
            limits = [f"{human(lim.max_value)} {visible(lim.metric)}/{lim.period}" for lim in c.tier.limits]
            body.append_text(wrap_pairs([pair("limits" if n == 0 else "", text + ("," if n < len(limits) - 1 else ""))
                                         for n, text in enumerate(limits)], width, gap=" "))
            body.append("\n")
        if d.case_file is not None:
            body.append("\nCase\n", self.SECTION)
            body.append_text(self._case(d))
            body.append("\n")
        body.append("\n")
        body.append_text(self._chart_title(d))
        body.append("\n")
        if d.chart.grain == "month":
            body.append_text(month_bars(d.series, d.chart_limit, width))
        else:
            body.append_text(day_columns(d.series, d.chart_limit))
        for title, section in (("Apps", self._apps(c, width)), ("Findings", self._findings(c)),
                               ("Decisions", self._decisions(c)), ("Note", self._note(c))):
            body.append(f"\n\n{title}\n", self.SECTION)
            body.append_text(section)
        return body

    @staticmethod
    def _case(d: Detail) -> Text:
        """The case: its state and due date, the checklist of requested items, the responses."""
        assert d.case_file is not None
        c, text = d.case_file.case, Text(end="")
        text.append(f"#{c.id} {case_text(c.state)}", "bold")
        if c.letter_sent_at:
            text.append(f"  letter note #{c.letter_note_id} sent {c.letter_sent_at[:10]}")
        if c.due_date:
            text.append(f", due {c.due_date}")
            if c.state in ("letter_sent", "response_received") and d.today:
                text.append(f" ({due_short(c.due_date, date.fromisoformat(d.today))})", "bold")
        if c.reopens:
            text.append(f"\nreopens case #{c.reopens}: the same limits broke again", "dim")
        if c.outcome:
            text.append(f"\noutcome: {CASE_OUTCOMES.get(c.outcome, visible(c.outcome))}")
        if c.escalated_to:
            text.append("\nescalated to: ")
            text.append_text(literal(c.escalated_to))
        if d.case_file.items:
            text.append("\nrequested items (a marks them)", "dim")
        for item in d.case_file.items:
            text.append(f"\n  {ITEM_GLYPHS.get(item.state, '?')} {item.number}. {item.title}: "
                        f"{ITEM_STATES.get(item.state, visible(item.state))}",
                        "bold" if item.state in ("open", "partly_answered") else "")
            if item.comment:
                text.append(" — ", "dim")
                text.append_text(literal(item.comment, "dim"))
        if d.case_file.items or c.letter_sent_at:
            text.append("\nresponses (A adds one)" if not d.case_file.responses else "\nresponses", "dim")
        for r in d.case_file.responses:
            text.append(f"\n  #{r.id} received {r.received_on}")
            if r.note:
                text.append(": ")
                text.append_text(literal(r.note))
            for f in r.files:
                text.append("\n    ")
                text.append_text(literal(f.name))
                text.append(f"  {f.bytes:,} bytes  sha256 {f.sha256[:16]}…", "dim")
        return text

    @staticmethod
    def _chart_title(d: Detail) -> Text:
        s = d.chart
        text = Text(end="")
        if s.grain == "month":
            text.append(f"{visible(s.metric)} per month, {s.year} (UTC)", "bold")
            legend = "│ = monthly cap, ▓ = over the cap" if d.chart_limit else "no monthly cap"
            whole = "year"
        else:
            text.append(f"{visible(s.metric)} per day, {s.year}-{(s.month or 0):02d} (UTC)", "bold")
            legend = f"┈ = daily cap {human(d.chart_limit)}, ▓ = over the cap" if d.chart_limit else "no daily cap"
            whole = "month"
        text.append(f"  {legend}", "dim")
        text.append(f"\n{whole} total {number(d.period_total)}")
        if d.period_cap and d.period_total is not None:
            ratio = d.period_total / d.period_cap
            if ratio > 1:
                text.append(f" against a {whole}ly cap of {number(d.period_cap)}: {ratio:.2f}x over", "bold")
            else:
                text.append(f", within the {whole}ly cap of {number(d.period_cap)} ({ratio:.0%} of it)")
        elif not d.period_cap:
            text.append(f" (no {whole}ly cap)", "dim")
        return text

    @staticmethod
    def _apps(c: Case, width: int) -> Text:
        """A plain-text table (a Rich Table re-measures on every frame; this does not).

        The app column holds the app's name (its id when it has none), which is
        what tells a reviewer the apps apart; the source-qualified id follows on a
        dim line of its own, where it has the whole width. Where the names leave
        the use case fewer than 12 cells, it moves to a line of its own too.
        """
        text = Text(no_wrap=True, end="")
        if not c.apps:
            text.append("no apps", "dim")
            return text
        names = [visible(a.name) if a.name else visible(f"{a.source}:{a.app_id}") for a in c.apps]
        # Every line fits ``width``: name, two 7-cell figures, [2 + the use case].
        fixed = 1 + 7 + 1 + 7
        longest = max(cell_len(n) for n in names)
        inline = width - fixed - 2 - longest >= 12
        name_w = max(3, min(longest, width - fixed - (14 if inline else 0)))
        use_w = max(8, width - name_w - fixed - 2 if inline else width - 2)
        text.append(f"{'app':<{name_w}} {'calls':>7} {'records':>7}", "dim")
        if inline:
            text.append("  declared use case" if use_w >= 17 else "  use case", "dim")
        for app, name in zip(c.apps, names):
            use = (literal(_fit(visible(app.declared_use_case), use_w, pad=False)) if app.declared_use_case
                   else Text(_fit("— none declared", use_w, pad=False), "italic"))
            text.append("\n")
            text.append_text(literal(_fit(name, name_w)))
            text.append(f" {human(app.calls):>7} {human(app.records):>7}")
            if inline:
                text.append("  ")
                text.append_text(use)
            if app.name:
                text.append("\n  ")
                text.append_text(literal(_fit(visible(f"{app.source}:{app.app_id}"), max(8, width - 2),
                                              pad=False), "dim"))
            if not inline:
                text.append("\n  ")
                text.append_text(use)
        return text

    @staticmethod
    def _findings(c: Case) -> Text:
        text = Text(end="")
        if not c.findings:
            text.append("no findings", "dim")
        for n, f in enumerate(c.findings):
            if n:
                text.append("\n")
            text.append(STATUS_GLYPHS.get(f.status, visible(f.status)).ljust(FINDING_LABEL_COLUMN - 9),
                        "bold" if f.status in OPEN_STATUSES else "")
            text.append(f"{f.severity:<9}")
            text.append_text(literal(finding_label(f)))
            how = f"rule {f.rule_id}" if f.rule_id else "opened by hand"
            text.append(f"  [{visible(how)}]", "dim")
            if f.evidence:
                text.append("\n    evidence: ", "dim")
                text.append_text(literal(f.evidence))
        return text

    @staticmethod
    def _decisions(c: Case) -> Text:
        text = Text(end="")
        if not c.decisions:
            text.append("no decisions yet", "dim")
        for n, e in enumerate(c.decisions[:20]):
            if n:
                text.append("\n")
            text.append(f"{e.at} ", "dim")
            text.append_text(literal(e.reviewer))
            text.append(f" {e.subject} #{e.subject_id} {visible(e.field)}: ")
            text.append_text(literal(f"{e.old_value or '∅'} → {e.new_value or '∅'}"))
            if e.undoes:
                text.append(f" (undoes #{e.undoes})", "dim")
            if e.reason:
                text.append(" — ")
                text.append_text(literal(e.reason))
        if len(c.decisions) > 20:
            text.append(f"\n… {len(c.decisions) - 20} earlier", "dim")
        return text

    @staticmethod
    def _note(c: Case) -> Text:
        if c.note is None:
            return Text("no note drafted (c drafts one)", "dim")
        n = c.note
        text = Text(end="")
        text.append(f"{n.status}", "bold")
        if n.due_date:
            text.append(f", due {n.due_date}")
        text.append(" — ")
        text.append_text(literal(n.subject))
        for line in n.first_lines:
            text.append("\n")
            text.append_text(literal(line))
        return text
