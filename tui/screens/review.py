"""The review screen: the queue on the left, the selected consumer on the right,
and the decisions taken on them.

Every database read or write runs in a thread worker that posts a message
(``tui.messages``); only the handlers below touch widgets. Queue reads go
through the session's ``store.queue.QueueReader`` (one connection and lock,
shared by the workers, so it can reuse the keyset anchors it remembers); other
work uses the worker thread's own connection. A worker that fails reaches the
App's boundary (``tui.app``); the handlers here only keep the screen's own state
straight.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult, SystemCommand
from textual.containers import Container, Vertical
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState, get_current_worker

from store import cases, review
from store.casework.timeline import case_view
from store.clock import day
from store import queue as queue_store
from store.queue_filter import QueueFilter
from store.sync.history import sync_summary
from store.text import visible
from tui.keys import Group, group_of, help_rows, review_bindings, review_group, review_palette
from tui.messages import DataVersion, Decided, DetailLoaded, JumpTo, PageLoaded, QueueCounted, SyncState, Tagged
from tui.modals.ask import Ask
from tui.modals.choices import FindingOption
from tui.modals.confirm import ConfirmViolation
from tui.modals.dismiss import Dismiss
from tui.modals.export import ExportNotes
from tui.modals.filter import FilterInput
from tui.modals.help import Help
from tui.modals.manual import ManualFinding
from tui.modals.needs_info import NeedsInfo
from tui.modals.sync import SyncProgress
from tui.modals.items import RequestItems
from tui.screens.casework import CaseworkActions
from tui.screens.overview import OverviewScreen
from tui.screens.review_notes import NotesAndExports
from tui.screens.note import NoteEditor
from tui.session import Session
from tui.text import literal
from tui.widgets.detail import Detail, DetailPane
from tui.widgets.marks import PickList, ReasonPicker
from tui.widgets.queue import PAGE_SIZE, QueueView, header_text
from tui.widgets.status import status_text

# Below this width the panes stack (queue above, detail below).
NARROW_WIDTH = 100
# How often to ask SQLite whether another connection committed (PRAGMA data_version).
POLL_SECONDS = 3.0

# ``*`` asks before tagging more consumers than this, and refuses past TAG_LIMIT
# (their ids are held in memory); TAG_PAGE: rows read at a time to tag them.
ASK_ABOVE = 100
TAG_LIMIT = 100_000
TAG_PAGE = 5_000

# The dialog each decision key opens (``action_decide``'s kind).
DECISION_DIALOGS = {"confirm": ConfirmViolation, "dismiss": Dismiss, "needs_info": NeedsInfo}

# The other screens' keys, so help lists every key there is.
HELP_SCREENS = (("Detail (tab)", DetailPane), ("Note editor", NoteEditor), ("Sync progress", SyncProgress),
                ("Decision dialogs", ConfirmViolation), ("Findings in a dialog", PickList),
                ("Dismiss reasons", ReasonPicker), ("Export dialog", ExportNotes), ("Filter", FilterInput),
                ("Questions", Ask), ("Help", Help), ("Requested items", RequestItems), ("Overview", OverviewScreen))


def binding_groups() -> list[Group]:
    """Every group of bindings active together: the review screen's, then each of
    HELP_SCREENS' (for tui.keys.check_keymap)."""
    return [review_group()] + [group_of(screen.BINDINGS) for _where, screen in HELP_SCREENS]


class ReviewScreen(CaseworkActions, NotesAndExports):
    """Step through the queue, read the evidence, decide."""

    BINDINGS = review_bindings()

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.query_spec = queue_store.QueueQuery()
        self.total = 0
        self.sync_state = ""
        self._status_shown: Text | None = None
        self.chart = cases.ChartWindow()
        self.detail_for: str | None = None
        self.detail: Detail | None = None
        self._data_version: int | None = None
        # Where the latest reload puts the cursor: (consumer to follow or None, index
        # to use when there is none or it is gone), and whether its count is still
        # in flight (until then the rows on screen are the old order's).
        self._place: tuple[str | None, int] = (None, 0)
        self._reloading = False
        self._deciding = 0  # decision workers in flight: their Decided reloads
        self._refresh_owed = False  # a refresh asked for while a decision was written
        # A decision key pressed before the detail of the consumer it is for arrived:
        # (kind, consumer id); the dialog opens with that consumer's findings.
        self._decide_when_shown: tuple[str, str] | None = None

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
        self.query_one(QueueView).today = self.session.clock().date()
        self.query_one(QueueView).focus()
        self._show_status()
        self.reload_queue()
        # Other sessions' decisions and cron syncs show up without a key press.
        self.set_interval(POLL_SECONDS, self._poll_changes)

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW_WIDTH, "-narrow")
        self.call_after_refresh(self._show_columns)
        self._show_status()

    def _show_columns(self) -> None:
        queue = self.query_one(QueueView)
        self.query_one("#queue-columns", Static).update(header_text(queue.scrollable_content_region.width))

    def _show_status(self) -> None:
        queue = self.query_one(QueueView)
        spec = self.query_spec
        line = status_text(
            position=(queue.cursor + 1, self.total) if self.total else (0, 0),
            tagged=len(queue.selected), sort=spec.sort, reverse=spec.reverse,
            filter_text=spec.filter.text, sync=self.sync_state, width=self.size.width,
        )
        if line == self._status_shown:
            return  # the same again (a key's move, then its CursorMoved): nothing to draw
        self._status_shown = line
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

    @work(thread=True, exclusive=True, group="count", exit_on_error=False)
    def _count(self, spec: queue_store.QueueQuery, keep: str | None, cursor: int) -> None:
        reader = self.session.queue
        total = reader.count(spec)
        position = reader.position_of(spec, keep) if keep else None
        if reader.closed:
            return
        sync_state = sync_summary(self.session.connections.get())
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

    @work(thread=True, group="pages", exit_on_error=False)
    def _load_page(self, spec: queue_store.QueueQuery, generation: int, page: int) -> None:
        rows = self.session.queue.page(spec, page * PAGE_SIZE, PAGE_SIZE)
        if self.session.queue.closed:
            return
        self.post_message(PageLoaded(generation, page, rows))

    def on_page_loaded(self, message: PageLoaded) -> None:
        self.query_one(QueueView).set_page(message.generation, message.page, message.rows)

    def on_queue_view_cursor_moved(self, message: QueueView.CursorMoved) -> None:
        self._follow_cursor()

    def _follow_cursor(self) -> None:
        """The status line and the detail follow the queue's cursor where it is now.

        The keys that move the cursor call this themselves: the queue's CursorMoved
        reaches the screen only after bubbling through its containers, by when
        Textual has often drawn a frame, and the detail's read would start that
        much later. The message, when it comes, finds nothing left to do (a
        later move may have come first: the cursor's place now is what counts)."""
        self._show_status()
        queue = self.query_one(QueueView)
        row = queue.current
        if row is None or not queue.is_fresh(queue.cursor):
            return  # its page is on the way; set_page announces the cursor again
        pending = self._decide_when_shown
        if pending is not None and row.consumer_id != pending[1]:
            self._decide_when_shown = None  # the reviewer moved on
        if row.consumer_id != self.detail_for:
            self.detail_for = row.consumer_id
            self.chart = cases.ChartWindow()
            self._load_detail(row.consumer_id, self.chart)

    def refresh_detail(self) -> None:
        if self.detail_for is not None:
            self._load_detail(self.detail_for, self.chart)

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def _load_detail(self, consumer_id: str, chart: cases.ChartWindow) -> None:
        conn = self.session.connections.get()
        case = cases.read_case(conn, consumer_id)
        detail = None if case is None else Detail.of(
            case, cases.chart_of(conn, case, chart, today=self.session.clock()),
            case_view(conn, consumer_id), today=day(self.session.clock()))
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
        pending = self._decide_when_shown
        if pending is not None and message.detail is not None and pending[1] == message.consumer_id:
            self._decide_when_shown = None
            self.action_decide(pending[0])

    # --- navigation ------------------------------------------------------------------

    def action_move(self, delta: int) -> None:
        self.query_one(QueueView).move_by(delta)
        self._follow_cursor()

    def action_page(self, direction: int) -> None:
        queue = self.query_one(QueueView)
        queue.move_by(direction * max(1, queue.scrollable_content_region.height - 1))
        self._follow_cursor()

    def action_first(self) -> None:
        self.query_one(QueueView).move_to(0)
        self._follow_cursor()

    def action_last(self) -> None:
        self.query_one(QueueView).move_to(self.total - 1)
        self._follow_cursor()

    def action_unreviewed(self, direction: int) -> None:
        self._find_unreviewed(self.query_spec, self.query_one(QueueView).cursor, direction)

    @work(thread=True, exclusive=True, group="jump", exit_on_error=False)
    def _find_unreviewed(self, spec: queue_store.QueueQuery, start: int, direction: int) -> None:
        jump = self.session.queue.next_to_decide(spec, start, direction)
        if self.session.queue.closed:
            return
        self.post_message(JumpTo(jump, direction))

    def on_jump_to(self, message: JumpTo) -> None:
        jump = message.jump
        if jump.index is None:
            self.notify("No other consumer with findings to decide.", title="Queue", markup=False)
            return
        said = []
        if jump.state == "info":
            said.append("Nothing else to decide: a consumer waiting for information.")
        if jump.wrapped:
            said.append(f"Wrapped to the {'top' if message.direction > 0 else 'bottom'}.")
        if said:
            self.notify(" ".join(said), title="Queue", markup=False)
        self.query_one(QueueView).move_to(jump.index)
        self._follow_cursor()

    def action_filter(self) -> None:
        self.app.push_screen(FilterInput(self.query_spec.filter.text, today=self.session.clock().date()),
                             self._filter_chosen)

    def _filter_chosen(self, flt: QueueFilter | None) -> None:
        if flt is not None:
            self._set_query(replace(self.query_spec, filter=flt))

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
            self._set_query(replace(self.query_spec, filter=QueueFilter()))

    def action_cycle_sort(self) -> None:
        sorts = list(queue_store.SORTS)
        sort = sorts[(sorts.index(self.query_spec.sort) + 1) % len(sorts)]
        self._sort_by(sort, self.query_spec.reverse)

    def action_reverse_sort(self) -> None:
        self._sort_by(self.query_spec.sort, not self.query_spec.reverse)

    def _sort_by(self, sort: str, reverse: bool) -> None:
        """Another order; the cursor stays on its consumer, wherever it now is."""
        self.query_spec = replace(self.query_spec, sort=sort, reverse=reverse)
        self.reload_queue()
        meaning = queue_store.SORTS[sort]
        self.notify(f"Sorted by {sort}, {meaning}" + (" (reversed)" if reverse else ""), title="Queue",
                    markup=False)

    def action_refresh(self) -> None:
        if self._deciding:
            # A decision is being written: its Decided reloads and puts the cursor
            # where the reviewer decided; following the consumer now would chase
            # it to its new place in the order. Owed if the decision fails.
            self._refresh_owed = True
            return
        self.reload_queue()
        self.refresh_detail()

    def reload(self) -> None:
        self.action_refresh()

    def _poll_changes(self) -> None:
        if self.session.queue.opened and self.app.screen is self:
            self._check_data_version()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _check_data_version(self) -> None:
        version = self.session.queue.data_version()
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
        if self.is_mounted and self.session.queue.opened:
            self.action_refresh()

    def on_sync_state(self, message: SyncState) -> None:
        self.sync_state = message.text
        self._show_status()
        if message.finished:
            self.action_refresh()

    def action_copy_id(self) -> None:
        row = self.query_one(QueueView).current
        if row is None:
            return
        self.app.copy_to_clipboard(row.consumer_id)
        self.notify(Text.assemble("Copied ", literal(row.consumer_id)).plain, title="Copied", markup=False)

    def action_focus_queue(self) -> None:
        """``esc`` in the detail: back to the queue."""
        self.query_one(QueueView).focus()

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
        """(scope line, consumer ids) a decision applies to: the tagged, else the cursor's."""
        queue = self.query_one(QueueView)
        if queue.selected:
            ids = list(queue.selected)
            waiting = sum(queue.selected.values())
            return f"{len(ids):,} tagged consumers: their {waiting:,} open findings", ids
        row = queue.current
        if row is None:
            return "", []
        return f"{visible(row.legal_name)} ({visible(row.consumer_id)})", [row.consumer_id]

    def _open_findings(self) -> list[FindingOption]:
        """The open findings the dialog offers: all chosen, or only the one under the
        detail's cursor when the reviewer is in the detail."""
        if self.detail is None or self.query_one(QueueView).selected:
            return []
        pane = self.query_one(DetailPane)
        under = pane.finding_id if pane.has_focus else None
        return [FindingOption(f.id, f.label, f.twins, chosen=under is None or f.id == under)
                for f in self.detail.open_findings]

    def action_decide(self, kind: str) -> None:
        """``v`` confirm, ``d`` dismiss, ``i`` needs info: the dialog for ``kind``
        over the tagged consumers (else the one under the cursor), then the write."""
        scope, ids = self._targets()
        if not ids:
            self.notify("Nothing under the cursor yet.", title="Review", markup=False)
            return
        if len(ids) == 1 and not self.query_one(QueueView).selected and (
                self.detail is None or self.detail.consumer.id != ids[0]):
            # The detail shown is still the previous consumer's: its findings must
            # not be offered for this one. The dialog opens when this one's arrives.
            self._decide_when_shown = (kind, ids[0])
            return
        findings = self._open_findings()
        if len(ids) == 1 and not self.query_one(QueueView).selected and not findings:
            self.notify("This consumer has no open findings to decide.", title="Review", markup=False)
            return
        # The finding versions the reviewer is looking at: a decision made against
        # them fails if someone changed a finding meanwhile.
        seen = dict(self.detail.versions) if self.detail is not None else {}
        self.app.push_screen(DECISION_DIALOGS[kind](scope=scope, findings=findings),
                             lambda choice: choice and self._start_decision(choice, ids, seen))

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
        self._follow_cursor()

    def action_tag_all(self) -> None:
        """``*``: tag every consumer the filter shows (asked first past ASK_ABOVE)."""
        if self.total > TAG_LIMIT:
            self.notify(f"The filter shows {self.total:,} consumers; narrow it to {TAG_LIMIT:,} or fewer to tag "
                        "them all.", title="Queue", severity="warning", markup=False)
            return
        if self.total > ASK_ABOVE:
            self.app.push_screen(Ask(f"Tag all {self.total:,} consumers the filter shows?"),
                                 lambda yes: yes and self._read_all(self.query_spec, self.total))
            return
        self._read_all(self.query_spec, self.total)

    @work(thread=True, exclusive=True, group="tag", exit_on_error=False)
    def _read_all(self, spec: queue_store.QueueQuery, total: int) -> None:
        tagged: dict[str, int] = {}
        for offset in range(0, total, TAG_PAGE):
            tagged.update((row.consumer_id, row.open_findings)
                          for row in self.session.queue.page(spec, offset, TAG_PAGE))
        if not self.session.queue.closed:
            self.post_message(Tagged(tagged))

    def on_tagged(self, message: Tagged) -> None:
        self.query_one(QueueView).select(message.consumers)
        self._show_status()
        self.notify(f"Tagged the {len(message.consumers):,} consumers the filter shows.", title="Queue",
                    markup=False)

    def _start_decision(self, choice: review.Request, consumer_ids: list[str], versions: dict[int, int]) -> None:
        """Write ``choice`` in a worker, remembering the queue index it was made at."""
        self._deciding += 1
        self._decide(choice, consumer_ids, versions, self.query_one(QueueView).cursor)

    @work(thread=True, group="decide", exit_on_error=False)
    def _decide(self, choice: review.Request, consumer_ids: list[str], versions: dict[int, int], at: int) -> None:
        session = self.session
        outcome = review.decide(session.connections.get(), choice, consumer_ids, versions=versions,
                                 reviewer=session.reviewer, clock=session.clock)
        self.post_message(Decided(outcome.summary, at=at if outcome.keep_place else None,
                                  consumer_id=outcome.consumer_id, title=outcome.title))

    def on_decided(self, message: Decided) -> None:
        queue = self.query_one(QueueView)
        queue.clear_selection()
        self.notify(message.summary, title=message.title, markup=False)
        self._refresh_owed = False  # this reload shows everything
        self.reload_queue(at=message.at, consumer_id=message.consumer_id)
        self.refresh_detail()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "decide" or event.state not in (
                WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        self._deciding = max(0, self._deciding - 1)
        if not self._deciding and self._refresh_owed:
            # A decision that failed: show what the refreshes skipped meanwhile.
            self.action_refresh()

    # --- help and palette ------------------------------------------------------------

    def key_rows(self) -> list[tuple[str, str, str]]:
        """(keys as typed, description, binding id) for every binding, keymap applied."""
        return help_rows(dict(self.session.config.keymap), HELP_SCREENS)

    def action_help(self) -> None:
        self.app.push_screen(Help(self.key_rows()))

    def palette_commands(self) -> Iterable[SystemCommand]:
        """Every binding as a palette command (the palette runs it like the key)."""
        return review_palette(self, dict(self.session.config.keymap))

    def action_quit(self) -> None:
        self.app.exit(0)

