"""Large pages parsed in the sync's worker process (store.sync.parse_worker), their
figures packed as JSON text slices (store.sync.packed): the same rows and the same
refusals, with their JSON path, as parsing in the fetch thread. (The writer's side
of the slices, text stored exactly: tests/test_sync_writer.py.)"""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import store.sync.engine as engine
from store.clock import fixed_clock
from store.config import SourceConfig
from store.demo import DEMO_TOKEN_ENV, DemoEndpoint
from store.errors import PageRejected
from store.sync.adapter import ParsedPage, Request, Window
from store.sync.adapters.warden_feed import WardenFeed
from store.sync.packed import SLICE_ROWS, PackedRows, pack_rows, parse_body
from store.sync.parse_worker import WORKER_BODY_BYTES, ParseWorker

CLOCK = fixed_clock(datetime(2023, 1, 1, 6, tzinfo=timezone.utc))
TOKEN = "parse-worker-token-77f1"
WINDOW = Window(date(2022, 12, 1), date(2022, 12, 31))
USAGE = Request.get("usage", shard=0, shards=1, start="2022-12-01", end="2022-12-31")


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEMO_TOKEN_ENV, TOKEN)


def feed(url: str) -> SourceConfig:
    # One shard: each usage page holds every app's rows, well over WORKER_BODY_BYTES.
    return SourceConfig(name="feed", adapter="warden-feed", url=url, token_env=DEMO_TOKEN_ENV,
                        start=date(2022, 12, 1), options={"shards": 1})


def body(rows: list[list[Any]]) -> bytes:
    return json.dumps({"columns": ["app", "day", "metric", "value"], "rows": rows, "next": None}).encode()


def big_rows(apps: int = 300) -> list[list[Any]]:
    """Rows for ``apps`` apps, every day of December 2022, both metrics (18,600 for 300)."""
    return [[f"app-{a:04d}", f"2022-12-{d:02d}", metric, a * 1000 + d]
            for a in range(apps) for d in range(1, 32) for metric in ("calls", "records")]


class CountingWorker(ParseWorker):
    """The real worker, counting the pages it was given."""

    started: list["CountingWorker"] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pages = 0
        CountingWorker.started.append(self)
        self.wait_ready(30)   # so that every large page of the test goes to it

    def parse(self, *args: Any, **kwargs: Any) -> ParsedPage:
        self.pages += 1
        return super().parse(*args, **kwargs)


def stored(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT source, app_id, day, metric, value FROM usage ORDER BY 1, 2, 3, 4").fetchall()
    finally:
        conn.close()


def test_a_sync_of_large_pages_stores_through_the_worker_what_it_stores_without(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    CountingWorker.started.clear()
    monkeypatch.setattr(engine, "ParseWorker", CountingWorker)
    with DemoEndpoint(consumers=60, start=date(2022, 12, 1), end=date(2022, 12, 31), dense=60) as endpoint:
        expected_rows = endpoint.data.usage_rows()
        with_worker = engine.sync_source(tmp_path / "a.db", feed(endpoint.feed_url), clock=CLOCK)
        monkeypatch.setattr(engine, "WORKER_BODY_BYTES", 10**12)   # every page parsed in its fetch thread
        here = engine.sync_source(tmp_path / "b.db", feed(endpoint.feed_url), clock=CLOCK)
    assert with_worker.status == here.status == "ok"
    assert len(CountingWorker.started) == 1 and CountingWorker.started[0].pages >= 1
    assert CountingWorker.started[0]._process.poll() is not None   # ended with the sync
    rows = stored(tmp_path / "a.db")
    assert len(rows) == expected_rows > SLICE_ROWS
    assert rows == stored(tmp_path / "b.db")


def test_the_worker_parses_and_refuses_exactly_as_the_fetch_thread_does() -> None:
    source = feed("http://feed.example/v1")
    good = body(big_rows())
    bad_rows = big_rows()
    bad_rows[12_345][3] = -5
    bad = body(bad_rows)
    assert len(good) >= WORKER_BODY_BYTES
    worker = ParseWorker(WardenFeed(source), WINDOW)
    try:
        assert worker.wait_ready(30)
        there = worker.parse("usage/0", USAGE, good, {})
        with pytest.raises(PageRejected) as refused_there:
            worker.parse("usage/0", USAGE, bad, {})
        again = worker.parse("usage/0", USAGE, good, {})   # a refusal does not stop the worker
    finally:
        worker.close()
    here = parse_body(WardenFeed(source), "usage/0", USAGE, good, WINDOW)
    with pytest.raises(PageRejected) as refused_here:
        parse_body(WardenFeed(source), "usage/0", USAGE, bad, WINDOW)
    assert isinstance(there.usage, PackedRows) and len(there.usage) == 18_600
    assert there.usage == here.usage == again.usage
    assert refused_there.value.path == refused_here.value.path == "$.rows[12345][3]"
    assert refused_there.value.why == refused_here.value.why


def test_a_worker_that_is_gone_raises_so_the_fetch_thread_parses_itself() -> None:
    worker = ParseWorker(WardenFeed(feed("http://feed.example/v1")), WINDOW)
    try:
        assert worker.wait_ready(30)
        worker._process.kill()
        worker._process.wait()
        with pytest.raises((OSError, EOFError)):
            worker.parse("usage/0", USAGE, body(big_rows(10)), {})
    finally:
        worker.close()


def test_packed_slices_hold_every_row_once_with_their_apps() -> None:
    rows = big_rows(40)   # 2,480 rows: three slices
    packed = pack_rows(rows)
    assert [part.count for part in packed.slices] == [1000, 1000, 480]
    assert [row for part in packed.slices for row in json.loads(part.rows)] == rows  # type: ignore[arg-type]
    # 62 rows an app: apps 0-16 in the first slice, 16-32 in the second, 32-39 in the third
    assert [part.apps for part in packed.slices] == [
        tuple(f"app-{a:04d}" for a in range(first, last)) for first, last in ((0, 17), (16, 33), (32, 40))]
    assert packed.count == 2480 and packed.last_day == "2022-12-31"
