"""SIGKILL at random (seeded) moments: nothing half-written survives.

* The sync (``sync_all`` of the demo's two sources, rules included) is killed at
  ten points spread over its run, twice in a row on the same database before it
  is let finish: ``PRAGMA integrity_check`` passes and the content (usage,
  endpoint usage, consumers, apps, findings) equals an uninterrupted sync.
* The real TUI (in a subprocess, driven by Pilot) is killed right after a
  decision is submitted and while a note save is in flight: the decision log
  verifies (``warden verify``), a decision is all there or not at all, and the
  note holds exactly a state that was saved (the last save, or the one in flight).
"""

from __future__ import annotations

import os
import random
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
from store.verify import verify_log
from tests.tui_data import seed_review_db
from tui.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
SEED = 20230101
KILLS_PER_DB = 2
DATABASES = 5   # 10 kill points in all

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


def start_sync(db: Path, url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), DEMO_TOKEN_ENV: "kill-test-token"}
    return subprocess.Popen([sys.executable, "-c", SYNC_SCRIPT, str(db), url], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen[bytes]) -> None:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()


def test_sync_killed_at_random_points_resumes_to_the_same_content(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    with DemoEndpoint(consumers=40, env_faults=False) as endpoint:
        whole = tmp_path / "whole.db"
        began = time.monotonic()
        finish(start_sync(whole, endpoint.base_url))
        duration = time.monotonic() - began
        expected = content(whole)
        assert len(expected["usage"]) > 10_000 and expected["finding"]

        killed_at: list[tuple[int, float, int]] = []
        for n in range(DATABASES):
            db = tmp_path / f"killed-{n}.db"
            for _ in range(KILLS_PER_DB):
                process = start_sync(db, endpoint.base_url)
                # Anywhere from interpreter start-up to the end of the rules.
                delay = rng.uniform(0.1, duration * 0.95)
                try:
                    process.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                process.communicate(timeout=30)
                pages = 0
                if db.exists():
                    with sqlite3.connect(db) as reader:
                        if reader.execute("SELECT 1 FROM sqlite_master WHERE name = 'sync_page'").fetchone():
                            pages = reader.execute("SELECT count(*) FROM sync_page").fetchone()[0]
                killed_at.append((n, round(delay, 2), pages))
            finish(start_sync(db, endpoint.base_url))
            conn = connect(db)
            try:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
                assert conn.execute("SELECT count(*) FROM sync_cursor").fetchone()[0] == 0
            finally:
                conn.close()
            assert content(db) == expected, f"database {n}, kills {killed_at}"
    print(f"\nsync of {duration:.1f} s killed at (db, seconds, pages stored): {killed_at}")
    # The kills landed at different stages: before any page and after many.
    stages = {pages for _, _, pages in killed_at}
    assert len(stages) >= 3, killed_at


# --- the TUI ------------------------------------------------------------------------

TUI_SCRIPT = textwrap.dedent("""
    import asyncio, sqlite3, sys
    from textual.widgets import Input, TextArea
    from tests.test_tui_review import press, settle
    from tests.tui_data import CLOCK
    from tui.app import WardenApp
    from tui.screens.note import NoteEditor

    db, scenario = sys.argv[1], sys.argv[2]

    def say(line):
        print(line, flush=True)

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
                say("SUBMIT")
                await pilot.press("enter")   # the decision's worker starts: killed around now
                await asyncio.sleep(30)
            await press(pilot, "c")
            assert isinstance(app.screen, NoteEditor)
            area = app.screen.query_one(TextArea)
            area.move_cursor(area.document.end)
            await pilot.press(*" SAVED-ONE")
            for _ in range(400):   # the autosave fires 0.5 s after the last key; a loaded machine is slower
                await pilot.pause(0.05)
                if (body() or "").endswith(" SAVED-ONE"):
                    break
            say("SAVED " + str(len(body())))
            await pilot.press(*" TYPED-TWO")
            say("TYPING")
            await pilot.press("ctrl+s")      # the save's worker starts: killed around now
            await asyncio.sleep(30)

    asyncio.run(drive())
""")


def run_until(db: Path, scenario: str, marker: str, delay: float) -> list[str]:
    """Start the TUI driver, SIGKILL it ``delay`` seconds after it prints ``marker``."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-c", TUI_SCRIPT, str(db), scenario], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        for line in process.stdout:
            lines.append(line.strip())
            if line.startswith(marker):
                time.sleep(delay)
                break
            assert time.monotonic() < deadline
        os.kill(process.pid, signal.SIGKILL)
    finally:
        _, err = process.communicate(timeout=30)
    assert any(line.startswith(marker) for line in lines), (lines, err)
    return lines


@pytest.mark.parametrize("delay", [0.0, 0.01, 0.05])
def test_tui_killed_while_a_decision_is_in_flight(tmp_path: Path, delay: float,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    db = seed_review_db(tmp_path / "review.db")
    run_until(db, "decision", "SUBMIT", delay)
    conn = connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert verify_chain(conn).ok
        log = conn.execute("SELECT subject_id, field, new_value, action_id FROM decision WHERE reviewer != 'seed'"
                           " ORDER BY id").fetchall()
        # Either the whole action is logged and applied, or nothing is (the seeded dismissal aside).
        confirmed = {r[0] for r in conn.execute("SELECT id FROM finding WHERE status = 'confirmed'")}
        assert verify_log(conn).ok
        logged = {r["subject_id"] for r in log if r["field"] == "status" and r["new_value"] == "confirmed"}
        assert confirmed == logged
        assert len({r["action_id"] for r in log}) <= 1
    finally:
        conn.close()
    assert cli_main(["verify", "--db", str(db)]) == 0
    assert "chain intact" in capsys.readouterr().err


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.3])
def test_tui_killed_while_a_note_save_is_in_flight(tmp_path: Path, delay: float,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    db = seed_review_db(tmp_path / "review.db")
    lines = run_until(db, "note", "TYPING", delay)
    saved_length = int(next(line for line in lines if line.startswith("SAVED ")).split()[1])
    conn = connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        body = conn.execute("SELECT body FROM note ORDER BY id DESC LIMIT 1").fetchone()[0]
        assert verify_chain(conn).ok
    finally:
        conn.close()
    # What was saved is kept; the save in flight is all there or not at all.
    assert len(body) in (saved_length, saved_length + len(" TYPED-TWO")), body[-40:]
    assert body.endswith(" SAVED-ONE") or body.endswith(" SAVED-ONE TYPED-TWO")
    assert cli_main(["verify", "--db", str(db)]) == 0
