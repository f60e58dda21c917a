"""Opening a database: a file that is not warden's is refused and left exactly as
it was; commands that only read open read-only; a database others can read is
made private (it, its WAL and SHM) and the reviewer is told once; where it cannot
be, it is refused with the reason; folders warden creates are 0700.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from store.db import connect, make_private, schema_version
from store.errors import ForeignDatabase, StoreError
from tests.test_files import confined, needs_mounts
from tui.cli import main as cli_main


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def snapshot(folder: Path) -> dict[str, tuple[str, int, int]]:
    """Every file in ``folder``: SHA-256, mode and modification time."""
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode, p.stat().st_mtime_ns)
            for p in sorted(folder.iterdir())}


def _sqlite_file(path: Path, tables: list[str], version: int) -> Path:
    """Another program's SQLite file: ``tables``, a row in each, rollback journal, mode 0644."""
    raw = sqlite3.connect(path)
    for table in tables:
        raw.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY AUTOINCREMENT)")   # and sqlite_sequence
        raw.execute(f"INSERT INTO {table} DEFAULT VALUES")
    raw.execute(f"PRAGMA user_version = {version}")
    raw.commit()
    raw.close()
    os.chmod(path, 0o644)
    return path


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    folder = tmp_path / "theirs"
    folder.mkdir()
    return _sqlite_file(folder / "inventory.sqlite", ["item"], 0)


@pytest.mark.parametrize(("tables", "version", "holds"), [
    (["item"], 0, "item"),
    (["consumer", "finding"], 0, "consumer, finding"),                  # two of warden's three
    (["e", "d", "c", "b", "a"], 0, "a, b, c, d, e"),                    # five: every one named
    (["f", "e", "d", "c", "b", "a"], 0, "a, b, c, d, e and 1 more"),    # six: five named
    (["g", "f", "e", "d", "c", "b", "a"], 3, "a, b, c, d, e and 2 more"),
    ([], 1, "none"),                                                    # no table, but a schema version
    ([], 9, "none"),
], ids=["one", "two-of-wardens", "five", "six", "seven", "empty-version-1", "empty-version-9"])
@pytest.mark.parametrize("readonly", [False, True])
def test_a_foreign_database_is_refused_naming_what_it_holds_word_for_word(tmp_path: Path, tables: list[str],
                                                                          version: int, holds: str,
                                                                          readonly: bool) -> None:
    path = _sqlite_file(tmp_path / "theirs.sqlite", tables, version)
    before = snapshot(tmp_path)
    with pytest.raises(ForeignDatabase) as caught:
        connect(path, readonly=readonly)
    assert str(caught.value) == (f"{path} is not a warden database (it holds the tables {holds}, not warden's "
                                 "consumer, decision, finding); it was left as it is: give --db a warden database "
                                 "or a new file name")
    assert snapshot(tmp_path) == before           # no schema, no WAL, no chmod, no journal


@pytest.mark.parametrize("readonly", [False, True])
def test_a_database_holding_exactly_wardens_three_tables_is_taken_for_wardens(tmp_path: Path,
                                                                               readonly: bool) -> None:
    # The probe's rule, exactly on its edge: warden's three tables and nothing else is warden's.
    path = _sqlite_file(tmp_path / "bare.sqlite", ["consumer", "finding", "decision"], schema_version())
    conn = connect(path, readonly=readonly)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema_version()
    conn.close()


# Another program killed in the middle of a write: its database file half written, and the
# journal that undoes it (a "hot" journal) beside it. Only a connection that may write rolls
# it back, which rewrites their file and deletes their journal.
CRASH_MID_WRITE = """
import os, sqlite3, sys
raw = sqlite3.connect(sys.argv[1], isolation_level=None)
raw.execute("PRAGMA cache_size = 1")               # spill the changes into the file before the commit
raw.execute("CREATE TABLE item (sku TEXT, pad TEXT)")
raw.execute("INSERT INTO item VALUES ('a-1', 'x')")
raw.execute("BEGIN")
for i in range(2000):
    raw.execute("INSERT INTO item VALUES (?, ?)", (str(i), "y" * 200))
os._exit(0)                                         # killed: no commit, no rollback
"""


@pytest.mark.parametrize("readonly", [False, True])
def test_a_foreign_database_left_mid_write_is_refused_and_its_journal_left_as_it_is(tmp_path: Path,
                                                                                  readonly: bool) -> None:
    path = tmp_path / "inventory.sqlite"
    subprocess.run([sys.executable, "-c", CRASH_MID_WRITE, str(path)], check=True, timeout=60)
    before = snapshot(tmp_path)
    assert sorted(before) == ["inventory.sqlite", "inventory.sqlite-journal"]
    with pytest.raises(ForeignDatabase) as caught:
        connect(path, readonly=readonly)
    assert str(caught.value).startswith(f"{path} is not a warden database (it holds the tables item, not warden's")
    assert snapshot(tmp_path) == before           # not rolled back, journal kept, no chmod, no schema


@pytest.mark.parametrize("where", ["w.db", "deeper/w.db"])
def test_a_database_that_cannot_be_created_is_refused_with_the_reason(tmp_path: Path, where: str) -> None:
    (tmp_path / "notes.txt").write_text("theirs", encoding="utf-8")
    path = tmp_path / "notes.txt" / where               # a file where a folder should be
    with pytest.raises(StoreError) as refused:
        connect(path)
    assert str(refused.value) == f"cannot create database {path}: Not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "theirs"


@pytest.mark.parametrize("command", [[], ["verify"], ["verify", "--head", "0" * 64],
                                     ["export", "--format", "md", "--out", "OUT"], ["findings"],
                                     ["note", "show", "x"], ["note", "draft", "x"], ["decide", "undo"],
                                     ["decide", "confirm", "x", "--reason", "r"]])
def test_every_command_refuses_a_foreign_file_with_exit_2(foreign: Path, tmp_path: Path, command: list[str],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(foreign.parent)
    argv = [str(tmp_path / "out") if part == "OUT" else part for part in command]
    assert cli_main([*argv, "--db", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert "not a warden database" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert snapshot(foreign.parent) == before
    assert not (tmp_path / "out").exists()


def test_an_empty_file_becomes_a_warden_database(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch(mode=0o600)
    conn = connect(path)
    assert conn.execute("SELECT count(*) FROM decision").fetchone()[0] == 0
    conn.close()


def test_verify_reads_without_writing_the_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.tui_data import seed_review_db

    db = seed_review_db(tmp_path / "w" / "review.db")
    conn = connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = snapshot(db.parent)
    assert cli_main(["verify", "--db", str(db)]) == 0
    after = snapshot(db.parent)
    assert after["review.db"] == before["review.db"]
    # A read-only connection may map the WAL index; it writes no page of the database.
    assert {name for name in after} - {"review.db-shm", "review.db-wal"} == set(before)


def test_a_database_at_a_path_sqlite_cannot_open_is_refused_with_its_reason(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # SQLite opens no path longer than 512 bytes; the file is there and is warden's.
    folder = tmp_path
    while len(str(folder)) <= 512:
        folder = folder / ("d" * 100)
    folder.mkdir(parents=True)
    connect(tmp_path / "w.db").close()
    db = folder / "w.db"
    db.write_bytes((tmp_path / "w.db").read_bytes())
    for readonly in (True, False):
        with pytest.raises(StoreError) as refused:
            connect(db, readonly=readonly)
        assert str(refused.value) == f"cannot open database {db}: unable to open database file"
    assert cli_main(["verify", "--db", str(db)]) == 1
    assert capsys.readouterr().err == \
        f"warden: Database error: cannot open database {db}: unable to open database file\n"


def test_a_read_only_open_does_not_migrate(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    raw = sqlite3.connect(path)
    from store.db import _statements
    from store.schema import MIGRATIONS

    for statement in _statements(MIGRATIONS[0]):     # the first schema only, as an older warden left it
        raw.execute(statement)
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()
    os.chmod(path, 0o600)
    before = path.read_bytes()
    with pytest.raises(StoreError) as refused:
        connect(path, readonly=True)
    assert str(refused.value) == (
        f"cannot read database {path} as it is: its schema (1) is older than this warden's ({len(MIGRATIONS)}) "
        "and this command only reads; run a command that writes (warden sync, or open it in warden) to upgrade "
        "it, then try again")
    assert path.read_bytes() == before


# 0600 exactly, as the notice says, whatever the owner's bits were (0777 does not become 0700).
@pytest.mark.parametrize("start_mode", [0o644, 0o640, 0o604, 0o660, 0o777, 0o711, 0o401])
def test_a_database_others_can_read_is_made_private_and_said_once(tmp_path: Path, start_mode: int) -> None:
    db = tmp_path / "w.db"
    conn = connect(db)
    conn.execute("CREATE TABLE keep_wal_open (x)")   # the WAL and SHM files exist while it is open
    for path in (db, db.with_name("w.db-wal"), db.with_name("w.db-shm")):
        os.chmod(path, start_mode)
    notices: list[str] = []
    second = connect(db, notices=notices)
    for path in (db, db.with_name("w.db-wal"), db.with_name("w.db-shm")):
        assert mode(path) == 0o600, path.name
    assert len(notices) == 1
    assert "w.db" in notices[0] and oct(start_mode)[2:] in notices[0] and "0600" in notices[0]
    again: list[str] = []
    connect(db, notices=again).close()
    assert again == []                             # once: nothing left to tighten
    second.close()
    conn.close()


def test_make_private_tightens_the_journal_files_too_and_names_the_first_mode(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    connect(db).close()
    modes = {db: 0o640, db.with_name("w.db-wal"): 0o604, db.with_name("w.db-shm"): 0o600,
             db.with_name("w.db-journal"): 0o660}
    for path, start in modes.items():
        path.touch()
        os.chmod(path, start)
    assert make_private(db) == (f"{db} was open to others (mode 0640); made it private (0600), "
                                "with its -wal and -shm files")
    assert {path.name: mode(path) for path in modes} == {
        "w.db": 0o600, "w.db-wal": 0o600, "w.db-shm": 0o600, "w.db-journal": 0o600}


def test_make_private_tightens_a_journal_after_the_files_that_are_not_there(tmp_path: Path) -> None:
    # A rollback-journal database (no -wal, no -shm) left with its journal by a crash: both made
    # private, the journal too, though the files before it in the list are missing.
    db = tmp_path / "w.db"
    db.write_bytes(b"")
    journal = db.with_name("w.db-journal")
    journal.write_bytes(b"")
    os.chmod(db, 0o640)
    os.chmod(journal, 0o604)
    assert make_private(db) == (f"{db} was open to others (mode 0640); made it private (0600), "
                                "with its -wal and -shm files")
    assert {p.name: mode(p) for p in tmp_path.iterdir()} == {"w.db": 0o600, "w.db-journal": 0o600}


def test_make_private_leaves_a_private_database_alone(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    connect(db).close()
    assert mode(db) == 0o600
    assert make_private(db) is None


def test_a_private_database_stays_silent(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    connect(db).close()
    notices: list[str] = []
    connect(db, notices=notices).close()
    assert notices == []


def test_the_cli_says_once_that_it_made_the_database_private(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "w.db"
    connect(db).close()
    os.chmod(db, 0o644)
    assert cli_main(["verify", "--db", str(db)]) == 0
    err = capsys.readouterr().err
    assert err.count("made it private") == 1 and "0644" in err
    assert mode(db) == 0o600
    assert cli_main(["verify", "--db", str(db)]) == 0
    assert "private" not in capsys.readouterr().err


def test_folders_created_for_the_database_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        db = tmp_path / "a" / "b" / "c" / "w.db"
        connect(db).close()
    finally:
        os.umask(old)
    for folder in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert mode(folder) == 0o700, folder
    assert mode(db) == 0o600


CANNOT_TIGHTEN = """
    import contextlib, io, json, sys
    from store.db import connect
    from store.errors import StoreError
    from tui.cli import main

    db = sys.argv[1]
    out = {}
    try:
        connect(db).close()
        out["connect"] = "opened"
    except StoreError as exc:
        out["connect"] = str(exc)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["verify", "--db", db])
    out["verify"] = [code, err.getvalue()]
    print(json.dumps(out))
"""


@needs_mounts
@pytest.mark.parametrize(("start_mode", "how"), [
    (0o644, "readable by others"),
    (0o603, "writable by others"),       # others may write (and run) it, not read it
])
def test_a_database_that_cannot_be_made_private_is_refused_with_the_reason(tmp_path: Path, start_mode: int,
                                                                           how: str) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "w.db"
    connect(db).close()
    os.chmod(db, start_mode)
    out = confined(f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} {folder}",
                   CANNOT_TIGHTEN, str(db))
    said = (f"{db} is {how} (mode {start_mode:04o}) and cannot be made private: Read-only file system; "
            f"make it private (chmod 600 {db}) or move it, then try again")
    assert out["connect"] == said
    code, err = out["verify"]
    assert code == 1 and said in err and "Traceback" not in err
    assert mode(db) == start_mode


READ_ONLY_FILE = """
    import json, sys
    from store.db import connect, transaction
    from store.errors import StoreError

    db = sys.argv[1]
    out = {}
    try:
        conn = connect(db)
    except StoreError as exc:
        out["connect"] = str(exc)
    else:
        out["sources"] = [r[0] for r in conn.execute("SELECT name FROM source")]
        try:
            with transaction(conn):
                conn.execute("INSERT INTO source (name, kind, url) VALUES ('b', 'k', 'u')")
        except StoreError as exc:
            out["write"] = str(exc)
    print(json.dumps(out))
"""


@needs_mounts
def test_a_database_file_mounted_read_only_in_a_writable_folder_opens_for_reading(tmp_path: Path) -> None:
    # Only the file is read-only (its folder is not): switching it to WAL fails, and warden
    # opens it for reading instead of refusing it.
    db = tmp_path / "w.db"
    conn = connect(db)
    conn.execute("INSERT INTO source (name, kind, url) VALUES ('a', 'k', 'u')")
    conn.execute("PRAGMA journal_mode = DELETE")     # as another tool may leave it
    conn.close()
    out = confined(f"mount --bind {db} {db} && mount -o remount,ro,bind {db} {db}", READ_ONLY_FILE, str(db))
    assert out == {"sources": ["a"], "write": f"cannot write to the database {db}: attempt to write a readonly "
                                              "database; nothing was changed"}
