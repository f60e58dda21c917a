"""The days a sync asks for: the window logged is the window requested, a figure
for a day the request did not ask for refuses its page, and a closed window
(``end``) fetched completely is not fetched again unless asked (``--refetch``)."""

from __future__ import annotations

import json
import textwrap
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from store.clock import fixed_clock
from store.config import SourceConfig, load_config
from store.db import connect
from store.demo import DemoEndpoint
from store.errors import ConfigError, PageRejected
from store.sync.adapter import Request, Window
from store.sync.adapters import adapter_for
from store.sync.engine import sync_source
from store.sync.events import SourceFinished, SourceStarted
from tui.cli import main as cli_main

CLOCK = fixed_clock(datetime(2023, 1, 1, 6, tzinfo=timezone.utc))


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(text))
    return path


def run_window(db: Path) -> list[tuple[str, str, str]]:
    conn = connect(db)
    try:
        return [tuple(r) for r in conn.execute(
            "SELECT window_start, window_end, status FROM sync_run ORDER BY id")]  # type: ignore[misc]
    finally:
        conn.close()


# --- defect 2: X's window is relative -------------------------------------------------

@pytest.mark.parametrize("key", ["start = 2022-01-01", "end = 2022-12-31"])
def test_x_says_at_configuration_time_that_it_gives_only_the_last_days(tmp_path: Path, key: str) -> None:
    config = write_config(tmp_path, f"""
        [sources.x]
        adapter = "x-usage"
        url = "https://api.x.com"
        {key}
    """)
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    message = str(caught.value)
    assert "[sources.x]" in message and repr(key.split(" ")[0]) in message, message
    assert "last" in message and "90 days" in message and "days" in message, message


def test_the_window_logged_is_the_window_x_was_asked_for(tmp_path: Path) -> None:
    """A first sync from 2022-01-01 cannot get a year from X: it asks ``days=90``,
    and the run says 2022-10-03..2023-01-01 (the 90 days before the demo's today,
    and today), not 2022-01-01..2023-01-01."""
    events: list[Any] = []
    with DemoEndpoint(consumers=2, env_faults=False) as endpoint:
        source = SourceConfig("x", "x-usage", endpoint.x_url, start=date(2022, 1, 1))
        result = sync_source(tmp_path / "w.db", source, clock=CLOCK, on_event=events.append)
        asked = endpoint.requested("/2/usage/tweets")
    assert result.status == "ok", result.error
    assert len(asked) == 1 and "days=90" in asked[0]
    started = [e for e in events if isinstance(e, SourceStarted)][0]
    assert (started.window_start, started.window_end) == ("2022-10-03", "2023-01-01")
    assert "2022-10-03..2023-01-01" in started.as_line()
    assert run_window(tmp_path / "w.db") == [("2022-10-03", "2023-01-01", "ok")]


# --- defect 4: a figure for a day the request did not ask for -------------------------

def aws_source(url: str = "https://gw.example.com") -> SourceConfig:
    return SourceConfig("gw", "aws-usage-plan", url, token_env="GW_TOKEN", start=date(2026, 10, 1),
                        options={"usage_plan_id": "plan9"})


def test_aws_trusts_the_days_it_asked_for_not_the_answers_start_date() -> None:
    adapter = adapter_for(aws_source())
    asked = Request.get("usageplans/plan9/usage", startDate="2026-10-01", endDate="2026-10-31", limit=500)
    body = {"startDate": "2023-11-01", "endDate": "2023-11-30", "values": {"k1": [[5, 95], [6, 94]]}}
    with pytest.raises(PageRejected) as caught:
        adapter.parse("usage/2026-10", asked, body, Window(date(2026, 10, 1), date(2026, 10, 31)))
    assert caught.value.path == "$.values.k1[0]"
    assert "2023-11-01" in caught.value.why and "2026-10-01..2026-10-31" in caught.value.why
    # The answer's startDate inside the days asked for is where its list begins.
    body["startDate"] = "2026-10-30"
    page = adapter.parse("usage/2026-10", asked, body, Window(date(2026, 10, 1), date(2026, 10, 31)))
    assert page.usage == [("k1", "2026-10-30", "calls", 5), ("k1", "2026-10-31", "calls", 6)]


def test_openai_refuses_a_bucket_outside_start_time_and_end_time() -> None:
    source = SourceConfig("oai", "openai-usage", "https://api.openai.example", start=date(2023, 11, 1))
    adapter = adapter_for(source)
    window = Window(date(2023, 11, 1), date(2023, 11, 30))
    request = adapter.chains(window)["completions/2023-11"]
    oct_31 = int(datetime(2023, 10, 31, tzinfo=timezone.utc).timestamp())
    body = {"object": "page", "has_more": False, "next_page": None, "data": [
        {"object": "bucket", "start_time": oct_31 + 86_400, "end_time": oct_31 + 2 * 86_400, "results": []},
        {"object": "bucket", "start_time": oct_31, "end_time": oct_31 + 86_400, "results": [
            {"api_key_id": "key_a", "num_model_requests": 5, "input_tokens": 9, "output_tokens": 1}]}]}
    with pytest.raises(PageRejected) as caught:
        adapter.parse("completions/2023-11", request, body, window)
    assert caught.value.path == "$.data[1].start_time"
    assert "2023-10-31" in caught.value.why and "2023-11-01..2023-11-30" in caught.value.why


def test_the_feed_refuses_a_row_outside_start_and_end() -> None:
    source = SourceConfig("feed", "warden-feed", "https://feed.example/v1", options={"shards": 1})
    adapter = adapter_for(source)
    window = Window(date(2022, 12, 1), date(2022, 12, 31))
    request = adapter.chains(window)["usage/0"]
    body = {"columns": ["app", "day", "metric", "value"], "next": None,
            "rows": [["a", "2022-12-01", "calls", 1], ["a", "2023-01-01", "calls", 2]]}
    with pytest.raises(PageRejected) as caught:
        adapter.parse("usage/0", request, body, window)
    assert caught.value.path == "$.rows[1][1]" and "2023-01-01" in caught.value.why
    # The same adapter, a page later: a day first seen valid stays checked against the window.
    body["rows"] = [["a", "2022-12-01", "calls", 1], ["b", "2022-11-30", "records", 3]]
    with pytest.raises(PageRejected, match="2022-11-30 is outside the days asked for"):
        adapter.parse("usage/0", request, body, window)


def test_a_sync_meeting_figures_for_other_days_stores_none_of_them(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end, AWS answering for November 2023 a request for October 2026: the
    page is refused (partial), no figure is stored, the error names the day, the
    window and the JSON path."""
    monkeypatch.setenv("GW_TOKEN", "gw-token-123")

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/usage"):
            return httpx.Response(200, json={"startDate": "2023-11-01", "endDate": "2023-11-30",
                                             "values": {"k1": [[7, 3]] * 5}})
        if request.url.path.endswith("/keys"):
            return httpx.Response(200, json={"item": [{"id": "k1", "name": "Key 1"}]})
        return httpx.Response(200, json={"id": "plan9", "name": "Gold"})

    clock = fixed_clock(datetime(2026, 10, 5, 6, tzinfo=timezone.utc))
    result = sync_source(tmp_path / "w.db", aws_source(), clock=clock, transport=httpx.MockTransport(answer))
    assert result.status == "partial"
    error = result.error or ""
    assert "2023-11-01" in error and "2026-10-01..2026-10-05" in error and "$.values.k1[0]" in error, error
    conn = connect(tmp_path / "w.db")
    try:
        assert conn.execute("SELECT count(*) FROM usage").fetchone()[0] == 0
    finally:
        conn.close()


def test_the_engine_refuses_figures_outside_the_run_even_when_an_adapter_forgets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second line of defence: whatever an adapter lets through, the engine
    refuses a page holding a figure outside the run's window."""
    monkeypatch.setattr("store.sync.adapters.warden_feed.expect_in_window", lambda day, window, path: None)
    with DemoEndpoint(consumers=2, env_faults=False) as endpoint:
        source = SourceConfig("feed", "warden-feed", endpoint.feed_url, start=date(2022, 12, 20),
                              end=date(2022, 12, 25), options={"shards": 1})
        # The demo serves what it is asked for; the end is enforced by the request,
        # so make the request ask for more than the run's window.
        monkeypatch.setattr("store.sync.adapters.warden_feed.WardenFeed.chains",
                            lambda self, window: {"usage/0": Request.get("usage", shard=0, shards=1,
                                                                         start="2022-12-20", end="2022-12-31")})
        result = sync_source(tmp_path / "w.db", source, clock=CLOCK)
    assert result.status == "partial", result.error
    assert "outside the days asked for (2022-12-20..2022-12-25)" in (result.error or "")
    conn = connect(tmp_path / "w.db")
    try:
        assert conn.execute("SELECT count(*) FROM usage WHERE day > '2022-12-25'").fetchone()[0] == 0
    finally:
        conn.close()


# --- defect 5: an end for a historical audit ----------------------------------------------

def feed_source(endpoint: DemoEndpoint, **keys: Any) -> SourceConfig:
    return SourceConfig("feed", "warden-feed", endpoint.feed_url, options={"shards": 2}, **keys)


def test_a_closed_window_fetched_completely_is_not_fetched_again(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    with DemoEndpoint(consumers=3, env_faults=False) as endpoint:
        source = feed_source(endpoint, start=date(2022, 11, 1), end=date(2022, 11, 30))
        first = sync_source(db, source, clock=CLOCK)
        asked = endpoint.requested("/feed/v1/usage")
        events: list[Any] = []
        second = sync_source(db, source, clock=CLOCK, on_event=events.append)
        after = endpoint.requests()
        third = sync_source(db, source, clock=fixed_clock(datetime(2023, 3, 1, tzinfo=timezone.utc)))
        assert endpoint.requests() == after        # months later: still nothing to fetch
    assert first.status == "ok" and first.rows > 0
    assert asked and all("start=2022-11-01" in a and "end=2022-11-30" in a for a in asked), asked
    assert second.status == "ok" and second.rows == 0 and second.run_id is None
    assert third.status == "ok" and third.run_id is None
    finished = [e for e in events if isinstance(e, SourceFinished)]
    assert len(finished) == 1
    line = finished[0].as_line()
    assert "2022-11-01..2022-11-30" in line and "already fetched completely" in line and "--refetch" in line, line
    assert run_window(db) == [("2022-11-01", "2022-11-30", "ok")]


def test_refetch_fetches_a_closed_window_again_and_withdraws_what_is_gone(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    with DemoEndpoint(consumers=3, env_faults=False) as endpoint:
        source = feed_source(endpoint, start=date(2022, 11, 1), end=date(2022, 11, 30))
        assert sync_source(db, source, clock=CLOCK).status == "ok"
        app = endpoint.data.consumer(1).apps[0].id
        endpoint.withdraw(app, date(2022, 11, 2))
        before = endpoint.requests("/feed/v1/usage")
        again = sync_source(db, source, clock=CLOCK, refetch=True)
        assert endpoint.requests("/feed/v1/usage") > before
    assert again.status == "ok" and again.run_id is not None
    assert run_window(db) == [("2022-11-01", "2022-11-30", "ok")] * 2
    conn = connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM usage WHERE app_id = ? AND day = '2022-11-02'",
                            (app,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM usage_change").fetchone()[0] == 2   # calls and records
    finally:
        conn.close()


def test_a_window_not_fetched_completely_is_fetched_again(tmp_path: Path) -> None:
    """A partial run does not close the window; nor does a run made before its end
    was over (the last day was still being counted)."""
    db = tmp_path / "w.db"
    with DemoEndpoint(consumers=3, env_faults=False) as endpoint:
        source = feed_source(endpoint, start=date(2022, 11, 1), end=date(2022, 11, 30))
        endpoint.faults.add("negative@/feed/v1/usage,query=shard=1")
        assert sync_source(db, source, clock=CLOCK).status == "partial"
        assert sync_source(db, source, clock=CLOCK).status == "ok"
        # Fetched on 2022-11-30 itself: that day was not over.
        early = tmp_path / "early.db"
        on_the_day = fixed_clock(datetime(2022, 11, 30, 12, tzinfo=timezone.utc))
        assert sync_source(early, source, clock=on_the_day).status == "ok"
        second = sync_source(early, source, clock=CLOCK)
    assert run_window(db)[-1] == ("2022-11-01", "2022-11-30", "ok")
    assert second.run_id is not None and second.status == "ok"
    assert run_window(early)[-1][1] == "2022-11-30"


def test_an_end_in_the_future_stops_at_today_and_looks_back_as_usual(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    with DemoEndpoint(consumers=2, env_faults=False) as endpoint:
        source = feed_source(endpoint, start=date(2022, 12, 1), end=date(2023, 6, 30), lookback_days=3)
        assert sync_source(db, source, clock=CLOCK).status == "ok"
        assert sync_source(db, source, clock=CLOCK).status == "ok"
    assert run_window(db) == [("2022-12-01", "2023-01-01", "ok"), ("2022-12-29", "2023-01-01", "ok")]


def test_without_a_start_a_closed_window_reaches_back_the_first_sync_days_from_its_end(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    with DemoEndpoint(consumers=2, env_faults=False) as endpoint:
        assert sync_source(db, feed_source(endpoint, end=date(2022, 6, 30)), clock=CLOCK).status == "ok"
    assert run_window(db) == [("2022-04-01", "2022-06-30", "ok")]


def test_end_is_a_toml_date_not_before_start(tmp_path: Path) -> None:
    base = '[sources.feed]\nadapter = "warden-feed"\nurl = "https://feed.example/v1"\n'
    assert load_config(write_config(tmp_path, base + "start = 2022-01-01\nend = 2022-12-31\n")).sources[
        "feed"].end == date(2022, 12, 31)
    for bad, says in (("end = 2021-12-31\nstart = 2022-01-01", "'end' (2021-12-31) is before 'start' (2022-01-01)"),
                      ("end = 'last year'", "'end' is not a date"), ("end = 20221231", "'end' must be a date")):
        with pytest.raises(ConfigError, match=says.replace("(", r"\(").replace(")", r"\)")):
            load_config(write_config(tmp_path, base + bad + "\n"))


def test_the_command_line_refetch(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with DemoEndpoint(consumers=2, env_faults=False) as endpoint:
        config = write_config(tmp_path, f"""
            [sources.feed]
            adapter = "warden-feed"
            url = "{endpoint.feed_url}"
            start = 2022-11-01
            end = 2022-11-30
            shards = 1
        """)
        args = ["--config", str(config), "--db", str(tmp_path / "w.db")]
        assert cli_main(["sync", *args]) == 0
        assert cli_main(["sync", *args]) == 0
        assert "already fetched completely" in capsys.readouterr().err
        before = endpoint.requests()
        assert cli_main(["sync", "--refetch", *args]) == 0
        assert endpoint.requests() > before
        before = endpoint.requests()
        assert cli_main(["--headless", "--refetch", *args]) == 0
        assert endpoint.requests() > before
    assert "already fetched" not in capsys.readouterr().err
