"""What a headless sync prints, for cron and for a person at a terminal (issue 10):
by default one line per source and a summary with the duration; a live progress
bar only when stderr is a terminal; ``--verbose`` every page as before; ``--json``
every event as before. And the demo says where its database is and what to try."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

from tui.cli import main

SOURCE_LINE = re.compile(r"^warden: (demo-feed|demo-x): ok, [\d,]+ rows in [\d,]+ pages?, \d+\.\d s$")
SUMMARY = re.compile(r"^warden: 2/2 sources synced, [\d,]+ rows stored in \d+\.\d s$")


def test_by_default_a_line_per_source_and_a_summary_with_the_duration(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "d.db"
    assert main(["demo", "--headless", "--consumers", "20", "--db", str(db)]) == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    sources = [line for line in lines if SOURCE_LINE.match(line)]
    assert [SOURCE_LINE.match(line)[1] for line in sources] == ["demo-feed", "demo-x"]
    assert sum(bool(SUMMARY.match(line)) for line in lines) == 1
    assert any(line.startswith("warden: rules: ") for line in lines)
    # No page lines, and no progress bar: stderr is not a terminal here.
    assert not any("page chains" in line or re.search(r"\+[\d,]+ rows \(", line) for line in lines)
    assert "\r" not in err and "\x1b" not in err


def test_verbose_prints_every_page_as_before(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--headless", "--verbose", "--consumers", "20", "--db", str(tmp_path / "d.db")]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert any(line.startswith("sync demo-feed: run 1, ") for line in lines)
    assert sum(bool(re.match(r"sync demo-feed: usage/\d+ \+[\d,]+ rows", line)) for line in lines) >= 1
    assert any(line.startswith("sync demo-x: ok, ") for line in lines)
    assert sum(bool(SUMMARY.match(line)) for line in lines) == 1


def test_json_is_every_event_as_before(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--headless", "--json", "--consumers", "20", "--db", str(tmp_path / "d.db")]) == 0
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("source_started") == 2 and kinds.count("source_finished") == 2
    assert kinds.count("page_stored") >= 2
    summary = next(e for e in events if e["event"] == "summary" and "sources" in e)
    assert set(summary) == {"event", "message", "sources", "ok", "rows"}


def test_a_plain_http_source_does_not_claim_verified_tls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--headless", "--json", "--consumers", "20", "--db", str(tmp_path / "d.db")]) == 0
    started = [json.loads(line) for line in capsys.readouterr().err.splitlines()
               if '"source_started"' in line]
    assert started and all(e["tls_verified"] is None for e in started)    # http://127.0.0.1: no TLS at all


def test_on_a_terminal_a_live_progress_bar_then_the_same_lines(tmp_path: Path) -> None:
    """stderr on a pseudo-terminal: the bar redraws in place, and what stays is the
    per-source lines and the summary."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    warden = str(Path(sys.executable).parent / "warden")
    proc = subprocess.Popen([warden, "demo", "--headless", "--consumers", "20",
                             "--db", str(tmp_path / "d.db")], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=follower, env=env, cwd=Path(__file__).resolve().parents[1])
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(60) == 0
    os.close(leader)
    text = out.decode("utf-8", "replace")
    assert "\r" in text or "\x1b[" in text                      # drawn in place
    assert re.search(r"demo-feed.*rows", text)
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r\n", "\n")
    finals = [line.split("\r")[-1].strip() for line in plain.split("\n")]
    assert any(SOURCE_LINE.match(line) for line in finals)
    assert any(SUMMARY.match(line) for line in finals)


def test_headless_without_a_configuration_says_none_was_found(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "nothing-here"))
    monkeypatch.delenv("WARDEN_CONFIG", raising=False)
    assert main(["--headless", "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    missing = tmp_path / "nothing-here" / "warden" / "config.toml"
    assert f"no configuration: {missing} does not exist, and neither --config nor WARDEN_CONFIG names one" in err
    assert "no sources configured in" not in err


def test_the_demo_says_where_its_database_is_and_what_to_try(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "d.db"
    settings = tmp_path / "d-demo.toml"
    assert main(["demo", "--headless", "--consumers", "20", "--db", str(db)]) == 0
    err = capsys.readouterr().err
    assert (f"warden: the demo's database is {db}, its letter settings {settings}; to go on with them: "
            f"export WARDEN_DB={db} WARDEN_CONFIG={settings}, then try: warden · warden verify · "
            "warden note draft CONSUMER · warden export --format all --out ./letters") in err
    # And each of them works on it; a letter drafted afterwards comes from the demo's
    # platform, as in the demo's TUI, not from "the Platform".
    assert main(["verify", "--db", str(db), "--config", str(settings)]) == 0
    assert main(["decide", "confirm", "northwind-analytics", "--db", str(db), "--config", str(settings)]) == 0
    assert main(["note", "draft", "northwind-analytics", "--db", str(db), "--config", str(settings)]) == 0
    capsys.readouterr()
    assert main(["note", "show", "northwind-analytics", "--db", str(db), "--config", str(settings)]) == 0
    letter = capsys.readouterr().out
    assert "on behalf of Demo Platform Inc." in letter and "the Platform" not in letter


def test_the_demo_leaves_a_settings_file_it_did_not_write_alone(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "d.db"
    mine = tmp_path / "d-demo.toml"
    mine.write_text("[notes]\norganisation = \"Mine Ltd\"\n")
    assert main(["demo", "--headless", "--consumers", "20", "--db", str(db)]) == 0
    err = capsys.readouterr().err
    assert mine.read_text() == "[notes]\norganisation = \"Mine Ltd\"\n"
    assert f"warden: the demo's database is {db}; to go on with them: export WARDEN_DB={db}, then try:" in err
    assert "WARDEN_CONFIG" not in err
    # Written by the demo: replaced by the next demo.
    mine.unlink()
    assert main(["demo", "--headless", "--consumers", "20", "--db", str(db)]) == 0
    assert main(["demo", "--headless", "--consumers", "20", "--db", str(db)]) == 0
    assert f"WARDEN_CONFIG={mine}" in capsys.readouterr().err


def test_the_demo_quotes_a_path_with_spaces_for_the_shell(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "my demo" / "d.db"
    assert main(["demo", "--headless", "--consumers", "20", "--db", str(db)]) == 0
    assert (f"export WARDEN_DB='{db}' WARDEN_CONFIG='{tmp_path / 'my demo' / 'd-demo.toml'}', then try:"
            in capsys.readouterr().err)


def test_demo_help_says_where_it_writes(capsys: pytest.CaptureFixture[str]) -> None:
    from tui.cli.common import default_db_path

    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"default: {default_db_path().with_name('demo-N.db')}" in help_text
    assert "not the database other commands use" in help_text
