"""The command line as cron jobs and reviewers use it: exit codes, messages, the demo."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from store.clock import system_clock
from store.db import connect
from store.review import confirm_violation, dismiss
from tui.cli import main


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    assert main(["demo", "--headless", "--db", str(db)]) == 0
    return db


def copy_of(db: Path, folder: Path) -> Path:
    """A private copy of the module's demo database, for a test that writes to it."""
    copy = folder / "copy.db"
    source = sqlite3.connect(db)
    source.execute(f"VACUUM INTO '{copy}'")
    source.close()
    return copy


def test_demo_headless_stores_the_case_consumer_above_the_letter_figures(demo_db: Path) -> None:
    conn = sqlite3.connect(demo_db)
    calls, records = conn.execute(
        """
        SELECT sum(CASE WHEN metric = 'calls' THEN value END), sum(CASE WHEN metric = 'records' THEN value END)
        FROM usage JOIN app USING (source, app_id)
        WHERE app.consumer_id = 'northwind-analytics' AND day BETWEEN '2022-01-01' AND '2022-12-31'
        """
    ).fetchone()
    assert calls > 780_000_000
    assert records > 26_000_000_000
    apps = conn.execute("SELECT count(*) FROM app WHERE consumer_id = 'northwind-analytics'").fetchone()[0]
    assert apps == 8
    volume = conn.execute(
        "SELECT count(*) FROM finding WHERE consumer_id = 'northwind-analytics' "
        "AND category = 'volume_cap' AND status = 'candidate' AND period = '2022'"
    ).fetchone()[0]
    assert volume >= 1
    top = conn.execute("SELECT id FROM consumer ORDER BY worst_ratio DESC, id LIMIT 1").fetchone()[0]
    assert top == "northwind-analytics"


def test_demo_headless_prints_one_line_per_event_and_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--headless", "--json", "--consumers", "20", "--db", str(tmp_path / "d.db")])
    err = capsys.readouterr().err
    events = [json.loads(line) for line in err.splitlines()]
    assert code == 0
    assert {e["event"] for e in events} >= {"demo", "summary", "top"}
    assert any(e.get("event") == "top" and e["consumer"] == "northwind-analytics" for e in events)


def test_usage_capped_source_stops_with_exit_1_and_the_other_source_is_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "capped.db"
    code = main(["demo", "--headless", "--consumers", "20", "--db", str(db), "--fault", "usage_capped@/2/usage"])
    err = capsys.readouterr().err
    assert code == 1
    assert "demo-x" in err and "capped" in err.lower()
    conn = sqlite3.connect(db)
    feed_rows = conn.execute("SELECT count(*) FROM usage WHERE source = 'demo-feed'").fetchone()[0]
    x_rows = conn.execute("SELECT count(*) FROM usage WHERE source = 'demo-x'").fetchone()[0]
    assert feed_rows > 0 and x_rows == 0
    statuses = dict(conn.execute("SELECT source, status FROM sync_run"))
    assert statuses == {"demo-feed": "ok", "demo-x": "failed"}


def test_missing_config_file_is_exit_2_with_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.toml"
    assert main(["--headless", "--config", str(missing), "--db", str(tmp_path / "x.db")]) == 2
    assert str(missing) in capsys.readouterr().err


def test_unknown_config_key_is_exit_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "warden.toml"
    config.write_text('[sources.feed]\nadapter = "warden-feed"\nurl = "http://127.0.0.1:1/feed/v1"\ntokn_env = "X"\n')
    assert main(["sync", "--config", str(config), "--db", str(tmp_path / "x.db")]) == 2
    assert "tokn_env" in capsys.readouterr().err


def test_headless_without_sources_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("[warden]\n")
    assert main(["--headless", "--config", str(config), "--db", str(tmp_path / "x.db")]) == 2
    assert "no sources configured" in capsys.readouterr().err


def test_verify_passes_then_names_the_edited_entry(demo_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = copy_of(demo_db, tmp_path)
    conn = connect(db)
    volume, borderline = [
        conn.execute(
            "SELECT id FROM finding WHERE consumer_id = ? AND status = 'candidate' ORDER BY ratio DESC LIMIT 1", (cid,)
        ).fetchone()[0]
        for cid in ("northwind-analytics", "fenwick-signal")
    ]
    confirm_violation(conn, volume, reviewer="alice", severity="critical", reason="2022 far above cap", clock=system_clock)
    dismiss(conn, borderline, reviewer="alice", reason_code="within_allowance", clock=system_clock)
    conn.close()
    assert main(["verify", "--db", str(db)]) == 0
    assert "chain intact" in capsys.readouterr().err

    # Edit one entry behind the log's back (the append-only triggers dropped first).
    raw = sqlite3.connect(db)
    raw.executescript("DROP TRIGGER decision_no_update;")
    first = raw.execute("SELECT min(id) FROM decision").fetchone()[0]
    raw.execute("UPDATE decision SET reason = 'nothing to see' WHERE id = ?", (first,))
    raw.commit()
    raw.close()
    assert main(["verify", "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert f"entry {first}" in err and "BROKEN" in err


def test_export_refuses_to_overwrite_then_force_replaces(demo_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from store.config import NotesConfig
    from store.notes import draft_note, set_note_status

    db = copy_of(demo_db, tmp_path)
    conn = connect(db)
    finding = conn.execute(
        "SELECT id FROM finding WHERE consumer_id = 'northwind-analytics' AND category = 'volume_cap' AND period = '2022'"
    ).fetchone()[0]
    confirm_violation(conn, finding, reviewer="alice", severity="critical", reason="far above cap", clock=system_clock)
    note = draft_note(conn, "northwind-analytics", reviewer="alice", clock=system_clock, config=NotesConfig())
    set_note_status(conn, note.id, "ready", reviewer="alice", clock=system_clock)
    conn.close()

    out = tmp_path / "out"
    args = ["export", "--db", str(db), "--status", "ready", "--format", "csv", "--out", str(out)]
    assert main(args) == 0
    written = sorted(p.name for p in out.iterdir())
    first_bytes = {name: (out / name).read_bytes() for name in written}
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "refused" in err.lower() or "exists" in err.lower()
    assert {name: (out / name).read_bytes() for name in written} == first_bytes
    assert main(args + ["--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == written


def test_export_all_formats_at_once_covers_the_same_notes_with_matching_manifests(
    demo_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib
    from email import message_from_bytes

    from store.config import NotesConfig
    from store.notes import draft_note, set_note_status

    db = copy_of(demo_db, tmp_path)
    conn = connect(db)
    for (finding,) in conn.execute(
        "SELECT id FROM finding WHERE consumer_id = 'northwind-analytics' AND category = 'volume_cap'"
    ).fetchall():
        confirm_violation(conn, finding, reviewer="alice", severity="critical", reason="far above cap",
                          clock=system_clock)
    note = draft_note(conn, "northwind-analytics", reviewer="alice", clock=system_clock, config=NotesConfig())
    set_note_status(conn, note.id, "ready", reviewer="alice", clock=system_clock)
    conn.close()

    out = tmp_path / "out"
    assert main(["export", "--db", str(db), "--status", "ready", "--format", "all", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert [n for n in names if n.startswith("manifest-")] == [f"manifest-{f}.json" for f in sorted(("csv", "eml", "html", "json", "md"))]
    for manifest in out.glob("manifest-*.json"):
        listed = json.loads(manifest.read_text())
        files = listed["files"]
        assert files, manifest.name
        for entry in files:
            data = (out / entry["name"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["name"]
    letter = next(out.glob("*.md")).read_text()
    assert "more than 780 million times" in letter and "more than 26 billion records" in letter
    mail = message_from_bytes(next(out.glob("*.eml")).read_bytes())
    assert mail["To"] and mail["X-Unsent"] == "1"
    with pytest.raises(SystemExit) as usage:
        main(["export", "--db", str(db), "--format", "pdf", "--out", str(out)])
    assert usage.value.code == 2
    assert "unknown format 'pdf'" in capsys.readouterr().err


def test_a_listing_into_a_closed_pipe_ends_quietly(demo_db: Path) -> None:
    """``warden findings | head`` whose reader is gone: no stack trace, exit 1."""
    import subprocess
    import sys

    reader_gone = subprocess.Popen([sys.executable, "-m", "tui.cli", "findings", "--db", str(demo_db)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader_gone.stdout is not None
    reader_gone.stdout.close()             # before anything is written: the first write breaks the pipe
    _, err = reader_gone.communicate(timeout=120)
    assert (reader_gone.returncode, err) == (1, b"")


def test_rules_look_at_what_changed_and_all_looks_at_every_consumer(
        demo_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = copy_of(demo_db, tmp_path)
    consumers = sqlite3.connect(db).execute("SELECT count(*) FROM consumer").fetchone()[0]
    capsys.readouterr()
    assert main(["rules", "--db", str(db)]) == 0
    assert "rules: 0 consumers checked (those whose data changed), 0 findings created" in capsys.readouterr().err
    conn = connect(db)
    conn.execute("UPDATE usage SET value = value * 50 WHERE app_id = 'app-1-1' AND day = '2022-06-01'")
    conn.close()
    assert main(["rules", "--db", str(db), "--json"]) == 0
    event = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (event["event"], event["mode"], event["consumers"]) == ("rules_applied", "changed", 1)
    assert event["created"] >= 1     # alderbrook-insights: fifty times a day's calls in June
    assert main(["rules", "--all", "--db", str(db)]) == 0
    err = capsys.readouterr().err
    assert f"rules: {consumers:,} consumers checked (every consumer), 0 findings created, 0 updated" in err
