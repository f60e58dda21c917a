"""The review screen: the queue on the left, the selected consumer on the right.

Every database read or write runs in a thread worker that posts a message; only
the handlers below touch widgets. Queue pages are read by one
``store.queue.QueueReader`` (its own connection and lock, shared by the
workers) so it can reuse the keyset anchors it remembers; other work uses the
worker thread's own connection (``app.connections``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult, SuspendNotSupported, SystemCommand
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.keys import format_key
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from store import cases, notes, review
from store import queue as queue_store
from store.db import connect
from store.errors import ConflictError, WardenError
from store.export import export_notes
from store.queue_filter import QueueFilter, parse_filter
from store.sync.history import sync_summary
from store.text import visible
from tui.modals.choices import FindingOption
from tui.modals.confirm import ConfirmViolation
from tui.modals.dismiss import Dismiss
from tui.modals.export import ExportChoice, ExportNotes
from tui.modals.filter import FilterInput
from tui.modals.help import Help
from tui.modals.manual import ManualFinding
from tui.modals.needs_info import NeedsInfo
from tui.modals.sync import SyncProgress
from tui.screens.note import NoteEditor
from tui.text import literal
from tui.widgets.detail import Detail, DetailPane
from tui.widgets.queue import PAGE_SIZE, QueueView, header_text

if TYPE_CHECKING:
    from tui.app import WardenApp

# Below this width the panes stack (queue above, detail below).
NARROW_WIDTH = 100
# How often to ask SQLite whether another connection committed (PRAGMA data_version).
POLL_SECONDS = 3.0


# --- messages posted by workers ------------------------------------------------------


@dataclass
class QueueCounted(Message):
    total: int
    cursor: int | None
    sync_state: str


@dataclass
class PageLoaded(Message):
    generation: int
    page: int
    rows: list[Any]


@dataclass
class DetailLoaded(Message):
    consumer_id: str
    detail: Detail | None


@dataclass
class Decided(Message):
    """A change was written. ``at``: the queue index the reviewer decided at (the
    cursor stays there); ``consumer_id``: the consumer the cursor goes to (undo);
    neither: the cursor follows the consumer it is on."""

    summary: str
    at: int | None = None
    consumer_id: str | None = None
    decision: bool = False  # from a decision worker (ends one in flight)
    title: str = "Decision recorded"


@dataclass
class DecisionFailed(Message):
    title: str
    message: str
    conflict: bool = False
    decision: bool = False  # from a decision worker (ends one in flight)


@dataclass
class JumpTo(Message):
    index: int | None
    what: str


@dataclass
class SyncProgressed(Message):
    line: str
    sources_done: int
    status: str


@dataclass
class SyncSourceFailed(Message):
    source: str
    error: str
    headline: str = "Sync failed"   # "Sync partial" when the rest is stored


@dataclass
class SyncFinished(Message):
    summary: str


@dataclass
class DataVersion(Message):
    """SQLite's data_version of the queue connection: changes when another
    connection (another session, a cron sync, this app's workers) commits."""

    version: int


@dataclass
class NoteOpened(Message):
    note: Any
    drafted: bool
    where: str  # "app" | "external"


@dataclass
class Problem(Message):
    """A WardenError from a worker, shown as a notification."""

    title: str
    message: str


# --- the screen ---------------------------------------------------------------------

# (key, action, description, id, show in footer). The ids are what a config's
# [keymap] remaps; help and the palette list them all.
KEYS: list[tuple[str, str, str, str, bool]] = [
    ("j,down", "move(1)", "Next consumer", "queue.down", False),
    ("k,up", "move(-1)", "Previous consumer", "queue.up", False),
    ("pagedown", "page(1)", "Page down", "queue.page_down", False),
    ("pageup", "page(-1)", "Page up", "queue.page_up", False),
    ("g,home", "first", "First consumer", "queue.first", False),
    ("G,end", "last", "Last consumer", "queue.last", False),
    ("right_square_bracket", "unreviewed(1)", "Next unreviewed", "queue.next_unreviewed", False),
    ("left_square_bracket", "unreviewed(-1)", "Previous unreviewed", "queue.previous_unreviewed", False),
    ("slash", "filter", "Filter", "queue.filter", True),
    ("escape", "clear_filter", "Clear filter / selection", "queue.clear_filter", False),
    ("o", "cycle_sort", "Change the sort order", "queue.sort", False),
    ("v", "confirm", "Confirm violation", "review.confirm", True),
    ("d", "dismiss_findings", "Dismiss (reason required)", "review.dismiss", True),
    ("i", "needs_info", "Needs info", "review.needs_info", True),
    ("u", "undo", "Undo my last decision", "review.undo", True),
    ("space", "select", "Select for bulk", "review.select", False),
    ("m", "manual_finding", "Open a finding by hand", "review.manual_finding", False),
    ("c", "draft_note", "Draft audit-request note", "notes.draft", False),
    ("e", "edit_note", "Edit note in $EDITOR", "notes.edit", False),
    ("x", "export", "Export notes", "notes.export", False),
    ("R", "sync", "Sync now", "sync.now", False),
    ("r", "refresh", "Refresh from the database", "queue.refresh", False),
    ("y", "copy_id", "Copy consumer id", "queue.copy_id", False),
    ("p", "toggle_detail", "Show / hide detail", "view.toggle_detail", False),
    ("J,ctrl+d", "detail_scroll(1)", "Scroll the detail down", "detail.down", False),
    ("K,ctrl+u", "detail_scroll(-1)", "Scroll the detail up", "detail.up", False),
    ("t", "chart_grain", "Chart: months / days", "chart.grain", False),
    ("s", "chart_metric", "Chart: next metric", "chart.metric", False),
    ("less_than_sign,comma", "chart_shift(-1)", "Chart: earlier period", "chart.earlier", False),
    ("greater_than_sign,full_stop", "chart_shift(1)", "Chart: later period", "chart.later", False),
    ("question_mark", "help", "Help: every key", "app.help", True),
    ("q", "quit", "Quit", "app.quit", True),
]

# Short labels for the footer (80 columns hold these seven and the palette).
FOOTER_LABELS: dict[str, str] = {
    "queue.filter": "Filter",
    "review.confirm": "Confirm",
    "review.dismiss": "Dismiss",
    "review.needs_info": "Info",
    "review.undo": "Undo",
    "app.help": "Help",
    "app.quit": "Quit",
}


class ReviewScreen(Screen[None]):
    """Step through the queue, read the evidence, decide."""

    BINDINGS = [
        Binding(key, action, FOOTER_LABELS.get(binding_id, description), show=show, id=binding_id,
                tooltip=description)
        for key, action, description, binding_id, show in KEYS
    ]

    def __init__(self) -> None:
        super().__init__()
        self.query_spec = queue_store.QueueQuery()
        self.total = 0
        self.sync_state = ""
        self.chart = cases.ChartWindow()
        self.detail_for: str | None = None
        self.detail: Detail | None = None
        self.syncing: threading.Event | None = None
        self.sync_modal: SyncProgress | None = None
        self._sync_lines: list[str] = []
        self._sync_done = 0
        self._queue_reader = queue_store.QueueReader(lambda: connect(self.warden.db_path))
        self._data_version: int | None = None
        # Where the latest reload puts the cursor: (consumer to follow or None, index
        # to use when there is none or it is gone), and whether its count is still
        # in flight (until then the rows on screen are the old order's).
        self._place: tuple[str | None, int] = (None, 0)
        self._reloading = False
        self._deciding = 0  # decision workers in flight: their Decided reloads

    @property
    def warden(self) -> WardenApp:
        return self.app  # type: ignore[return-value]

    @property
    def settled(self) -> bool:
        """Rows of the current generation on screen and the detail of the cursor's
        consumer shown (tests, screenshots and the benchmark wait for this)."""
        queue = self.query_one(QueueView)
        if queue.total == 0:
            return True
        row = queue.current
        return (row is not None and queue.is_fresh(queue.cursor) and self.detail is not None
                and self.detail.consumer.id == row.consumer_id)

    # --- layout ----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="status-line")
        with Container(id="panes"):
            with Vertical(id="queue-pane"):
                yield Static(id="queue-columns")
                yield QueueView(id="queue")
            yield DetailPane(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(QueueView).focus()
        self._show_status()
        self.reload_queue()
        # Other sessions' decisions and cron syncs show up without a key press.
        self.set_interval(POLL_SECONDS, self._poll_changes)

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW_WIDTH, "-narrow")
        self.call_after_refresh(self._show_columns)

    def _show_columns(self) -> None:
        queue = self.query_one(QueueView)
        self.query_one("#queue-columns", Static).update(header_text(queue.scrollable_content_region.width))

    def _show_status(self) -> None:
        queue = self.query_one(QueueView)
        position = f"{queue.cursor + 1:,} / {self.total:,}" if self.total else "0 / 0"
        line = Text(no_wrap=True, end="")
        line.append(" warden ", "bold reverse")
        line.append(f" {position} ")
        if queue.selected:
            line.append(f" {len(queue.selected):,} selected ", "bold")
        sort = self.query_spec.sort
        line.append(f" sort:{sort} ")
        text = self.query_spec.filter.text
        line.append(" filter: ")
        line.append_text(literal(text) if text else Text("none", "dim"))
        if self.sync_state:
            line.append("  sync: ")
            line.append_text(literal(self.sync_state))
        # Always one line high: no layout needed, so no repaint of the whole screen.
        self.query_one("#status-line", Static).update(line, layout=False)

    # --- the queue -------------------------------------------------------------------

    def reload_queue(self, *, follow: bool = True, at: int | None = None,
                     consumer_id: str | None = None) -> None:
        """Recount in a worker; pages follow. Where the cursor lands:

        - ``at``: that index, whatever consumer is there now (after a decision the
          reviewer keeps their place, as in a mail reader);
        - ``consumer_id``: that consumer, wherever it is now (after an undo);
        - ``follow`` (a refresh, another session's change, a sync): the consumer
          it is on, wherever the new order puts it;
        - else the top (a new filter or sort).
        """
        queue = self.query_one(QueueView)
        if at is not None:
            place: tuple[str | None, int] = (None, at)
        elif consumer_id is not None:
            place = (consumer_id, queue.cursor)
        elif not follow:
            place = (None, 0)
        elif self._reloading:
            # The rows on screen are the old order's until the count in flight
            # lands: the row under the cursor is not where the reviewer will be,
            # so this reload keeps that one's aim.
            place = self._place
        elif queue.is_fresh(queue.cursor) and queue.current is not None:
            place = (queue.current.consumer_id, queue.cursor)
        else:
            # Its page is still loading: the consumer the last reload aimed at.
            place = (self._place[0], queue.cursor)
        self._place = place
        self._reloading = True
        self._count(self.query_spec, *place)

    @work(thread=True, exclusive=True, group="count")
    def _count(self, spec: queue_store.QueueQuery, keep: str | None, cursor: int) -> None:
        reader = self._queue_reader
        total = reader.count(spec)
        position = reader.position_of(spec, keep) if keep else None
        if reader.closed:
            return
        sync_state = sync_summary(self.warden.connections.get())
        if get_current_worker().is_cancelled:
            return
        self.post_message(QueueCounted(total, position if position is not None else cursor, sync_state))

    def on_queue_counted(self, message: QueueCounted) -> None:
        self._reloading = False
        self.total = message.total
        self.sync_state = message.sync_state
        queue = self.query_one(QueueView)
        queue.reset(message.total, cursor=message.cursor)
        self._show_columns()
        self._show_status()
        if message.total == 0:
            self.detail_for = None
            self.query_one(DetailPane).show_empty(
                "No consumers match this filter." if not self.query_spec.filter.is_empty
                else "No consumers yet: press R to sync, or run `warden sync`."
            )

    def on_queue_view_page_wanted(self, message: QueueView.PageWanted) -> None:
        self._load_page(self.query_spec, message.generation, message.page)

    @work(thread=True, group="pages")
    def _load_page(self, spec: queue_store.QueueQuery, generation: int, page: int) -> None:
        rows = self._queue_reader.page(spec, page * PAGE_SIZE, PAGE_SIZE)
        if self._queue_reader.closed:
            return
        self.post_message(PageLoaded(generation, page, rows))

    def on_page_loaded(self, message: PageLoaded) -> None:
        self.query_one(QueueView).set_page(message.generation, message.page, message.rows)

    def on_queue_view_cursor_moved(self, message: QueueView.CursorMoved) -> None:
        self._show_status()
        row = message.row
        if row is None or not self.query_one(QueueView).is_fresh(message.index):
            return  # its page is on the way; set_page announces the cursor again
        if row.consumer_id != self.detail_for:
            self.detail_for = row.consumer_id
            self.chart = cases.ChartWindow()
            self._load_detail(row.consumer_id, self.chart)

    def refresh_detail(self) -> None:
        if self.detail_for is not None:
            self._load_detail(self.detail_for, self.chart)

    @work(thread=True, exclusive=True, group="detail")
    def _load_detail(self, consumer_id: str, chart: cases.ChartWindow) -> None:
        conn = self.warden.connections.get()
        case = cases.read_case(conn, consumer_id)
        detail = None if case is None else Detail.of(case, cases.chart_of(conn, case, chart,
                                                                          today=self.warden.clock()))
        if get_current_worker().is_cancelled:
            return
        self.post_message(DetailLoaded(consumer_id, detail))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        if message.consumer_id != self.detail_for:
            return  # the cursor moved on meanwhile
        self.detail = message.detail
        if message.detail is not None:
            self.chart = message.detail.chart
        self.query_one(DetailPane).show(message.detail)

    # --- navigation ------------------------------------------------------------------

    def action_move(self, delta: int) -> None:
        self.query_one(QueueView).move_by(delta)

    def action_page(self, direction: int) -> None:
        queue = self.query_one(QueueView)
        queue.move_by(direction * max(1, queue.scrollable_content_region.height - 1))

    def action_first(self) -> None:
        self.query_one(QueueView).move_to(0)

    def action_last(self) -> None:
        self.query_one(QueueView).move_to(self.total - 1)

    def action_unreviewed(self, direction: int) -> None:
        self._find_unreviewed(self.query_spec, self.query_one(QueueView).cursor, direction)

    @work(thread=True, exclusive=True, group="jump")
    def _find_unreviewed(self, spec: queue_store.QueueQuery, start: int, direction: int) -> None:
        index = self._queue_reader.next_unreviewed(spec, start, direction)
        if self._queue_reader.closed:
            return
        self.post_message(JumpTo(index, "next" if direction > 0 else "previous"))

    def on_jump_to(self, message: JumpTo) -> None:
        if message.index is None:
            self.notify(f"No {message.what} consumer with findings to decide.", title="Queue", markup=False)
            return
        self.query_one(QueueView).move_to(message.index)

    def action_filter(self) -> None:
        self.app.push_screen(FilterInput(self.query_spec.filter.text), self._filter_chosen)

    def _filter_chosen(self, text: str | None) -> None:
        if text is None:
            return
        try:
            flt = parse_filter(text)
        except WardenError as exc:
            self.notify(visible(str(exc)), title=exc.title, severity="error", timeout=8, markup=False)
            return
        self._set_query(queue_store.QueueQuery(flt, self.query_spec.sort))

    def _set_query(self, spec: queue_store.QueueQuery) -> None:
        self.query_spec = spec
        self.reload_queue(follow=False)

    def action_clear_filter(self) -> None:
        queue = self.query_one(QueueView)
        if queue.selected:
            queue.clear_selection()
            self._show_status()
            return
        if not self.query_spec.filter.is_empty:
            self._set_query(queue_store.QueueQuery(QueueFilter(), self.query_spec.sort))

    def action_cycle_sort(self) -> None:
        sorts = list(queue_store.SORTS)
        sort = sorts[(sorts.index(self.query_spec.sort) + 1) % len(sorts)]
        self._set_query(queue_store.QueueQuery(self.query_spec.filter, sort))
        self.notify(f"Sorted by {queue_store.SORTS[sort]}", title="Queue", markup=False)

    def action_refresh(self) -> None:
        if self._deciding:
            # A decision is being written: its Decided reloads and puts the cursor
            # where the reviewer decided; following the consumer now would chase
            # it to its new place in the order.
            return
        self.reload_queue()
        self.refresh_detail()

    def _poll_changes(self) -> None:
        if self._queue_reader.opened and self.app.screen is self:
            self._check_data_version()

    @work(thread=True, exclusive=True, group="poll")
    def _check_data_version(self) -> None:
        version = self._queue_reader.data_version()
        if version is not None:
            self.post_message(DataVersion(version))

    def on_data_version(self, message: DataVersion) -> None:
        changed = self._data_version is not None and message.version != self._data_version
        self._data_version = message.version
        if changed:
            self.action_refresh()

    def on_screen_resume(self) -> None:
        # Back from a modal (or the app regained focus): decisions made in other
        # sessions and syncs run by cron show up.
        if self.is_mounted and self._queue_reader.opened:
            self.action_refresh()

    def action_copy_id(self) -> None:
        row = self.query_one(QueueView).current
        if row is None:
            return
        self.app.copy_to_clipboard(row.consumer_id)
        self.notify(Text.assemble("Copied ", literal(row.consumer_id)).plain, title="Copied", markup=False)

    def action_toggle_detail(self) -> None:
        self.toggle_class("-detail-hidden")
        self.call_after_refresh(self._show_columns)

    def action_detail_scroll(self, direction: int) -> None:
        detail = self.query_one(DetailPane)
        detail.scroll_to(y=detail.scroll_y + direction * max(1, detail.size.height // 2), animate=False)

    # --- chart -----------------------------------------------------------------------

    def action_chart_grain(self) -> None:
        self.chart = self.chart.toggled_grain()
        self.refresh_detail()

    def action_chart_metric(self) -> None:
        metrics = self.detail.metrics if self.detail is not None else ()
        self.chart = self.chart.next_metric(metrics)
        self.refresh_detail()

    def action_chart_shift(self, steps: int) -> None:
        self.chart = self.chart.shifted(steps)
        self.refresh_detail()

    # --- decisions -------------------------------------------------------------------

    def _targets(self) -> tuple[str, list[str]]:
        """(scope line, consumer ids) a decision applies to: the selection, else the cursor."""
        queue = self.query_one(QueueView)
        if queue.selected:
            ids = list(queue.selected)
            return f"{len(ids):,} selected consumers: every open finding", ids
        row = queue.current
        if row is None:
            return "", []
        return f"{visible(row.legal_name)} ({visible(row.consumer_id)})", [row.consumer_id]

    def _open_findings(self) -> list[FindingOption]:
        if self.detail is None or self.query_one(QueueView).selected:
            return []
        return [FindingOption(f.id, f.label) for f in self.detail.open_findings]

    def _seen_versions(self) -> dict[int, int]:
        """The finding versions the reviewer is looking at when a modal opens: a
        decision made against them fails if someone changed a finding meanwhile."""
        return dict(self.detail.versions) if self.detail is not None else {}

    def _decide_precheck(self) -> tuple[str, list[str]] | None:
        scope, ids = self._targets()
        if not ids:
            self.notify("Nothing under the cursor yet.", title="Review", markup=False)
            return None
        if len(ids) == 1 and not self._open_findings():
            self.notify("This consumer has no open findings to decide.", title="Review", markup=False)
            return None
        return scope, ids

    def action_confirm(self) -> None:
        if (pre := self._decide_precheck()) is None:
            return
        scope, ids = pre
        seen = self._seen_versions()
        self.app.push_screen(
            ConfirmViolation(scope=scope, findings=self._open_findings()),
            lambda choice: choice and self._start_decision(choice, ids, seen),
        )

    def action_dismiss_findings(self) -> None:
        if (pre := self._decide_precheck()) is None:
            return
        scope, ids = pre
        seen = self._seen_versions()
        self.app.push_screen(
            Dismiss(scope=scope, findings=self._open_findings()),
            lambda choice: choice and self._start_decision(choice, ids, seen),
        )

    def action_needs_info(self) -> None:
        if (pre := self._decide_precheck()) is None:
            return
        scope, ids = pre
        seen = self._seen_versions()
        self.app.push_screen(
            NeedsInfo(scope=scope, findings=self._open_findings()),
            lambda choice: choice and self._start_decision(choice, ids, seen),
        )

    def action_manual_finding(self) -> None:
        row = self.query_one(QueueView).current
        if row is None:
            return
        scope = f"{visible(row.legal_name)} ({visible(row.consumer_id)})"
        self.app.push_screen(
            ManualFinding(scope=scope),
            lambda choice: choice and self._start_decision(choice, [row.consumer_id], {}),
        )

    def action_undo(self) -> None:
        self._start_decision(review.UndoRequest(), [], {})

    def action_select(self) -> None:
        queue = self.query_one(QueueView)
        queue.toggle_selected()
        queue.move_by(1)
        self._show_status()

    def _start_decision(self, choice: review.Request, consumer_ids: list[str], versions: dict[int, int]) -> None:
        """Write ``choice`` in a worker, remembering the queue index it was made at."""
        self._deciding += 1
        self._decide(choice, consumer_ids, versions, self.query_one(QueueView).cursor)

    @work(thread=True, group="decide")
    def _decide(self, choice: review.Request, consumer_ids: list[str], versions: dict[int, int], at: int) -> None:
        app = self.warden
        conn = app.connections.get()
        try:
            outcome = review.decide(
                conn, choice, consumer_ids, versions=versions,
                reviewer=app.reviewer, clock=app.clock,
            )
        except ConflictError as exc:
            self.post_message(DecisionFailed("Changed under you", visible(str(exc)), conflict=True, decision=True))
            return
        except WardenError as exc:
            self.post_message(DecisionFailed(exc.title, visible(str(exc)), decision=True))
            return
        self.post_message(Decided(outcome.summary, at=at if outcome.keep_place else None,
                                  consumer_id=outcome.consumer_id, decision=True, title=outcome.title))

    def on_decided(self, message: Decided) -> None:
        queue = self.query_one(QueueView)
        queue.clear_selection()
        self.notify(message.summary, title=message.title, markup=False)
        if message.decision:
            self._deciding = max(0, self._deciding - 1)
        self.reload_queue(at=message.at, consumer_id=message.consumer_id)
        self.refresh_detail()

    def on_problem(self, message: Problem) -> None:
        self.notify(message.message, title=message.title, severity="error", timeout=10, markup=False)

    def on_decision_failed(self, message: DecisionFailed) -> None:
        self.notify(message.message, title=message.title, severity="error", timeout=10, markup=False)
        if message.decision:
            self._deciding = max(0, self._deciding - 1)
        if message.conflict or message.decision:
            # Shows the state that refused it (and what a refresh skipped meanwhile).
            self.reload_queue()
            self.refresh_detail()

    # --- notes (store.notes, store.export) -----------------------------------------

    def action_draft_note(self) -> None:
        row = self.query_one(QueueView).current
        if row is not None:
            self._open_note(row.consumer_id, "app")

    def action_edit_note(self) -> None:
        row = self.query_one(QueueView).current
        if row is not None:
            self._open_note(row.consumer_id, "external")

    @work(thread=True, group="note")
    def _open_note(self, consumer_id: str, where: str) -> None:
        """The consumer's open note, drafted from the template if there is none."""
        app = self.warden
        conn = app.connections.get()
        try:
            note = notes.note_for(conn, consumer_id)
            drafted = note is None or note.status == "exported"
            if drafted:
                note = notes.draft_note(conn, consumer_id, reviewer=app.reviewer, clock=app.clock,
                                        config=app.config.notes)
        except WardenError as exc:
            self.post_message(Problem(exc.title, visible(str(exc))))
            return
        self.post_message(NoteOpened(note, drafted, where))

    def on_note_opened(self, message: NoteOpened) -> None:
        note = message.note
        if message.drafted:
            self.notify(f"Drafted note #{note.id} from the template.", title="Note", markup=False)
        if note.warning:
            self.notify(visible(note.warning), title="Note", severity="warning", timeout=10, markup=False)
        if message.where == "external" and self._edit_externally(note):
            return
        self.app.push_screen(NoteEditor(note), lambda _: self.action_refresh())

    def _edit_externally(self, note: notes.Note) -> bool:
        """Edit the body in $VISUAL / $EDITOR with the app suspended; False if that is not possible."""
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
        if not editor or self.app.is_headless:
            if not editor:
                self.notify("$EDITOR is not set: editing in the app.", title="Note", markup=False)
            return False
        try:
            command = shlex.split(editor)
        except ValueError:
            self.notify("$EDITOR cannot be read (an unclosed quote?): editing in the app.", title="Note",
                        severity="warning", markup=False)
            return False
        fd, name = tempfile.mkstemp(prefix=f"warden-note-{note.id}-", suffix=".md")
        path = Path(name)
        keep = False  # a file we cannot read back holds the reviewer's text: not deleted
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(note.body)
            try:
                with self.app.suspend():
                    subprocess.run([*command, str(path)], check=False)
            except SuspendNotSupported:
                return False
            except OSError as exc:
                self.notify(f"Cannot run $EDITOR ({exc.strerror or exc}): editing in the app.", title="Note",
                            severity="warning", markup=False)
                return False
            try:
                body = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                keep = True
                self.notify(f"The edited note is not UTF-8 text, so nothing was saved; your text is kept in {path}.",
                            title="Note", severity="error", timeout=20, markup=False)
                return True
            except OSError as exc:
                self.notify(f"The edited note could not be read back ({exc.strerror or exc}); nothing was saved.",
                            title="Note", severity="error", timeout=20, markup=False)
                return True
        finally:
            if not keep:
                path.unlink(missing_ok=True)
        if body != note.body:
            self._save_note(note.id, body, note.version)
        else:
            self.notify("No change to the note.", title="Note", markup=False)
        return True

    @work(thread=True, group="note")
    def _save_note(self, note_id: int, body: str, version: int) -> None:
        app = self.warden
        try:
            notes.save_body(app.connections.get(), note_id, body, expected_version=version, clock=app.clock)
        except ConflictError as exc:
            self.post_message(DecisionFailed("Changed under you", visible(str(exc)), conflict=True))
            return
        except WardenError as exc:
            self.post_message(Problem(exc.title, visible(str(exc))))
            return
        self.post_message(Decided(f"Saved note #{note_id} from the editor."))

    def action_export(self) -> None:
        row = self.query_one(QueueView).current
        if row is None:
            return
        scope = f"{visible(row.legal_name)} ({visible(row.consumer_id)}): its latest note"
        default = str(Path.cwd() / "warden-export")
        self.app.push_screen(
            ExportNotes(scope=scope, out_dir=default),
            lambda choice: choice and self._export(row.consumer_id, choice),
        )

    @work(thread=True, group="export")
    def _export(self, consumer_id: str, choice: ExportChoice) -> None:
        app = self.warden
        conn = app.connections.get()
        lines: list[str] = []
        for fmt in choice.formats:
            try:
                result = export_notes(
                    conn, fmt=fmt, out_dir=Path(choice.out_dir).expanduser(), consumer_id=consumer_id,
                    force=choice.force, reviewer=app.reviewer, clock=app.clock, config=app.config.notes,
                )
            except WardenError as exc:
                self.post_message(Problem(f"Export {fmt}: {exc.title}", visible(str(exc))))
                continue
            lines.append(result.summary_lines()[0].removeprefix("warden: "))
        if lines:
            self.post_message(Decided("\n".join(lines)))

    # --- sync ------------------------------------------------------------------------

    def action_sync(self) -> None:
        config = self.warden.config
        if self.syncing is not None:
            self._show_sync_modal()
            return
        if not config.sources:
            self.notify("No sources configured: add a [sources] table to the config file.",
                        title="Sync", severity="warning", markup=False)
            return
        self.syncing = threading.Event()
        self._sync_lines = []
        self._sync_done = 0
        self.sync_state = "running"
        self._show_status()
        self._show_sync_modal()
        self._run_sync(self.syncing)

    def _show_sync_modal(self) -> None:
        modal = SyncProgress(sources=len(self.warden.config.sources), on_cancel=self._cancel_sync,
                             history=self._sync_lines, sources_done=self._sync_done)
        self.sync_modal = modal
        self.app.push_screen(modal, lambda _: setattr(self, "sync_modal", None))

    def _cancel_sync(self) -> None:
        if self.syncing is not None:
            self.syncing.set()

    @work(thread=True, exclusive=True, group="sync")
    def _run_sync(self, cancel: threading.Event) -> None:
        from store.sync.engine import sync_all

        app = self.warden
        done = 0

        def on_event(event: Any) -> None:
            nonlocal done
            kind = type(event).__name__
            if kind == "SourceFinished":
                done += 1
                if getattr(event, "status", "ok") not in ("ok", "cancelled"):
                    self.post_message(SyncSourceFailed(event.source, event.why, event.headline))
            if kind in ("SourceStarted", "SourceFinished", "Retrying", "PageFailed", "RulesApplied") or (
                kind == "PageStored" and event.pages % 10 == 1
            ):
                self.post_message(SyncProgressed(event.as_line(), done, event.as_line()))

        try:
            results = sync_all(app.db_path, app.config, clock=app.clock, on_event=on_event, cancel=cancel)
        except WardenError as exc:
            self.post_message(SyncSourceFailed(getattr(exc, "source", None) or "sync", str(exc)))
            self.post_message(SyncFinished(f"failed: {exc}"))
            return
        ok = sum(1 for r in results if r.status == "ok")
        rows = sum(r.rows for r in results)
        self.post_message(SyncFinished(f"{ok}/{len(results)} sources synced, {rows:,} usage rows stored"))

    def on_sync_progressed(self, message: SyncProgressed) -> None:
        self._sync_lines = (self._sync_lines + [message.line])[-100:]
        self._sync_done = message.sources_done
        self.sync_state = f"running ({message.sources_done}/{len(self.warden.config.sources)} sources)"
        self._show_status()
        if self.sync_modal is not None and self.sync_modal.is_attached:
            self.sync_modal.show_event(message.line, sources_done=message.sources_done, status=message.status)

    def on_sync_source_failed(self, message: SyncSourceFailed) -> None:
        self.notify(visible(message.error), title=f"{message.headline}: {visible(message.source)}",
                    severity="warning" if message.headline == "Sync partial" else "error", timeout=15, markup=False)

    def on_sync_finished(self, message: SyncFinished) -> None:
        self.syncing = None
        self.sync_state = message.summary
        if self.sync_modal is not None and self.sync_modal.is_attached:
            self.sync_modal.show_finished(message.summary)
        self.notify(visible(message.summary), title="Sync finished", markup=False)
        self.action_refresh()

    # --- help and palette ------------------------------------------------------------

    def key_rows(self) -> list[tuple[str, str, str]]:
        """(keys as typed, description, binding id) for every binding, keymap applied."""
        keymap = dict(self.warden.config.keymap)
        rows = []
        for key, _action, description, binding_id, _show in KEYS:
            keys = keymap.get(binding_id, key)
            shown = ", ".join(format_key(k.strip()) for k in keys.split(","))
            rows.append((shown, description, binding_id))
        rows.append(("^p", "Command palette: every action", "app.palette"))
        # The other screens' keys, so help lists every key there is.
        for where, screen in (("Note editor", NoteEditor), ("Sync progress", SyncProgress),
                              ("Decision dialogs", ConfirmViolation), ("Export dialog", ExportNotes),
                              ("Filter", FilterInput), ("Help", Help)):
            for binding in screen.BINDINGS:
                assert isinstance(binding, Binding) and binding.id is not None
                keys = keymap.get(binding.id, binding.key)
                shown = ", ".join(format_key(k.strip()) for k in keys.split(","))
                rows.append((shown, f"{where}: {binding.description}", binding.id))
        return rows

    def action_help(self) -> None:
        self.app.push_screen(Help(self.key_rows()))

    def palette_commands(self) -> Iterable[SystemCommand]:
        """Every binding as a palette command (the palette runs it like the key)."""
        rows = {binding_id: shown for shown, _d, binding_id in self.key_rows()}
        for _key, action, description, binding_id, _show in KEYS:
            yield SystemCommand(
                description, f"{rows[binding_id]}  ({binding_id})", self._runner(action)
            )

    def _runner(self, action: str) -> Callable[[], Any]:
        return lambda: self.run_action(action)

    def action_quit(self) -> None:
        if self.syncing is not None:
            self.syncing.set()
        self.app.exit(0)

    def on_unmount(self) -> None:
        # Waits for a cancelled page worker still mid-query: closing a
        # connection under a running statement crashes the process.
        self._queue_reader.close()
