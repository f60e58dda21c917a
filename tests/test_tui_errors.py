"""The App's error boundary: a worker that fails never closes the app.

Each read worker of the review screen is made to fail by a patched function
raising a ``StoreError`` (shown as a notification titled with its title),
SQLite's own ``database is locked`` (named as a database error for the file)
and a ``RuntimeError`` (a bug: logged with its traceback, and a dialog says so
and where the log is). Then the patch goes and the app carries on. Notifications
are read as the app was asked to show them (``tests.tui_data.shown_notifications``),
dialogs from their widgets.
"""

from __future__ import annotations

import ast
import contextlib
import sqlite3
import stat
from pathlib import Path
from typing import Any, Callable

import pytest
from textual.widgets import Input

from store.config import Config, SourceConfig
from store.errors import StoreError
from tests.tui_data import CLOCK, settle, shown_notifications
from tui.app import WardenApp
from tui.modals.bug import BugReport
from tui.screens.review import ReviewScreen
from tui.widgets.queue import QueueView

pytestmark = pytest.mark.anyio

TUI = Path(__file__).resolve().parent.parent / "tui"


class Run:
    """A WardenApp under Pilot, with the notifications it was sent."""

    def __init__(self, db: Path, log: Path, config: Config | None = None) -> None:
        self.app = WardenApp(db_path=db, config=config, reviewer="alice", clock=CLOCK, mouse=False, bug_log=log)

    @property
    def shown(self) -> list[str]:
        """``title: message`` of every notification so far."""
        return [f"{n.title}: {n.message}" for n in shown_notifications(self.app)]

    def test(self) -> Any:
        return self.app.run_test(size=(120, 40))

    @property
    def screen(self) -> ReviewScreen:
        return next(s for s in self.app.screen_stack if isinstance(s, ReviewScreen))

    def current_id(self) -> str | None:
        row = self.screen.query_one(QueueView).current
        return None if row is None else row.consumer_id


def raising(error: BaseException) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error
    return fail


async def until(pilot: Any, ready: Callable[[], bool], what: str) -> None:
    """Let the app run until ``ready()``; fail naming ``what`` after about 10 s. (A
    screen whose reads fail never settles: ``settle`` would wait for rows that
    cannot come.)"""
    for _ in range(500):
        if ready():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# What each read worker reads, how a reviewer sets it off, and what shows that it
# works again once the patch is gone.


async def _at_start(pilot: Any, run: Run) -> None:
    pass


async def _press_next_unreviewed(pilot: Any, run: Run) -> None:
    await pilot.press("right_square_bracket")


async def _poll(pilot: Any, run: Run) -> None:
    run.screen._poll_changes()


async def _works_again_after_refresh(pilot: Any, run: Run) -> None:
    await pilot.press("r")
    await settle(pilot)
    assert run.screen.total == 45 and run.current_id() == "northwind-analytics"
    assert run.screen.detail is not None and run.screen.detail.consumer.id == "northwind-analytics"


async def _works_again_next_unreviewed(pilot: Any, run: Run) -> None:
    await pilot.press("right_square_bracket")
    await settle(pilot)
    assert run.screen.query_one(QueueView).cursor == 1


async def _works_again_poll(pilot: Any, run: Run) -> None:
    from store import review
    from store.db import connect

    run.screen._poll_changes()  # remembers the version
    await settle(pilot)
    other = connect(run.app.session.db_path)
    review.dismiss(other, 4, reviewer="bob", reason_code="duplicate", clock=CLOCK)
    other.close()
    run.screen._poll_changes()  # sees that another connection committed, and reads again
    await settle(pilot)
    queue = run.screen.query_one(QueueView)
    assert next(queue.row_at(i) for i in range(queue.total)
                if queue.row_at(i).consumer_id == "contoso-borderline").verdict == "decided"


# The queue reader's reads fail inside its lock, with its connection open, as a
# real query would.
READ_WORKERS = {
    # worker: (module, function it calls, patched before the app starts, trigger, works again)
    "_count": ("store.queue", "QueueReader._count", True, _at_start, _works_again_after_refresh),
    "_load_page": ("store.queue", "QueueReader._page", True, _at_start, _works_again_after_refresh),
    "_load_detail": ("store.cases", "read_case", True, _at_start, _works_again_after_refresh),
    "_find_unreviewed": ("store.queue", "QueueReader._next_unreviewed", False, _press_next_unreviewed,
                         _works_again_next_unreviewed),
    "_check_data_version": ("store.queue", "QueueReader.data_version", False, _poll, _works_again_poll),
}


def _patch(monkeypatch: pytest.MonkeyPatch, module: str, name: str, error: BaseException) -> None:
    import importlib

    target: Any = importlib.import_module(module)
    *owners, attr = name.split(".")
    for owner in owners:
        target = getattr(target, owner)
    monkeypatch.setattr(target, attr, raising(error))


@contextlib.asynccontextmanager
async def failing(run: Run, monkeypatch: pytest.MonkeyPatch, worker: str, error: BaseException) -> Any:
    """The app with ``worker`` made to fail by ``error``: inside the block it has
    failed and the app still runs; after it, the patch is gone and it works again."""
    module, name, early, trigger, works_again = READ_WORKERS[worker]
    if early:
        _patch(monkeypatch, module, name, error)
    async with run.test() as pilot:
        if not early:
            await settle(pilot)
            _patch(monkeypatch, module, name, error)
        await trigger(pilot, run)
        await until(pilot, lambda: bool(run.shown) or isinstance(run.app.screen, BugReport), "the failure shown")
        await run.app.workers.wait_for_complete()
        await pilot.pause()
        assert run.app.is_running
        yield pilot
        monkeypatch.undo()
        await works_again(pilot, run)


@pytest.mark.parametrize("worker", list(READ_WORKERS))
@pytest.mark.parametrize("error, shown", [
    (StoreError("disk I/O error while reading"), "Database error: disk I/O error while reading"),
    (sqlite3.OperationalError("database is locked"), "Database error: cannot read the database {db}: database is locked"),
], ids=["StoreError", "database-is-locked"])
async def test_a_database_error_in_a_read_worker_is_a_notification_titled_with_its_title(
        db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker: str, error: BaseException,
        shown: str) -> None:
    run = Run(db, tmp_path / "log" / "warden.log")
    async with failing(run, monkeypatch, worker, error):
        assert shown.format(db=db) in run.shown
        assert isinstance(run.app.screen, ReviewScreen)  # no dialog: the reviewer can act on it
    assert not (tmp_path / "log").exists()  # not a bug: nothing logged


@pytest.mark.parametrize("worker", list(READ_WORKERS))
async def test_an_unexpected_error_in_a_read_worker_is_a_bug_dialog_naming_the_log(
        db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker: str) -> None:
    log = tmp_path / "log" / "warden.log"
    run = Run(db, log)
    early = READ_WORKERS[worker][2]
    async with failing(run, monkeypatch, worker, RuntimeError("boom")) as pilot:
        dialog = run.app.screen
        assert isinstance(dialog, BugReport)
        assert dialog.text == (
            "This is a bug in warden, not something you did. The app keeps running; what you were doing may "
            "not have finished.\n\n"
            "RuntimeError: boom\n\n"
            f"The details, with the traceback, are in\n{log}\n"
            "Please send that file to whoever looks after warden."
        )
        await pilot.press("escape")
        # Closing the dialog reads again (the screen resumes); the same bug again is
        # a notification, not a dialog the reviewer could never get out of.
        # (The workers that run at the start run again then, maybe more than once:
        # the app's focus reads again too; the others do not.)
        again = f"Bug in warden: RuntimeError: boom (again; see {log})"
        await until(pilot, lambda: isinstance(run.app.screen, ReviewScreen) and (again in run.shown) == early,
                    "the dialog closed")
        await run.app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(run.app.screen, ReviewScreen)
        repeats = [n for n in run.shown if n.startswith("Bug in warden: ")]
        assert set(repeats) == ({again} if early else set())
    written = log.read_text(encoding="utf-8")
    entry = f"2023-01-02T09:30:00Z unexpected error in ReviewScreen.{worker}\nTraceback"
    assert written.startswith(entry)
    assert written.count("RuntimeError: boom\n") == written.count("unexpected error in") == 1 + len(repeats)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


# --- write workers and the sync ------------------------------------------------------


async def test_a_bug_while_a_decision_is_written_leaves_the_queue_working(
        db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import store.review

    run = Run(db, tmp_path / "warden.log")
    async with run.test() as pilot:
        await settle(pilot)
        monkeypatch.setattr(store.review, "decide", raising(RuntimeError("no")))
        await pilot.press("v")
        await settle(pilot)
        run.app.screen.query_one("#reason", Input).value = "over the cap"
        run.app.screen.query_one("#ok").press()
        await settle(pilot)
        assert isinstance(run.app.screen, BugReport)
        await pilot.press("escape")
        await settle(pilot)
        # The decision in flight is over: a refresh reloads (none is held back).
        await pilot.press("j", "j")
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert run.current_id() == "contoso-borderline" and run.screen._deciding == 0
    assert "unexpected error in ReviewScreen._decide" in (tmp_path / "warden.log").read_text()


async def test_a_failed_save_in_the_note_editor_says_not_saved(
        db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from store import notes
    from tui.screens.note import NoteEditor

    run = Run(db, tmp_path / "warden.log")
    async with run.test() as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        editor = run.app.screen
        assert isinstance(editor, NoteEditor)
        monkeypatch.setattr(notes, "save_body", raising(StoreError("cannot write to the database: disk full")))
        await pilot.press(*"typed ")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "Database error: cannot write to the database: disk full" in run.shown
        assert "NOT SAVED" in str(editor.query_one("#note-head").render())
        # Esc still works: it tries to save again (and says so), then Esc with the patch gone leaves.
        monkeypatch.undo()
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(run.app.screen, ReviewScreen)


async def test_a_sync_that_cannot_start_is_a_notification_and_ends(
        db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.modals.sync import SyncProgress

    monkeypatch.delenv("WARDEN_TEST_TOKEN", raising=False)
    config = Config(sources={"feed": SourceConfig(name="feed", adapter="warden-feed", url="http://127.0.0.1:9/feed",
                                                  token_env="WARDEN_TEST_TOKEN")})
    run = Run(db, tmp_path / "warden.log", config=config)
    async with run.test() as pilot:
        await settle(pilot)
        await pilot.press("R")
        await settle(pilot)
        modal = run.app.screen
        assert isinstance(modal, SyncProgress) and modal.finished
        assert run.app.syncing is None
        assert ("Configuration error: source 'feed': environment variable WARDEN_TEST_TOKEN is not set "
                "(token_env names the variable that holds the token)") in run.shown
        assert str(modal.query_one("#status").render()).startswith("failed: source 'feed': environment variable")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(run.app.screen, ReviewScreen)
    assert not (tmp_path / "warden.log").exists()


async def test_the_bug_log_hides_tokens_and_a_log_that_cannot_be_written_is_named(
        db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import store.queue

    token = "tok-3f9a7c21d4e8b6a0"
    monkeypatch.setenv("WARDEN_TEST_TOKEN", token)
    config = Config(sources={"feed": SourceConfig(name="feed", adapter="warden-feed", url="http://127.0.0.1:9/feed",
                                                  token_env="WARDEN_TEST_TOKEN")})
    log = tmp_path / "warden.log"
    run = Run(db, log, config=config)
    async with run.test() as pilot:
        await settle(pilot)
        monkeypatch.setattr(store.queue.QueueReader, "next_to_decide", raising(RuntimeError(f"GET /x?token={token} failed")))
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert isinstance(run.app.screen, BugReport)
    written = log.read_text(encoding="utf-8")
    assert token not in written and "GET /x?token=*** failed" in written

    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    run = Run(db, blocked / "warden.log")
    async with run.test() as pilot:
        await settle(pilot)
        monkeypatch.setattr(store.queue.QueueReader, "next_to_decide", raising(RuntimeError("boom")))
        await pilot.press("right_square_bracket")
        await settle(pilot)
        dialog = run.app.screen
        assert isinstance(dialog, BugReport)
        assert dialog.text.endswith(f"The details could not be written to {blocked / 'warden.log'} (File exists).")
        # A second bug while the dialog is open: no second dialog on top of it.
        await pilot.press("right_square_bracket")  # the dialog has the keys: nothing happens
        run.screen.action_unreviewed(1)
        await settle(pilot)
        assert sum(isinstance(s, BugReport) for s in run.app.screen_stack) == 1


async def test_a_conflict_is_a_notification_and_the_screen_reads_again(db: Path, tmp_path: Path) -> None:
    from store import review
    from store.db import connect
    from store.errors import ConflictError
    from tui.messages import Problem

    run = Run(db, tmp_path / "warden.log")
    async with run.test() as pilot:
        await settle(pilot)
        queue = run.screen.query_one(QueueView)
        assert queue.row_at(2).consumer_id == "contoso-borderline" and queue.row_at(2).verdict == "open"
        other = connect(db)
        review.dismiss(other, 4, reviewer="bob", reason_code="duplicate", clock=CLOCK)
        other.close()
        run.app.post_message(Problem(ConflictError("finding #4 changed"), screen=run.screen))
        await settle(pilot)
        assert "Changed by someone else: finding #4 changed" in run.shown
        rows = [queue.row_at(i) for i in range(queue.total)]
        assert next(r for r in rows if r.consumer_id == "contoso-borderline").verdict == "decided"


# --- every worker goes to the boundary -------------------------------------------------


def _worker_calls() -> list[tuple[str, ast.Call]]:
    """(where, call) for every ``@work(...)`` decorator and ``run_worker(...)`` call in tui/."""
    found = []
    for path in sorted(TUI.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for deco in node.decorator_list:
                    name = deco.func if isinstance(deco, ast.Call) else deco
                    if isinstance(name, ast.Name) and name.id == "work" or (
                            isinstance(name, ast.Attribute) and name.attr == "work"):
                        call = deco if isinstance(deco, ast.Call) else ast.Call(name, [], [])
                        found.append((f"{path.name}:{node.name}", call))
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr == "run_worker"):
                found.append((f"{path.name}:{node.lineno}", node))
    return found


def test_every_worker_runs_with_exit_on_error_false() -> None:
    calls = _worker_calls()
    assert {"review.py:_count", "review.py:_decide", "note.py:_save", "app.py:_run_sync"} <= {w for w, _ in calls}
    bad = [where for where, call in calls
           if not any(k.arg == "exit_on_error" and isinstance(k.value, ast.Constant) and k.value.value is False
                      for k in call.keywords)]
    assert bad == []
