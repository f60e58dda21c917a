"""openai-usage against payloads in the shape of OpenAI's usage API reference."""

from __future__ import annotations

from datetime import date, datetime, timezone

import httpx
import pytest

from store.config import SourceConfig
from store.errors import ConfigError, PageRejected
from store.sync.adapter import Request, Window
from store.sync.adapters.openai_usage import OpenAIUsage

WINDOW = Window(date(2024, 10, 31), date(2024, 11, 2))
NOV_1 = int(datetime(2024, 11, 1, tzinfo=timezone.utc).timestamp())
DAY = 86_400


def adapter(**options: object) -> OpenAIUsage:
    return OpenAIUsage(SourceConfig(name="oai", adapter="openai-usage", url="https://api.openai.com",
                                    options=dict(options)))


def result(key: object = "key_abc", requests: object = 5, input_tokens: object = 1000,
           output_tokens: object = 500) -> dict[str, object]:
    return {"object": "organization.usage.completions.result", "input_tokens": input_tokens,
            "output_tokens": output_tokens, "input_cached_tokens": 0, "input_audio_tokens": 0,
            "output_audio_tokens": 0, "num_model_requests": requests, "project_id": None, "user_id": None,
            "api_key_id": key, "model": None, "batch": None}


def bucket(start: int, *results: dict[str, object]) -> dict[str, object]:
    return {"object": "bucket", "start_time": start, "end_time": start + DAY, "results": list(results)}


def page(*buckets: dict[str, object], next_page: str | None = None) -> dict[str, object]:
    return {"object": "page", "data": list(buckets), "has_more": next_page is not None, "next_page": next_page}


def first_request() -> Request:
    return adapter().chains(WINDOW)["completions/2024-11"]


def test_one_chain_per_month_with_utc_midnight_bounds() -> None:
    chains = adapter(bucket_limit=7, project_ids=["proj_1", "proj_2"]).chains(WINDOW)
    assert list(chains) == ["completions/2024-10", "completions/2024-11"]
    november = chains["completions/2024-11"]
    assert november.path == "v1/organization/usage/completions"
    params = list(november.params)
    assert ("start_time", str(NOV_1)) in params and ("end_time", str(NOV_1 + 2 * DAY)) in params
    assert ("bucket_width", "1d") in params and ("group_by", "api_key_id") in params and ("limit", "7") in params
    assert [v for k, v in params if k == "project_ids"] == ["proj_1", "proj_2"]


def test_results_become_calls_and_tokens_per_key_per_day() -> None:
    body = page(bucket(NOV_1, result("key_abc", 5, 1000, 500), result("key_def", "12", "2000", "62.0")),
                bucket(NOV_1 + DAY, result("key_abc", 1, 2, 3)))
    parsed = adapter().parse("completions/2024-11", first_request(), body, WINDOW)
    assert sorted(parsed.usage) == sorted([
        ("key_abc", "2024-11-01", "calls", 5), ("key_abc", "2024-11-01", "input_tokens", 1000),
        ("key_abc", "2024-11-01", "output_tokens", 500),
        ("key_def", "2024-11-01", "calls", 12), ("key_def", "2024-11-01", "input_tokens", 2000),
        ("key_def", "2024-11-01", "output_tokens", 62),
        ("key_abc", "2024-11-02", "calls", 1), ("key_abc", "2024-11-02", "input_tokens", 2),
        ("key_abc", "2024-11-02", "output_tokens", 3)])
    assert parsed.next is None


def test_partial_first_bucket_counts_for_the_utc_day_it_starts_in() -> None:
    partial = bucket(NOV_1 + 15 * 3600, result(requests=4))  # starts 15:00 UTC, ends at midnight
    partial["end_time"] = NOV_1 + DAY
    parsed = adapter().parse("completions/2024-11", first_request(), page(partial), WINDOW)
    assert ("key_abc", "2024-11-01", "calls", 4) in parsed.usage


def test_empty_days_give_no_rows_not_zeros() -> None:
    body = page(bucket(NOV_1), bucket(NOV_1 + DAY, result(requests=0, input_tokens=0, output_tokens=0)))
    parsed = adapter().parse("completions/2024-11", first_request(), body, WINDOW)
    assert {day for _, day, _, _ in parsed.usage} == {"2024-11-02"}  # the empty first day has no rows
    assert ("key_abc", "2024-11-02", "calls", 0) in parsed.usage      # a reported zero is kept


def test_has_more_follows_next_page_keeping_the_query() -> None:
    request = first_request()
    parsed = adapter().parse("completions/2024-11", request, page(bucket(NOV_1), next_page="page_AAAA"), WINDOW)
    assert parsed.next is not None
    params = list(parsed.next.params)
    assert ("page", "page_AAAA") in params and ("group_by", "api_key_id") in params
    again = adapter().parse("completions/2024-11", parsed.next, page(next_page="page_BBBB"), WINDOW)
    assert again.next is not None and [v for k, v in again.next.params if k == "page"] == ["page_BBBB"]


@pytest.mark.parametrize(("body", "path"), [
    ({"object": "page", "has_more": False}, "$.data"),
    (page({"object": "bucket", "results": []}), "$.data[0].start_time"),
    (page({"start_time": NOV_1}), "$.data[0].results"),
    (page(bucket(NOV_1, {k: v for k, v in result().items() if k != "api_key_id"})), "$.data[0].results[0].api_key_id"),
    (page(bucket(NOV_1, result(key=None))), "$.data[0].results[0].api_key_id"),
    (page(bucket(NOV_1, {k: v for k, v in result().items() if k != "output_tokens"})),
     "$.data[0].results[0].output_tokens"),
    (page(bucket(NOV_1, result(requests=-3))), "$.data[0].results[0].num_model_requests"),
    (page(bucket(NOV_1, result(input_tokens="1.5"))), "$.data[0].results[0].input_tokens"),
    (page(bucket(NOV_1, result(output_tokens=2**64))), "$.data[0].results[0].output_tokens"),
    (page({"start_time": "yesterday", "results": []}), "$.data[0].start_time"),
    ({"data": [], "has_more": True}, "$.next_page"),
    ({"data": [], "has_more": "yes"}, "$.has_more"),
    ([], "$"),
])
def test_malformed_pages_are_rejected_with_the_json_path(body: object, path: str) -> None:
    with pytest.raises(PageRejected) as caught:
        adapter().parse("completions/2024-11", first_request(), body, WINDOW)
    assert caught.value.path == path


def test_rate_limit_is_retried_but_insufficient_quota_is_not() -> None:
    limited = adapter().classify_error(
        429, {"retry-after": "3"}, b'{"error": {"message": "Rate limit reached", "type": "requests"}}', 0.0)
    assert limited.retry and limited.retry_after == 3.0 and "Rate limit reached" in limited.reason
    broke = adapter().classify_error(
        429, {}, b'{"error": {"message": "You exceeded your current quota", "type": "insufficient_quota"}}', 0.0)
    assert not broke.retry and "insufficient_quota" in broke.reason
    denied = adapter().classify_error(401, {}, b'{"error": {"message": "Incorrect API key provided"}}', 0.0)
    assert not denied.retry and "Incorrect API key" in denied.reason


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="bucket_limit"):
        adapter(bucket_limit=90)
    with pytest.raises(ConfigError, match="project_ids"):
        adapter(project_ids="proj_1")


def test_over_http_with_a_mock_transport() -> None:
    source = adapter()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "page" not in request.url.params:
            return httpx.Response(200, json=page(bucket(NOV_1, result()), next_page="page_2"))
        return httpx.Response(200, json=page(bucket(NOV_1 + DAY, result(requests=9))))

    rows = []
    with httpx.Client(transport=httpx.MockTransport(handler), headers=source.auth_headers("sk-admin")) as client:
        request: Request | None = first_request()
        while request is not None:
            response = client.get("https://api.openai.com/" + request.path, params=list(request.params))
            parsed = source.parse("completions/2024-11", request, response.json(), WINDOW)
            rows += parsed.usage
            request = parsed.next
    assert len(seen) == 2 and seen[0].headers["Authorization"] == "Bearer sk-admin"
    assert ("key_abc", "2024-11-02", "calls", 9) in rows and len(rows) == 6


# Arbitrary JSON, and pages that are nearly right: parse returns well-typed rows or
# rejects the page; never any other exception.
from hypothesis import given, settings, strategies as st  # noqa: E402
from tests.strategies import json_values  # noqa: E402

COUNT = st.one_of(json_values, st.sampled_from(["200", "010", "62.0", "-1", 2**64, 5]))


def check_parse(body: object) -> None:
    try:
        parsed = adapter().parse("completions/2024-11", first_request(), body, WINDOW)
    except PageRejected as rejected:
        assert rejected.path.startswith("$")
        return
    for app_id, day, metric, value in parsed.usage:
        assert isinstance(app_id, str) and app_id and metric in ("calls", "input_tokens", "output_tokens")
        assert date.fromisoformat(day) and type(value) is int and 0 <= value
    assert parsed.next is None or any(k == "page" for k, _ in parsed.next.params)


@settings(max_examples=150, deadline=None)
@given(body=json_values)
def test_parse_of_arbitrary_json_returns_rows_or_rejects_the_page(body: object) -> None:
    check_parse(body)


@settings(max_examples=150, deadline=None)
@given(starts=st.lists(st.one_of(st.integers(-10, 2**40), json_values), max_size=3),
       counts=st.lists(st.tuples(st.one_of(st.text(max_size=4), json_values), COUNT, COUNT, COUNT), max_size=3),
       more=st.one_of(st.booleans(), json_values), cursor=st.one_of(st.text(max_size=5), json_values))
def test_parse_of_nearly_right_pages(starts: list[object], counts: list[tuple[object, ...]], more: object,
                                     cursor: object) -> None:
    buckets = [{"start_time": start, "results": [result(key, a, b, c) for key, a, b, c in counts]} for start in starts]
    check_parse({"data": buckets, "has_more": more, "next_page": cursor})


# Through the real sync engine (MockTransport stands in for api.openai.com).
from pathlib import Path  # noqa: E402

from store.clock import fixed_clock  # noqa: E402
from store.db import connect  # noqa: E402
from store.sync.engine import sync_source  # noqa: E402


def test_sync_through_the_engine_follows_pages_and_stores_tokens(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-secret")
    source = SourceConfig(name="oai", adapter="openai-usage", url="https://api.openai.com",
                          token_env="OPENAI_ADMIN_KEY", start=date(2024, 10, 31))
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        start = int(request.url.params["start_time"])
        if start == NOV_1 and "page" not in request.url.params:
            return httpx.Response(200, json=page(bucket(NOV_1, result("key_a", 5, 100, 50)), next_page="page_2"))
        if start == NOV_1:
            return httpx.Response(200, json=page(bucket(NOV_1 + DAY), bucket(NOV_1 + 2 * DAY, result("key_b", "3", 1, 2))))
        return httpx.Response(200, json=page(bucket(start + 9 * 3600, result("key_a", 1, 1, 1))))  # partial

    result_ = sync_source(tmp_path / "w.db", source, transport=httpx.MockTransport(handler),
                          clock=fixed_clock(datetime(2024, 11, 3, 12, tzinfo=timezone.utc)))
    assert result_.status == "ok", result_.error
    assert all(r.headers["Authorization"] == "Bearer sk-admin-secret" for r in seen)
    conn = connect(tmp_path / "w.db")
    usage = {(r["app_id"], r["day"], r["metric"]): r["value"] for r in conn.execute("SELECT * FROM usage")}
    assert usage == {
        ("key_a", "2024-10-31", "calls"): 1, ("key_a", "2024-10-31", "input_tokens"): 1,
        ("key_a", "2024-10-31", "output_tokens"): 1,
        ("key_a", "2024-11-01", "calls"): 5, ("key_a", "2024-11-01", "input_tokens"): 100,
        ("key_a", "2024-11-01", "output_tokens"): 50,
        ("key_b", "2024-11-03", "calls"): 3, ("key_b", "2024-11-03", "input_tokens"): 1,
        ("key_b", "2024-11-03", "output_tokens"): 2,
    }
    stored = "\n".join(str(tuple(r)) for table in ("sync_page", "sync_run", "source_fact")
                       for r in conn.execute(f"SELECT * FROM {table}"))
    assert "sk-admin-secret" not in stored
