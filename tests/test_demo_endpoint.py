"""The embedded demo endpoint, over real loopback HTTP: shapes, determinism,
sharding, pagination, the case consumer, and every fault kind."""

from __future__ import annotations

import json
import zlib
from collections import Counter
from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from store.demo import CASE_ID, DEMO_TOKEN_ENV, DemoData, DemoEndpoint, Fault, FaultSpecError, parse_fault
from store.demo.config import FEED_SOURCE, X_SOURCE, demo_config
from store.demo.faults import FAULTS_ENV
from store.demo.server import MAX_ROWS
from store.demo.wire import USAGE_CAPPED

YEAR_2022 = (date(2022, 1, 1), date(2022, 12, 31))


@pytest.fixture(scope="module")
def endpoint() -> Iterator[DemoEndpoint]:
    """A shared endpoint for the tests that inject no fault."""
    with DemoEndpoint(consumers=60, seed=7) as ep:
        yield ep


@pytest.fixture()
def faulty() -> Iterator[DemoEndpoint]:
    """A fresh endpoint per fault test: its own fault list and request counts."""
    with DemoEndpoint(consumers=12, seed=7, days=40) as ep:
        yield ep


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def pages(client: httpx.Client, url: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every page of a cursor chain (fails on a repeated cursor rather than looping)."""
    seen: set[str] = set()
    cursor = None
    while True:
        response = client.get(url, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        page = response.json()
        yield page
        cursor = page["next"]
        if cursor is None:
            return
        assert cursor not in seen
        seen.add(cursor)


def all_rows(client: httpx.Client, ep: DemoEndpoint, route: str, shards: int = 1, **params: Any) -> list[list[Any]]:
    return [row for shard in range(shards)
            for page in pages(client, f"{ep.feed_url}/{route}", shard=shard, shards=shards, **params)
            for row in page["rows"]]


# --- shapes ------------------------------------------------------------------------

def test_tiers_carry_limits_allowed_endpoints_and_clauses(endpoint: DemoEndpoint, client: httpx.Client) -> None:
    body = client.get(f"{endpoint.feed_url}/tiers").json()
    assert body["next"] is None
    tiers = {t["id"]: t for t in body["data"]}
    assert set(tiers) == {"basic", "standard", "enterprise"}
    for tier in tiers.values():
        assert {(lim["metric"], lim["period"]) for lim in tier["limits"]} == {
            ("calls", "day"), ("calls", "month"), ("records", "month"), ("records", "year")}
        assert all(type(lim["max"]) is int and lim["max"] > 0 for lim in tier["limits"])
        assert tier["clauses"]["volume_cap"] == "Developer Agreement §II.A.3 (usage limits)"
        assert isinstance(tier["name"], str) and isinstance(tier["agreement_version"], str)
    assert tiers["enterprise"]["allowed_endpoints"] is None
    assert "/2/tweets/search/recent" in tiers["basic"]["allowed_endpoints"]


def test_consumers_have_the_contract_fields_and_the_case_comes_first(endpoint: DemoEndpoint,
                                                                   client: httpx.Client) -> None:
    body = client.get(f"{endpoint.feed_url}/consumers", params={"shard": 0, "shards": 4, "limit": 3}).json()
    assert len(body["data"]) == 3 and isinstance(body["next"], str)
    case = body["data"][0]
    assert set(case) == {"id", "legal_name", "notice_contact", "tier", "agreement_version",
                         "declared_use_case", "government_end_users", "apps"}
    assert case["id"] == CASE_ID and case["legal_name"] == "Northwind Analytics Ltd"
    assert case["tier"] == "enterprise" and case["government_end_users"] == "none"
    assert len(case["apps"]) == 8
    assert sum(app["declared_use_case"] is None for app in case["apps"]) == 6
    assert all(set(app) == {"id", "name", "declared_use_case"} for app in case["apps"])


def test_sharding_covers_every_consumer_exactly_once(endpoint: DemoEndpoint, client: httpx.Client) -> None:
    ids = [c["id"] for shard in range(7)
           for page in pages(client, f"{endpoint.feed_url}/consumers", shard=shard, shards=7, limit=4)
           for c in page["data"]]
    assert len(ids) == 60 and len(set(ids)) == 60
    assert ids[0] == CASE_ID


def test_usage_rows_are_compact_and_sum_to_the_generator_totals(endpoint: DemoEndpoint,
                                                                client: httpx.Client) -> None:
    first = client.get(f"{endpoint.feed_url}/usage", params={"limit": 3}).json()
    assert first["columns"] == ["app", "day", "metric", "value"]
    assert first["rows"][0] == ["app-0-1", "2021-10-01", "calls", first["rows"][0][3]]
    rows = all_rows(client, endpoint, "usage", shards=3, limit=997)
    assert len(rows) == endpoint.data.usage_rows()
    assert len({(app, day, metric) for app, day, metric, _ in rows}) == len(rows)
    assert {metric for _, _, metric, _ in rows} == {"calls", "records"}
    assert all(type(value) is int and value >= 0 for *_, value in rows)
    per_app: Counter[tuple[str, str]] = Counter()
    for app, day, metric, value in rows:
        if "2022-01-01" <= day <= "2022-12-31":
            per_app[app, metric] += value
    expected = endpoint.data.app_totals("quillmark-systems", *YEAR_2022)
    assert {app: {m: per_app[app, m] for m in ("calls", "records")} for app in expected} == expected


def test_usage_is_filtered_by_start_and_end_and_limit_is_capped(endpoint: DemoEndpoint,
                                                                 client: httpx.Client) -> None:
    rows = all_rows(client, endpoint, "usage", start="2022-03-01", end="2022-03-03")
    assert {day for _, day, _, _ in rows} == {"2022-03-01", "2022-03-02", "2022-03-03"}
    assert len(rows) == endpoint.data.usage_rows(date(2022, 3, 1), date(2022, 3, 3))
    big = client.get(f"{endpoint.feed_url}/usage", params={"limit": 10**9}).json()
    assert len(big["rows"]) == MAX_ROWS and big["next"]
    empty = client.get(f"{endpoint.feed_url}/usage", params={"start": "2030-01-01"}).json()
    assert empty == {"columns": ["app", "day", "metric", "value"], "rows": [], "next": None}


def test_endpoints_report_calls_per_endpoint_some_outside_the_tier(endpoint: DemoEndpoint,
                                                                   client: httpx.Client) -> None:
    body = client.get(f"{endpoint.feed_url}/endpoints", params={"limit": 2}).json()
    assert body["columns"] == ["app", "day", "endpoint", "calls"]
    rows = all_rows(client, endpoint, "endpoints", shards=2, limit=5000, start="2022-06-01", end="2022-06-30")
    tidewater = {endpoint_ for app, _, endpoint_, _ in rows if app.startswith("app-6-")}
    assert "/2/tweets/search/all" in tidewater          # not licensed to the basic tier
    assert all(type(calls) is int and calls >= 0 for *_, calls in rows)


def test_x_usage_has_the_documented_shape(endpoint: DemoEndpoint, client: httpx.Client) -> None:
    response = client.get(f"{endpoint.x_url}/2/usage/tweets", params={
        "days": 90, "usage.fields": "cap_reset_day,daily_client_app_usage,daily_project_usage,"
                                    "project_cap,project_id,project_usage"})
    assert response.status_code == 200
    assert int(response.headers["x-rate-limit-limit"]) >= int(response.headers["x-rate-limit-remaining"])
    assert int(response.headers["x-rate-limit-reset"]) > 1_600_000_000
    data = response.json()["data"]
    assert isinstance(data["project_cap"], str) and int(data["project_cap"]) > 2**31
    assert len(data["project_id"]) == 22 and data["project_id"].isdigit()
    apps = data["daily_client_app_usage"]
    assert len(apps) == 5
    first = apps[0]
    assert first["usage_result_count"] == 90 == len(first["usage"])
    assert first["usage"][0]["date"] == "2022-10-03T00:00:00.000Z"
    assert first["usage"][-1]["date"] == "2022-12-31T00:00:00.000Z"
    assert all(isinstance(u["usage"], str) for u in first["usage"])
    assert sum(int(u["usage"]) for u in first["usage"]) == endpoint.data.x_totals(first["client_app_id"], 90)
    assert int(data["project_usage"]) == sum(int(u["usage"]) for a in apps for u in a["usage"])
    assert data["daily_project_usage"]["project_id"] == data["project_id"]
    only = client.get(f"{endpoint.x_url}/2/usage/tweets", params={"days": 7, "usage.fields": "project_cap"})
    assert only.json() == {"data": {"project_cap": data["project_cap"]}}


def test_bad_parameters_and_unknown_paths_get_errors_in_each_api_shape(endpoint: DemoEndpoint,
                                                                        client: httpx.Client) -> None:
    bad = client.get(f"{endpoint.feed_url}/usage", params={"shard": 4, "shards": 4})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"
    assert "shard" in bad.json()["error"]["message"]
    assert client.get(f"{endpoint.feed_url}/usage", params={"cursor": "nonsense"}).status_code == 400
    assert client.get(f"{endpoint.feed_url}/usage", params={"start": "2022-13-01"}).status_code == 400
    assert client.get(f"{endpoint.feed_url}/nothing").json()["error"]["code"] == "not_found"
    problem = client.get(f"{endpoint.x_url}/2/usage/tweets", params={"days": 91})
    assert problem.status_code == 400 and problem.json()["status"] == 400 and "title" in problem.json()


def test_a_required_token_is_enforced_without_being_echoed(client: httpx.Client) -> None:
    with DemoEndpoint(consumers=3, require_token="s3cret-canary") as ep:
        missing = client.get(f"{ep.feed_url}/tiers")
        wrong = client.get(f"{ep.feed_url}/tiers", headers={"Authorization": "Bearer nope"})
        right = client.get(f"{ep.feed_url}/tiers", headers={"Authorization": "Bearer s3cret-canary"})
        x = client.get(f"{ep.x_url}/2/usage/tweets")
    assert missing.status_code == wrong.status_code == x.status_code == 401
    assert "s3cret-canary" not in missing.text + wrong.text + x.text
    assert right.status_code == 200


# --- data --------------------------------------------------------------------------

def test_two_endpoints_with_one_seed_serve_the_same_bytes(client: httpx.Client) -> None:
    bodies = []
    for seed in (3, 3, 4):
        with DemoEndpoint(consumers=20, seed=seed) as ep:
            bodies.append([client.get(f"{ep.feed_url}/{route}", params={"shard": 1, "shards": 2}).content
                           for route in ("consumers", "usage", "endpoints")]
                          + [client.get(f"{ep.x_url}/2/usage/tweets", params={"days": 30}).content])
    assert bodies[0] == bodies[1]
    assert bodies[0] != bodies[2]


@pytest.mark.parametrize("seed", [1, 7, 42])
def test_the_case_consumer_is_far_over_its_caps_in_2022(seed: int) -> None:
    data = DemoData(consumers=10, seed=seed)
    totals = data.totals(CASE_ID, *YEAR_2022)
    assert totals["calls"] > 780_000_000 and totals["records"] > 26_000_000_000
    caps = {key: value for key, value in data.tiers()[2].limits.items()}
    assert totals["records"] > 12 * caps["records", "month"] * 10
    assert all(t["calls"] < 1_000_000 * 365 for t in data.app_totals(CASE_ID, *YEAR_2022).values())


def test_the_cast_has_compliant_borderline_and_circumventing_consumers() -> None:
    data = DemoData(consumers=10)

    def may(cid: str) -> dict[str, int]:
        return data.totals(cid, date(2022, 5, 1), date(2022, 5, 31))
    assert may("alderbrook-insights")["calls"] < 0.5 * 20_000_000
    assert 0.9 * 2_000_000 < may("copperleaf-labs")["calls"] < 2_000_000
    assert 2_000_000 < may("fenwick-signal")["calls"] < 1.1 * 2_000_000
    ostara = data.consumer(data.index_of("ostara-social"))
    july_4 = (date(2022, 7, 4) - date(2021, 10, 1)).days
    assert sum(data.values(app, "calls", range(july_4, july_4 + 1))[0] for app in ostara.apps) > 100_000
    assert may("ostara-social")["calls"] < 2_000_000
    quill = data.app_totals("quillmark-systems", date(2022, 5, 1), date(2022, 5, 31))
    assert all(t["calls"] < 2_000_000 for t in quill.values())
    assert sum(t["calls"] for t in quill.values()) > 2 * 2_000_000


def test_a_million_consumers_are_served_without_materialising_them(client: httpx.Client) -> None:
    with DemoEndpoint(consumers=1_000_000) as ep:
        last = client.get(f"{ep.feed_url}/consumers", params={"shard": 255, "shards": 256, "limit": 5000}).json()
        rows = client.get(f"{ep.feed_url}/usage", params={"shard": 255, "shards": 256, "limit": 2000}).json()
    assert last["data"][-1]["id"].endswith("-999999") and last["next"] is None
    assert len(rows["rows"]) == 2000 and rows["next"]


def test_names_override_serves_hostile_text_literally(client: httpx.Client) -> None:
    hostile = "[bold]Evil[/] \x1b]52;c;ZXZpbA==\x07 <script>alert(1)</script> =HYPERLINK(\"x\") \u202e../../etc"
    with DemoEndpoint(consumers=5, names_override={3: hostile, 4: {"app_name": "=cmd|' /C calc'!A0"}}) as ep:
        data = client.get(f"{ep.feed_url}/consumers").json()["data"]
    assert data[3]["legal_name"] == hostile
    assert data[4]["apps"][0]["name"] == "=cmd|' /C calc'!A0"
    assert data[0]["legal_name"] == "Northwind Analytics Ltd"


def test_demo_config_names_both_sources_and_maps_the_x_apps(endpoint: DemoEndpoint) -> None:
    config = demo_config(endpoint, db_path="/tmp/demo.db")
    assert config.sources[FEED_SOURCE].url == endpoint.feed_url
    assert config.sources[FEED_SOURCE].options["shards"] == 4
    assert config.sources[X_SOURCE].options == {"days": 90}
    assert {s.token_env for s in config.sources.values()} == {DEMO_TOKEN_ENV}
    assert set(config.tiers) == {"basic", "standard", "enterprise"}
    mapped = {app for c in config.consumers for _, app in c.apps}
    assert "29183745" in mapped and "40811932" not in mapped
    assert config.notes.sender == "Compliance <compliance@example.invalid>"


# --- faults ------------------------------------------------------------------------

def test_fault_specs_parse_and_bad_ones_are_refused() -> None:
    fault = parse_fault("429@/feed/v1/usage,retry_after=2,query=shard=1&shards=4,nth=2,every=3,times=0")
    assert (fault.kind, fault.path, fault.query) == ("status", "/feed/v1/usage", {"shard": "1", "shards": "4"})
    assert (fault.nth, fault.every, fault.times, fault.params) == (2, 3, 0, {"code": 429, "retry_after": 2})
    assert parse_fault("stall,seconds=0.5").params == {"seconds": 0.5}
    for bad in ("teapot", "429,retry=1", "stall,seconds=soon", "wrong_type,as=string", "reset,nth=0"):
        with pytest.raises(FaultSpecError):
            parse_fault(bad)


def test_nth_every_and_times_pick_the_requests_and_requests_are_counted(faulty: DemoEndpoint,
                                                                         client: httpx.Client) -> None:
    faulty.faults.add("500@/feed/v1/tiers,nth=2,every=2,times=2")
    statuses = [client.get(f"{faulty.feed_url}/tiers").status_code for _ in range(7)]
    assert statuses == [200, 500, 200, 500, 200, 200, 200]
    assert faulty.requests("/feed/v1/tiers") == 7 and faulty.requests("/feed/v1/usage") == 0
    faulty.faults.add("503,times=0")
    assert client.get(f"{faulty.feed_url}/usage").status_code == 503
    faulty.faults.clear()
    assert client.get(f"{faulty.feed_url}/usage").status_code == 200


def test_a_query_match_limits_a_fault_to_one_shard(faulty: DemoEndpoint, client: httpx.Client) -> None:
    faulty.faults.add("502@/feed/v1/usage,query=shard=1,times=0")
    url = f"{faulty.feed_url}/usage"
    assert client.get(url, params={"shard": 0, "shards": 2}).status_code == 200
    assert client.get(url, params={"shard": 1, "shards": 2}).status_code == 502


@pytest.mark.parametrize("code", [401, 403, 404, 500, 502, 503])
def test_status_faults_answer_in_each_api_shape(faulty: DemoEndpoint, client: httpx.Client, code: int) -> None:
    faulty.faults.add(f"{code},times=2")
    feed = client.get(f"{faulty.feed_url}/usage")
    x = client.get(f"{faulty.x_url}/2/usage/tweets")
    assert feed.status_code == x.status_code == code
    assert "message" in feed.json()["error"]
    assert x.json()["status"] == code and "title" in x.json()


def test_429_carries_retry_after_in_seconds_as_a_date_or_as_a_rate_limit_reset(faulty: DemoEndpoint,
                                                                                client: httpx.Client) -> None:
    faulty.faults.add("429,retry_after=3")
    assert client.get(f"{faulty.feed_url}/usage").headers["Retry-After"] == "3"
    faulty.faults.add("429,retry_after_date=30")
    when = parsedate_to_datetime(client.get(f"{faulty.feed_url}/usage").headers["Retry-After"])
    assert 20 < (when - datetime.now(timezone.utc)).total_seconds() <= 31
    faulty.faults.add("429@/2/usage/tweets,reset=60")
    limited = client.get(f"{faulty.x_url}/2/usage/tweets")
    assert limited.status_code == 429 and limited.headers["x-rate-limit-remaining"] == "0"
    assert 50 < int(limited.headers["x-rate-limit-reset"]) - datetime.now(timezone.utc).timestamp() <= 61


def test_usage_capped_is_an_rfc7807_problem_as_429(faulty: DemoEndpoint, client: httpx.Client) -> None:
    faulty.faults.add("usage_capped@/2/usage/tweets")
    capped = client.get(f"{faulty.x_url}/2/usage/tweets")
    assert capped.status_code == 429
    assert capped.json()["type"] == USAGE_CAPPED and capped.json()["title"]


def test_reset_closes_the_connection_without_an_answer(faulty: DemoEndpoint, client: httpx.Client) -> None:
    faulty.faults.add("reset@/feed/v1/usage")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.get(f"{faulty.feed_url}/usage")
    assert client.get(f"{faulty.feed_url}/usage").status_code == 200


def test_stall_outlasts_the_client_read_timeout(faulty: DemoEndpoint) -> None:
    faulty.faults.add("stall@/feed/v1/usage,seconds=1.5")
    with httpx.Client(timeout=httpx.Timeout(5, read=0.3)) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            impatient.get(f"{faulty.feed_url}/usage")
    faulty.faults.add("stall@/feed/v1/tiers,seconds=0.2")
    with httpx.Client(timeout=5) as patient:
        assert patient.get(f"{faulty.feed_url}/tiers").status_code == 200


def test_truncated_body_ends_before_its_content_length(faulty: DemoEndpoint, client: httpx.Client) -> None:
    faulty.faults.add("truncated@/feed/v1/usage")
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{faulty.feed_url}/usage")


def test_non_json_body(faulty: DemoEndpoint, client: httpx.Client) -> None:
    faulty.faults.add("non_json")
    response = client.get(f"{faulty.feed_url}/usage")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


@pytest.mark.parametrize(("spec", "expected"), [
    ("wrong_type", {"value": 1}), ("wrong_type,as=list", [1]), ("negative", -5),
    ("over64", 2**64 + 5), ("fractional", 62.5),
])
def test_bad_counts_in_feed_rows_and_x_usage(faulty: DemoEndpoint, client: httpx.Client,
                                             spec: str, expected: Any) -> None:
    faulty.faults.add(spec + ",times=2")
    rows = client.get(f"{faulty.feed_url}/usage").json()["rows"]
    x = client.get(f"{faulty.x_url}/2/usage/tweets").json()["data"]
    assert rows[0][3] == expected and type(rows[1][3]) is int
    assert x["daily_client_app_usage"][0]["usage"][0]["usage"] == expected


def test_missing_id(faulty: DemoEndpoint, client: httpx.Client) -> None:
    faulty.faults.add("missing_id,times=3")
    assert client.get(f"{faulty.feed_url}/usage").json()["rows"][0][0] is None
    assert "id" not in client.get(f"{faulty.feed_url}/consumers").json()["data"][0]
    assert "client_app_id" not in client.get(f"{faulty.x_url}/2/usage/tweets").json()["data"][
        "daily_client_app_usage"][0]


def test_duplicate_rows_in_one_page(faulty: DemoEndpoint, client: httpx.Client) -> None:
    faulty.faults.add("duplicate@/feed/v1/usage")
    rows = client.get(f"{faulty.feed_url}/usage", params={"limit": 10}).json()["rows"]
    assert len(rows) == 11 and rows[0] == rows[1]
    faulty.faults.add("duplicate,differ=3,times=2")
    rows = client.get(f"{faulty.feed_url}/usage", params={"limit": 10}).json()["rows"]
    assert rows[0][:3] == rows[1][:3] and rows[1][3] == rows[0][3] + 3
    x = client.get(f"{faulty.x_url}/2/usage/tweets").json()["data"]["daily_client_app_usage"][0]["usage"]
    assert x[0]["date"] == x[1]["date"] and int(x[1]["usage"]) == int(x[0]["usage"]) + 3


def test_repeat_cursor_points_back_at_the_same_page(faulty: DemoEndpoint, client: httpx.Client) -> None:
    url = f"{faulty.feed_url}/usage"
    first = client.get(url, params={"limit": 10}).json()
    faulty.faults.add("repeat_cursor@/feed/v1/usage,times=0")
    again = client.get(url, params={"limit": 10, "cursor": first["next"]}).json()
    assert again["next"] == first["next"]
    start = client.get(url, params={"limit": 10}).json()
    assert client.get(url, params={"limit": 10, "cursor": start["next"]}).json()["rows"] == first["rows"]


def test_empty_page_with_a_next_cursor_loses_no_rows(faulty: DemoEndpoint, client: httpx.Client) -> None:
    expected = all_rows(client, faulty, "usage", limit=100)
    faulty.faults.add("empty_page@/feed/v1/usage,nth=2,times=3")
    got = []
    empties = 0
    for page in pages(client, f"{faulty.feed_url}/usage", limit=100):
        empties += not page["rows"]
        got.extend(page["rows"])
    assert empties == 3 and got == expected


@pytest.mark.parametrize("chunked", [0, 1])
def test_huge_body_is_streamed_to_its_declared_size(faulty: DemoEndpoint, client: httpx.Client,
                                                    chunked: int) -> None:
    size = 40_000_000
    faulty.faults.add(f"huge@/feed/v1/usage,size={size},chunked={chunked}")
    with client.stream("GET", f"{faulty.feed_url}/usage") as response:
        assert response.status_code == 200
        if chunked:
            assert "content-length" not in response.headers
        else:
            assert response.headers["content-length"] == str(size)
        first = next(response.iter_bytes())
    assert first.startswith(b'{"columns":["app","day","metric","value"],"rows":[')
    # The endpoint keeps serving after the client walked away mid-body.
    assert client.get(f"{faulty.feed_url}/tiers").status_code == 200


def test_huge_body_read_to_the_end_is_valid_json(faulty: DemoEndpoint, client: httpx.Client) -> None:
    faulty.faults.add("huge@/feed/v1/usage,size=200000")
    response = client.get(f"{faulty.feed_url}/usage")
    assert len(response.content) == 200_000
    assert response.json()["rows"][0] == ["app-0-1", "2022-01-01", "calls", 1]


def test_gzip_bomb_is_small_on_the_wire_and_huge_inflated(faulty: DemoEndpoint, client: httpx.Client) -> None:
    size = 64 * 1024 * 1024 + 123
    faulty.faults.add(f"gzip_bomb,size={size}")
    with client.stream("GET", f"{faulty.feed_url}/usage") as response:
        assert response.headers["content-encoding"] == "gzip"
        wire = b"".join(response.iter_raw())
    assert len(wire) < size // 500
    inflater = zlib.decompressobj(31)
    inflated = 0
    for i in range(0, len(wire), 4096):
        inflated += len(inflater.decompress(wire[i:i + 4096]))
    assert inflated == size and inflater.eof and not inflater.unused_data   # CRC and length check out


def test_faults_from_the_environment_are_added(monkeypatch: pytest.MonkeyPatch, client: httpx.Client) -> None:
    monkeypatch.setenv(FAULTS_ENV, "503@/feed/v1/tiers;429@/2/usage/tweets,retry_after=1")
    with DemoEndpoint(consumers=2, faults=[Fault("status", "/feed/v1/consumers", params={"code": 500})]) as ep:
        assert len(ep.faults) == 3
        assert client.get(f"{ep.feed_url}/tiers").status_code == 503
        assert client.get(f"{ep.x_url}/2/usage/tweets").status_code == 429
        assert client.get(f"{ep.feed_url}/consumers").status_code == 500
    with DemoEndpoint(consumers=2, env_faults=False) as ep:
        assert len(ep.faults) == 0


def test_drip_keeps_every_read_short_but_the_whole_answer_slow(faulty: DemoEndpoint) -> None:
    faulty.faults.add("drip@/feed/v1/tiers,seconds=1")
    chunks = []
    with httpx.Client(timeout=httpx.Timeout(5, read=0.5)) as client:
        with client.stream("GET", f"{faulty.feed_url}/tiers") as response:
            chunks = list(response.iter_raw())
    assert len(chunks) >= 10
    assert json.loads(b"".join(chunks))["data"][0]["id"] == "basic"


def test_faults_added_with_keywords_and_the_request_log(faulty: DemoEndpoint, client: httpx.Client) -> None:
    faulty.faults.add("429", retry_after=1, path="/feed/v1/usage", query={"shard": "1"})
    faulty.faults.add("stall", seconds=0.01)
    assert client.get(f"{faulty.feed_url}/usage", params={"shard": 0, "shards": 2}).status_code == 200
    limited = client.get(f"{faulty.feed_url}/usage", params={"shard": 1, "shards": 2})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert faulty.requested("/feed/v1/usage") == ["/feed/v1/usage?shard=0&shards=2",
                                                  "/feed/v1/usage?shard=1&shards=2"]


def test_the_endpoint_runs_on_its_own_as_a_module() -> None:
    import signal
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "store.demo", "--consumers", "3", "--days", "2"],
                               stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        urls = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        rows = httpx.get(f"{urls['feed_url']}/usage", timeout=10).json()["rows"]
        assert {day for _, day, _, _ in rows} == {"2022-12-30", "2022-12-31"}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0


def test_count_faults_reach_tier_limits_and_wrong_type_reaches_consumers(faulty: DemoEndpoint,
                                                                         client: httpx.Client) -> None:
    faulty.faults.add("negative@/feed/v1/,times=2")
    assert client.get(f"{faulty.feed_url}/tiers").json()["data"][0]["limits"][0]["max"] == -5
    clean = client.get(f"{faulty.feed_url}/consumers").json()      # no counts: served unchanged
    assert clean["data"][0]["legal_name"] == "Northwind Analytics Ltd"
    faulty.faults.add("wrong_type@/feed/v1/consumers,as=list")
    assert client.get(f"{faulty.feed_url}/consumers").json()["data"][0]["legal_name"] == [1]


def test_revised_and_withdrawn_figures_are_served_and_counted(client: httpx.Client) -> None:
    with DemoEndpoint(consumers=3, days=5) as ep:
        before = all_rows(client, ep, "usage", limit=7)
        ep.revise("app-0-1", date(2022, 12, 28), "records", 42)
        ep.withdraw("app-0-2", date(2022, 12, 29))
        after = all_rows(client, ep, "usage", limit=7)
        totals = ep.data.app_totals(CASE_ID)
    assert ["app-0-1", "2022-12-28", "records", 42] in after
    assert [r for r in after if r[0] == "app-0-2" and r[1] == "2022-12-29"] == []
    assert len(after) == len(before) - 2 == ep.data.usage_rows()
    assert totals["app-0-1"]["records"] == sum(r[3] for r in after if r[0] == "app-0-1" and r[2] == "records")


def test_string_counts_keep_their_values(faulty: DemoEndpoint, client: httpx.Client) -> None:
    plain = client.get(f"{faulty.feed_url}/usage", params={"limit": 6}).json()["rows"]
    faulty.faults.add("string_counts,times=0")
    texts = client.get(f"{faulty.feed_url}/usage", params={"limit": 6}).json()["rows"]
    assert [r[3] for r in texts[:3]] == [str(plain[0][3]), f"0{plain[1][3]}", f"{plain[2][3]}.0"]
    assert [int(float(r[3])) for r in texts] == [r[3] for r in plain]
    x = client.get(f"{faulty.x_url}/2/usage/tweets").json()["data"]["daily_client_app_usage"][0]["usage"]
    assert x[1]["usage"].startswith("0") and x[2]["usage"].endswith(".0")


def test_a_withdrawn_x_day_is_left_out_of_its_app_and_of_the_project_sums(client: httpx.Client) -> None:
    with DemoEndpoint(consumers=3) as ep:
        url = f"{ep.x_url}/2/usage/tweets"
        before = client.get(url, params={"days": 3}).json()["data"]
        ep.withdraw("29183745", date(2022, 12, 30))
        after = client.get(url, params={"days": 3}).json()["data"]
        total = ep.data.x_totals("29183745", 3)
    usage = {a["client_app_id"]: {u["date"][:10]: int(u["usage"]) for u in a["usage"]}
             for a in before["daily_client_app_usage"]}
    gone = usage["29183745"].pop("2022-12-30")
    apps = after["daily_client_app_usage"]
    assert {a["client_app_id"]: {u["date"][:10]: int(u["usage"]) for u in a["usage"]} for a in apps} == usage
    assert [a["usage_result_count"] for a in apps] == [2, 3, 3, 3, 3]
    assert int(after["project_usage"]) == int(before["project_usage"]) - gone
    days = {u["date"][:10]: int(u["usage"]) for u in after["daily_project_usage"]["usage"]}
    assert days["2022-12-30"] == sum(u["2022-12-30"] for u in usage.values() if "2022-12-30" in u)
    assert total == sum(usage["29183745"].values())
