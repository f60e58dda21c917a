"""Sync against the embedded demo endpoint over loopback, with the demo config:
what `warden demo --headless` promises (the case consumer's 2022 totals and its
findings, the X apps given to their roster consumers) holds to the exact figures
the generator computes, and every fault the endpoint can inject ends the way the
sync promises (retried and complete, refused page, stopped source)."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from store.clock import fixed_clock
from store.config import SourceConfig
from store.db import connect
from store.demo import CASE_ID, DEMO_TOKEN_ENV, DemoEndpoint
from store.demo.config import FEED_SOURCE, X_DAYS, X_SOURCE, demo_config
from store.demo.data import X_APPS
from store.sync.engine import sync_all, sync_source

CLOCK = fixed_clock(datetime(2023, 1, 1, 6, tzinfo=timezone.utc))
TOKEN = "demo-sync-token-5d2e"


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEMO_TOKEN_ENV, TOKEN)


def feed(endpoint: DemoEndpoint, **overrides: Any) -> SourceConfig:
    settings: dict[str, Any] = dict(name=FEED_SOURCE, adapter="warden-feed", url=endpoint.feed_url,
                                    token_env=DEMO_TOKEN_ENV, start=date(2022, 12, 1), options={"shards": 4})
    settings.update(overrides)
    return SourceConfig(**settings)


def usage(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT source, app_id, day, metric, value FROM usage ORDER BY 1, 2, 3, 4").fetchall()
    finally:
        conn.close()


def test_demo_sync_stores_the_case_and_every_consumer_exactly(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    # Another seed than the default: names and noise change, the cast does not.
    with DemoEndpoint(consumers=12, seed=11, require_token=TOKEN) as endpoint:
        results = sync_all(db, demo_config(endpoint), clock=CLOCK)
        data = endpoint.data
    assert [(r.source, r.status) for r in results] == [(FEED_SOURCE, "ok"), (X_SOURCE, "ok")]
    conn = connect(db)
    assert conn.execute("SELECT count(*) FROM usage").fetchone()[0] == data.usage_rows() + len(X_APPS) * X_DAYS
    totals = dict(conn.execute(
        "SELECT metric, sum(value) FROM usage JOIN app USING (source, app_id) "
        "WHERE consumer_id = ? AND source = ? AND day BETWEEN '2022-01-01' AND '2022-12-31' GROUP BY metric",
        (CASE_ID, FEED_SOURCE)).fetchall())
    assert totals == data.totals(CASE_ID, date(2022, 1, 1), date(2022, 12, 31))
    assert totals["calls"] > 780_000_000 and totals["records"] > 26_000_000_000
    for (consumer_id,) in conn.execute("SELECT id FROM consumer WHERE origin = 'feed'").fetchall():
        stored = dict(conn.execute(
            "SELECT metric, sum(value) FROM usage JOIN app USING (source, app_id) WHERE consumer_id = ? "
            "AND source = ? GROUP BY metric", (consumer_id, FEED_SOURCE)).fetchall())
        expected = {m: v for m, v in data.totals(consumer_id).items() if v}
        assert {m: v for m, v in stored.items() if v} == expected, consumer_id
    assert conn.execute("SELECT count(*) FROM usage WHERE source = ?", (FEED_SOURCE,)).fetchone()[0] \
        == data.usage_rows()
    categories = {row[0] for row in conn.execute(
        "SELECT category FROM finding WHERE consumer_id = ? AND status = 'candidate'", (CASE_ID,))}
    assert {"volume_cap", "missing_use_case"} <= categories
    # The X apps: the roster of the demo config gives 29183745 to its consumer.
    assert conn.execute("SELECT consumer_id FROM app WHERE source = ? AND app_id = '29183745'",
                        (X_SOURCE,)).fetchone()[0] == "kestrel-media"
    assert conn.execute("SELECT sum(value) FROM usage WHERE source = ? AND app_id = '29183745'",
                        (X_SOURCE,)).fetchone()[0] == data.x_totals("29183745", X_DAYS)
    conn.close()
    assert TOKEN.encode() not in db.read_bytes()


def test_demo_sync_twice_leaves_identical_usage(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    with DemoEndpoint(consumers=10) as endpoint:
        config = demo_config(endpoint)
        first = sync_all(db, config, clock=CLOCK)
        before = usage(db)
        second = sync_all(db, config, clock=CLOCK)
    assert all(r.status == "ok" for r in first + second)
    assert usage(db) == before
    assert connect(db).execute("SELECT count(*) FROM usage_change").fetchone()[0] == 0


@pytest.mark.parametrize("spec", [
    "429@/feed/v1/usage,retry_after=1",
    "503@/feed/v1/consumers,retry_after_date=2,times=2",
    "500@/feed/v1/tiers",
    "truncated@/feed/v1/usage,query=shard=2",
    "reset@/feed/v1/usage,query=shard=1",
    "stall@/feed/v1/endpoints,seconds=3",
    "duplicate@/feed/v1/usage",
])
def test_faults_that_are_retried_or_harmless_end_complete(tmp_path: Path, spec: str) -> None:
    with DemoEndpoint(consumers=10, faults=[spec]) as endpoint:
        waits: list[float] = []
        result = sync_source(tmp_path / "w.db", feed(endpoint, timeout=0.5), clock=CLOCK, sleep=waits.append)
        clean = tmp_path / "clean.db"
        endpoint.faults.clear()
        sync_source(clean, feed(endpoint), clock=CLOCK)
    assert result.status == "ok", result.error
    assert usage(tmp_path / "w.db") == usage(clean)
    if "retry_after=1" in spec:
        assert waits == [1.0]
    if "duplicate" not in spec:
        assert waits


@pytest.mark.parametrize(("spec", "expected"), [
    ("wrong_type@/feed/v1/usage,query=shard=1", "$.rows[0][3]"),
    ("negative@/feed/v1/usage,query=shard=1", "negative"),
    ("over64@/feed/v1/usage,query=shard=1", "64 bits"),
    ("fractional@/feed/v1/usage,query=shard=1", "not a whole number"),
    ("missing_id@/feed/v1/usage,query=shard=1", "$.rows[0][0]"),
    ("non_json@/feed/v1/usage,query=shard=1", "not valid JSON"),
    ("repeat_cursor@/feed/v1/usage,query=shard=1,times=0", "cursor does not advance"),
    ("huge@/feed/v1/usage,query=shard=1,size=3000000,chunked=1", "max_body_bytes"),
    ("huge@/feed/v1/usage,query=shard=1,size=3000000", "max_body_bytes"),
    ("gzip_bomb@/feed/v1/usage,query=shard=1,size=50000000", "max_body_bytes"),
])
def test_bad_pages_reject_one_chain_and_the_run_is_partial(tmp_path: Path, spec: str, expected: str) -> None:
    db = tmp_path / "w.db"
    with DemoEndpoint(consumers=10, faults=[spec]) as endpoint:
        result = sync_source(db, feed(endpoint, max_body_bytes=2_000_000), clock=CLOCK,
                             sleep=lambda s: None)
    assert result.status == "partial"
    error = result.error or ""
    assert expected in error and f"'{FEED_SOURCE}'" in error and "/feed/v1/usage?" in error and "shard=1" in error
    conn = connect(db)
    assert conn.execute("SELECT count(*) FROM sync_page WHERE error IS NOT NULL").fetchone()[0] == 1
    # Every other shard's usage is there.
    assert conn.execute("SELECT count(*) FROM sync_page WHERE url LIKE '%/usage?%shard=3%' AND error IS NULL") \
        .fetchone()[0] >= 1


def test_usage_capped_x_stops_while_the_feed_is_stored(tmp_path: Path) -> None:
    with DemoEndpoint(consumers=10, faults=["usage_capped@/2/usage/tweets"]) as endpoint:
        results = sync_all(tmp_path / "w.db", demo_config(endpoint), clock=CLOCK,
                           sleep=lambda s: pytest.fail("usage-capped must not be retried"))
        assert endpoint.requests("/2/usage/tweets") == 1
    status = {r.source: r for r in results}
    assert status[FEED_SOURCE].status == "ok"
    assert status[X_SOURCE].status == "failed"
    assert "usage capped" in (status[X_SOURCE].error or "") and f"'{X_SOURCE}'" in (status[X_SOURCE].error or "")


def test_a_wrong_token_is_refused_once_and_never_stored(tmp_path: Path) -> None:
    with DemoEndpoint(consumers=5, require_token="the-right-one") as endpoint:
        result = sync_source(tmp_path / "w.db", feed(endpoint), clock=CLOCK,
                             sleep=lambda s: pytest.fail("401 must not be retried"))
        assert endpoint.requests("/feed/v1") <= 4
    assert result.status == "failed" and "HTTP 401" in (result.error or "")
    assert TOKEN not in (result.error or "")
    assert TOKEN.encode() not in (tmp_path / "w.db").read_bytes()
