"""The x-usage adapter against payloads in X API v2's documented shape."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import httpx
import pytest

from store.clock import fixed_clock
from store.config import SourceConfig
from store.db import connect
from store.errors import ConfigError, PageRejected
from store.sync.adapter import Request, Window
from store.sync.adapters import adapter_for
from store.sync.adapters.x_usage import XUsage
from store.sync.engine import sync_source

WINDOW = Window(date(2023, 10, 3), date(2023, 11, 1))
PROJECT_ID = "1234567890123456789012"


def x(**options: object) -> XUsage:
    adapter = adapter_for(SourceConfig("x", "x-usage", "https://api.x.example", options=options))
    assert isinstance(adapter, XUsage)
    return adapter


def documented_payload() -> dict[str, object]:
    """As in X's reference for GET /2/usage/tweets: counts as strings, a 22-digit
    project id, a cap over 2^31."""
    return {"data": {
        "cap_reset_day": 19,
        "project_id": PROJECT_ID,
        "project_cap": "50000000000",
        "project_usage": "2612345678",
        "daily_client_app_usage": [
            {"client_app_id": "29183745",
             "usage": [{"date": "2023-11-01T00:00:00.000Z", "usage": "200"},
                       {"date": "2023-10-31T00:00:00.000Z", "usage": 150}],
             "usage_result_count": 2},
            {"client_app_id": 2918374600000000000,
             "usage": [{"date": "2023-11-01T00:00:00.000Z", "usage": "62.0"}],
             "usage_result_count": 1},
        ],
        "daily_project_usage": {"project_id": PROJECT_ID,
                                "usage": [{"date": "2023-11-01T00:00:00.000Z", "usage": "262"}]},
    }}


def test_documented_payload_gives_records_per_app_per_day_and_project_facts() -> None:
    page = x().parse("usage", x().chains(WINDOW)["usage"], documented_payload(), WINDOW)
    assert page.usage == [
        ("29183745", "2023-11-01", "records", 200),
        ("29183745", "2023-10-31", "records", 150),
        ("2918374600000000000", "2023-11-01", "records", 62),
    ]
    assert page.facts == {"project_id": PROJECT_ID, "project_cap": "50000000000",
                          "project_usage": "2612345678", "cap_reset_day": "19"}
    assert int(page.facts["project_cap"]) > 2**31
    assert page.next is None


def test_a_day_without_its_usage_figure_is_missing_not_zero_and_the_rest_is_kept() -> None:
    """Defect 1: X omits ``usage`` for a day it has no figure for. That day is
    missing (no row, not a zero), the other figures are kept, and the page's log
    says which day had no figure."""
    payload = documented_payload()
    del payload["data"]["daily_client_app_usage"][0]["usage"][1]["usage"]  # type: ignore[index]
    page = x().parse("usage", Request.get("2/usage/tweets"), payload, WINDOW)
    assert page.usage == [("29183745", "2023-11-01", "records", 200),
                          ("2918374600000000000", "2023-11-01", "records", 62)]
    assert len(page.notes) == 1
    note = page.notes[0]
    assert "'29183745'" in note and "2023-10-31" in note and "no usage figure" in note, note
    assert "$.data.daily_client_app_usage[0].usage[1]" in note, note
    # A figure given as null is no figure either.
    payload["data"]["daily_client_app_usage"][1]["usage"][0]["usage"] = None  # type: ignore[index]
    page = x().parse("usage", Request.get("2/usage/tweets"), payload, WINDOW)
    assert page.usage == [("29183745", "2023-11-01", "records", 200)] and len(page.notes) == 2


@pytest.mark.parametrize(("value", "why"), [(-3, "negative"), ("-3", "whole"), ("2.5", "whole"), ({}, "count"),
                                            (True, "count")])
def test_bad_counts_are_rejected_with_their_path(value: object, why: str) -> None:
    payload = documented_payload()
    payload["data"]["daily_client_app_usage"][1]["usage"][0]["usage"] = value  # type: ignore[index]
    with pytest.raises(PageRejected) as caught:
        x().parse("usage", Request.get("2/usage/tweets"), payload, WINDOW)
    assert caught.value.path == "$.data.daily_client_app_usage[1].usage[0].usage"
    assert why in caught.value.why


def test_missing_client_app_id_and_bad_cap_are_rejected() -> None:
    payload = documented_payload()
    del payload["data"]["daily_client_app_usage"][0]["client_app_id"]  # type: ignore[index]
    with pytest.raises(PageRejected, match=r"client_app_id"):
        x().parse("usage", Request.get("2/usage/tweets"), payload, WINDOW)
    payload = documented_payload()
    payload["data"]["project_cap"] = "lots"  # type: ignore[index]
    with pytest.raises(PageRejected) as caught:
        x().parse("usage", Request.get("2/usage/tweets"), payload, WINDOW)
    assert caught.value.path == "$.data.project_cap"


def test_an_errors_only_body_is_rejected() -> None:
    with pytest.raises(PageRejected, match="errors"):
        x().parse("usage", Request.get("2/usage/tweets"),
                  {"errors": [{"title": "Not Found Error", "type": "about:blank"}]}, WINDOW)


def test_days_follow_the_window_capped_at_90_or_the_option() -> None:
    assert dict(x().chains(WINDOW)["usage"].params)["days"] == "30"
    long = Window(date(2022, 1, 1), date(2023, 1, 1))
    assert dict(x().chains(long)["usage"].params)["days"] == "90"
    assert dict(x(days=7).chains(long)["usage"].params)["days"] == "7"
    assert "daily_client_app_usage" in dict(x().chains(WINDOW)["usage"].params)["usage.fields"]


def test_the_window_requested_is_the_days_asked_for_and_covered_drops_its_first_day() -> None:
    long = Window(date(2022, 1, 1), date(2023, 1, 1))
    # days=90 asks for the 90 days before today (and today's figure, if X gives one) ...
    assert x().requested(long) == Window(date(2022, 10, 3), date(2023, 1, 1))
    assert x(days=7).requested(long) == Window(date(2022, 12, 25), date(2023, 1, 1))
    assert x().requested(WINDOW) == Window(date(2023, 10, 2), date(2023, 11, 1))
    # ... and only the days every reading of "the last N days" holds may be withdrawn.
    assert x().covered(Window(date(2022, 10, 3), date(2023, 1, 1))) == Window(date(2022, 10, 4), date(2023, 1, 1))


def test_a_day_outside_the_days_asked_for_refuses_the_page() -> None:
    payload = documented_payload()
    payload["data"]["daily_client_app_usage"][1]["usage"][0]["date"] = "2023-09-30T00:00:00.000Z"  # type: ignore[index]
    requested = x().requested(WINDOW)
    with pytest.raises(PageRejected) as caught:
        x().parse("usage", x().chains(WINDOW)["usage"], payload, requested)
    assert caught.value.path == "$.data.daily_client_app_usage[1].usage[0].date"
    assert "2023-09-30" in caught.value.why and "2023-10-02..2023-11-01" in caught.value.why


@pytest.mark.parametrize("days", [0, 91, "30"])
def test_days_option_out_of_range_is_a_config_error(days: object) -> None:
    with pytest.raises(ConfigError, match="days"):
        x(days=days)


def test_usage_capped_problem_is_not_retried_even_as_429() -> None:
    problem = json.dumps({"title": "UsageCapExceeded", "type": "https://api.twitter.com/2/problems/usage-capped",
                          "detail": "Usage cap exceeded: Monthly product cap", "status": 429}).encode()
    verdict = x().classify_error(429, {"x-rate-limit-reset": "100"}, problem, 50.0)
    assert not verdict.retry
    assert "usage capped" in verdict.reason and "Monthly product cap" in verdict.reason


def test_plain_429_waits_for_x_rate_limit_reset() -> None:
    problem = json.dumps({"title": "Too Many Requests", "type": "about:blank", "status": 429}).encode()
    verdict = x().classify_error(429, {"x-rate-limit-reset": "1700000060"}, problem, 1700000000.0)
    assert verdict.retry and verdict.retry_after == 60.0


def test_sync_through_mock_transport_stores_rows_facts_and_the_bearer_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_TOKEN", "sekrit-bearer-xyz")
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=documented_payload())

    source = SourceConfig("x", "x-usage", "https://api.x.example", token_env="X_TOKEN", start=WINDOW.start)
    result = sync_source(tmp_path / "w.db", source, transport=httpx.MockTransport(answer),
                         clock=fixed_clock(datetime(2023, 11, 1, 12, tzinfo=timezone.utc)))
    assert result.status == "ok", result.error
    assert seen[0].headers["Authorization"] == "Bearer sekrit-bearer-xyz"
    assert seen[0].url.path == "/2/usage/tweets"
    conn = connect(tmp_path / "w.db")
    assert [tuple(r) for r in conn.execute(
        "SELECT app_id, day, value FROM usage WHERE source = 'x' ORDER BY app_id, day")] == [("29183745", "2023-10-31", 150), ("29183745", "2023-11-01", 200),
                                           ("2918374600000000000", "2023-11-01", 62)]
    facts = dict(conn.execute("SELECT key, value FROM source_fact WHERE source = 'x'").fetchall())
    assert facts["project_cap"] == "50000000000" and facts["project_id"] == PROJECT_ID
    assert conn.execute("SELECT typeof(app_id) FROM usage LIMIT 1").fetchone()[0] == "text"


def test_usage_capped_stops_the_source_with_a_message_naming_it(tmp_path: Path) -> None:
    problem = {"title": "UsageCapExceeded", "type": "https://api.twitter.com/2/problems/usage-capped",
               "detail": "Usage cap exceeded: Monthly product cap", "status": 429}
    calls: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(429, json=problem, headers={"Retry-After": "1"})

    source = SourceConfig("x-prod", "x-usage", "https://api.x.example", start=WINDOW.start)
    result = sync_source(tmp_path / "w.db", source, transport=httpx.MockTransport(answer),
                         clock=fixed_clock(datetime(2023, 11, 1, tzinfo=timezone.utc)),
                         sleep=lambda s: pytest.fail("usage-capped must not be retried"))
    assert result.status == "failed"
    assert len(calls) == 1
    assert result.error is not None and "'x-prod'" in result.error and "usage capped" in result.error


from hypothesis import given, settings, strategies as st  # noqa: E402
from tests.strategies import json_values  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(usage=st.lists(st.dictionaries(st.sampled_from(["date", "usage", "other"]),
                                      st.one_of(json_values, st.sampled_from(["2023-11-01T00:00:00.000Z", "200"])),
                                      max_size=3), max_size=4),
       app_id=st.one_of(json_values, st.just("29183745")), cap=json_values)
def test_parse_of_nearly_right_payloads_returns_rows_or_rejects(usage: list[object], app_id: object,
                                                                cap: object) -> None:
    body = {"data": {"project_cap": cap, "daily_client_app_usage": [{"client_app_id": app_id, "usage": usage}]}}
    try:
        page = x().parse("usage", Request.get("2/usage/tweets"), body, WINDOW)
    except PageRejected as rejected:
        assert rejected.path.startswith("$.data")
        return
    for app, day, metric, value in page.usage:
        assert isinstance(app, str) and date.fromisoformat(day) and metric == "records"
        assert type(value) is int and 0 <= value < 2**63


def test_a_sync_meeting_a_day_without_its_figure_stores_the_rest_and_logs_the_day(tmp_path: Path) -> None:
    """Defect 1 end to end: the demo's X answer with its first day's ``usage``
    removed. The sync is ok (exit 0 material), every other figure is stored, the
    missing day has no row, and the page's log (``sync_page.notes``, and the
    page-stored event) names the app and the day."""
    from store.demo import DemoEndpoint
    from store.sync.events import PageStored

    clock = fixed_clock(datetime(2023, 1, 1, 6, tzinfo=timezone.utc))
    with DemoEndpoint(consumers=2, env_faults=False) as endpoint:
        source = SourceConfig("x", "x-usage", endpoint.x_url, options={"days": 5})
        clean = sync_source(tmp_path / "clean.db", source, clock=clock)
        endpoint.faults.add("missing_count@/2/usage/tweets,times=0")
        events: list[object] = []
        result = sync_source(tmp_path / "w.db", source, clock=clock, on_event=events.append)
    assert clean.status == "ok" and result.status == "ok", result.error
    # The first app's first day (5 days before the demo's today, 2023-01-01).
    first_app, first_day = "29183745", "2022-12-27"
    conn = connect(tmp_path / "clean.db")
    expected = {tuple(r[:2]): r[2] for r in conn.execute("SELECT app_id, day, value FROM usage")}
    conn.close()
    conn = connect(tmp_path / "w.db")
    stored = {tuple(r[:2]): r[2] for r in conn.execute("SELECT app_id, day, value FROM usage")}
    notes = [r[0] for r in conn.execute("SELECT notes FROM sync_page WHERE notes IS NOT NULL")]
    conn.close()
    assert (first_app, first_day) in expected
    assert stored == {k: v for k, v in expected.items() if k != (first_app, first_day)}
    assert len(notes) == 1 and first_app in notes[0] and first_day in notes[0], notes
    lines = [e.as_line() for e in events if isinstance(e, PageStored)]
    assert any(first_day in line and "no usage figure" in line for line in lines), lines
