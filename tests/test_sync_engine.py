"""End-to-end sync over loopback HTTP: provenance, idempotency, look-back and
withdrawals, retries, sources that stop, bad pages, cancellation, resume after a
real kill, and one sync at a time per source."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import date, datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Iterator

import pytest

from store.clock import fixed_clock
from store.config import Config, SourceConfig
from store.db import connect
from store.errors import ConfigError
from store.sync.engine import _source_lock, sync_all, sync_source
from store.sync.events import (
    PageFailed, PageStored, Retrying, RulesApplied, SourceFinished, SourceStarted, SyncEvent,
)

sys.path.insert(0, str(Path(__file__).parent))
from sync_feed import Fault, FeedData, FeedServer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLOCK = fixed_clock(datetime(2022, 1, 25, 9, tzinfo=timezone.utc))
TOKEN = "feed-token-7f3a9c"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer(FeedData()) as running:
        yield running


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEED_TOKEN", TOKEN)


def feed_source(server: FeedServer, **overrides: Any) -> SourceConfig:
    settings: dict[str, Any] = dict(name="feed", adapter="warden-feed", url=server.url, token_env="FEED_TOKEN",
                                    start=date(2022, 1, 1), options={"shards": 3})
    settings.update(overrides)
    return SourceConfig(**settings)


def usage_table(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT source, app_id, day, metric, value FROM usage ORDER BY 1, 2, 3, 4").fetchall()
    finally:
        conn.close()


def expected_usage(data: FeedData, source: str = "feed") -> list[tuple[Any, ...]]:
    return sorted((source, app, day, metric, value) for (_, app, day, metric), value in data.usage.items())


def no_sleep(waits: list[float]) -> Any:
    return waits.append


def test_sync_stores_every_row_with_its_provenance(tmp_path: Path, server: FeedServer) -> None:
    db = tmp_path / "w.db"
    events: list[SyncEvent] = []
    result = sync_source(db, feed_source(server), clock=CLOCK, on_event=events.append)
    assert result.status == "ok", result.error
    assert usage_table(db) == expected_usage(server.data)
    assert result.rows == len(server.data.usage) + len(server.data.endpoints)

    conn = connect(db)
    pages = conn.execute("SELECT id, url, http_status, body_sha256, body_bytes, rows_taken, error FROM sync_page "
                         "WHERE run_id = ?", (result.run_id,)).fetchall()
    assert len(pages) == result.pages
    assert all(p["http_status"] == 200 and p["error"] is None and len(p["body_sha256"]) == 64 for p in pages)
    # The stored hash is the hash of the body the server sent for that URL.
    page = next(p for p in pages if "/usage?" in p["url"] and "cursor" not in p["url"] and "shard=1" in p["url"])
    status, _, body = server.answer(page["url"].split("127.0.0.1", 1)[1].split("/", 1)[1].join(["/", ""]))
    assert hashlib.sha256(body).hexdigest() == page["body_sha256"] and len(body) == page["body_bytes"]
    # Every figure points to its run and page.
    assert conn.execute("SELECT count(*) FROM usage WHERE run_id != ? OR page_id NOT IN "
                        "(SELECT id FROM sync_page)", (result.run_id,)).fetchone()[0] == 0
    # Consumers, apps and tiers from the feed.
    assert conn.execute("SELECT count(*) FROM consumer WHERE origin = 'feed'").fetchone()[0] == 6
    assert conn.execute("SELECT consumer_id FROM app WHERE source = 'feed' AND app_id = 'app-3-1'").fetchone()[0] \
        == "c003"
    assert conn.execute("SELECT max_value FROM tier_limit WHERE tier_id = 'basic'").fetchone()[0] == 1000
    assert conn.execute("SELECT calls FROM endpoint_usage").fetchone()[0] == 42
    # The token reached the server, and nowhere in the database.
    assert server.auth[0] == f"Bearer {TOKEN}"
    conn.close()
    assert TOKEN.encode() not in db.read_bytes()
    assert isinstance(events[0], SourceStarted) and isinstance(events[-1], SourceFinished)
    stored = [e for e in events if isinstance(e, PageStored)]
    assert stored[-1].total_rows == result.rows
    assert all(TOKEN not in e.as_line() and TOKEN not in json.dumps(e.as_json()) for e in events)


def test_two_syncs_leave_identical_usage_and_no_changes(tmp_path: Path, server: FeedServer) -> None:
    db = tmp_path / "w.db"
    first = sync_source(db, feed_source(server), clock=CLOCK)
    before = usage_table(db)
    second = sync_source(db, feed_source(server), clock=CLOCK)
    assert (first.status, second.status) == ("ok", "ok")
    assert usage_table(db) == before
    conn = connect(db)
    assert conn.execute("SELECT count(*) FROM usage_change").fetchone()[0] == 0
    # The second run re-fetched the look-back window (7 days before the latest day, 2022-01-20).
    window = conn.execute("SELECT window_start, window_end FROM sync_run WHERE id = ?", (second.run_id,)).fetchone()
    assert tuple(window) == ("2022-01-14", "2022-01-25")
    assert conn.execute("SELECT count(DISTINCT run_id) FROM usage").fetchone()[0] == 2


def test_lookback_replaces_revised_and_withdrawn_figures(tmp_path: Path, server: FeedServer) -> None:
    db = tmp_path / "w.db"
    assert sync_source(db, feed_source(server), clock=CLOCK).status == "ok"
    data = server.data
    data.usage[(2, "app-2-0", "2022-01-18", "calls")] = 99_999          # revised upstream
    del data.usage[(4, "app-4-1", "2022-01-19", "records")]             # withdrawn upstream
    del data.usage[(1, "app-1-0", "2022-01-02", "calls")]               # outside the look-back: kept
    second = sync_source(db, feed_source(server), clock=CLOCK)
    assert second.status == "ok"
    rows = {row[1:4]: row[4] for row in usage_table(db)}
    assert rows[("app-2-0", "2022-01-18", "calls")] == 99_999
    assert ("app-4-1", "2022-01-19", "records") not in rows
    assert ("app-1-0", "2022-01-02", "calls") in rows
    conn = connect(db)
    changes = conn.execute("SELECT app_id, day, metric, old_value, new_value, new_run_id FROM usage_change "
                           "ORDER BY id").fetchall()
    assert [tuple(c) for c in changes] == [
        ("app-2-0", "2022-01-18", "calls", 317, 99_999, second.run_id),
        ("app-4-1", "2022-01-19", "records", 5126, None, None),
    ]


def test_429_with_retry_after_is_waited_for_and_completes(tmp_path: Path, server: FeedServer) -> None:
    later = format_datetime(datetime.fromtimestamp(time.time() + 4, timezone.utc), usegmt=True)
    server.faults += [Fault("/usage?shard=1", 429, {"Retry-After": "2"}),
                      Fault("/consumers?shard=2", 503, {"Retry-After": later})]
    waits: list[float] = []
    events: list[SyncEvent] = []
    result = sync_source(tmp_path / "w.db", feed_source(server), clock=CLOCK, sleep=no_sleep(waits),
                         on_event=events.append)
    assert result.status == "ok", result.error
    assert waits[0] == 2.0 or waits[1] == 2.0
    assert 2.0 < max(waits) <= 4.0  # the HTTP-date, seen from the real clock a moment later
    assert usage_table(tmp_path / "w.db") == expected_usage(server.data)
    retrying = [e for e in events if isinstance(e, Retrying)]
    assert {e.reason.split(" (")[0] for e in retrying} == {"rate limited", "server error"}
    assert all("HTTP 429" in e.reason or "HTTP 503" in e.reason for e in retrying)


def test_repeated_5xx_gives_up_after_max_attempts(tmp_path: Path, server: FeedServer) -> None:
    server.faults.append(Fault("/tiers", 502, times=100))
    waits: list[float] = []
    result = sync_source(tmp_path / "w.db", feed_source(server, max_attempts=3), clock=CLOCK,
                         sleep=no_sleep(waits))
    assert result.status == "failed"
    assert len(waits) == 2  # three attempts, two waits, exponential
    assert waits[1] > waits[0] * 1.0 - 1e-9
    assert "'feed'" in (result.error or "") and "gave up after 3 attempts" in (result.error or "")


def test_retry_after_beyond_the_budget_stops_instead_of_waiting(tmp_path: Path, server: FeedServer) -> None:
    server.faults.append(Fault("/tiers", 429, {"Retry-After": "3600"}))
    result = sync_source(tmp_path / "w.db", feed_source(server, max_retry_seconds=60), clock=CLOCK,
                         sleep=lambda s: pytest.fail("must not wait beyond max_retry_seconds"))
    assert result.status == "failed" and "max_retry_seconds" in (result.error or "")


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_stop_the_source_without_retrying(tmp_path: Path, server: FeedServer, status: int) -> None:
    server.faults.append(Fault("/feed/v1/", status, body=b'{"error": {"code": "denied", "message": "bad token"}}',
                               times=1000))
    result = sync_source(tmp_path / "w.db", feed_source(server), clock=CLOCK,
                         sleep=lambda s: pytest.fail("must not retry"))
    assert result.status == "failed"
    assert f"HTTP {status}" in (result.error or "") and "'feed'" in (result.error or "")
    assert TOKEN not in (result.error or "")
    # Every chain stopped at its first request: no chain kept going after the refusal.
    assert len(server.requests) <= 4
    conn = connect(tmp_path / "w.db")
    assert conn.execute("SELECT status FROM sync_run").fetchone()[0] == "failed"
    assert conn.execute("SELECT http_status FROM sync_page WHERE error IS NOT NULL").fetchone()[0] == status


def test_missing_token_variable_is_a_config_error(tmp_path: Path, server: FeedServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEED_TOKEN")
    with pytest.raises(ConfigError, match="FEED_TOKEN"):
        sync_all(tmp_path / "w.db", Config(sources={"feed": feed_source(server)}), clock=CLOCK)
    assert server.requests == []


def test_a_bad_page_rejects_that_chain_only_and_the_run_is_partial(tmp_path: Path, server: FeedServer) -> None:
    # The second page of shard 1's usage carries a fractional count.
    bad = {"columns": ["app", "day", "metric", "value"],
           "rows": [["app-2-0", "2022-01-05", "calls", 10], ["app-2-0", "2022-01-05", "records", "12.5"]],
           "next": None}
    server.faults.append(Fault("/usage?shard=1&shards=3&start=2022-01-01&end=2022-01-25&cursor=50", 200,
                               body=json.dumps(bad).encode()))
    events: list[SyncEvent] = []
    db = tmp_path / "w.db"
    result = sync_source(db, feed_source(server), clock=CLOCK, on_event=events.append)
    assert result.status == "partial"
    error = result.error or ""
    assert "'feed'" in error and "cursor=50" in error and "$.rows[1][3]" in error
    failed = [e for e in events if isinstance(e, PageFailed)]
    assert len(failed) == 1 and "$.rows[1][3]" in failed[0].error
    stored = set(usage_table(db))
    expected = expected_usage(server.data)
    shard1 = [r for r in expected if r[1].startswith(("app-2-", "app-3-"))]
    # Shard 1's first page stayed; nothing after the bad page; other shards complete.
    assert set(shard1[:50]) <= stored
    assert not set(shard1[50:]) & stored
    assert set(r for r in expected if not r[1].startswith(("app-2-", "app-3-"))) <= stored
    conn = connect(db)
    row = conn.execute("SELECT error, http_status, body_sha256 FROM sync_page WHERE error IS NOT NULL").fetchone()
    assert "$.rows[1][3]" in row["error"] and row["http_status"] == 200 and row["body_sha256"]
    # The next sync covers the partial run's whole window again and completes it.
    again = sync_source(db, feed_source(server), clock=CLOCK)
    assert again.status == "ok"
    assert usage_table(db) == expected


def test_broken_json_and_oversized_bodies_are_rejected(tmp_path: Path, server: FeedServer) -> None:
    server.faults += [Fault("/endpoints?shard=0", 200, body=b'{"columns": ["app", "day"'),
                      Fault("/consumers?shard=1", 200, body=b'{"data": [' + b" " * 5000 + b"]}")]
    result = sync_source(tmp_path / "w.db", feed_source(server, max_body_bytes=4000), clock=CLOCK)
    assert result.status == "partial"
    conn = connect(tmp_path / "w.db")
    errors = sorted(r[0] for r in conn.execute("SELECT error FROM sync_page WHERE error IS NOT NULL"))
    assert len(errors) == 2
    assert any("not valid JSON" in e and "at $" in e and "/endpoints" in e for e in errors)
    assert any("max_body_bytes" in e and "/consumers" in e for e in errors)


def test_a_source_that_stops_does_not_stop_the_others(tmp_path: Path, server: FeedServer) -> None:
    server.data.x_payload = None
    capped = {"title": "UsageCapExceeded", "type": "https://api.twitter.com/2/problems/usage-capped",
              "detail": "Monthly product cap", "status": 429}
    server.faults.append(Fault("/2/usage/tweets", 429, body=json.dumps(capped).encode()))
    config = Config(sources={
        "x": SourceConfig("x", "x-usage", server.root, start=date(2022, 1, 1)),
        "feed": feed_source(server),
    })
    results = sync_all(tmp_path / "w.db", config, clock=CLOCK, sleep=lambda s: pytest.fail("no retry"))
    assert [(r.source, r.status) for r in results] == [("x", "failed"), ("feed", "ok")]
    assert "usage capped" in (results[0].error or "") and "'x'" in (results[0].error or "")
    assert usage_table(tmp_path / "w.db") == expected_usage(server.data)


def test_cancelled_sync_keeps_its_pages_and_the_next_sync_resumes_the_same_run(
        tmp_path: Path, server: FeedServer) -> None:
    db = tmp_path / "w.db"
    cancel = threading.Event()

    def on_event(event: SyncEvent) -> None:
        if isinstance(event, PageStored) and event.pages >= 4:
            cancel.set()

    first = sync_source(db, feed_source(server, concurrency=1), clock=CLOCK, on_event=on_event, cancel=cancel)
    assert first.status == "cancelled"
    kept = usage_table(db)
    assert 0 < len(kept) < len(expected_usage(server.data))
    events: list[SyncEvent] = []
    second = sync_source(db, feed_source(server), clock=CLOCK, on_event=events.append)
    assert second.status == "ok" and second.run_id == first.run_id
    assert isinstance(events[0], SourceStarted) and events[0].resumed
    assert usage_table(db) == expected_usage(server.data)


def test_a_second_sync_of_the_same_source_does_not_run_meanwhile(tmp_path: Path, server: FeedServer) -> None:
    db = tmp_path / "w.db"
    connect(db).close()
    with _source_lock(db, "feed") as locked:
        assert locked
        result = sync_source(db, feed_source(server), clock=CLOCK)
    assert result.status == "failed" and "another process" in (result.error or "")
    assert server.requests == []
    assert sync_source(db, feed_source(server), clock=CLOCK).status == "ok"


KILL_SCRIPT = textwrap.dedent("""
    import sys
    from datetime import date, datetime, timezone
    from store.clock import fixed_clock
    from store.config import SourceConfig
    from store.sync.engine import sync_source
    db, url = sys.argv[1], sys.argv[2]
    source = SourceConfig("feed", "warden-feed", url, token_env="FEED_TOKEN", start=date(2022, 1, 1),
                          concurrency=2, options={"shards": 3})
    sync_source(db, source, clock=fixed_clock(datetime(2022, 1, 25, 9, tzinfo=timezone.utc)))
""")


def test_resume_after_a_real_kill_equals_an_uninterrupted_sync(tmp_path: Path, server: FeedServer) -> None:
    whole = tmp_path / "whole.db"
    assert sync_source(whole, feed_source(server), clock=CLOCK).status == "ok"

    killed = tmp_path / "killed.db"
    connect(killed).close()
    server.page_delay = 0.2  # slow enough to kill midway
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(killed), server.url], cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 60
        stored = 0
        while time.monotonic() < deadline and process.poll() is None:
            with sqlite3.connect(f"file:{killed}?mode=ro", uri=True) as reader:
                stored = reader.execute("SELECT count(*) FROM sync_page").fetchone()[0]
            if stored >= 6:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the sync finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    server.page_delay = 0.0
    conn = connect(killed)
    (run_id, status) = conn.execute("SELECT id, status FROM sync_run").fetchone()
    assert status == "running"
    assert 0 < len(usage_table(killed)) < len(usage_table(whole))
    conn.close()

    events: list[SyncEvent] = []
    resumed = sync_source(killed, feed_source(server), clock=CLOCK, on_event=events.append)
    assert resumed.status == "ok" and resumed.run_id == run_id
    assert isinstance(events[0], SourceStarted) and events[0].resumed
    assert usage_table(killed) == usage_table(whole)
    conn = connect(killed)
    assert conn.execute("SELECT count(*) FROM usage_change").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM sync_cursor").fetchone()[0] == 0


def test_sync_all_applies_the_roster_and_runs_the_rules(tmp_path: Path, server: FeedServer) -> None:
    server.data.x_payload = {"data": {"project_cap": "50000000000", "daily_client_app_usage": [
        {"client_app_id": "29183745", "usage": [{"date": "2022-01-20T00:00:00.000Z", "usage": "200"}]}]}}
    config = Config(sources={"feed": feed_source(server),
                             "x": SourceConfig("x", "x-usage", server.root, start=date(2022, 1, 1))})
    events: list[SyncEvent] = []
    results = sync_all(tmp_path / "w.db", config, clock=CLOCK, on_event=events.append)
    assert [r.status for r in results] == ["ok", "ok"]
    assert isinstance(events[-1], RulesApplied) and events[-1].created > 0
    assert "findings created" in events[-1].as_line()
    conn = connect(tmp_path / "w.db")
    # An X app without a roster entry became its own consumer.
    assert conn.execute("SELECT consumer_id FROM app WHERE source = 'x' AND app_id = '29183745'").fetchone()[0] \
        == "x:29183745"
    assert conn.execute("SELECT count(*) FROM source WHERE name IN ('feed', 'x')").fetchone()[0] == 2
    # The rules ran: no consumer of the fixture exceeds its tier's calls, but none declared a use case.
    assert conn.execute("SELECT count(*) FROM finding WHERE rule_id IS NOT NULL AND category = 'volume_cap'") \
        .fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM finding WHERE category = 'missing_use_case'").fetchone()[0] > 0


def test_source_names_with_quotes_and_percent_signs_are_stored_verbatim(tmp_path: Path, server: FeedServer) -> None:
    result = sync_source(tmp_path / "w.db", feed_source(server, name="o'brien 100%"), clock=CLOCK)
    assert result.status == "ok", result.error
    assert usage_table(tmp_path / "w.db") == expected_usage(server.data, "o'brien 100%")


def test_a_cursor_that_does_not_advance_is_rejected_instead_of_looping(tmp_path: Path, server: FeedServer) -> None:
    loop = {"columns": ["app", "day", "metric", "value"], "rows": [["app-0-0", "2022-01-01", "calls", 100]],
            "next": "50"}
    server.faults.append(Fault("/usage?shard=0&shards=3&start=2022-01-01&end=2022-01-25&cursor=50", 200,
                               body=json.dumps(loop).encode(), times=1000))
    result = sync_source(tmp_path / "w.db", feed_source(server), clock=CLOCK)
    assert result.status == "partial"
    assert "cursor does not advance" in (result.error or "") and "cursor=50" in (result.error or "")
    assert sum("cursor=50" in r and "shard=0&" in r for r in server.requests) == 1


def test_x_figures_older_than_the_days_asked_for_are_not_withdrawn(tmp_path: Path, server: FeedServer) -> None:
    def payload(days: list[str]) -> dict[str, Any]:
        return {"data": {"daily_client_app_usage": [
            {"client_app_id": "29183745", "usage": [{"date": f"{d}T00:00:00.000Z", "usage": "5"} for d in days]}]}}

    source = SourceConfig("x", "x-usage", server.root, start=date(2022, 1, 1), lookback_days=30,
                          options={"days": 3})
    server.data.x_payload = payload(["2022-01-10", "2022-01-11", "2022-01-12"])
    db = tmp_path / "w.db"
    later = fixed_clock(datetime(2022, 1, 12, 9, tzinfo=timezone.utc))
    assert sync_source(db, source, clock=later).status == "ok"
    # Two weeks on: X answers only the last 3 days; the look-back window is 30 days long.
    server.data.x_payload = payload(["2022-01-24", "2022-01-25"])
    assert sync_source(db, source, clock=CLOCK).status == "ok"
    days = [row[2] for row in usage_table(db)]
    assert days == ["2022-01-10", "2022-01-11", "2022-01-12", "2022-01-24", "2022-01-25"]
    # Within the 3 days asked for, a day X stopped reporting is withdrawn.
    server.data.x_payload = payload(["2022-01-25"])
    assert sync_source(db, source, clock=CLOCK).status == "ok"
    assert [row[2] for row in usage_table(db)][-2:] == ["2022-01-12", "2022-01-25"]


def test_an_answer_with_no_figures_at_all_withdraws_nothing_and_says_so(tmp_path: Path, server: FeedServer) -> None:
    def payload(days: list[str]) -> dict[str, Any]:
        return {"data": {"daily_client_app_usage": [
            {"client_app_id": "29183745", "usage": [{"date": f"{d}T00:00:00.000Z", "usage": "5"} for d in days]}]}}

    source = SourceConfig("x", "x-usage", server.root, start=date(2022, 1, 1), lookback_days=30,
                          options={"days": 3})
    db = tmp_path / "w.db"
    server.data.x_payload = payload(["2022-01-23", "2022-01-24", "2022-01-25"])
    assert sync_source(db, source, clock=CLOCK).status == "ok"
    before = usage_table(db)
    server.data.x_payload = {"data": {"daily_client_app_usage": []}}   # a glitch upstream
    result = sync_source(db, source, clock=CLOCK)
    assert result.status == "partial"
    assert "reported no figures" in (result.error or "") and "nothing was withdrawn" in (result.error or "")
    assert usage_table(db) == before


def test_the_collector_thresholds_are_raised_during_a_sync_and_restored_after(tmp_path: Path,
                                                                              server: FeedServer) -> None:
    import gc

    before = gc.get_threshold()
    during: list[tuple[int, int, int]] = []
    result = sync_source(tmp_path / "w.db", feed_source(server), clock=CLOCK,
                         on_event=lambda event: during.append(gc.get_threshold()))
    assert result.status == "ok"
    assert during and all(t[0] > before[0] for t in during)
    assert gc.get_threshold() == before
