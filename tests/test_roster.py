"""The roster is checked whole before a sync makes any request, and a bad row is
named by its exact line and column (as an editor counts them)."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from store.clock import fixed_clock
from store.config import load_config
from store.db import connect
from store.demo import DemoEndpoint
from store.errors import ConfigError
from store.roster import iter_roster
from store.sync.engine import sync_all
from tui.cli import main as cli_main

CLOCK = fixed_clock(datetime(2023, 1, 1, 6, tzinfo=timezone.utc))
HEADER = "id,legal_name,notice_contact,tier,apps\n"


def big_roster(rows: int, *, extra: dict[int, str] | None = None) -> str:
    """``rows`` consumers, one per line from line 2; ``extra`` replaces the row of a
    given line (1-based, as an editor numbers them)."""
    lines = [HEADER.rstrip("\n")]
    for i in range(rows):
        lines.append(f"c{i},Consumer {i},legal@c{i}.example,,feed:app-{i}")
    for line, text in (extra or {}).items():
        lines[line - 1] = text
    return "\n".join(lines) + "\n"


def setup(tmp_path: Path, endpoint: DemoEndpoint, roster: bytes) -> Path:
    (tmp_path / "roster.csv").write_bytes(roster)
    config = tmp_path / "c.toml"
    config.write_text(textwrap.dedent(f"""
        [sources.feed]
        adapter = "warden-feed"
        url = "{endpoint.feed_url}"
        start = 2022-12-20
        shards = 1

        [roster]
        file = "roster.csv"
    """))
    return config


@pytest.mark.parametrize(("roster", "says"), [
    # A duplicate id on line 3002 (the first on line 12): column 1, the id's.
    (big_roster(3200, extra={3002: "c10,Again Ltd,,,"}).encode(),
     "line 3002, column 1: duplicate consumer id 'c10' (first on line 12)"),
    # A Latin-1 byte on line 2502: the column of the character, whatever was read ahead.
    (big_roster(3200, extra={2502: "c2500,Caf\xe9 Ltd,,,feed:app-2500"}).encode("latin-1"),
     "line 2502, column 10: not UTF-8 (byte 0xe9)"),
    # A record running over two lines (a quoted newline) does not shift what follows.
    (big_roster(40, extra={5: 'c3,"Two\nLines Ltd",,,feed:app-3', 31: "c3,Dup,,,"}).encode(),
     "line 32, column 1: duplicate consumer id 'c3' (first on line 5)"),
    (big_roster(40, extra={21: "c19,,,,feed:app-19"}).encode(),
     "line 21, column 2: missing required field 'legal_name'"),
    (big_roster(40, extra={21: "c19,Elsewhere,,,nowhere:app-19"}).encode(),
     "line 21, column 5: consumer 'c19': app \"nowhere:app-19\" names unknown source 'nowhere'"),
    (big_roster(40, extra={21: "c19,Missing,,,feed:app-19;feed:app-7"}).encode(),
     "line 21, column 5: app \"feed:app-7\" is claimed by more than one consumer ('c7' on line 9, 'c19')"),
], ids=["duplicate id", "latin-1 byte", "quoted newline", "missing field", "unknown source", "app claimed twice"])
def test_the_roster_is_checked_before_any_request_and_named_by_line_and_column(
        tmp_path: Path, roster: bytes, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    with DemoEndpoint(consumers=2, env_faults=False) as endpoint:
        config = setup(tmp_path, endpoint, roster)
        with pytest.raises(ConfigError) as caught:
            sync_all(tmp_path / "w.db", load_config(config), clock=CLOCK)
        assert endpoint.requests() == 0
        assert cli_main(["sync", "--config", str(config), "--db", str(tmp_path / "cli.db")]) == 2
        assert endpoint.requests() == 0
    message = str(caught.value)
    assert "roster.csv: " + says in message, message
    assert says in capsys.readouterr().err
    conn = connect(tmp_path / "w.db")
    try:
        assert conn.execute("SELECT count(*) FROM sync_run").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM consumer").fetchone()[0] == 0
    finally:
        conn.close()


def test_reading_the_roster_names_a_bad_byte_exactly_too(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_bytes(b"id,legal_name\n" + b"a,A\n" * 5000 + b"b,B\xff\xfe\n")
    with pytest.raises(ConfigError, match=r"line 5002, column 4: not UTF-8 \(byte 0xff\)"):
        list(iter_roster(tmp_path / "r.csv"))
    (tmp_path / "ok.csv").write_bytes("\ufeffid,legal_name\r\nä,Ä Ltd\r\n".encode())
    assert [(c.id, c.legal_name) for c in iter_roster(tmp_path / "ok.csv")] == [("ä", "Ä Ltd")]


def test_a_good_roster_is_applied_after_the_sync(tmp_path: Path) -> None:
    with DemoEndpoint(consumers=2, env_faults=False) as endpoint:
        config = setup(tmp_path, endpoint, big_roster(30).encode())
        results = sync_all(tmp_path / "w.db", load_config(config), clock=CLOCK)
    assert [r.status for r in results] == ["ok"]
    conn = connect(tmp_path / "w.db")
    try:
        assert conn.execute("SELECT count(*) FROM consumer WHERE origin = 'config'").fetchone()[0] == 30
        assert tuple(conn.execute("SELECT consumer_id FROM app WHERE source = 'feed' AND app_id = 'app-7'")
                     .fetchone()) == ("c7",)
    finally:
        conn.close()
