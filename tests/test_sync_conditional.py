"""Conditional requests (warden-feed): a re-sync asks for the pages of records its
last complete run stored with ``If-None-Match: "<their SHA-256>"``; the demo
endpoint answers ``304 Not Modified`` while nothing it serves changed, and a
page that changed comes whole. A 304 warden did not ask for is refused."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from store.clock import fixed_clock
from store.config import SourceConfig
from store.demo import DemoData, DemoEndpoint
from store.sync.adapter import Request
from store.sync.adapters.warden_feed import WardenFeed
from store.sync.engine import sync_source
from store.sync.fetch import FetchFailed, PageFetcher

CLOCK = fixed_clock(datetime(2022, 1, 25, 9, tzinfo=timezone.utc))
START, LAST_DAY = date(2022, 1, 1), date(2022, 1, 20)
# 12 consumers, 2 shards of 6, 5 a page: pages of 5 and 1 in each shard, and the tiers.
RECORD_PAGES = 5


@pytest.fixture
def server() -> Iterator[DemoEndpoint]:
    with DemoEndpoint(consumers=12, start=START, end=LAST_DAY, env_faults=False) as running:
        yield running


def feed(url: str) -> SourceConfig:
    return SourceConfig(name="feed", adapter="warden-feed", url=url, start=START, options={"shards": 2, "limit": 5})


def record_pages(db: Path, run_id: int) -> list[tuple[str, int, int, str]]:
    """(chain, HTTP status, bytes, SHA-256) of the run's pages of tiers and consumers."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT chain, http_status, body_bytes, body_sha256 FROM sync_page WHERE run_id = ? "
                            "AND (chain = 'tiers' OR chain LIKE 'consumers/%') ORDER BY url", (run_id,)).fetchall()
    finally:
        conn.close()


def stored(db: Path) -> dict[str, list[Any]]:
    """Everything a sync stores of the source's records and figures (without run and page)."""
    conn = sqlite3.connect(db)
    try:
        return {
            "tier": conn.execute("SELECT * FROM tier ORDER BY id").fetchall(),
            "consumer": conn.execute("SELECT id, legal_name, notice_contact, tier_id, agreement_version, "
                                     "declared_use_case, government_end_users FROM consumer ORDER BY id").fetchall(),
            "app": conn.execute("SELECT source, app_id, consumer_id, name, declared_use_case FROM app "
                                "ORDER BY app_id").fetchall(),
            "usage": conn.execute("SELECT app_id, day, metric, value FROM usage ORDER BY 1, 2, 3").fetchall(),
            "endpoint_usage": conn.execute("SELECT app_id, day, endpoint, calls FROM endpoint_usage "
                                           "ORDER BY 1, 2, 3").fetchall(),
        }
    finally:
        conn.close()


def test_a_resync_of_an_unchanged_endpoint_gets_304s_and_stores_the_same(tmp_path: Path,
                                                                           server: DemoEndpoint) -> None:
    db = tmp_path / "w.db"
    first = sync_source(db, feed(server.feed_url), clock=CLOCK)
    assert first.status == "ok"
    before = stored(db)
    assert len(before["consumer"]) == 12 and len(before["tier"]) == 3
    fetched = record_pages(db, first.run_id)
    assert len(fetched) == RECORD_PAGES and {status for _, status, _, _ in fetched} == {200}
    second = sync_source(db, feed(server.feed_url), clock=CLOCK)
    assert second.status == "ok"
    again = record_pages(db, second.run_id)
    # Every page of records came back as 304, standing for the same body (its SHA-256), 0 bytes received.
    assert [(chain, sha) for chain, _, _, sha in again] == [(chain, sha) for chain, _, _, sha in fetched]
    assert {(status, size) for _, status, size, _ in again} == {(304, 0)}
    assert stored(db) == before
    # ... and a third, from the 304s' pages (their SHA-256 and next cursors), again.
    third = sync_source(db, feed(server.feed_url), clock=CLOCK)
    assert third.status == "ok" and {s for _, s, _, _ in record_pages(db, third.run_id)} == {304}
    assert stored(db) == before


@pytest.mark.parametrize("change", ["revised figure", "renamed app", "new consumer"])
def test_a_page_that_changed_upstream_is_fetched_whole_and_stored(tmp_path: Path, server: DemoEndpoint,
                                                                   change: str) -> None:
    db = tmp_path / "w.db"
    assert sync_source(db, feed(server.feed_url), clock=CLOCK).status == "ok"
    app = server.data.consumer(9).apps[0]
    if change == "revised figure":
        server.revise(app.id, date(2022, 1, 19), "calls", 4242)
    elif change == "renamed app":
        server.data = DemoData(12, start=START, end=LAST_DAY, names_override={9: {"app_name": "Renamed App"}})
    else:
        server.data = DemoData(13, start=START, end=LAST_DAY)
    run = sync_source(db, feed(server.feed_url), clock=CLOCK)
    assert run.status == "ok"
    # What the endpoint served changed: no page is taken as unchanged on its word.
    assert {status for _, status, _, _ in record_pages(db, run.run_id)} == {200}
    conn = sqlite3.connect(db)
    try:
        if change == "revised figure":
            assert conn.execute("SELECT value FROM usage WHERE app_id = ? AND day = '2022-01-19' AND metric = 'calls'",
                                (app.id,)).fetchone() == (4242,)
        elif change == "renamed app":
            assert conn.execute("SELECT name FROM app WHERE app_id = ?", (app.id,)).fetchone() == ("Renamed App",)
        else:
            newcomer = server.data.consumer(12)
            assert conn.execute("SELECT legal_name FROM consumer WHERE id = ?",
                                (newcomer.id,)).fetchone() == (newcomer.legal_name,)
    finally:
        conn.close()


def test_a_server_that_ignores_if_none_match_still_works(tmp_path: Path) -> None:
    with DemoEndpoint(consumers=12, start=START, end=LAST_DAY, env_faults=False, etags=False) as plain:
        db = tmp_path / "w.db"
        assert sync_source(db, feed(plain.feed_url), clock=CLOCK).status == "ok"
        before = stored(db)
        run = sync_source(db, feed(plain.feed_url), clock=CLOCK)
        assert run.status == "ok"
        pages = record_pages(db, run.run_id)
        assert len(pages) == RECORD_PAGES and all(status == 200 and size > 0 for _, status, size, _ in pages)
        assert stored(db) == before


def test_a_304_to_a_url_warden_has_no_page_for_is_refused_and_loses_nothing(tmp_path: Path,
                                                                            server: DemoEndpoint) -> None:
    db = tmp_path / "w.db"
    server.faults.add("304@/feed/v1/consumers,query=shard=1&shards=2")
    first = sync_source(db, feed(server.feed_url), clock=CLOCK)
    assert first.status == "partial"
    assert "HTTP 304 Not Modified to a request without If-None-Match" in first.error
    assert "/feed/v1/consumers?shard=1&shards=2" in first.error       # where
    conn = sqlite3.connect(db)
    refused = conn.execute("SELECT http_status, error FROM sync_page WHERE run_id = ? AND error IS NOT NULL",
                           (first.run_id,)).fetchall()
    # The other shard's consumers and every figure were stored.
    consumers = conn.execute("SELECT count(*) FROM consumer").fetchone()[0]
    conn.close()
    assert [status for status, _ in refused] == [304] and "no page stored from this URL" in refused[0][1]
    assert consumers == 6
    second = sync_source(db, feed(server.feed_url), clock=CLOCK)      # the fault fired once
    assert second.status == "ok"
    assert len(stored(db)["consumer"]) == 12


def test_a_304_naming_another_tag_is_refused() -> None:
    source = feed("https://feed.example/feed/v1")
    asked: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("If-None-Match"))
        return httpx.Response(304, headers={"ETag": '"' + "b" * 64 + '"'})
    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        fetcher = PageFetcher(client, source, WardenFeed(source), token=None, clock=CLOCK, cancel=threading.Event())
        same = PageFetcher(client, source, WardenFeed(source), token=None, clock=CLOCK, cancel=threading.Event())
        with pytest.raises(FetchFailed, match="naming another tag"):
            fetcher.get(Request.get("tiers"), etag="a" * 64)
        assert same.get(Request.get("tiers"), etag="b" * 64).sha256 == "b" * 64
    assert asked == ['"' + "a" * 64 + '"', '"' + "b" * 64 + '"']


# --- the demo endpoint's side -------------------------------------------------------------

def get(client: httpx.Client, url: str, tag: str | None = None) -> httpx.Response:
    return client.get(url, headers={"If-None-Match": tag} if tag else {})


def test_the_endpoint_answers_304_only_while_the_page_is_the_same(server: DemoEndpoint) -> None:
    usage = server.feed_url + "/usage?shard=1&shards=2&start=2022-01-19&end=2022-01-20"
    consumers = server.feed_url + "/consumers?shard=1&shards=2&limit=5"
    with httpx.Client() as client:
        first = get(client, usage)
        tag = first.headers["ETag"]
        assert tag == '"' + hashlib.sha256(first.content).hexdigest() + '"'
        assert get(client, usage).status_code == 200                      # no If-None-Match: the page
        assert get(client, usage, '"' + "0" * 64 + '"').status_code == 200  # another tag: the page
        unchanged = get(client, usage, tag)
        assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["ETag"] == tag
        # A revised figure on that page: never 304 again for the old tag, and a new tag.
        row = first.json()["rows"][0]
        server.revise(row[0], date.fromisoformat(row[1]), row[2], row[3] + 1)
        changed = get(client, usage, tag)
        assert changed.status_code == 200 and changed.headers["ETag"] != tag
        assert changed.json()["rows"][0][3] == row[3] + 1
        # A renamed app (new data): the consumers page with its old tag comes whole.
        old = get(client, consumers)
        server.data = DemoData(12, start=START, end=LAST_DAY, names_override={6: {"app_name": "Renamed App"}})
        renamed = get(client, consumers, old.headers["ETag"])
        assert renamed.status_code == 200 and b"Renamed App" in renamed.content
        # A fault picked for the request: the answer is played, not a 304.
        fresh = get(client, consumers)
        server.faults.add("500@/feed/v1/consumers")
        assert get(client, consumers, fresh.headers["ETag"]).status_code == 500


def test_a_page_rendered_across_a_revision_is_not_tagged(server: DemoEndpoint) -> None:
    usage = "/feed/v1/usage?shard=0&shards=1"
    served = server._version()
    answer = server.answer("/feed/v1/usage", {"shard": "0", "shards": "1"}, None)
    server.revise(server.data.consumer(1).apps[0].id, date(2022, 1, 2), "calls", 7)   # while it was rendered
    server.tag(usage, answer, served)
    assert "ETag" not in answer.headers
    tag = '"' + hashlib.sha256(answer.body).hexdigest() + '"'
    assert server.not_modified(usage, tag) is None
    served = server._version()
    server.tag(usage, answer, served)          # rendered and tagged from the data as it is
    assert answer.headers["ETag"] == tag and server.not_modified(usage, tag) == tag
