"""A re-sync writes what changed: pages of records (tiers, consumers, apps) the
last complete run stored byte for byte are not written again, one that changed
upstream is, and an app the roster stops claiming goes back to the owner its
source reports."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from store import consumers
from store.clock import fixed_clock
from store.config import Config, SourceConfig
from store.demo import DemoData, DemoEndpoint
from store.roster import ConsumerConfig
from store.sync import writer
from store.sync.adapters.warden_feed import WardenFeed
from store.sync.engine import sync_all, sync_source

CLOCK = fixed_clock(datetime(2022, 1, 25, 9, tzinfo=timezone.utc))
START, LAST_DAY = date(2022, 1, 1), date(2022, 1, 20)


@pytest.fixture
def server() -> Iterator[DemoEndpoint]:
    with DemoEndpoint(consumers=12, start=START, end=LAST_DAY, env_faults=False) as running:
        yield running


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many records the sync's writer handed to each upsert."""
    counts = {"tiers": 0, "consumers": 0, "apps": 0}
    for name, key in (("upsert_tiers", "tiers"), ("upsert_consumers", "consumers"), ("upsert_owned_apps", "apps")):
        real = getattr(writer, name)

        def spy(conn: sqlite3.Connection, *args: Any, real: Any = real, key: str = key, **kwargs: Any) -> Any:
            counts[key] += len(list(args[-1]))
            return real(conn, *args, **kwargs)
        monkeypatch.setattr(writer, name, spy)
    return counts


def feed(server: DemoEndpoint) -> SourceConfig:
    return SourceConfig(name="feed", adapter="warden-feed", url=server.feed_url, start=START,
                        options={"shards": 2, "limit": 5})


def owner(db: Path, app_id: str) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT consumer_id FROM app WHERE app_id = ?", (app_id,)).fetchone()[0]
    finally:
        conn.close()


def test_record_pages_stored_before_are_neither_parsed_nor_written_again(
        tmp_path: Path, server: DemoEndpoint, written: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    real_parse = WardenFeed.parse

    def parse(self: WardenFeed, chain: str, *args: Any) -> Any:
        parsed.append(chain.split("/")[0])
        return real_parse(self, chain, *args)
    monkeypatch.setattr(WardenFeed, "parse", parse)
    db = tmp_path / "w.db"
    assert sync_source(db, feed(server), clock=CLOCK).status == "ok"
    assert written["tiers"] == 3 and written["consumers"] == 12 and written["apps"] > 12
    assert parsed.count("consumers") == 4 and parsed.count("tiers") == 1      # 12 consumers, 5 a page, 2 shards
    written.update(dict.fromkeys(written, 0))
    parsed.clear()
    second = sync_source(db, feed(server), clock=CLOCK)
    assert second.status == "ok"
    assert written == {"tiers": 0, "consumers": 0, "apps": 0}
    assert "consumers" not in parsed and "tiers" not in parsed and "usage" in parsed
    conn = sqlite3.connect(db)
    # Still recorded as fetched, with the same body hash as before.
    hashes = conn.execute("SELECT run_id, body_sha256 FROM sync_page WHERE chain LIKE 'consumers/%' "
                          "ORDER BY chain, id").fetchall()
    conn.close()
    assert sorted(h for r, h in hashes if r == second.run_id) == sorted(h for r, h in hashes if r != second.run_id)
    # One consumer renamed upstream: its page (five consumers) is written, the others are not.
    server.data = DemoData(12, start=START, end=LAST_DAY, names_override={9: "Renamed Upstream Ltd"})
    assert sync_source(db, feed(server), clock=CLOCK).status == "ok"
    assert written == {"tiers": 0, "consumers": 5, "apps": written["apps"]} and written["apps"] > 0
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT legal_name FROM consumer WHERE id LIKE '%-9'").fetchone()[0] == "Renamed Upstream Ltd"
    conn.close()


def test_a_page_of_a_run_that_did_not_complete_is_no_reference(tmp_path: Path, server: DemoEndpoint,
                                                                written: dict[str, int]) -> None:
    db = tmp_path / "w.db"
    assert sync_source(db, feed(server), clock=CLOCK).status == "ok"
    conn = sqlite3.connect(db)
    conn.execute("UPDATE sync_run SET status = 'partial'")      # as if a page had been refused
    conn.commit()
    conn.close()
    written.update(dict.fromkeys(written, 0))
    assert sync_source(db, feed(server), clock=CLOCK).status == "ok"
    assert written["consumers"] == 12


def test_an_app_the_roster_stops_claiming_goes_back_to_the_owner_its_source_reports(
        tmp_path: Path, server: DemoEndpoint, written: dict[str, int]) -> None:
    db = tmp_path / "w.db"
    source = feed(server)
    feed_owner = server.data.consumer(9)
    app_id = feed_owner.apps[0].id
    claiming = Config(sources={"feed": source}, consumers=[
        ConsumerConfig(id="claimer", legal_name="Claimer Ltd", apps=[("feed", app_id)])])
    sync_all(db, claiming, clock=CLOCK)
    assert owner(db, app_id) == "claimer"
    sync_all(db, claiming, clock=CLOCK)          # unchanged pages: the claim stands, nothing flips
    assert owner(db, app_id) == "claimer"
    written.update(dict.fromkeys(written, 0))
    sync_all(db, replace(claiming, consumers=[]), clock=CLOCK)   # the roster drops the claim
    assert written["apps"] == 0     # the drop is noticed after the sync, by the roster
    sync_all(db, replace(claiming, consumers=[]), clock=CLOCK)
    assert owner(db, app_id) == feed_owner.id and written["apps"] > 0
    conn = sqlite3.connect(db)
    fact = conn.execute("SELECT value FROM source_fact WHERE key = ?", (consumers.ROSTER_DROPPED_FACT,)).fetchone()
    assert fact is not None and conn.execute("SELECT count(*) FROM roster_claim").fetchone()[0] == 0
    conn.close()


def test_only_a_sync_over_figures_of_earlier_runs_looks_for_withdrawn_ones(
        tmp_path: Path, server: DemoEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first sync has nothing to withdraw, and skips the scan of its own figures
    that would find it; the next one withdraws what the source no longer reports."""
    looked: list[tuple[str, str]] = []
    real = writer.RunWriter.withdraw_missing

    def spy(self: writer.RunWriter, start: str, end: str) -> int:
        looked.append((start, end))
        return real(self, start, end)
    monkeypatch.setattr(writer.RunWriter, "withdraw_missing", spy)
    db = tmp_path / "w.db"
    assert sync_source(db, feed(server), clock=CLOCK).status == "ok"
    assert looked == []
    server.withdraw("app-4-1", date(2022, 1, 19))
    assert sync_source(db, feed(server), clock=CLOCK).status == "ok"
    assert len(looked) == 1
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM usage WHERE app_id = 'app-4-1' AND day = '2022-01-19'"
                            ).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM usage WHERE app_id = 'app-4-1' AND day = '2022-01-18'"
                            ).fetchone()[0] > 0
    finally:
        conn.close()
