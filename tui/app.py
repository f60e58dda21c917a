"""The warden review application.

The App owns what outlives a screen: the :class:`~tui.session.Session` every
screen is handed, the background sync (``R``) and its progress modal, and the
one boundary that every worker's failure reaches:

- a ``WardenError`` (something the reviewer can act on) becomes a notification
  titled with the error's title; a ``ConflictError`` also reloads the screen,
  so the reviewer sees what changed under them;
- an error SQLite raised while reading (``database is locked``, a disk error)
  is named as a ``StoreError`` for the database file;
- anything else is a bug: its traceback goes to the log (``tui.bugs``) and a
  dialog says so and where the log is.

Whatever failed, the app keeps running.
"""

from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import Any, Iterable

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.filter import Monochrome, NoColor
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from store.clock import Clock, system_clock
from store.config import Config
from store.errors import ConflictError, WardenError
from store.sync.events import PageStored, SourceFinished, SyncEvent
from store.text import visible
from tui.bugs import default_log_path, record_bug
from tui.connections import database_error
from tui.frame_timer import install as install_frame_timer
from tui.keys import check_keymap
from tui.messages import Problem, SyncFinished, SyncProgressed, SyncSourceFailed, SyncState
from tui.modals.bug import BugReport
from tui.modals.sync import SyncProgress
from tui.screens.base import WardenScreen
from tui.session import Session

# Frames after a slow frame on the tick Textual means (tui/frame_timer.py).
install_frame_timer()

# Sync events shown in the progress modal: all but most stored pages (every 10th).
PAGE_EVERY = 10

# The collector's thresholds while the app runs. A step to the next consumer
# makes some 6,000 short-lived containers (Rich segments, Textual's strips and
# their caches) that reference counting frees by the end of the frame; at
# Python's default of 700 the collector ran about 9 times per step, a young
# generation pass (1-5 ms) about once, all in the middle of the step. At 20,000
# it runs when garbage has really grown: a few times per hundred steps, 4-8 ms.
# (A sync sets its own for its duration: store.sync.engine.)
APP_GC_THRESHOLD = (20_000, 10, 10)


class WardenApp(App[int]):
    """Review consumers' usage against their agreements and decide findings."""

    CSS_PATH = "warden.tcss"
    TITLE = "warden"
    # The palette lists every action of the screen (see get_system_commands).
    COMMAND_PALETTE_BINDING = "ctrl+p"
    BINDINGS = [
        Binding("ctrl+p", "command_palette", "Palette", show=False, id="app.palette"),
        # Textual's own ctrl+q, given an id so help lists it and a keymap can move it.
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True, id="app.quit_now"),
    ]

    def __init__(
        self,
        *,
        db_path: Path | str,
        config: Config | None = None,
        reviewer: str = "reviewer",
        clock: Clock = system_clock,
        mouse: bool = True,
        bug_log: Path | None = None,
        notices: Iterable[str] = (),
    ) -> None:
        from tui.screens.review import binding_groups

        config = config if config is not None else Config()
        # A keymap naming no binding, or leaving one without its key, is refused here.
        check_keymap(config.keymap, binding_groups())
        super().__init__()
        if self.no_color:
            # NO_COLOR (no-color.org) means no colour at all; Textual draws it in
            # 256-colour greys (its Monochrome filter). The frame is still composed
            # in the theme's colours (dialogs cover what is under them), then every
            # colour is dropped; bold, reverse and underline carry what colour would.
            self._filters[:] = [NoColor() if isinstance(f, Monochrome) else f for f in self._filters]
        # What opening the database did that the reviewer must hear of (it was made private).
        self.startup_notices = list(notices)
        self.session = Session.open(db_path, config=config, reviewer=reviewer, clock=clock)
        self.mouse = mouse
        self.bug_log = bug_log if bug_log is not None else default_log_path()
        self._bugs_shown: set[tuple[str, str, str]] = set()  # (worker, error type, message)
        self._gc_before: tuple[int, int, int] | None = None  # the collector's thresholds before the app's
        # The sync in flight: its cancel flag, the lines so far and sources done
        # (a progress modal reopened during the sync shows them).
        self.syncing: threading.Event | None = None
        self.sync_modal: SyncProgress | None = None
        self._sync_lines: list[str] = []
        self._sync_done = 0
        # The config's [keymap] maps binding ids (see the help screen) to keys.
        self.set_keymap(dict(self.session.config.keymap))

    def on_mount(self) -> None:
        from tui.screens.review import ReviewScreen

        self.push_screen(ReviewScreen(self.session))
        for notice in self.startup_notices:
            self.notify(visible(notice), title="Database", severity="warning", timeout=15, markup=False)
        self.call_after_refresh(self._keep_startup_out_of_collections)

    def _keep_startup_out_of_collections(self) -> None:
        """What start-up made (modules, classes, styles, the screen's widgets) lives
        as long as the app: moved out of the garbage collector's reach, so that its
        full passes walk only what the session made since. Each walked them all,
        50-110 ms, a few times per hundred steps through the queue: the slowest
        steps were those. Then the thresholds of APP_GC_THRESHOLD. Both undone on
        exit (tests run many apps in one process)."""
        gc.freeze()
        self._gc_before = gc.get_threshold()
        gc.set_threshold(*APP_GC_THRESHOLD)

    def on_unmount(self) -> None:
        gc.unfreeze()
        if self._gc_before is not None:
            gc.set_threshold(*self._gc_before)
        if self.syncing is not None:
            self.syncing.set()  # the sync stops after the page in hand; the next run resumes
        self.session.close()

    def on_app_focus(self, event: events.AppFocus) -> None:
        # Back in the terminal: show what other sessions and cron syncs changed.
        if isinstance(self.screen, WardenScreen):
            self.screen.reload()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every action of the current screen, then the app's own (theme, quit...)."""
        commands = getattr(screen, "palette_commands", None)
        if commands is not None:
            yield from commands()
        yield from super().get_system_commands(screen)

    # --- the error boundary ------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The App's own workers (the sync); screens send theirs as a Problem."""
        worker = event.worker
        if event.state is WorkerState.ERROR and worker.error is not None:
            self.post_message(Problem(worker.error, where=f"{type(self).__name__}.{worker.name}"))
        if worker.group == "sync" and event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._sync_ended(f"failed: {worker.error}" if worker.error is not None else "cancelled")

    def on_problem(self, message: Problem) -> None:
        error = database_error(message.error, self.session.db_path) or message.error
        if isinstance(error, WardenError):
            title = f"{message.context}: {error.title}" if message.context else error.title
            self.notify(visible(str(error)), title=visible(title), severity="error", timeout=10, markup=False)
            if isinstance(error, ConflictError) and isinstance(message.screen, WardenScreen):
                message.screen.reload()  # shows what changed under the reviewer
            return
        problem = None
        try:
            record_bug(self.bug_log, error, where=message.where, clock=self.session.clock,
                       config=self.session.config)
        except OSError as exc:
            problem = exc.strerror or str(exc)
        seen = (message.where, type(error).__name__, str(error))
        if seen in self._bugs_shown or any(isinstance(screen, BugReport) for screen in self.screen_stack):
            # The same bug again (a refresh after the dialog closed reads again): one
            # dialog is enough, and the reviewer must be able to get back to the keys.
            self.notify(visible(f"{type(error).__name__}: {error} (again; see {self.bug_log})"),
                        title="Bug in warden", severity="error", timeout=10, markup=False)
            return
        self._bugs_shown.add(seen)
        self.push_screen(BugReport(error, log=self.bug_log, log_problem=problem))

    # --- the background sync -----------------------------------------------------------

    def action_sync(self) -> None:
        """``R``: sync every configured source in a worker, with a progress modal."""
        sources = self.session.config.sources
        if self.syncing is not None:
            self._show_sync_modal()
            return
        if not sources:
            self.notify("No sources configured: add a [sources] table to the config file.",
                        title="Sync", severity="warning", markup=False)
            return
        self.syncing = threading.Event()
        self._sync_lines = []
        self._sync_done = 0
        self._tell_screens("running")
        self._show_sync_modal()
        self._run_sync(self.syncing)

    def _show_sync_modal(self) -> None:
        modal = SyncProgress(sources=len(self.session.config.sources), on_cancel=self._cancel_sync,
                             history=self._sync_lines, sources_done=self._sync_done)
        self.sync_modal = modal
        self.push_screen(modal, lambda _: setattr(self, "sync_modal", None))

    def _cancel_sync(self) -> None:
        if self.syncing is not None:
            self.syncing.set()

    @work(thread=True, exclusive=True, group="sync", exit_on_error=False)
    def _run_sync(self, cancel: threading.Event) -> None:
        from store.sync.engine import sync_all

        session = self.session
        done = 0

        def on_event(event: SyncEvent) -> None:
            nonlocal done
            if isinstance(event, SourceFinished):
                done += 1
                if event.status not in ("ok", "cancelled"):
                    self.post_message(SyncSourceFailed(event.source, event.why, event.headline))
            if not isinstance(event, PageStored) or event.pages % PAGE_EVERY == 1:
                self.post_message(SyncProgressed(event.as_line(), done, event.as_line()))

        results = sync_all(session.db_path, session.config, clock=session.clock, on_event=on_event, cancel=cancel)
        ok = sum(1 for r in results if r.status == "ok")
        rows = sum(r.rows for r in results)
        self.post_message(SyncFinished(f"{ok}/{len(results)} sources synced, {rows:,} usage rows stored"))

    def on_sync_progressed(self, message: SyncProgressed) -> None:
        self._sync_lines = (self._sync_lines + [message.line])[-100:]
        self._sync_done = message.sources_done
        self._tell_screens(f"running ({message.sources_done}/{len(self.session.config.sources)} sources)")
        if self.sync_modal is not None and self.sync_modal.is_attached:
            self.sync_modal.show_event(message.line, sources_done=message.sources_done, status=message.status)

    def on_sync_source_failed(self, message: SyncSourceFailed) -> None:
        self.notify(visible(message.error), title=f"{message.headline}: {visible(message.source)}",
                    severity="warning" if message.headline == "Sync partial" else "error", timeout=15, markup=False)

    def on_sync_finished(self, message: SyncFinished) -> None:
        self.notify(visible(message.summary), title="Sync finished", markup=False)
        self._sync_ended(message.summary)

    def _sync_ended(self, summary: str) -> None:
        self.syncing = None
        if self.sync_modal is not None and self.sync_modal.is_attached:
            self.sync_modal.show_finished(summary)
        self._tell_screens(summary, finished=True)

    def _tell_screens(self, text: str, *, finished: bool = False) -> None:
        """The sync's state, for the screens that show it in their header."""
        for screen in self.screen_stack:
            screen.post_message(SyncState(text, finished))


def run_app(
    *,
    db_path: Path | str,
    config: Config | None = None,
    reviewer: str = "reviewer",
    clock: Clock = system_clock,
    mouse: bool = True,
) -> int:
    """Run the TUI until the reviewer quits; returns the exit code."""
    app = WardenApp(db_path=db_path, config=config, reviewer=reviewer, clock=clock, mouse=mouse)
    app.run(mouse=mouse)
    return int(app.return_code or 0)
