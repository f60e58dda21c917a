"""The warden-feed adapter: chains, pages in the documented shapes, malformed pages."""

from __future__ import annotations

from datetime import date

import pytest

from store.config import SourceConfig
from store.errors import ConfigError, PageRejected
from store.sync.adapter import Request, Window
from store.sync.adapters import adapter_for
from store.sync.adapters.warden_feed import WardenFeed

WINDOW = Window(date(2022, 1, 1), date(2022, 1, 31))


def feed(**options: object) -> WardenFeed:
    adapter = adapter_for(SourceConfig("feed", "warden-feed", "https://feed.example/feed/v1", options=options))
    assert isinstance(adapter, WardenFeed)
    return adapter


def usage_page(rows: list[list[object]], next_cursor: str | None = None) -> dict[str, object]:
    return {"columns": ["app", "day", "metric", "value"], "rows": rows, "next": next_cursor}


def test_chains_are_tiers_then_consumers_usage_endpoints_per_shard() -> None:
    chains = feed(shards=3, limit=500).chains(WINDOW)
    assert list(chains)[:4] == ["tiers", "consumers/0", "usage/0", "endpoints/0"]
    assert len(chains) == 1 + 3 * 3
    usage = dict(chains["usage/2"].params)
    assert usage == {"shard": "2", "shards": "3", "start": "2022-01-01", "end": "2022-01-31", "limit": "500"}
    assert chains["usage/2"].path == "usage"


@pytest.mark.parametrize("options", [{"shards": 0}, {"shards": 257}, {"shards": "4"}, {"limit": -1}])
def test_bad_options_are_a_config_error_naming_the_source(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="'feed'"):
        feed(**options)


def test_usage_rows_accept_numbers_digit_strings_and_float_strings() -> None:
    page = feed().parse("usage/0", Request.get("usage"), usage_page([
        ["app-1", "2022-01-01", "calls", 1234],
        ["app-1", "2022-01-01", "records", "200"],
        ["app-2", "2022-01-02", "calls", "010"],
        ["app-2", "2022-01-02", "records", "62.0"],
        ["app-3", "2022-01-03", "records", 26_000_000_000],
        ["app-3", "2022-01-03", "calls", 7.0],
    ]), WINDOW)
    assert [tuple(row) for row in page.usage] == [
        ("app-1", "2022-01-01", "calls", 1234),
        ("app-1", "2022-01-01", "records", 200),
        ("app-2", "2022-01-02", "calls", 10),
        ("app-2", "2022-01-02", "records", 62),
        ("app-3", "2022-01-03", "records", 26_000_000_000),
        ("app-3", "2022-01-03", "calls", 7),
    ]
    assert all(type(row[3]) is int for row in page.usage)
    assert page.next is None


@pytest.mark.parametrize(("row", "path", "why"), [
    (["app-1", "2022-01-01", "calls", -5], "$.rows[1][3]", "negative"),
    (["app-1", "2022-01-01", "calls", "12.5"], "$.rows[1][3]", "not a whole number"),
    (["app-1", "2022-01-01", "calls", 2**63], "$.rows[1][3]", "64 bits"),
    (["app-1", "2022-01-01", "calls", None], "$.rows[1][3]", "expected a count"),
    (["app-1", "2022-01-01", "calls", True], "$.rows[1][3]", "expected a count"),
    ([None, "2022-01-01", "calls", 5], "$.rows[1][0]", "expected an id"),
    (["", "2022-01-01", "calls", 5], "$.rows[1][0]", "empty"),
    (["app-1", "2022-13-01", "calls", 5], "$.rows[1][1]", "not a date"),
    (["app-1", ["2022-01-01"], "calls", 5], "$.rows[1][1]", "day"),
    (["app-1", "2022-01-01", "", 5], "$.rows[1][2]", "metric"),
    (["app-1", "2022-01-01", "calls"], "$.rows[1]", "expected [app, day, name, value]"),
    ({"app": "app-1"}, "$.rows[1]", "expected [app, day, name, value]"),
])
def test_a_bad_row_rejects_the_page_with_its_json_path(row: object, path: str, why: str) -> None:
    body = usage_page([["app-0", "2022-01-01", "calls", 1], row])
    with pytest.raises(PageRejected) as caught:
        feed().parse("usage/0", Request.get("usage"), body, WINDOW)
    assert caught.value.path == path
    assert why in caught.value.why


@pytest.mark.parametrize("value", [1234, "1234"])
def test_a_row_repeated_with_the_same_value_is_stored_once(value: object) -> None:
    page = feed().parse("usage/0", Request.get("usage"), usage_page([
        ["app-1", "2022-01-01", "calls", 1234],
        ["app-1", "2022-01-01", "records", 5],
        ["app-1", "2022-01-01", "calls", value],
    ]), WINDOW)
    assert [tuple(row) for row in page.usage] == [
        ("app-1", "2022-01-01", "calls", 1234),
        ("app-1", "2022-01-01", "records", 5),
    ]


def test_a_figure_given_twice_with_two_values_rejects_the_page() -> None:
    with pytest.raises(PageRejected) as caught:
        feed().parse("usage/0", Request.get("usage"), usage_page([
            ["app-1", "2022-01-01", "calls", 1234],
            ["app-2", "2022-01-01", "calls", 7],
            ["app-1", "2022-01-01", "calls", 1239],
        ]), WINDOW)
    assert caught.value.path == "$.rows[2]"
    assert "twice" in caught.value.why and "1234" in caught.value.why and "1239" in caught.value.why


def test_wrong_columns_or_missing_rows_reject_the_page() -> None:
    with pytest.raises(PageRejected) as caught:
        feed().parse("usage/0", Request.get("usage"), {"columns": ["day", "app", "metric", "value"], "rows": []},
                     WINDOW)
    assert caught.value.path == "$.columns"
    with pytest.raises(PageRejected) as caught:
        feed().parse("usage/0", Request.get("usage"), {"columns": ["app", "day", "metric", "value"]}, WINDOW)
    assert caught.value.path == "$.rows"
    with pytest.raises(PageRejected) as caught:
        feed().parse("usage/0", Request.get("usage"), ["not", "an", "object"], WINDOW)
    assert caught.value.path == "$"


def test_next_cursor_replaces_the_previous_one_and_keeps_the_other_params() -> None:
    first = feed(shards=2).chains(WINDOW)["usage/1"]
    page = feed().parse("usage/1", first, usage_page([], "abc"), WINDOW)
    assert page.next is not None
    assert dict(page.next.params)["cursor"] == "abc"
    later = feed().parse("usage/1", page.next, usage_page([], "def"), WINDOW)
    assert later.next is not None
    assert [v for k, v in later.next.params if k == "cursor"] == ["def"]
    assert dict(later.next.params)["shard"] == "1"
    with pytest.raises(PageRejected, match=r"\$\.next"):
        feed().parse("usage/1", first, usage_page([], 7), WINDOW)  # type: ignore[arg-type]


def test_consumers_page_gives_consumers_and_their_apps() -> None:
    body = {"data": [{
        "id": "northwind-analytics", "legal_name": "Northwind Analytics Ltd", "notice_contact": "legal@nw.example",
        "tier": "enterprise", "agreement_version": "2021-06", "declared_use_case": None,
        "government_end_users": "none",
        "apps": [{"id": "nw-1", "name": "Northwind Search", "declared_use_case": "search"},
                 {"id": 1234567890123456789012, "name": "NW 2", "declared_use_case": None}],
    }], "next": None}
    page = feed().parse("consumers/0", Request.get("consumers"), body, WINDOW)
    (consumer,) = page.consumers
    assert (consumer.id, consumer.legal_name, consumer.tier_id) == (
        "northwind-analytics", "Northwind Analytics Ltd", "enterprise")
    assert [(a.app_id, a.consumer_id, a.declared_use_case) for a in page.apps] == [
        ("nw-1", "northwind-analytics", "search"),
        ("1234567890123456789012", "northwind-analytics", None),
    ]


def test_consumer_without_id_or_name_is_rejected_with_path() -> None:
    with pytest.raises(PageRejected) as caught:
        feed().parse("consumers/0", Request.get("consumers"),
                     {"data": [{"id": "a", "legal_name": "A"}, {"legal_name": "B"}], "next": None}, WINDOW)
    assert caught.value.path == "$.data[1].id"
    with pytest.raises(PageRejected) as caught:
        feed().parse("consumers/0", Request.get("consumers"),
                     {"data": [{"id": "a", "legal_name": "A", "apps": [{"name": "x"}]}], "next": None}, WINDOW)
    assert caught.value.path == "$.data[0].apps[0].id"


def test_tiers_page_gives_limits_and_clauses() -> None:
    body = {"data": [{"id": "basic", "name": "Basic", "agreement_version": "2022-01",
                      "allowed_endpoints": ["/2/tweets"],
                      "limits": [{"metric": "calls", "period": "day", "max": 100000},
                                 {"metric": "records", "period": "month", "max": "50000000000"}],
                      "clauses": {"volume_cap": "§3.1 Volume"}}], "next": None}
    (tier,) = feed().parse("tiers", Request.get("tiers"), body, WINDOW).tiers
    assert tier.limits == [("calls", "day", 100000), ("records", "month", 50_000_000_000)]
    assert tier.clauses == {"volume_cap": "§3.1 Volume"}
    assert tier.allowed_endpoints == ["/2/tweets"]
    body["data"][0]["limits"][0]["period"] = "week"  # type: ignore[index]
    with pytest.raises(PageRejected) as caught:
        feed().parse("tiers", Request.get("tiers"), body, WINDOW)
    assert caught.value.path == "$.data[0].limits[0].period"


def test_endpoint_rows() -> None:
    body = {"columns": ["app", "day", "endpoint", "calls"],
            "rows": [["app-1", "2022-01-01", "/2/tweets/search/all", "17"]], "next": None}
    page = feed().parse("endpoints/0", Request.get("endpoints"), body, WINDOW)
    assert [tuple(r) for r in page.endpoint_usage] == [("app-1", "2022-01-01", "/2/tweets/search/all", 17)]
    assert page.usage == []


def test_errors_retry_on_429_and_5xx_but_not_on_401_403() -> None:
    adapter = feed()
    limited = adapter.classify_error(429, {"Retry-After": "3"}, b'{"error": {"code": "rate_limited"}}', 0.0)
    assert limited.retry and limited.retry_after == 3.0
    assert adapter.classify_error(503, {}, b"", 0.0).retry
    for status in (401, 403, 404):
        verdict = adapter.classify_error(status, {}, b'{"error": {"message": "bad token"}}', 0.0)
        assert not verdict.retry
        assert str(status) in verdict.reason


# Arbitrary JSON, and pages that are nearly right: parse either returns rows that
# are well-typed or rejects the page; never any other exception.
from hypothesis import given, settings, strategies as st  # noqa: E402
from tests.strategies import json_values  # noqa: E402

CELL = st.one_of(json_values, st.sampled_from(["app-1", "2022-01-01", "calls", "200", "62.0", "-1", 5, 2**64]))


@settings(max_examples=150, deadline=None)
@given(body=json_values, chain=st.sampled_from(["usage/0", "endpoints/0", "consumers/0", "tiers"]))
def test_parse_of_arbitrary_json_returns_rows_or_rejects_the_page(body: object, chain: str) -> None:
    check_parse(chain, body)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.lists(CELL, min_size=3, max_size=5), max_size=6), nxt=st.one_of(st.none(), json_values))
def test_parse_of_nearly_right_usage_pages(rows: list[list[object]], nxt: object) -> None:
    check_parse("usage/0", {"columns": ["app", "day", "metric", "value"], "rows": rows, "next": nxt})


def check_parse(chain: str, body: object) -> None:
    try:
        page = feed().parse(chain, Request.get("x"), body, WINDOW)
    except PageRejected as rejected:
        assert rejected.path.startswith("$")
        return
    for app, day, name, value in page.usage + page.endpoint_usage:
        assert isinstance(app, str) and app and isinstance(name, str)
        assert date.fromisoformat(day) and type(value) is int and 0 <= value < 2**63
