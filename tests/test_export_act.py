"""An export is one act: the letter written is the letter recorded.

- A cited finding dismissed while the export runs (between rendering and
  recording): nothing written, nothing recorded, the message names it; in one
  process (a hook) and across two (``warden export`` and ``warden decide``).
- ``--force`` replaces the whole set and its manifest, or leaves the old set as it
  was: a folder in the way is refused before anything is touched; a failure
  midway puts every file back and takes the recording back in the log.
- SIGKILL at each step of an export: afterwards the folder and the database
  agree, or the next export repairs them; no temporary file survives.
- ``--out ghost/../x`` creates no ``ghost``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Callable, Iterator

import pytest

from notes_case import CASE_ID, CLOCK, seed
from store.casework.items import ItemChange, mark_items
from store.clock import fixed_clock
from store.config import NotesConfig
from store.db import connect
from store.errors import ExportError
from store.export import export_notes
from store.notes import draft_note, mark_ready, note_for, set_note_status
from store.queue_summary import refresh_all
from store.review import dismiss, set_finding_status
from store.verify import verify_log
from tests.test_files import umask_022  # noqa: F401 (a fixture)
from tui.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
CONFIG = NotesConfig(sender="Platform Compliance <compliance@platform.example>", organisation="Example Platform")


def ready_notes(path: Path, consumers: int) -> Path:
    """The notes case and ``consumers`` bulk consumers, each with a ready note."""
    conn = seed(path, consumers=consumers)
    for cid in [CASE_ID, *(f"bulk-{i:05d}" for i in range(consumers))]:
        note = draft_note(conn, cid, reviewer="ana", clock=CLOCK, config=CONFIG)
        mark_ready(conn, note.id, reviewer="ana", clock=CLOCK)
    conn.close()
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The notes case and three bulk consumers, each with a ready note."""
    return ready_notes(tmp_path / "warden.db", consumers=3)


def export(db: Path, out: Path, fmt: str = "md", **kwargs):
    kwargs.setdefault("status", "ready")
    return export_notes(db, fmt=fmt, out_dir=out, reviewer="ana", clock=CLOCK, config=CONFIG, **kwargs)


def folder(out: Path) -> dict[str, str]:
    """Every entry of ``out`` (hidden ones too): name -> SHA-256 (or "dir")."""
    if not out.exists():
        return {}
    return {p.name: "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()}


def agrees(db: Path, out: Path) -> None:
    """The folder holds exactly what the database's completed exports to it list, and
    nothing else; the log verifies and every manifest's head is in it."""
    conn = connect(db, readonly=True)
    unfinished = conn.execute("SELECT id, status FROM export WHERE status IN ('staging', 'pending')").fetchall()
    assert unfinished == []
    recorded: dict[str, str] = {}
    for (export_id,) in conn.execute("SELECT id FROM export WHERE status = 'completed' AND out_dir = ? ORDER BY id",
                                     (str(out.resolve()),)):
        recorded.update(conn.execute("SELECT path, sha256 FROM export_file WHERE export_id = ?", (export_id,)))
    assert folder(out) == recorded
    for name in recorded:
        if name.startswith("manifest-"):
            head = json.loads((out / name).read_text())["decision_log"]["head"]
            assert verify_log(conn, head=head).ok
    assert verify_log(conn).ok
    conn.close()


def meanwhile_at(point: str, db: Path, action: Callable[[sqlite3.Connection], object]) -> Callable[[str], None]:
    """An export's step hook: at ``point`` another reviewer does ``action`` in ``db`` (on a
    connection of their own)."""
    def hook(step: str) -> None:
        if step == point:
            other = connect(db)
            action(other)
            other.close()
    return hook


def disk_fails_at(point: str, db: Path | None = None,
                  meanwhile: Callable[[sqlite3.Connection], object] | None = None) -> Callable[[str], None]:
    """An export's step hook: at ``point`` another reviewer does ``meanwhile`` in ``db`` (on a
    connection of their own), then the disk fails."""
    others = meanwhile_at(point, db, meanwhile) if meanwhile is not None else None

    def hook(step: str) -> None:
        if others is not None:
            others(step)
        if step == point:
            raise OSError(errno.EIO, "Input/output error")
    return hook


# --- the race: a finding dismissed between rendering and recording ------------------------


@pytest.mark.parametrize("finding_id", [1, 2, 4])     # the note cites #1, #2 and #4: first, middle, last
def test_a_finding_dismissed_while_the_export_runs_stops_it_whole(db: Path, tmp_path: Path, finding_id: int) -> None:
    out = tmp_path / "out"

    # "staged": rendered and written to the staging folder, not yet recorded.
    dismiss_meanwhile = meanwhile_at("staged", db, lambda other: dismiss(other, finding_id, reviewer="bo",
                                                                         reason_code="false_positive", clock=CLOCK))
    with pytest.raises(ExportError) as refused:
        export(db, out, consumer_id=CASE_ID, status=None, on_step=dismiss_meanwhile)
    assert refused.value.title == "Changed during the export"
    assert (f"finding #{finding_id} was confirmed when the letter was written; it is now dismissed by bo "
            "(false_positive)" in str(refused.value))
    assert "Nothing was written" in str(refused.value)
    assert not out.exists()                                       # no file, no staging folder, no folder
    conn = connect(db)
    assert note_for(conn, CASE_ID).status == "ready"
    assert conn.execute("SELECT count(*) FROM finding WHERE status = 'audit_requested'").fetchone()[0] == 0
    assert conn.execute("SELECT status FROM export").fetchall()[0][0] == "abandoned"
    assert conn.execute("SELECT count(*) FROM export_file").fetchone()[0] == 0
    assert verify_log(conn).ok
    conn.close()


@pytest.mark.parametrize(("consumers", "changed"), [
    (["bulk-00001"], "note #3 changed while the export was written (it was ready, version 2; it is now draft, "
                     "version 3)"),
    (["bulk-00001", "bulk-00002"],
     "note #3 changed while the export was written (it was ready, version 2; it is now draft, version 3); "
     "note #4 changed while the export was written (it was ready, version 2; it is now draft, version 3)"),
])
def test_notes_redrafted_while_the_export_runs_stop_it_and_are_each_named(db: Path, tmp_path: Path,
                                                                         consumers: list[str], changed: str) -> None:
    def redraft(other: sqlite3.Connection) -> None:
        for consumer in consumers:
            draft_note(other, consumer, reviewer="bo", clock=CLOCK, config=CONFIG)

    with pytest.raises(ExportError) as stopped:
        export(db, tmp_path / "out", on_step=meanwhile_at("staged", db, redraft))
    assert str(stopped.value) == f"{changed}. Nothing was written; look again and export anew"
    assert not (tmp_path / "out").exists()


RACE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import store.export
    from tui.cli import main

    signal_file, go_file = Path(sys.argv[1]), Path(sys.argv[2])
    real = store.export.export_notes

    def export_notes(*args, **kwargs):
        def hook(step):
            if step == "staged":
                signal_file.touch()
                while not go_file.exists():
                    time.sleep(0.01)
        kwargs["on_step"] = hook
        return real(*args, **kwargs)

    store.export.export_notes = export_notes
    raise SystemExit(main(sys.argv[3:]))
""")


def _cli(*args: str, **kwargs) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_two_processes_an_export_and_a_dismissal_meanwhile(db: Path, tmp_path: Path) -> None:
    staged, go, out = tmp_path / "staged", tmp_path / "go", tmp_path / "out"
    exporting = _cli("-c", RACE, str(staged), str(go), "export", "--db", str(db), "--format", "md", "--consumer",
                     CASE_ID, "--out", str(out), "--reviewer", "ana")
    deadline = time.monotonic() + 60
    while not staged.exists():
        assert exporting.poll() is None, exporting.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    deciding = _cli("-m", "tui.cli", "decide", "dismiss", CASE_ID, "--finding", "2", "--code", "false_positive",
                    "--reason", "test account", "--db", str(db), "--reviewer", "bo")
    assert deciding.wait(timeout=60) == 0, deciding.communicate()
    go.touch()
    _, err = exporting.communicate(timeout=60)
    assert exporting.returncode == 1, err
    assert "finding #2 was confirmed when the letter was written; it is now dismissed by bo" in err
    assert not out.exists()
    conn = connect(db)
    assert note_for(conn, CASE_ID).status == "ready" and verify_log(conn).ok
    conn.close()


# --- --force: the whole set or nothing ----------------------------------------------------------


def test_a_folder_in_the_way_refuses_a_forced_export_before_anything_is_touched(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = export(db, out)
    before = folder(out)
    (out / first.files[2].name).unlink()
    (out / first.files[2].name).mkdir()          # the third file's name is now a folder
    before = folder(out)
    with pytest.raises(ExportError, match=rf"folders in .*: {first.files[2].name}; nothing written"):
        export(db, out, force=True, note_ids=first.note_ids)
    assert folder(out) == before


def test_a_forced_export_failing_midway_puts_every_file_back(db: Path, tmp_path: Path) -> None:
    # The defect: files 1-9 replaced, the old manifest kept: 10 files no longer matched it.
    out = tmp_path / "out"
    first = export(db, out, "html")
    before = folder(out)

    def disk_fails(step: str) -> None:
        if step == f"moved {first.files[2].name}":      # three files replaced, then the disk fails
            raise OSError(errno.EIO, "Input/output error")

    # An hour later: every page says when it was made, so each new file differs from the old.
    later = fixed_clock(CLOCK() + timedelta(hours=1))
    with pytest.raises(ExportError) as failed:
        export_notes(db, fmt="html", out_dir=out, reviewer="ana", clock=later, config=CONFIG, force=True,
                     note_ids=first.note_ids, on_step=disk_fails)
    assert str(failed.value) == (f"cannot write the export to {out}: Input/output error; nothing was replaced and "
                                 "the export was taken back in the log")          # no file named: none given
    assert folder(out) == before
    agrees(db, out)
    replaced = export_notes(db, fmt="html", out_dir=out, reviewer="ana", clock=later, config=CONFIG, force=True,
                            note_ids=first.note_ids)
    assert all(folder(out)[f.name] != before[f.name] for f in replaced.files)   # the test could tell


def test_a_forced_export_that_adds_a_file_and_fails_on_the_manifest_puts_the_old_set_back(db: Path,
                                                                                          tmp_path: Path) -> None:
    # Three letters exported; a forced export of four replaces them, adds the fourth (a new name),
    # then its manifest cannot be moved in (the staged manifest is lost): the folder is the old set
    # again, without the fourth letter, and the error names the file that was missing.
    out = tmp_path / "out"
    first = export(db, out, note_ids=[1, 2, 3])
    before = folder(out)
    assert sorted(before) == ["manifest-md.json", "note-1-northwind-analytics.md", "note-2-bulk-00000.md",
                              "note-3-bulk-00001.md"]
    staged: list[Path] = []

    def manifest_lost(step: str) -> None:
        if step == "moved note-4-bulk-00002.md":
            staged.extend(out.glob(".warden-export-*"))
            (staged[0] / "manifest-md.json").unlink()

    later = fixed_clock(CLOCK() + timedelta(hours=1))
    with pytest.raises(ExportError) as refused:
        export_notes(db, fmt="md", out_dir=out, reviewer="ana", clock=later, config=CONFIG, force=True,
                     note_ids=[*first.note_ids, 4], on_step=manifest_lost)
    assert str(refused.value) == (f"cannot write the export to {out}: No such file or directory "
                                  f"({staged[0] / 'manifest-md.json'}); nothing was replaced and the export was "
                                  "taken back in the log")
    assert folder(out) == before
    agrees(db, out)


@pytest.mark.parametrize("failure, why", [
    (OSError(errno.EIO, "Input/output error"), "[Errno 5] Input/output error"),
    (KeyboardInterrupt(), "KeyboardInterrupt"),          # no message of its own: its name says what happened
], ids=["disk", "ctrl-c"])
def test_an_export_that_fails_before_it_is_recorded_is_abandoned_with_the_reason(db: Path, tmp_path: Path,
                                                                                  failure: BaseException,
                                                                                  why: str) -> None:
    def fails(step: str) -> None:
        if step == "staged":
            raise failure

    out = tmp_path / "out"
    with pytest.raises((ExportError, KeyboardInterrupt)) as failed:
        export(db, out, on_step=fails)
    if isinstance(failure, OSError):
        assert str(failed.value) == (f"cannot write the export to {out}: Input/output error; nothing was replaced "
                                     "and nothing was recorded")
    else:
        assert failed.value is failure                   # Ctrl-C goes on as itself
    conn = connect(db, readonly=True)
    assert [tuple(r) for r in conn.execute("SELECT id, status, staging, finished_at, note FROM export")] == [
        (1, "abandoned", None, "2023-05-02T09:30:00Z", why)]
    assert {r[0] for r in conn.execute("SELECT status FROM note")} == {"ready"}
    conn.close()


def test_a_recorded_export_that_cannot_be_written_is_taken_back_as_one_action(db: Path, tmp_path: Path) -> None:
    # Note 1 (ready) and note 2 (a draft, exported by its id) recorded, then the disk fails: each is
    # back where it was (ready, draft), its findings confirmed again, the two cases the letters opened
    # closed again, all one action of the log with the reason word for word.
    conn = connect(db)
    set_note_status(conn, 2, "draft", reviewer="ana", clock=CLOCK)
    last = conn.execute("SELECT max(id) FROM decision").fetchone()[0]
    refresh_all(conn)                  # (the seed writes findings without the queue's summary)
    queue = [tuple(r) for r in conn.execute("SELECT * FROM consumer ORDER BY id")]
    keys = [tuple(r) for r in conn.execute("SELECT * FROM consumer_finding_key ORDER BY 1, 2")]
    conn.close()

    with pytest.raises(ExportError):
        export_notes(db, fmt="md", out_dir=tmp_path / "out", reviewer="bo", clock=CLOCK, config=CONFIG,
                     note_ids=[1, 2], on_step=disk_fails_at("moved note-1-northwind-analytics.md"))
    conn = connect(db, readonly=True)
    (taken,) = conn.execute("SELECT id FROM decision WHERE id > ? AND reason LIKE 'export #1 could not%' "
                            "ORDER BY id LIMIT 1", (last,)).fetchone()
    rows = conn.execute("SELECT subject, subject_id, field, old_value, new_value, reviewer, reason, action_id "
                        "FROM decision WHERE id >= ? ORDER BY id", (taken,)).fetchall()
    assert {(r[5], r[6], r[7]) for r in rows} == {
        ("bo", "export #1 could not be written ([Errno 5] Input/output error); taken back", taken)}
    assert [tuple(r[:5]) for r in rows if r[2] in ("status", "state")] == [
        ("note", 1, "status", "exported", "ready"),
        ("finding", 1, "status", "audit_requested", "confirmed"),
        ("finding", 2, "status", "audit_requested", "confirmed"),
        ("finding", 4, "status", "audit_requested", "confirmed"),
        ("note", 2, "status", "exported", "draft"),
        ("finding", 6, "status", "audit_requested", "confirmed"),
        *[("item", i, "state", "open", None) for i in (6, 5, 4, 3, 2, 1)],
        ("case", 1, "state", "letter_sent", None),
        *[("item", i, "state", "open", None) for i in (12, 11, 10, 9, 8, 7)],
        ("case", 2, "state", "letter_sent", None)]
    assert [tuple(r) for r in conn.execute("SELECT id, status FROM note ORDER BY id")] == [
        (1, "ready"), (2, "draft"), (3, "ready"), (4, "ready")]
    assert [tuple(r) for r in conn.execute("SELECT status, note, action_id FROM export")] == [
        ("rolled_back", "export #1 could not be written ([Errno 5] Input/output error); taken back", last + 1)]
    # The queue shows every consumer as before the export: findings, cases, due dates.
    assert [tuple(r) for r in conn.execute("SELECT * FROM consumer ORDER BY id")] == queue
    assert [tuple(r) for r in conn.execute("SELECT * FROM consumer_finding_key ORDER BY 1, 2")] == keys
    assert verify_log(conn).ok
    conn.close()


def test_a_finding_already_confirmed_again_is_left_alone_by_the_take_back(db: Path, tmp_path: Path) -> None:
    # While the failing export runs (recorded, files not yet in), another reviewer sets finding #1
    # back from audit_requested to confirmed. The take-back has nothing to do for it and goes on
    # with the rest, still one action.
    def confirm_again(other: sqlite3.Connection) -> None:
        set_finding_status(other, 1, "confirmed", reviewer="cy", clock=CLOCK, reason="sent by post instead")

    with pytest.raises(ExportError):
        export_notes(db, fmt="md", out_dir=tmp_path / "out", reviewer="bo", clock=CLOCK, config=CONFIG,
                     note_ids=[1], on_step=disk_fails_at("moved note-1-northwind-analytics.md", db, confirm_again))
    conn = connect(db, readonly=True)
    (taken,) = conn.execute("SELECT min(id) FROM decision WHERE reason LIKE 'export #1 could not%'").fetchone()
    rows = conn.execute("SELECT subject, subject_id, field, old_value, new_value, action_id FROM decision "
                        "WHERE id >= ? AND field IN ('status', 'state') ORDER BY id", (taken,)).fetchall()
    assert [tuple(r) for r in rows] == [
        ("note", 1, "status", "exported", "ready", taken),
        ("finding", 2, "status", "audit_requested", "confirmed", taken),
        ("finding", 4, "status", "audit_requested", "confirmed", taken),
        *[("item", i, "state", "open", None, taken) for i in (6, 5, 4, 3, 2, 1)],
        ("case", 1, "state", "letter_sent", None, taken)]
    assert [tuple(r) for r in conn.execute("SELECT id, status FROM finding WHERE id IN (1, 2, 4) ORDER BY id")] == [
        (1, "confirmed"), (2, "confirmed"), (4, "confirmed")]
    assert conn.execute("SELECT status FROM export").fetchone()[0] == "rolled_back"
    conn.close()


def test_a_failed_re_export_takes_its_findings_back_as_one_action(db: Path, tmp_path: Path) -> None:
    # Note #1 was exported; a reviewer set two of its findings back to confirmed; exporting the note
    # again requests them again (the note itself stays exported), then the disk fails: both are
    # taken back in one action, with no entry about the note.
    export(db, tmp_path / "first", note_ids=[1])
    conn = connect(db)
    for fid in (1, 2):
        set_finding_status(conn, fid, "confirmed", reviewer="cy", clock=CLOCK, reason="ask again")
    conn.close()

    with pytest.raises(ExportError):
        export(db, tmp_path / "again", note_ids=[1], on_step=disk_fails_at("moved note-1-northwind-analytics.md"))
    conn = connect(db, readonly=True)
    (taken,) = conn.execute("SELECT min(id) FROM decision WHERE reason LIKE 'export #2 could not%'").fetchone()
    rows = conn.execute("SELECT subject, subject_id, field, old_value, new_value, action_id FROM decision "
                        "WHERE id >= ? ORDER BY id", (taken,)).fetchall()
    assert [tuple(r) for r in rows if r[2] == "status"] == [
        ("finding", 1, "status", "audit_requested", "confirmed", taken),
        ("finding", 2, "status", "audit_requested", "confirmed", taken)]
    assert {r[5] for r in rows} == {taken} and {r[0] for r in rows} == {"finding"}
    conn.close()


def test_a_case_answered_meanwhile_is_left_as_it_is_and_the_export_says_so(db: Path, tmp_path: Path) -> None:
    # While the failing export runs (recorded, files not yet in), another reviewer marks an item of
    # the case the letter opened as answered. The take-back leaves that case and names it in the
    # export's note, after the reason.
    def answered(other: sqlite3.Connection) -> None:
        mark_items(other, 1, [ItemChange("purpose", "answered")], comment="reply, page 1", reviewer="cy", clock=CLOCK)

    with pytest.raises(ExportError):
        export(db, tmp_path / "out", note_ids=[1],
               on_step=disk_fails_at("moved note-1-northwind-analytics.md", db, answered))
    conn = connect(db, readonly=True)
    assert conn.execute("SELECT status, note FROM export").fetchone()[:] == (
        "rolled_back", "export #1 could not be written ([Errno 5] Input/output error); taken back; case #1 of "
        "northwind-analytics changed after export; it is left as it is: check its letter, due date and state")
    assert conn.execute("SELECT state FROM case_file WHERE id = 1").fetchone()[0] == "letter_sent"
    conn.close()


def test_an_export_whose_completion_cannot_be_recorded_is_completed_by_the_next(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"

    def database_gone(step: str) -> None:
        if step == "cleaned":          # the files are in place and recorded; "completed" is not written
            raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(ExportError) as failed:
        export(db, out, on_step=database_gone)
    assert str(failed.value) == (f"the export's files are in {out} and recorded, but its completion could not be "
                                 "recorded (disk I/O error); the next warden export completes it")
    conn = connect(db, readonly=True)
    assert conn.execute("SELECT status FROM export").fetchone()[0] == "pending"
    assert {r[0] for r in conn.execute("SELECT status FROM note")} == {"exported"}     # not taken back
    conn.close()
    export(db, tmp_path / "csv", "csv", status="exported")
    agrees(db, out)


def test_a_forced_export_replaces_the_whole_set_and_its_manifest(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = export(db, out)
    second = export(db, out, force=True, note_ids=first.note_ids)
    manifest = json.loads((out / "manifest-md.json").read_text())
    assert manifest["export_id"] == second.export_id
    assert {f["name"]: f["sha256"] for f in manifest["files"]} == {
        f.name: f.sha256 for f in second.files[:-1]} == {name: digest for name, digest in folder(out).items()
                                                         if name != "manifest-md.json"}
    agrees(db, out)


# --- kills at each step --------------------------------------------------------------------------

KILL = textwrap.dedent("""
    import os, signal, sys
    import store.export
    from tui.cli import main

    point = sys.argv[1]
    real = store.export.export_notes

    def export_notes(*args, **kwargs):
        def hook(step):
            if step == point:
                os.kill(os.getpid(), signal.SIGKILL)
        kwargs["on_step"] = hook
        return real(*args, **kwargs)

    store.export.export_notes = export_notes
    raise SystemExit(main(sys.argv[2:]))
""")
STEPS = ["staged", "recorded", "moved note-1-northwind-analytics.md", "moved note-4-bulk-00002.md",
         "moved manifest-md.json", "cleaned", "completed"]


@pytest.mark.parametrize("force", [False, True], ids=["new", "force"])
@pytest.mark.parametrize("point", STEPS)
def test_an_export_killed_at_each_step_is_repaired_by_the_next(db: Path, tmp_path: Path, point: str,
                                                               force: bool) -> None:
    out = tmp_path / "out"
    args = ["export", "--db", str(db), "--format", "md", "--status", "ready", "--out", str(out), "--reviewer", "ana"]
    if force:
        assert cli_main(args) == 0                        # an earlier set to replace
        old = folder(out)
        conn = sqlite3.connect(db)
        conn.execute("UPDATE note SET status = status")   # (the notes are exported now: select them by status)
        conn.close()
        args[args.index("ready")] = "exported"
        args.append("--force")
    killed = _cli("-c", KILL, point, *args)
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    conn = connect(db, readonly=True)
    status = conn.execute("SELECT status FROM export ORDER BY id DESC LIMIT 1").fetchone()[0]
    conn.close()
    if point == "staged":
        # Killed before recording: no file of it in the folder, however complete it looked.
        assert status == "staging"
        assert {n for n in folder(out) if not n.startswith(".warden-export-")} == (set(old) if force else set())
    # The next export (another folder) finishes or undoes it, and removes its staging folder.
    assert cli_main(["export", "--db", str(db), "--format", "csv", "--status", "exported" if force or point != "staged"
                     else "ready", "--out", str(tmp_path / "csv")]) == 0
    agrees(db, out)
    assert not [n for n in folder(out) if n.startswith(".warden")]
    conn = connect(db, readonly=True)
    last = conn.execute("SELECT status FROM export WHERE out_dir = ? ORDER BY id DESC LIMIT 1",
                        (str(out.resolve()),)).fetchone()[0]
    exported = conn.execute("SELECT count(*) FROM note WHERE status = 'exported'").fetchone()[0]
    conn.close()
    assert last == ("abandoned" if point == "staged" and not force else
                    "abandoned" if point == "staged" else "completed")
    assert exported == (0 if point == "staged" and not force else 4)
    if force and point != "staged":
        assert folder(out) != old


def test_a_recorded_export_whose_files_are_lost_is_taken_back(db: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = ["export", "--db", str(db), "--format", "md", "--status", "ready", "--out", str(out), "--reviewer", "ana"]
    killed = _cli("-c", KILL, "recorded", *args)
    killed.communicate(timeout=120)
    for staging in out.glob(".warden-export-*"):
        for path in staging.iterdir():
            path.unlink()              # the staged files lost (a cleaner, a full disk ...)
    assert cli_main(["export", "--db", str(db), "--format", "csv", "--status", "ready", "--out",
                     str(tmp_path / "csv"), "--reviewer", "carl"]) == 0
    assert "could not be recovered: its notes, findings and cases were taken back" in capsys.readouterr().err
    conn = connect(db, readonly=True)
    assert conn.execute("SELECT status FROM export WHERE id = 1").fetchone()[0] == "rolled_back"
    assert {r[0] for r in conn.execute("SELECT status FROM note")} == {"ready"}
    assert conn.execute("SELECT count(*) FROM finding WHERE status = 'audit_requested'").fetchone()[0] == 0
    # The letters never left: no case was opened, nothing is due.
    assert conn.execute("SELECT count(*) FROM case_file").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM case_item").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM consumer WHERE case_due IS NOT NULL").fetchone()[0] == 0
    taken = conn.execute("SELECT count(*) FROM decision WHERE reviewer = 'carl' AND reason LIKE "
                         "'export #1 was interrupted%'").fetchone()[0]
    assert taken > 0 and verify_log(conn, evidence_root=tmp_path / "evidence").ok
    conn.close()
    agrees(db, out)


def test_a_forced_export_killed_midway_whose_staged_files_are_lost_puts_the_old_set_back(
        db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Killed after the first letter replaced its old version (kept in the staging folder's old/);
    # then the staged files are lost. The set cannot be finished: the next export removes the one
    # new letter and puts the old one back, so the folder is the first export's set again.
    out = tmp_path / "out"
    export(db, out, "html")            # made in 2023; each page says when it was made
    old = folder(out)
    killed = _cli("-c", KILL, "moved note-1-northwind-analytics.html", "export", "--db", str(db), "--format", "html",
                  "--status", "exported", "--out", str(out), "--reviewer", "ana", "--force")
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    (staging,) = out.glob(".warden-export-*")
    assert folder(staging / "old") == {"note-1-northwind-analytics.html": old["note-1-northwind-analytics.html"]}
    assert folder(out)["note-1-northwind-analytics.html"] != old["note-1-northwind-analytics.html"]
    for path in staging.iterdir():
        if path.is_file() and path.name != ".lock":
            path.unlink()              # the staged files lost; old/ is still there
    _next_export_takes_it_back(db, tmp_path / "csv", out, capsys)
    assert folder(out) == old
    agrees(db, out)


def test_a_recorded_export_with_a_folder_now_in_the_way_is_taken_back(db: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    # Killed once recorded; before the next export someone makes a folder of the manifest's name.
    # The set cannot be finished (nothing is moved over a folder): it is taken back, the folder kept.
    out = tmp_path / "out"
    killed = _cli("-c", KILL, "recorded", "export", "--db", str(db), "--format", "md", "--status", "ready",
                  "--out", str(out), "--reviewer", "ana")
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    (out / "manifest-md.json").mkdir()
    capsys.readouterr()
    assert cli_main(["export", "--db", str(db), "--format", "csv", "--status", "ready", "--out",
                     str(tmp_path / "csv"), "--reviewer", "carl"]) == 0
    assert (f"warden: warning: export #1 to {out} was interrupted and its files could not be recovered: its "
            "notes, findings and cases were taken back in the decision log") in capsys.readouterr().err.splitlines()
    assert folder(out) == {"manifest-md.json": "dir"}
    conn = connect(db, readonly=True)
    assert conn.execute("SELECT status FROM export WHERE id = 1").fetchone()[0] == "rolled_back"
    conn.close()


def test_an_export_killed_once_recorded_is_completed_by_the_next_and_its_record_says_so_word_for_word(
        db: Path, tmp_path: Path) -> None:
    # Killed once recorded, nothing moved yet: the next export (to another folder) moves the staged
    # letters in, and the export's record tells whoever reads it later how it was completed.
    out = tmp_path / "out"
    killed = _cli("-c", KILL, "recorded", "export", "--db", str(db), "--format", "md", "--status", "ready",
                  "--out", str(out), "--reviewer", "ana")
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    result = export(db, tmp_path / "csv", "csv", status="exported")
    assert (f"export #1 to {out.resolve()} was interrupted after it was recorded: its files are now in place"
            in result.warnings)
    conn = connect(db, readonly=True)
    assert [tuple(r) for r in conn.execute("SELECT id, status, staging, finished_at, note FROM export WHERE id = 1")] \
        == [(1, "completed", None, "2023-05-02T09:30:00Z", "completed by a later export after an interruption")]
    conn.close()
    agrees(db, out)


def test_a_taken_back_export_names_each_case_changed_meanwhile_after_its_own_semicolon(
        db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Killed once recorded (the four letters opened four cases); before the next export another
    # reviewer marks an item of two of those cases answered, and the staged letters are lost. The
    # take-back leaves those two cases as they are and the warning names both, one after the other.
    out = tmp_path / "out"
    killed = _cli("-c", KILL, "recorded", "export", "--db", str(db), "--format", "md", "--status", "ready",
                  "--out", str(out), "--reviewer", "ana")
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    other = connect(db)
    for case_id in (1, 2):
        mark_items(other, case_id, [ItemChange("purpose", "answered")], comment="reply, page 1", reviewer="cy",
                   clock=CLOCK)
    other.close()
    (staging,) = out.glob(".warden-export-*")
    for path in staging.iterdir():
        path.unlink()                  # the staged letters lost
    capsys.readouterr()
    assert cli_main(["export", "--db", str(db), "--format", "csv", "--status", "ready", "--out",
                     str(tmp_path / "csv"), "--reviewer", "carl"]) == 0
    assert (f"warden: warning: export #1 to {out} was interrupted and its files could not be recovered: its "
            "notes, findings and cases were taken back in the decision log; case #1 of northwind-analytics "
            "changed after export; it is left as it is: check its letter, due date and state; case #2 of "
            "bulk-00000 changed after export; it is left as it is: check its letter, due date and state"
            ) in capsys.readouterr().err.splitlines()
    conn = connect(db, readonly=True)
    assert [tuple(r) for r in conn.execute("SELECT id, consumer_id, state FROM case_file ORDER BY id")] == [
        (1, "northwind-analytics", "letter_sent"), (2, "bulk-00000", "letter_sent")]
    conn.close()


@pytest.fixture
def immutable() -> Iterator[Callable[[Path], None]]:
    """Make a file one nobody can remove, root included (``chattr +i``); undone afterwards.
    Skips where the file system or the process cannot set the flag."""
    marked: list[Path] = []

    def mark(path: Path) -> None:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"chattr +i is not available here: {done.stderr.decode().strip()}")
        marked.append(path)

    try:
        yield mark
    finally:
        for path in marked:
            subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_staging_folder_holding_a_file_that_cannot_be_removed_does_not_stop_the_next_export(
        db: Path, tmp_path: Path, immutable: Callable[[Path], None], capsys: pytest.CaptureFixture[str]) -> None:
    # Killed once its letters were staged, before recording them. One staged letter can no longer
    # be removed (an administrator's or a backup tool's immutable flag). The next export still
    # records the killed one abandoned and writes its own file; of the staging folder, only what
    # could not be removed stays.
    out = tmp_path / "out"
    killed = _cli("-c", KILL, "staged", "export", "--db", str(db), "--format", "md", "--status", "ready",
                  "--out", str(out), "--reviewer", "ana")
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    (staging,) = out.glob(".warden-export-*")
    immutable(staging / "note-1-northwind-analytics.md")
    capsys.readouterr()
    assert cli_main(["export", "--db", str(db), "--format", "csv", "--status", "ready", "--out",
                     str(tmp_path / "csv"), "--reviewer", "carl"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert (f"warden: warning: export #1 to {out} was interrupted before it was recorded: its staged files were "
            "removed") in err
    assert (f"warden: warning: {staging.name} in {out}, left by an export that was interrupted, could not be "
            "removed: a file in it cannot be deleted; remove it by hand") in err
    assert sorted(folder(tmp_path / "csv")) == ["findings.csv", "manifest-csv.json"]
    assert sorted(p.name for p in staging.iterdir()) == ["note-1-northwind-analytics.md"]
    conn = connect(db, readonly=True)
    assert [tuple(r) for r in conn.execute("SELECT id, status FROM export ORDER BY id")] == [
        (1, "abandoned"), (2, "completed")]
    conn.close()


def test_a_stray_staging_folder_that_cannot_be_removed_is_never_said_removed(
        db: Path, tmp_path: Path, immutable: Callable[[Path], None]) -> None:
    # A staging folder no export names (its record gone) holding a file nobody can delete: each
    # export says it could not be removed, never that it was, until someone removes it.
    out = tmp_path / "out"
    stray = out / ".warden-export-0123456789ab"
    stray.mkdir(parents=True)
    (stray / "letter.md").write_text("x", encoding="utf-8")
    immutable(stray / "letter.md")
    for _ in range(2):
        result = export(db, out, "csv", status="ready", force=True)
        assert (f".warden-export-0123456789ab in {out.resolve()}, left by an export that was interrupted, could "
                "not be removed: a file in it cannot be deleted; remove it by hand") in result.warnings
        assert not [w for w in result.warnings if w.startswith("removed ")]
        assert sorted(p.name for p in stray.iterdir()) == ["letter.md"]


def test_an_export_killed_before_it_was_recorded_is_abandoned_with_the_reason_word_for_word(db: Path,
                                                                                            tmp_path: Path) -> None:
    # Killed once its files were staged, before recording them: the next export removes the staging
    # folder and records the export abandoned, with the reason the export record shows.
    out = tmp_path / "out"
    killed = _cli("-c", KILL, "staged", "export", "--db", str(db), "--format", "md", "--status", "ready",
                  "--out", str(out), "--reviewer", "ana")
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    result = export(db, tmp_path / "csv", "csv")
    assert (f"export #1 to {out.resolve()} was interrupted before it was recorded: its staged files were removed"
            in result.warnings)
    conn = connect(db, readonly=True)
    assert [tuple(r) for r in conn.execute("SELECT id, status, staging, finished_at, note FROM export WHERE id = 1")] \
        == [(1, "abandoned", None, "2023-05-02T09:30:00Z", "interrupted before it was recorded; nothing was written")]
    conn.close()
    assert folder(out) == {}


def _forced_export_killed_once_recorded(db: Path, out: Path, fmt: str) -> None:
    """A forced export of the exported notes to ``out``, killed once recorded (nothing moved yet)."""
    killed = _cli("-c", KILL, "recorded", "export", "--db", str(db), "--format", fmt, "--status", "exported",
                  "--out", str(out), "--reviewer", "ana", "--force")
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL


def _next_export_takes_it_back(db: Path, elsewhere: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The next export (to ``elsewhere``) cannot finish export #2 to ``out`` and says it took it back."""
    capsys.readouterr()
    assert cli_main(["export", "--db", str(db), "--format", "csv", "--status", "exported", "--out",
                     str(elsewhere), "--reviewer", "carl"]) == 0
    assert (f"warden: warning: export #2 to {out} was interrupted and its files could not be recovered: its "
            "notes, findings and cases were taken back in the decision log") in capsys.readouterr().err.splitlines()


def test_a_forced_export_whose_staged_files_are_damaged_never_puts_a_damaged_letter_in_the_folder(
        db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Killed once recorded (nothing moved yet); then its staged manifest is lost and one staged
    # letter cut short. The set cannot be whole: the next export moves none of it in, so the
    # folder keeps the first export's set, every old letter whole, and no half letter in it.
    out = tmp_path / "out"
    export(db, out, "html")            # made in 2023; each page says when it was made
    old = folder(out)
    _forced_export_killed_once_recorded(db, out, "html")
    (staging,) = out.glob(".warden-export-*")
    (staging / "manifest-html.json").unlink()
    damaged = staging / "note-2-bulk-00000.html"
    damaged.write_bytes(damaged.read_bytes()[:100])
    _next_export_takes_it_back(db, tmp_path / "csv", out, capsys)
    assert folder(out) == old
    agrees(db, out)


def test_taking_back_a_forced_export_never_deletes_the_identical_letters_of_the_one_before(
        db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A Markdown letter is the note's text alone: a forced re-export of the same notes stages
    # byte-identical letters. Killed once recorded (nothing moved yet), its staged manifest then
    # lost, it cannot be finished; taking it back must leave the first export's letters, which
    # are the ones in the folder, where they are.
    out = tmp_path / "out"
    export(db, out, "md")
    old = folder(out)
    _forced_export_killed_once_recorded(db, out, "md")
    (staging,) = out.glob(".warden-export-*")
    assert sorted(p.name for p in staging.iterdir() if p.name.endswith(".md")) == sorted(
        name for name in old if name.endswith(".md"))
    (staging / "manifest-md.json").unlink()
    _next_export_takes_it_back(db, tmp_path / "csv", out, capsys)
    assert folder(out) == old
    agrees(db, out)


def test_a_forced_export_with_a_folder_now_in_the_way_of_a_letter_puts_the_old_set_back(
        db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Killed once recorded (nothing moved yet); then someone replaces the last old letter by a folder
    # of its name. The next export moves the new manifest and letters in (the old ones aside), meets
    # the folder and cannot finish: it removes the new files and puts every old one back; the folder
    # stays.
    out = tmp_path / "out"
    export(db, out, "html")
    old = folder(out)
    _forced_export_killed_once_recorded(db, out, "html")
    (out / "note-4-bulk-00002.html").unlink()
    (out / "note-4-bulk-00002.html").mkdir()
    _next_export_takes_it_back(db, tmp_path / "csv", out, capsys)
    assert folder(out) == {**old, "note-4-bulk-00002.html": "dir"}
    conn = connect(db, readonly=True)
    assert conn.execute("SELECT status FROM export WHERE id = 2").fetchone()[0] == "rolled_back"
    conn.close()


def open_locks() -> list[str]:
    """The staging lock files this process holds open (/proc/self/fd), removed ones too."""
    paths = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:       # the listing's own descriptor, closed meanwhile
            pass
    return sorted(p for p in paths if p.endswith(("/.lock", "/.lock (deleted)")))


def test_an_export_still_being_written_by_another_run_is_left_alone_and_no_lock_stays_open(
        db: Path, tmp_path: Path) -> None:
    # While one export waits with its files staged (its staging folder locked), another export to
    # another folder runs its recovery: it leaves the first alone (its process is alive), keeps no
    # file of the first's lock open, and the first then completes.
    first_out, second_out = tmp_path / "first", tmp_path / "second"
    seen: dict[str, object] = {}

    def meanwhile(step: str) -> None:
        if step == "staged":
            (staging,) = first_out.glob(".warden-export-*")
            seen["locks before"] = (open_locks(), [str(staging / ".lock")])
            seen["second"] = export(db, second_out, note_ids=[2])
            seen["locks after"] = open_locks()
            seen["staging"] = [p.name for p in first_out.iterdir()] == [staging.name]

    first = export(db, first_out, note_ids=[1], on_step=meanwhile)
    held, own = seen["locks before"]
    assert held == own                          # the first export's own lock, once
    assert seen["locks after"] == own           # the second's recovery closed the one it tried
    assert seen["staging"] is True
    assert not [w for w in seen["second"].warnings if "interrupted" in w]
    assert sorted(folder(first_out)) == ["manifest-md.json", "note-1-northwind-analytics.md"]
    conn = connect(db, readonly=True)
    assert [tuple(r) for r in conn.execute("SELECT id, status FROM export ORDER BY id")] == [
        (1, "completed"), (2, "completed")]
    conn.close()
    assert first.export_id == 1
    agrees(db, first_out)
    agrees(db, second_out)


def test_an_export_still_being_written_is_passed_over_and_the_unfinished_exports_after_it_recovered(
        db: Path, tmp_path: Path) -> None:
    # Export #1 waits with its files staged (its process alive); export #2 is killed once staged
    # (its process gone). The next export's recovery leaves #1 alone and still goes on to #2: it
    # records it abandoned and removes its staging folder. #1 then completes.
    first_out, killed_out, third_out = tmp_path / "first", tmp_path / "killed", tmp_path / "third"
    seen: dict[str, object] = {}

    def meanwhile(step: str) -> None:
        if step == "staged":
            killed = _cli("-c", KILL, "staged", "export", "--db", str(db), "--format", "md", "--status", "ready",
                          "--out", str(killed_out), "--reviewer", "ana")
            killed.communicate(timeout=120)
            assert killed.returncode == -signal.SIGKILL
            seen["third"] = export(db, third_out, note_ids=[2])

    export(db, first_out, note_ids=[1], on_step=meanwhile)
    assert [w for w in seen["third"].warnings if "interrupted" in w] == [
        f"export #2 to {killed_out.resolve()} was interrupted before it was recorded: its staged files were removed"]
    conn = connect(db, readonly=True)
    assert [tuple(r) for r in conn.execute("SELECT id, status FROM export ORDER BY id")] == [
        (1, "completed"), (2, "abandoned"), (3, "completed")]
    conn.close()
    assert folder(killed_out) == {}
    agrees(db, first_out)
    agrees(db, third_out)


# --- paths ------------------------------------------------------------------------------------------


def test_out_through_a_missing_folder_and_dotdot_creates_only_the_target(db: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = export(db, Path("ghost/../x"))
    assert not (tmp_path / "ghost").exists()
    assert result.out_dir == tmp_path / "x" and (tmp_path / "x" / "manifest-md.json").is_file()
    conn = connect(db, readonly=True)
    assert conn.execute("SELECT out_dir FROM export").fetchone()[0] == str(tmp_path / "x")
    conn.close()


def test_an_older_wardens_leftover_temporary_files_are_removed(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".warden-abc123.tmp").write_bytes(b"half a letter")
    result = export(db, out)
    assert not (out / ".warden-abc123.tmp").exists()
    assert any("removed .warden-abc123.tmp" in w for w in result.warnings)


# --- warnings that mean something -----------------------------------------------------------------


def test_a_resync_that_only_renews_provenance_warns_of_nothing(demo_copy: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # The defect: "usage figures changed since drafted" fired when a re-sync stored the same
    # values again from new pages (0 values differed).
    from store.demo import DEMO_TOKEN, DEMO_TOKEN_ENV, DemoEndpoint
    from store.demo.config import demo_config
    from store.review import ConfirmRequest, decide
    from store.sync.engine import sync_all

    conn = connect(demo_copy)
    decide(conn, ConfirmRequest((), None, None, "over the caps"), ["northwind-analytics"], versions={},
           reviewer="ana", clock=CLOCK)
    draft_note(conn, "northwind-analytics", reviewer="ana", clock=CLOCK, config=CONFIG)
    before = conn.execute("SELECT max(run_id), count(*), sum(value) FROM usage").fetchone()[:]
    conn.close()
    monkeypatch.setenv(DEMO_TOKEN_ENV, DEMO_TOKEN)
    with DemoEndpoint(consumers=12) as endpoint:   # the feed again: it re-fetches its last days
        results = sync_all(demo_copy, demo_config(endpoint, db_path=demo_copy), clock=CLOCK, sources=["demo-feed"])
    assert {r.status for r in results} == {"ok"}
    conn = connect(demo_copy)
    after = conn.execute("SELECT max(run_id), count(*), sum(value) FROM usage").fetchone()[:]
    renewed = conn.execute("SELECT count(*) FROM usage JOIN app USING (source, app_id) WHERE consumer_id = ?"
                           " AND run_id > ?", ("northwind-analytics", before[0])).fetchone()[0]
    conn.close()
    assert after[0] > before[0] and after[1:] == before[1:] and renewed > 0   # new pages, the same figures
    result = export_notes(demo_copy, fmt="json", out_dir=tmp_path / "out", consumer_id="northwind-analytics",
                          reviewer="ana", clock=CLOCK, config=CONFIG)
    assert not any("changed since it was drafted" in w for w in result.warnings)
    bundle = json.loads(next((tmp_path / "out").glob("note-*.json")).read_text())
    assert bundle["evidence"]["changed_since_draft"] is False


def test_a_folder_made_in_the_way_after_the_check_stops_the_export_and_is_left_as_it_was(
        db: Path, tmp_path: Path) -> None:
    # Someone makes a folder of a letter's name (with a file in it) after the export checked the
    # names and recorded: moving in meets it, refuses to move it, and puts everything back.
    out = tmp_path / "out"
    in_the_way = out / "note-4-bulk-00002.md"

    def folder_made(step: str) -> None:
        if step == "recorded":
            in_the_way.mkdir()
            (in_the_way / "theirs.txt").write_text("not warden's")

    with pytest.raises(ExportError) as refused:
        export(db, out, on_step=folder_made)
    assert str(refused.value) == (f"cannot write the export to {out}: a folder is in the way of an export file "
                                  f"({in_the_way}); nothing was replaced and the export was taken back in the log")
    assert folder(out) == {"note-4-bulk-00002.md": "dir"}
    assert folder(in_the_way) == {"theirs.txt": hashlib.sha256(b"not warden's").hexdigest()}
    conn = connect(db, readonly=True)
    assert [tuple(r) for r in conn.execute("SELECT id, status, note FROM export")] == [
        (1, "rolled_back", f"export #1 could not be written ([Errno 21] a folder is in the way of an export file: "
                           f"'{in_the_way}'); taken back")]
    conn.close()


def test_the_log_says_which_export_sent_each_note_and_asked_for_each_finding(db: Path, tmp_path: Path) -> None:
    export(db, tmp_path / "out")
    conn = connect(db, readonly=True)
    assert [tuple(r) for r in conn.execute(
        "SELECT subject, subject_id, old_value, new_value, reason FROM decision WHERE field = 'status' "
        "AND subject IN ('note', 'finding') AND new_value IN ('exported', 'audit_requested') ORDER BY id")] == [
        ("note", 1, "ready", "exported", "exported as md (export #1)"),
        ("finding", 1, "confirmed", "audit_requested", "note #1 exported as md (export #1)"),
        ("finding", 2, "confirmed", "audit_requested", "note #1 exported as md (export #1)"),
        ("finding", 4, "confirmed", "audit_requested", "note #1 exported as md (export #1)"),
        ("note", 2, "ready", "exported", "exported as md (export #1)"),
        ("finding", 6, "confirmed", "audit_requested", "note #2 exported as md (export #1)"),
        ("note", 3, "ready", "exported", "exported as md (export #1)"),
        ("finding", 7, "confirmed", "audit_requested", "note #3 exported as md (export #1)"),
        ("note", 4, "ready", "exported", "exported as md (export #1)"),
        ("finding", 8, "confirmed", "audit_requested", "note #4 exported as md (export #1)"),
    ]
    # The export's row keeps the manifest's SHA-256 and the log head the manifest carries, as on disk.
    (manifest,) = (tmp_path / "out").glob("manifest-*.json")
    assert tuple(conn.execute("SELECT manifest_sha256, log_head FROM export WHERE id = 1").fetchone()) == (
        hashlib.sha256(manifest.read_bytes()).hexdigest(), json.loads(manifest.read_text())["decision_log"]["head"])
    conn.close()


def test_an_export_the_database_refuses_to_record_writes_nothing_and_says_why(db: Path, tmp_path: Path) -> None:
    refusing = meanwhile_at("staged", db, lambda other: other.execute(
        "CREATE TRIGGER no_files BEFORE INSERT ON export_file BEGIN SELECT RAISE(ABORT, 'the database says no'); END"))
    with pytest.raises(ExportError) as refused:
        export(db, tmp_path / "out", on_step=refusing)
    assert str(refused.value) == "the export could not be recorded: the database says no; nothing was written"
    assert not (tmp_path / "out").exists()


def test_the_staging_folder_is_private_and_named_and_its_lock_is_let_go(db: Path, tmp_path: Path,
                                                                       umask_022: None) -> None:
    # While the letters wait: one folder .warden-export-<12 hex digits> (0700), its lock file and
    # staged files (0600), under a umask that would let others read; once done, this process holds
    # no lock file open.
    out = tmp_path / "out"
    seen: dict[str, object] = {}

    def look(step: str) -> None:
        if step == "staged":
            (staging,) = out.glob(".warden-export-*")
            seen["name"] = staging.name
            seen["modes"] = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [staging, *staging.iterdir()]}

    export(db, out, on_step=look)
    assert re.fullmatch(r"\.warden-export-[0-9a-f]{12}", str(seen["name"]))
    staged = ["note-1-northwind-analytics.md", "note-2-bulk-00000.md", "note-3-bulk-00001.md",
              "note-4-bulk-00002.md", "manifest-md.json"]
    assert seen["modes"] == {seen["name"]: 0o700, ".lock": 0o600, **{name: 0o600 for name in staged}}
    assert open_locks() == []


def test_every_letter_whose_figures_changed_since_its_draft_is_warned_of(db: Path, tmp_path: Path) -> None:
    conn = connect(db)
    conn.execute("UPDATE usage SET value = value + 1")     # a re-sync revised every figure
    conn.close()
    result = export(db, tmp_path / "out")
    assert sorted({w.split(":")[0] for w in result.warnings if "figure changed since it was drafted" in w}) == [
        "note #1", "note #2", "note #3", "note #4"]


def test_two_folders_in_the_way_are_both_named_and_the_export_refused(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for name in ("note-1-northwind-analytics.md", "note-2-bulk-00000.md"):
        (out / name).mkdir(parents=True)
    with pytest.raises(ExportError) as refused:
        export(db, out)
    assert str(refused.value) == (f"2 name(s) of this export are folders in {out}: note-1-northwind-analytics.md, "
                                  "note-2-bulk-00000.md; nothing written (move them away)")
    assert refused.value.title == "Export refused"


# Four bulk consumers: five letters and the manifest, one name past the five a refusal lists.
SIX_NAMES = ["note-1-northwind-analytics.md", "note-2-bulk-00000.md", "note-3-bulk-00001.md",
             "note-4-bulk-00002.md", "note-5-bulk-00003.md", "manifest-md.json"]


@pytest.mark.parametrize(("consumers", "more"), [
    (3, ""),                  # four letters and the manifest: all five named
    (4, " and 1 more"),       # five letters and the manifest: five named, one more
])
def test_the_files_in_the_way_are_named_five_at_most_and_the_export_refused(tmp_path: Path, consumers: int,
                                                                            more: str) -> None:
    db = ready_notes(tmp_path / "warden.db", consumers=consumers)
    names = [*SIX_NAMES[:consumers + 1], "manifest-md.json"]
    out = tmp_path / "out"
    out.mkdir()
    for name in names:
        (out / name).write_text("theirs")
    with pytest.raises(ExportError) as refused:
        export(db, out)
    assert str(refused.value) == (f"would overwrite {len(names)} file(s) in {out}: {', '.join(names[:5])}{more}; "
                                  "nothing written (use --force to replace them)")
    assert refused.value.title == "Export refused"
    assert folder(out) == {name: hashlib.sha256(b"theirs").hexdigest() for name in names}


def test_six_folders_in_the_way_name_five_and_refuse_even_a_forced_export(tmp_path: Path) -> None:
    db = ready_notes(tmp_path / "warden.db", consumers=4)
    out = tmp_path / "out"
    for name in SIX_NAMES:
        (out / name).mkdir(parents=True)
    with pytest.raises(ExportError) as refused:
        export(db, out, force=True)
    assert str(refused.value) == (f"6 name(s) of this export are folders in {out}: {', '.join(SIX_NAMES[:5])}; "
                                  "nothing written (move them away)")
    assert refused.value.title == "Export refused"
    assert folder(out) == {name: "dir" for name in SIX_NAMES}


def cite_many(db: Path, consumer_id: str, n: int) -> list[int]:
    """``n`` more confirmed findings of ``consumer_id`` (one a day from 2020-01-01), its note
    re-drafted to cite them all and made ready; their ids."""
    conn = connect(db)
    start = date(2020, 1, 1)
    with conn:
        conn.executemany(
            "INSERT INTO finding (consumer_id, category, period, period_start, period_end, severity, status, rule_id, "
            "metric, actual, limit_value, ratio, dedupe_key, detected_at, updated_at) VALUES "
            "(?, 'rate_limit', ?, ?, ?, 'low', 'confirmed', 'rate_limit', 'calls', 5000, 4000, 1.25, ?, ?, ?)",
            [(consumer_id, day, day, day, f"rate_limit|{consumer_id}|{day}", "2023-01-02T03:00:00Z",
              "2023-01-02T03:00:00Z") for day in ((start + timedelta(days=i)).isoformat() for i in range(n))])
    ids = [r[0] for r in conn.execute("SELECT id FROM finding WHERE dedupe_key LIKE ? ORDER BY id",
                                      (f"rate_limit|{consumer_id}|%",))]
    note = draft_note(conn, consumer_id, reviewer="ana", clock=CLOCK, config=CONFIG)
    mark_ready(conn, note.id, reviewer="ana", clock=CLOCK)
    conn.close()
    return ids


@pytest.mark.parametrize("nth", [1, 500, 501, 1000, 1001, 1002])
def test_any_of_over_a_thousand_cited_findings_dismissed_meanwhile_stops_the_export(
        db: Path, tmp_path: Path, nth: int) -> None:
    # The findings a letter cites are read in chunks of 500: the first, the last and each one
    # either side of a chunk's edge is watched.
    ids = cite_many(db, "bulk-00000", 1001)
    cited = sorted([6, *ids])
    assert len(cited) == 1002
    finding_id = cited[nth - 1]
    out = tmp_path / "out"
    dismiss_meanwhile = meanwhile_at("staged", db, lambda other: dismiss(other, finding_id, reviewer="bo",
                                                                         reason_code="false_positive", clock=CLOCK))
    with pytest.raises(ExportError) as refused:
        export(db, out, consumer_id="bulk-00000", on_step=dismiss_meanwhile)
    assert refused.value.title == "Changed during the export"
    assert (f"finding #{finding_id} was confirmed when the letter was written; it is now dismissed by bo "
            "(false_positive)" in str(refused.value))
    assert not out.exists()


def test_a_sent_letter_is_left_out_of_an_export_of_ready_notes_given_the_databases_path(
        db: Path, tmp_path: Path) -> None:
    export(db, tmp_path / "sent", note_ids=[1], status=None)
    result = export_notes(db, fmt="md", out_dir=tmp_path / "out", status="ready", reviewer="ana", clock=CLOCK,
                          config=CONFIG)
    assert result.note_ids == (2, 3, 4)


def test_an_export_given_the_databases_path_signs_with_the_configured_sender(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    export_notes(db, fmt="eml", out_dir=out, status="ready", reviewer="ana", clock=CLOCK, config=CONFIG)
    letter = (out / "note-1-northwind-analytics.eml").read_text()
    assert "From: Platform Compliance <compliance@platform.example>" in letter.splitlines()


def test_an_unknown_format_is_refused_naming_the_formats(db: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError) as refused:
        export(db, tmp_path / "out", fmt="pdf")
    assert str(refused.value) == "unknown export format 'pdf' (one of md, html, eml, json, csv)"
    assert not (tmp_path / "out").exists()


def test_a_sent_letter_can_be_exported_again_after_its_finding_was_dismissed(db: Path, tmp_path: Path) -> None:
    # The letter went out citing #1; the consumer showed #1 wrong, so it was dismissed. Another
    # format of the letter as sent is still a record of what was sent, not a letter out of date.
    export(db, tmp_path / "md", note_ids=[1], status=None)
    conn = connect(db)
    set_finding_status(conn, 1, "confirmed", reviewer="bo", clock=CLOCK, reason="the consumer disputes it")
    dismiss(conn, 1, reviewer="bo", reason_code="false_positive", clock=CLOCK)
    conn.close()
    again = export(db, tmp_path / "html", fmt="html", note_ids=[1], status=None)
    assert again.note_ids == (1,)
    assert (tmp_path / "html" / "note-1-northwind-analytics.html").exists()


def test_an_out_that_is_a_file_is_refused_and_left_as_it_was(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "letters"
    out.write_text("theirs")
    with pytest.raises(ExportError) as refused:
        export(db, out)
    assert str(refused.value) == f"{out} exists and is not a folder; nothing written"
    assert out.read_text() == "theirs"
    conn = connect(db, readonly=True)
    assert conn.execute("SELECT count(*) FROM export").fetchone()[0] == 0
    assert {r[0] for r in conn.execute("SELECT status FROM note")} == {"ready"}
    conn.close()


@pytest.mark.parametrize(("selection", "message"), [
    ({"status": None}, "no note ready or exported to export; nothing written"),
    ({"status": "ready"}, "no note in status 'ready' to export; nothing written"),
    ({"consumer_id": "nobody", "status": None}, "no note of consumer 'nobody' ready or exported to export; "
                                                "nothing written"),
    ({"consumer_id": CASE_ID, "status": "exported"}, "no note of consumer 'northwind-analytics' in status "
                                                     "'exported' to export; nothing written"),
    ({"status": "sent"}, "unknown note status 'sent' (one of draft, ready, exported)"),
    ({"note_ids": [1, 99], "status": None}, "no note #99"),
], ids=["none-ready", "none-in-ready", "unknown-consumer", "none-exported", "unknown-status", "unknown-id"])
def test_an_export_of_no_note_says_which_selection_was_empty(tmp_path: Path, selection: dict, message: str) -> None:
    path = tmp_path / "warden.db"
    conn = seed(path)
    draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)     # note #1, a draft
    conn.close()
    out = tmp_path / "out"
    with pytest.raises(ExportError) as refused:
        export(path, out, **selection)
    assert str(refused.value) == message
    assert not out.exists()


def test_a_markdown_letter_ends_with_exactly_one_newline_however_its_text_ends(db: Path, tmp_path: Path) -> None:
    from store.notes import save_body
    conn = connect(db)
    for note_id, text in ((2, "Dear Sir or Madam,\n\nno newline after this line"),
                          (3, "Dear Sir or Madam,\n\none newline after this line\n")):
        set_note_status(conn, note_id, "draft", reviewer="ana", clock=CLOCK)
        save_body(conn, note_id, text, clock=CLOCK)
        mark_ready(conn, note_id, reviewer="ana", clock=CLOCK)
    conn.close()
    out = tmp_path / "out"
    export(db, out, note_ids=[2, 3], status=None)
    assert (out / "note-2-bulk-00000.md").read_bytes() == b"Dear Sir or Madam,\n\nno newline after this line\n"
    assert (out / "note-3-bulk-00001.md").read_bytes() == b"Dear Sir or Madam,\n\none newline after this line\n"


def test_every_e_mail_letter_without_one_recipient_is_warned_of(db: Path, tmp_path: Path) -> None:
    conn = connect(db)
    conn.executemany("UPDATE consumer SET notice_contact = 'call our office' WHERE id = ?",
                     [(CASE_ID,), ("bulk-00001",)])
    conn.commit()
    conn.close()
    result = export(db, tmp_path / "out", "eml")
    assert [w for w in result.warnings if "notice contact" in w] == [
        "note #1: the notice contact is not exactly one e-mail address; To: left empty",
        "note #3: the notice contact is not exactly one e-mail address; To: left empty"]
