"""Files warden writes, and disks that refuse to be written.

* Modes: with umask 022, the database (and its WAL/SHM and lock files), export
  folders and export files are readable by their owner only (0600, folders 0700).
* A read-only disk: the database opens for reading, every write is a
  ``StoreError`` naming the file (never a bare ``sqlite3`` error or a stack
  trace), ``warden sync`` exits 1 with one clear line, ``warden verify`` still
  works, the TUI shows the queue and reports a refused decision as a notification.
* A full disk: the sync stops with a ``StoreError``, the database passes
  ``PRAGMA integrity_check`` and everything stored before is intact; a
  reviewer's decision on a full database is refused cleanly (``max_page_count``).

Read-only and full disks are real: a read-only bind mount and a tiny tmpfs in a
private mount namespace (``unshare -m``, needs root); without it those tests skip.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import textwrap
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from store.clock import fixed_clock
from store.config import SourceConfig
from store.db import connect, transaction
from store.demo import DEMO_TOKEN_ENV, DemoEndpoint
from store.errors import StoreError
from store.export import export_notes
from store.export import files as disk
from store.notes import draft_note, set_note_status
from store.decision_log import verify_chain
from store.review import confirm_violation
from store.sync.engine import sync_source
from tests.tui_data import CLOCK as TUI_CLOCK, seed_review_db

REPO = Path(__file__).resolve().parents[1]
CLOCK = fixed_clock(datetime(2023, 1, 1, 6, tzinfo=timezone.utc))
TOKEN = "files-test-token-11aa"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEMO_TOKEN_ENV, TOKEN)


def feed(endpoint: DemoEndpoint, start: date = date(2022, 12, 20)) -> SourceConfig:
    return SourceConfig("feed", "warden-feed", endpoint.feed_url, token_env=DEMO_TOKEN_ENV, start=start,
                        options={"shards": 2})


def usage_of(db: Path) -> dict[tuple[Any, ...], int]:
    conn = sqlite3.connect(db)
    try:
        return {tuple(r[:4]): r[4] for r in conn.execute("SELECT source, app_id, day, metric, value FROM usage")}
    finally:
        conn.close()


def test_database_exports_and_folders_are_private(tmp_path: Path, umask_022: None) -> None:
    db = tmp_path / "new" / "w.db"
    with DemoEndpoint(consumers=6, env_faults=False) as endpoint:
        assert sync_source(db, feed(endpoint), clock=CLOCK).status == "ok"
    assert mode(db.parent) == 0o700
    conn = connect(db)  # held open: the WAL and SHM files exist
    try:
        with transaction(conn):
            conn.execute("UPDATE consumer SET notice_contact = notice_contact")
        written = sorted(p for p in db.parent.iterdir())
        assert {p.name for p in written} >= {"w.db", "w.db-wal", "w.db-shm", "w.db.sync-feed.lock"}
        for path in written:
            assert mode(path) == 0o600, (path.name, oct(mode(path)))
        consumer = conn.execute("SELECT id FROM consumer ORDER BY id LIMIT 1").fetchone()[0]
        note = draft_note(conn, consumer, reviewer="alice", clock=CLOCK, config=_notes())
        set_note_status(conn, note.id, "ready", reviewer="alice", clock=CLOCK)
        out = tmp_path / "exports" / "letters"
        for fmt in ("md", "html", "eml", "json", "csv"):
            export_notes(conn, fmt=fmt, out_dir=out / fmt, reviewer="alice", clock=CLOCK, config=_notes(),
                         status=None)
    finally:
        conn.close()
    folders = [out] + [p for p in out.rglob("*") if p.is_dir()]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) >= 6
    for folder in folders:
        assert mode(folder) == 0o700, folder
    for path in files:
        assert mode(path) == 0o600, path


def test_a_lock_file_a_recovery_creates_is_private_and_a_busy_one_is_not_kept_open(tmp_path: Path,
                                                                                   umask_022: None) -> None:
    # A killed export's staging folder whose lock file is gone: claiming it creates the lock file
    # readable by its owner only (0600). Claimed again while held, it is busy: None, and the
    # descriptor opened to try is closed again.
    staging = tmp_path / ".warden-export-0123456789ab"
    staging.mkdir(mode=0o700)
    fd = disk.claim(staging)
    try:
        assert fd is not None
        assert mode(staging / ".lock") == 0o600
        before = len(os.listdir("/proc/self/fd"))
        assert disk.claim(staging) is None
        assert len(os.listdir("/proc/self/fd")) == before
    finally:
        os.close(fd)


def staged_over_an_old_letter(tmp_path: Path) -> tuple[Path, Path]:
    """out/ with the letter note-1-a.md, and a staging folder in it holding its new version."""
    out = tmp_path / "out"
    staging = out / ".warden-export-0123456789ab"
    staging.mkdir(parents=True, mode=0o700)
    (out / "note-1-a.md").write_bytes(b"the old letter")
    (staging / "note-1-a.md").write_bytes(b"the new letter")
    return out, staging


def test_letters_a_recovery_replaces_wait_in_a_private_old_folder(tmp_path: Path, umask_022: None) -> None:
    # Finishing an interrupted export moves each staged letter over its name; the letter it
    # replaces waits in the staging folder's old/, a folder only its owner can open (0700).
    out, staging = staged_over_an_old_letter(tmp_path)
    expected = {"note-1-a.md": "84e8bab500c2c7f4389700e42668346e66f31d45a2ab3b89bf8adc045d3507eb"}
    assert disk.finish(staging, out, expected) is True
    assert (out / "note-1-a.md").read_bytes() == b"the new letter"
    assert (staging / "old" / "note-1-a.md").read_bytes() == b"the old letter"
    assert mode(staging / "old") == 0o700


def test_letters_an_export_replaces_wait_in_a_private_old_folder(tmp_path: Path, umask_022: None) -> None:
    # Moving a forced export's letters in: the letter each replaces waits in the staging
    # folder's old/ (0700) until the export is complete.
    out, staging = staged_over_an_old_letter(tmp_path)
    (staging / "note-2-b.md").write_bytes(b"a new letter")
    steps: list[str] = []
    disk.move_in(staging, out, ["note-1-a.md", "note-2-b.md"], steps.append)
    assert steps == ["moved note-1-a.md", "moved note-2-b.md"]
    assert (out / "note-1-a.md").read_bytes() == b"the new letter"
    assert (out / "note-2-b.md").read_bytes() == b"a new letter"
    assert (staging / "old" / "note-1-a.md").read_bytes() == b"the old letter"
    assert sorted(p.name for p in (staging / "old").iterdir()) == ["note-1-a.md"]
    assert mode(staging / "old") == 0o700


def _notes() -> Any:
    from store.config import NotesConfig

    return NotesConfig()


# --- read-only and full disks ---------------------------------------------------------

def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


needs_mounts = pytest.mark.skipif(not _can_unshare(), reason="needs root and unshare -m for real mounts")


def confined(setup: str, script: str, *args: str) -> dict[str, Any]:
    """Run ``script`` (Python) in a private mount namespace after the shell ``setup``;
    return the JSON object it prints last."""
    command = f"{setup} && script=\"$1\" && shift && exec \"$0\" -c \"$script\" \"$@\""
    run = subprocess.run(["unshare", "-m", "sh", "-c", command, sys.executable, textwrap.dedent(script), *args],
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


READ_ONLY_SCRIPT = """
    import asyncio, contextlib, io, json, sys
    from store.clock import fixed_clock
    from store.db import connect
    from store.errors import StoreError
    from store.notes import save_body
    from store.decision_log import verify_chain
    from store.review import confirm_violation
    from tui.cli import main

    db, config = sys.argv[1], sys.argv[2]
    out = {}
    conn = connect(db)
    out["consumers"] = conn.execute("SELECT count(*) FROM consumer").fetchone()[0]
    finding = conn.execute("SELECT id FROM finding WHERE status = 'candidate' LIMIT 1").fetchone()[0]
    note = conn.execute("SELECT id FROM note LIMIT 1").fetchone()
    writes = {
        "decision": lambda: confirm_violation(conn, finding, reviewer="a", severity="high", reason="r",
                                              clock=fixed_clock(__import__("datetime").datetime(2023, 1, 2))),
        "note": lambda: save_body(conn, note[0], "new body"),
    }
    for name, write in writes.items():
        try:
            write()
            out[name] = "written"
        except StoreError as exc:
            out[name] = "StoreError: " + str(exc)
        except Exception as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
    out["chain_ok"] = verify_chain(conn).ok
    conn.close()
    for command in (["sync"], ["verify"]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                code = main([*command, "--config", config, "--db", db])
            except BaseException as exc:
                code = f"raised {type(exc).__name__}: {exc}"
        out[command[0]] = [code, err.getvalue()]

    # The TUI on the read-only database: the queue shows, a decision is refused politely.
    from textual.widgets import Input
    from tests.test_tui_review import notifications, press, review_screen, settle
    from tests.tui_data import CLOCK, notifications_recorded
    from tui.app import WardenApp
    from tui.widgets.queue import QueueView

    async def drive():
        app = WardenApp(db_path=db, reviewer="alice", clock=CLOCK, mouse=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            screen = review_screen(app)
            out["tui_total"] = screen.total
            out["tui_current"] = screen.query_one(QueueView).current.consumer_id
            await press(pilot, "i")
            app.screen.query_one("#reason", Input).focus()
            await pilot.press(*"ask")
            await press(pilot, "enter")
            await press(pilot, "j")
            out["tui_after"] = review_screen(app).query_one(QueueView).current.consumer_id
            out["tui_notes"] = notifications(app)
        out["tui_return"] = app.return_code
    with notifications_recorded():   # what the conftest fixture does in pytest
        asyncio.run(drive())
    print(json.dumps(out))
"""


@needs_mounts
def test_a_read_only_disk_reads_and_refuses_writes_cleanly(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = seed_review_db(folder / "review.db")
    conn = connect(db)
    note = draft_note(conn, "northwind-analytics", reviewer="alice", clock=TUI_CLOCK, config=_notes())
    before = conn.execute("SELECT count(*), max(id) FROM decision").fetchone()[:]
    conn.close()
    config = tmp_path / "c.toml"
    config.write_text('[sources.feed]\nadapter = "warden-feed"\nurl = "http://127.0.0.1:9/feed/v1"\n')
    out = confined(f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} {folder}",
                   READ_ONLY_SCRIPT, str(db), str(config))
    assert out["consumers"] > 0
    refused = f"cannot write to the database {db}: attempt to write a readonly database; nothing was changed"
    for write in ("decision", "note"):
        assert out[write] == f"StoreError: {refused}"
    assert out["chain_ok"] is True
    code, err = out["sync"]
    assert (code, err) == (1, f"warden: Database error: cannot open the sync lock file {db}.sync-feed.lock: "
                              "Read-only file system\n")
    code, err = out["verify"]
    assert code == 0 and err.startswith("warden: decision log verified: 3 entries, chain intact"), err
    assert out["tui_total"] > 0 and out["tui_current"] == "northwind-analytics"
    assert out["tui_after"] != out["tui_current"]  # still usable after the refused write
    # The one notification, word for word: the refused decision and the file that refused it.
    assert out["tui_notes"] == [f"Database error: {refused}"]
    conn = connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*), max(id) FROM decision").fetchone()[:] == before
        assert verify_chain(conn).ok
        assert conn.execute("SELECT body FROM note WHERE id = ?", (note.id,)).fetchone()[0] == note.body
    finally:
        conn.close()


FULL_SCRIPT = """
    import contextlib, io, json, os, sqlite3, sys
    from datetime import date, datetime, timezone
    from store.clock import fixed_clock
    from store.config import SourceConfig
    from store.errors import StoreError
    from store.sync.engine import sync_source
    from tui.cli import main

    db, url, config = sys.argv[1], sys.argv[2], sys.argv[3]
    out = {}
    source = SourceConfig("history", "warden-feed", url, token_env="WARDEN_DEMO_TOKEN", start=date(2021, 10, 1),
                          options={"shards": 2})
    try:
        result = sync_source(db, source, clock=fixed_clock(datetime(2023, 1, 1, 6, tzinfo=timezone.utc)))
        out["sync"] = f"{result.status}: {result.error}"
    except StoreError as exc:
        out["sync"] = "StoreError: " + str(exc)
    except Exception as exc:
        out["sync"] = f"{type(exc).__name__}: {exc}"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(["sync", "--config", config, "--db", db])
        except BaseException as exc:
            code = f"raised {type(exc).__name__}: {exc}"
    out["cli"] = [code, err.getvalue()]
    conn = sqlite3.connect(db)
    out["integrity"] = conn.execute("PRAGMA integrity_check").fetchone()[0]
    conn.close()
    print(json.dumps(out))
"""


@needs_mounts
def test_a_full_disk_stops_the_sync_and_keeps_the_database_sound(tmp_path: Path) -> None:
    base = tmp_path / "base.db"
    with DemoEndpoint(consumers=20, env_faults=False) as endpoint:
        assert sync_source(base, feed(endpoint), clock=CLOCK).status == "ok"
        before = usage_of(base)
        conn = sqlite3.connect(base)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        disk = tmp_path / "disk"
        disk.mkdir()
        saved = tmp_path / "after"
        saved.mkdir()
        size = base.stat().st_size + 400 * 1024
        config = tmp_path / "c.toml"
        config.write_text(f'[sources.history2]\nadapter = "warden-feed"\nurl = "{endpoint.feed_url}"\n'
                          f'token_env = "{DEMO_TOKEN_ENV}"\nstart = 2021-10-01\nshards = 2\n')
        setup = (f"mount -t tmpfs -o size={size} tmpfs {disk} && cp {base} {disk}/w.db && "
                 f"trap 'cp {disk}/w.db* {saved}/' EXIT")
        # exec would skip the trap: run Python as a child of the shell instead.
        command = f"{setup} && script=\"$1\" && shift && \"$0\" -c \"$script\" \"$@\""
        run = subprocess.run(["unshare", "-m", "sh", "-c", command, sys.executable, textwrap.dedent(FULL_SCRIPT),
                              str(disk / "w.db"), endpoint.feed_url, str(config)],
                             cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                             text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["sync"].startswith("StoreError: cannot write to the database"), out["sync"]
    assert "full" in out["sync"]
    code, err = out["cli"]
    assert code == 1 and "Database error" in err and "Traceback" not in err, err
    assert out["integrity"] == "ok"
    after = saved / "w.db"
    conn = sqlite3.connect(after)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    stored = usage_of(after)
    # Everything stored before is there, unchanged (the sync re-fetched the same figures).
    assert {k: stored.get(k) for k in before} == before


def test_a_full_database_refuses_a_decision_without_corruption(tmp_path: Path) -> None:
    db = seed_review_db(tmp_path / "review.db")
    conn = connect(db)
    try:
        before = conn.execute("SELECT count(*) FROM decision").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        finding = conn.execute("SELECT id FROM finding WHERE status = 'candidate' LIMIT 1").fetchone()[0]
        long_reason = "evidence " * 20_000  # needs new pages: the file may not grow
        with pytest.raises(StoreError, match="cannot write to the database .*review.db.*full"):
            confirm_violation(conn, finding, reviewer="alice", severity="high", reason=long_reason, clock=TUI_CLOCK)
        assert conn.execute("SELECT count(*) FROM decision").fetchone()[0] == before
        assert conn.execute("SELECT status FROM finding WHERE id = ?", (finding,)).fetchone()[0] == "candidate"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert verify_chain(conn).ok
        # Room again: the same decision goes through.
        conn.execute(f"PRAGMA max_page_count = {pages * 100}")
        confirm_violation(conn, finding, reviewer="alice", severity="high", reason=long_reason, clock=TUI_CLOCK)
        assert verify_chain(conn).ok
    finally:
        conn.close()


def test_creating_a_database_in_a_folder_that_cannot_exist_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot"):
        connect(blocker / "w.db")


@pytest.mark.parametrize("content", [b"not a database at all " * 1000,
                                     b"SQLite format 3\x00" + bytes(range(256)) * 80])
def test_the_tui_on_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path, content: bytes,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from tui.cli import main as cli_main

    db = tmp_path / "notes.txt"
    db.write_bytes(content)
    assert cli_main(["--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert "Database error" in err and "notes.txt" in err and "Traceback" not in err
    assert db.read_bytes() == content          # left exactly as it was
    assert cli_main(["verify", "--db", str(db)]) == 1


def _recording_connects(monkeypatch: pytest.MonkeyPatch) -> list[sqlite3.Connection]:
    """Every connection ``sqlite3.connect`` hands out from now on."""
    opened: list[sqlite3.Connection] = []
    real_connect = sqlite3.connect

    def recording(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)
        opened.append(conn)
        return conn

    monkeypatch.setattr(sqlite3, "connect", recording)
    return opened


def _is_closed(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


def test_a_database_that_cannot_be_opened_leaves_no_connection_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The TUI keeps running after this error (and a long sync opens many
    # connections): a refused file must not stay open behind the message.
    garbage = tmp_path / "notes.txt"
    garbage.write_bytes(b"not a database at all " * 1000)
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as raw:
        raw.execute("PRAGMA user_version = 999")
    raw.close()
    opened = _recording_connects(monkeypatch)
    for path in (garbage, newer):
        with pytest.raises(StoreError):
            connect(path)
        assert opened and all(_is_closed(conn) for conn in opened), path.name


def test_strays_are_unheld_staging_folders_and_old_temporary_files_never_what_a_link_points_at(
        tmp_path: Path) -> None:
    out = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "folder").mkdir(parents=True)
    (elsewhere / "file.tmp").write_text("the reviewer's")
    out.mkdir()
    (out / ".warden-export-aaaaaaaaaaaa").mkdir()                       # a killed export's: a stray
    (out / ".warden-export-bbbbbbbbbbbb").mkdir()                       # an unfinished export names it: kept
    (out / ".warden-export-cccccccccccc").symlink_to(elsewhere / "folder")
    (out / ".warden-export-dddddddddddd").write_text("a file, not a staging folder")
    (out / ".warden-1234.tmp").write_text("an older warden's temporary file")   # a stray
    (out / ".warden-5678.tmp").symlink_to(elsewhere / "file.tmp")
    (out / ".warden-folder.tmp").mkdir()
    (out / ".warden-notes.md").write_text("theirs")
    (out / "notes.tmp").write_text("theirs")
    (out / "letters").mkdir()
    (out / ".warden-export-eeeeeeeeeeee").mkdir()                       # a live export's (held): kept
    held = disk.claim(out / ".warden-export-eeeeeeeeeeee")
    try:
        found = disk.strays(out, {out / ".warden-export-bbbbbbbbbbbb"})
    finally:
        os.close(held)
    assert sorted(p.name for p in found) == [".warden-1234.tmp", ".warden-export-aaaaaaaaaaaa"]
    assert not (elsewhere / "folder" / ".lock").exists()                # not even claimed through the link
