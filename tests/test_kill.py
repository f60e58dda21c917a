"""SIGKILL at named places in the write path: what a kill there leaves behind.

Each kill lands at a fault point (store.fault_points): the process, told by the
environment where to stop, reaches that place inside a write transaction (its
writes done, ``COMMIT`` not yet run) or just after the commit, says so, and waits
to be killed. Each test asserts which side of the commit the kill landed on, and
both sides of each are covered.

* The sync (``sync_all`` of the demo's two sources, rules included) is killed
  inside and just after its page transactions and the rules' transactions,
  twice in a row on some databases, then let finish: ``PRAGMA integrity_check``
  passes and the content (usage, endpoint usage, consumers, apps, findings)
  equals an uninterrupted sync.
* The real TUI (in a subprocess, driven by Pilot) is killed while a decision and
  while a note save is being written: the decision log verifies (``warden
  verify``); before the commit nothing of the decision is there and the note holds
  the last save; after it, all of the decision and the new text are.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from store.db import connect
from store.demo import DEMO_TOKEN_ENV, DemoEndpoint
from store.decision_log import verify_chain
from store.fault_points import POINT_ENV, SIGNAL_ENV
from store.verify import verify_log
from tests.tui_data import seed_review_db
from tui.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
WAIT_FOR_POINT = 120   # seconds a process may take to reach its point (a loaded machine, a slow CI)

SYNC_SCRIPT = textwrap.dedent("""
    import sys
    from datetime import date, datetime, timezone
    from store.clock import fixed_clock
    from store.demo.config import demo_config
    from store.sync.engine import sync_all

    class At:  # demo_config only needs the endpoint's URLs
        feed_url = sys.argv[2] + "/feed/v1"
        x_url = sys.argv[2]

    config = demo_config(At())
    feed = config.sources["demo-feed"]
    feed.start = date(2022, 7, 1)
    feed.options = {"shards": 3, "limit": 1500}
    feed.concurrency = 3
    sync_all(sys.argv[1], config, clock=fixed_clock(datetime(2023, 1, 1, 6, tzinfo=timezone.utc)))
    print("done", flush=True)
""")

CONTENT = {
    "usage": "SELECT source, app_id, day, metric, value FROM usage",
    "endpoint_usage": "SELECT source, app_id, day, endpoint, calls FROM endpoint_usage",
    "consumer": "SELECT id, legal_name, tier_id, origin FROM consumer",
    "app": "SELECT source, app_id, consumer_id FROM app",
    "finding": "SELECT consumer_id, category, period, metric, actual, limit_value, status FROM finding",
    "tier_limit": "SELECT tier_id, metric, period, max_value FROM tier_limit",
}


def content(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(db)
    try:
        return {name: sorted(map(tuple, conn.execute(sql))) for name, sql in CONTENT.items()}
    finally:
        conn.close()


def count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def kill_at(point: str, argv: list[str], signal_file: Path, env: dict[str, str] | None = None, *,
            armed: bool = True) -> dict[str, Any]:
    """Run ``argv`` told to stop at ``point`` (``NAME:SIDE`` or ``NAME:SIDE#N``); when
    it has stopped there, SIGKILL it. Returns what it reported at the point.
    ``armed=False``: the process sets the point itself, when it is ready to."""
    signal_file.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {}), SIGNAL_ENV: str(signal_file)}
    if armed:
        env[POINT_ENV] = point
    process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + WAIT_FOR_POINT
        while not signal_file.exists():   # written whole (renamed into place) when the point is reached
            if process.poll() is not None:
                _, err = process.communicate()
                pytest.fail(f"{point} was never reached: the process ended ({process.returncode}); {err[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{point} was not reached in {WAIT_FOR_POINT} s")
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    reported = json.loads(signal_file.read_text(encoding="utf-8"))
    assert reported["point"] == point.partition("#")[0] and reported["pid"] == process.pid
    return reported


# --- the sync -----------------------------------------------------------------------

# Per database, where its sync is killed, in turn (the second kill hits the resumed
# run), before it is let finish. The whole sync commits its pages some 4 to 10
# times, depending on the machine's speed (a transaction ends after 25 ms), so no
# point is beyond the third.
SYNC_KILLS = (
    ("sync-page:before-commit#1", "sync-page:after-commit#2"),
    ("sync-page:after-commit#1", "sync-page:before-commit#2"),
    ("sync-page:before-commit#3", "rules:before-commit"),
    ("sync-page:after-commit#3", "rules:after-commit"),
)


def sync_argv(db: Path, url: str) -> list[str]:
    return [sys.executable, "-c", SYNC_SCRIPT, str(db), url]


def test_sync_killed_inside_and_after_its_commits_resumes_to_the_same_content(tmp_path: Path) -> None:
    env = {DEMO_TOKEN_ENV: "kill-test-token"}
    with DemoEndpoint(consumers=40, env_faults=False) as endpoint:
        whole = tmp_path / "whole.db"
        done = subprocess.run(sync_argv(whole, endpoint.base_url), cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO), **env}, timeout=300)
        assert done.returncode == 0, done.stderr
        expected = content(whole)
        assert len(expected["usage"]) > 10_000 and expected["finding"]

        for n, points in enumerate(SYNC_KILLS):
            db = tmp_path / f"killed-{n}.db"
            for point in points:
                reported = kill_at(point, sync_argv(db, endpoint.base_url), tmp_path / "reached.json", env)
                if point.startswith("sync-page:"):
                    # What the writer saw stored, its open transaction included.
                    seen = (reported["sync_page"], reported["usage"])
                    stored = (count(db, "SELECT count(*) FROM sync_page"), count(db, "SELECT count(*) FROM usage"))
                    if ":before-commit" in point:
                        assert stored != seen and all(s <= r for s, r in zip(stored, seen)), (point, stored, seen)
                    else:
                        assert stored == seen, (point, stored, seen)
                else:
                    # The first chunk of findings of this database's rules run.
                    findings = count(db, "SELECT count(*) FROM finding")
                    assert (findings == 0) if ":before-commit" in point else (findings > 0), (point, findings)
            done = subprocess.run(sync_argv(db, endpoint.base_url), cwd=REPO, capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": str(REPO), **env}, timeout=300)
            assert done.returncode == 0, done.stderr
            conn = connect(db)
            try:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
                assert conn.execute("SELECT count(*) FROM sync_cursor").fetchone()[0] == 0
            finally:
                conn.close()
            assert content(db) == expected, f"database {n}, killed at {points}"


# --- the TUI ------------------------------------------------------------------------

TUI_SCRIPT = textwrap.dedent("""
    import asyncio, os, sqlite3, sys
    from textual.widgets import Input, TextArea
    import tui.screens.note
    from tests.test_tui_review import press, settle
    from tests.tui_data import CLOCK
    from tui.app import WardenApp
    from tui.screens.note import NoteEditor

    db, scenario, point = sys.argv[1], sys.argv[2], sys.argv[3]

    def body():
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT body FROM note ORDER BY id DESC LIMIT 1").fetchone()
            return row[0] if row else None

    async def drive():
        app = WardenApp(db_path=db, reviewer="alice", clock=CLOCK, mouse=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            if scenario == "decision":
                await press(pilot, "v")
                app.screen.query_one("#reason", Input).focus()
                await pilot.press(*"over the cap")
                os.environ["WARDEN_FAULT_POINT"] = point   # the next write stops there
                await pilot.press("enter")
            else:
                await press(pilot, "c")
                assert isinstance(app.screen, NoteEditor)
                area = app.screen.query_one(TextArea)
                area.move_cursor(area.document.end)
                await pilot.press(*" SAVED-ONE")
                while not (body() or "").endswith(" SAVED-ONE"):   # the autosave, 0.5 s after the last key
                    await pilot.pause(0.05)
                # From here on only ctrl+s saves, so the save stopped at the point holds all of TYPED-TWO.
                tui.screens.note.AUTOSAVE_DELAY = 3600
                await pilot.press(*" TYPED-TWO")
                os.environ["WARDEN_FAULT_POINT"] = point
                await pilot.press("ctrl+s")
            await asyncio.Event().wait()   # stopped at the point in a worker: killed there

    asyncio.run(drive())
""")


def tui_argv(db: Path, scenario: str, point: str) -> list[str]:
    return [sys.executable, "-c", TUI_SCRIPT, str(db), scenario, point]


@pytest.mark.parametrize("side", ["before-commit", "after-commit"])
def test_tui_killed_while_a_decision_is_written(tmp_path: Path, side: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    db = seed_review_db(tmp_path / "review.db")
    conn = connect(db)
    confirmed_before = {r[0] for r in conn.execute("SELECT id FROM finding WHERE status = 'confirmed'")}
    entries_before = conn.execute("SELECT count(*) FROM decision").fetchone()[0]
    conn.close()
    point = f"decision:{side}"
    kill_at(point, tui_argv(db, "decision", point), tmp_path / "reached.json", armed=False)
    conn = connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert verify_chain(conn).ok
        assert verify_log(conn).ok
        log = conn.execute("SELECT subject_id, field, new_value, action_id FROM decision WHERE id > ? ORDER BY id",
                           (entries_before,)).fetchall()
        confirmed = {r[0] for r in conn.execute("SELECT id FROM finding WHERE status = 'confirmed'")}
    finally:
        conn.close()
    if side == "before-commit":
        assert log == [] and confirmed == confirmed_before
    else:
        # The whole action: the consumer's findings confirmed, each logged, under one action.
        newly = confirmed - confirmed_before
        assert newly, (confirmed, confirmed_before)
        assert {r["subject_id"] for r in log if r["field"] == "status" and r["new_value"] == "confirmed"} == newly
        assert len({r["action_id"] for r in log}) == 1
    assert cli_main(["verify", "--db", str(db)]) == 0
    assert "chain intact" in capsys.readouterr().err


@pytest.mark.parametrize("side", ["before-commit", "after-commit"])
def test_tui_killed_while_a_note_save_is_written(tmp_path: Path, side: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    db = seed_review_db(tmp_path / "review.db")
    point = f"note-save:{side}"
    kill_at(point, tui_argv(db, "note", point), tmp_path / "reached.json", armed=False)
    conn = connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        body = conn.execute("SELECT body FROM note ORDER BY id DESC LIMIT 1").fetchone()[0]
        assert verify_chain(conn).ok and verify_log(conn).ok
    finally:
        conn.close()
    # Before the commit the last save is what is kept; after it, the save in flight.
    assert body.endswith(" SAVED-ONE" if side == "before-commit" else " SAVED-ONE TYPED-TWO"), body[-40:]
    assert cli_main(["verify", "--db", str(db)]) == 0
