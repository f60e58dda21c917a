"""aws-usage-plan against payloads in API Gateway's documented shapes."""

from __future__ import annotations

import json
from datetime import date

import httpx
import pytest

from store.config import SourceConfig
from store.errors import ConfigError, PageRejected
from store.sync.adapter import Request, Window
from store.sync.adapters.aws_usage_plan import AwsUsagePlan, is_aws_host

WINDOW = Window(date(2022, 1, 30), date(2022, 3, 2))


def adapter(url: str = "http://127.0.0.1:9/aws", **options: object) -> AwsUsagePlan:
    return AwsUsagePlan(SourceConfig(name="gw", adapter="aws-usage-plan", url=url,
                                     options={"usage_plan_id": "plan9", **options}))


def usage_request(start: str = "2022-01-30", end: str = "2022-01-31") -> Request:
    return Request.get("usageplans/plan9/usage", startDate=start, endDate=end, limit=500)


def test_chains_plan_keys_and_one_usage_chain_per_month() -> None:
    chains = adapter(limit=25).chains(WINDOW)
    assert list(chains) == ["plan", "keys", "usage/2022-01", "usage/2022-02", "usage/2022-03"]
    assert chains["plan"].path == "usageplans/plan9"
    assert dict(chains["keys"].params) == {"limit": "25"}
    assert dict(chains["usage/2022-02"].params) == {"startDate": "2022-02-01", "endDate": "2022-02-28", "limit": "25"}
    assert dict(chains["usage/2022-01"].params)["startDate"] == "2022-01-30"


def test_usage_one_pair_per_day_from_start_date_counts_as_strings_and_floats() -> None:
    body = {"usagePlanId": "plan9", "startDate": "2022-01-30", "endDate": "2022-01-31",
            "values": {"key-a": [[10, 4990], ["200", 4800]], "4f2k3j5": [["62.0", 0]]},
            "position": "next-page"}
    page = adapter().parse("usage/2022-01", usage_request(), body, WINDOW)
    assert page.usage == [("key-a", "2022-01-30", "calls", 10), ("key-a", "2022-01-31", "calls", 200),
                          ("4f2k3j5", "2022-01-30", "calls", 62)]
    assert page.next is not None and dict(page.next.params)["position"] == "next-page"
    assert dict(page.next.params)["startDate"] == "2022-01-30"


def test_usage_items_as_the_sdks_name_it_and_last_page() -> None:
    body = {"startDate": "2022-01-30", "endDate": "2022-01-31", "items": {"k": [[5000000000, 0]]}}
    page = adapter().parse("usage/2022-01", usage_request(), body, WINDOW)
    assert page.usage == [("k", "2022-01-30", "calls", 5_000_000_000)]  # over 2^31
    assert page.next is None


def test_a_following_page_replaces_its_position() -> None:
    request = Request(path="usageplans/plan9/usage",
                      params=(("startDate", "2022-01-30"), ("endDate", "2022-01-31"), ("position", "p1")))
    page = adapter().parse("usage/2022-01", request, {"values": {}, "position": "p2"}, WINDOW)
    assert page.next is not None and [v for k, v in page.next.params if k == "position"] == ["p2"]


@pytest.mark.parametrize(("body", "path", "why"), [
    ({"values": {"k": [[1]]}}, "$.values.k[0]", "pair"),
    ({"values": {"k": [[-1, 0]]}}, "$.values.k[0][0]", "negative"),
    ({"values": {"k": [[1.5, 0]]}}, "$.values.k[0][0]", "whole"),
    ({"values": {"k": [[None, 0]]}}, "$.values.k[0][0]", "count"),
    ({"values": {"k": [[1, 0], [1, 0], [1, 0]]}}, "$.values.k", "3 days"),
    ({"values": {"k": {"2022-01-30": 1}}}, "$.values.k", "pairs"),
    ({"values": [1, 2]}, "$.values", "object"),
    ({"position": "p"}, "$.values", "usage per key"),
    ([], "$", "object"),
])
def test_malformed_usage_is_rejected_with_its_path(body: object, path: str, why: str) -> None:
    with pytest.raises(PageRejected) as caught:
        adapter().parse("usage/2022-01", usage_request(), body, WINDOW)
    assert caught.value.path == path and why in caught.value.why


def test_no_usage_at_all_is_an_empty_page_not_zeros() -> None:
    page = adapter().parse("usage/2022-01", usage_request(), {"startDate": "2022-01-30", "endDate": "2022-01-31"},
                           WINDOW)
    assert page.usage == [] and page.next is None


def test_keys_become_apps_and_the_key_value_is_never_read() -> None:
    body = {"item": [{"id": "key-a", "type": "API_KEY", "value": "SECRET-API-KEY", "name": "Northwind crawler"},
                     {"id": "key-b", "type": "API_KEY"}], "position": "k2"}
    page = adapter().parse("keys", Request.get("usageplans/plan9/keys", limit=500), body, WINDOW)
    assert [(a.app_id, a.name, a.consumer_id) for a in page.apps] == [
        ("key-a", "Northwind crawler", None), ("key-b", None, None)]
    assert "SECRET-API-KEY" not in repr(page)
    assert page.next is not None and dict(page.next.params)["position"] == "k2"
    with pytest.raises(PageRejected) as caught:
        adapter().parse("keys", Request.get("x"), {"item": [{"name": "no id"}]}, WINDOW)
    assert caught.value.path == "$.item[0].id"


def test_plan_quota_and_throttle_become_facts() -> None:
    body = {"id": "plan9", "name": "Gold", "quota": {"limit": "5000000000", "offset": 0, "period": "MONTH"},
            "throttle": {"burstLimit": 200, "rateLimit": 100.5}}
    page = adapter().parse("plan", Request.get("usageplans/plan9"), body, WINDOW)
    assert page.facts == {"plan_name": "Gold", "quota_limit": "5000000000", "quota_period": "MONTH",
                          "quota_offset": "0", "throttle_burst_limit": "200", "throttle_rate_limit": "100.5"}
    with pytest.raises(PageRejected) as caught:
        adapter().parse("plan", Request.get("usageplans/plan9"), {"quota": {"period": "MONTH"}}, WINDOW)
    assert caught.value.path == "$.quota.limit"


def test_errors_quote_the_message_and_honour_retry_after() -> None:
    verdict = adapter().classify_error(429, {"Retry-After": "7"}, b'{"message": "Too Many Requests"}', 0.0)
    assert verdict.retry and verdict.retry_after == 7.0 and "Too Many Requests" in verdict.reason
    verdict = adapter().classify_error(403, {}, b'{"message": "Forbidden"}', 0.0)
    assert not verdict.retry and "Forbidden" in verdict.reason
    assert adapter().classify_error(503, {}, b"<html>", 0.0).retry


def test_plan_id_is_required() -> None:
    with pytest.raises(ConfigError, match="usage_plan_id"):
        AwsUsagePlan(SourceConfig(name="gw", adapter="aws-usage-plan", url="http://127.0.0.1:9"))


def test_loopback_uses_the_bearer_token_and_no_signing() -> None:
    plain = adapter()
    assert plain.auth_headers("tok") == {"Authorization": "Bearer tok"}
    assert plain.request_auth("tok") is None


def test_aws_hosts_are_recognised() -> None:
    assert is_aws_host("apigateway.eu-west-1.amazonaws.com")
    assert not is_aws_host("amazonaws.com.example.org")


def test_real_aws_without_botocore_says_to_install_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "botocore", None)  # makes `import botocore...` fail
    monkeypatch.setitem(sys.modules, "botocore.auth", None)
    with pytest.raises(ConfigError, match=r"warden\[aws\]"):
        adapter("https://apigateway.eu-west-1.amazonaws.com")


def test_region_must_be_known_for_aws() -> None:
    pytest.importorskip("botocore")
    with pytest.raises(ConfigError, match="region"):
        adapter("https://gateway.amazonaws.com")
    assert adapter("https://gateway.amazonaws.com", region="us-east-1").region == "us-east-1"


def test_missing_aws_credentials_name_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("botocore")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="AWS_ACCESS_KEY_ID"):
        adapter("https://apigateway.eu-west-1.amazonaws.com").request_auth(None)


def test_requests_to_aws_are_signed_with_sigv4(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("botocore")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    gateway = adapter("https://apigateway.eu-west-1.amazonaws.com")
    assert gateway.auth_headers("ignored") == {}
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"values": {}})

    request = gateway.chains(WINDOW)["usage/2022-02"]
    with httpx.Client(transport=httpx.MockTransport(handler), auth=gateway.request_auth(None)) as client:
        response = client.get("https://apigateway.eu-west-1.amazonaws.com/" + request.path, params=list(request.params))
    assert gateway.parse("usage/2022-02", request, response.json(), WINDOW).usage == []
    authorization = seen[0].headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/apigateway/aws4_request" in authorization
    assert "wJalrXUtnFEMI" not in authorization and "X-Amz-Date" in seen[0].headers
    assert json.dumps(dict(seen[0].headers)).count("EXAMPLEKEY") == 0


# Arbitrary JSON, and pages that are nearly right: parse returns well-typed rows or
# rejects the page; never any other exception.
from hypothesis import given, settings, strategies as st  # noqa: E402
from tests.strategies import json_values  # noqa: E402

COUNT = st.one_of(json_values, st.sampled_from(["200", "010", "62.0", "-1", 2**64, 5]))


def check_parse(chain: str, request: Request, body: object) -> None:
    try:
        page = adapter().parse(chain, request, body, WINDOW)
    except PageRejected as rejected:
        assert rejected.path.startswith("$")
        return
    for app_id, day, metric, value in page.usage:
        assert isinstance(app_id, str) and app_id and metric == "calls"
        assert date.fromisoformat(day) and type(value) is int and 0 <= value < 2**63
    assert all(isinstance(v, str) for v in page.facts.values())
    assert all(isinstance(a.app_id, str) for a in page.apps)


@settings(max_examples=150, deadline=None)
@given(body=json_values, chain=st.sampled_from(["plan", "keys", "usage/2022-01"]))
def test_parse_of_arbitrary_json_returns_rows_or_rejects_the_page(body: object, chain: str) -> None:
    check_parse(chain, usage_request(), body)


@settings(max_examples=150, deadline=None)
@given(values=st.dictionaries(st.text(max_size=6), st.lists(st.lists(COUNT, max_size=3), max_size=3), max_size=3),
       position=st.one_of(st.none(), json_values))
def test_parse_of_nearly_right_usage_pages(values: dict[str, object], position: object) -> None:
    check_parse("usage/2022-01", usage_request(), {"startDate": "2022-01-30", "values": values, "position": position})


# Through the real sync engine (MockTransport stands in for API Gateway).
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

from store.clock import fixed_clock  # noqa: E402
from store.db import connect  # noqa: E402
from store.sync.engine import sync_source  # noqa: E402


def gateway(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path.rstrip("/").split("/usageplans/plan9", 1)[1]
        if path == "":
            return httpx.Response(200, json={"id": "plan9", "quota": {"limit": 1000, "period": "DAY", "offset": 0}})
        if path == "/keys":
            return httpx.Response(200, json={"item": [{"id": "k1", "name": "Crawler", "value": "SECRETKEYVALUE"}]})
        start = date.fromisoformat(request.url.params["startDate"])
        end = date.fromisoformat(request.url.params["endDate"])
        days = (end - start).days + 1
        if "position" not in request.url.params:
            return httpx.Response(200, json={"startDate": str(start), "endDate": str(end), "position": "p2",
                                             "values": {"k1": [[10 + d, 990] for d in range(days)]}})
        return httpx.Response(200, json={"startDate": str(start), "endDate": str(end),
                                         "values": {"k2": [["7", 0]] * days}})
    return httpx.MockTransport(handler)


def test_sync_through_the_engine_stores_usage_keys_and_quota(tmp_path: Path) -> None:
    source = SourceConfig(name="gw", adapter="aws-usage-plan", url="http://127.0.0.1:9/aws",
                          start=date(2022, 1, 30), options={"usage_plan_id": "plan9", "limit": 2})
    seen: list[httpx.Request] = []
    result = sync_source(tmp_path / "w.db", source, clock=fixed_clock(datetime(2022, 2, 2, 12, tzinfo=timezone.utc)),
                         transport=gateway(seen))
    assert result.status == "ok", result.error
    conn = connect(tmp_path / "w.db")
    usage = {(r["app_id"], r["day"]): r["value"] for r in conn.execute("SELECT * FROM usage WHERE source = 'gw'")}
    assert usage[("k1", "2022-01-30")] == 10 and usage[("k1", "2022-02-01")] == 10
    assert usage[("k2", "2022-02-02")] == 7 and len(usage) == 8
    assert dict(conn.execute("SELECT key, value FROM source_fact WHERE source = 'gw' AND key LIKE 'quota%'")
                .fetchall()) == {"quota_limit": "1000", "quota_period": "DAY", "quota_offset": "0"}
    assert conn.execute("SELECT consumer_id, name FROM app WHERE app_id = 'k1'").fetchone()[:] == ("gw:k1", "Crawler")
    dump = "\n".join(str(tuple(r)) for table in ("app", "consumer", "source_fact", "sync_page")
                     for r in conn.execute(f"SELECT * FROM {table}"))
    assert "SECRETKEYVALUE" not in dump
    assert all("Authorization" not in r.headers for r in seen)  # no token configured


def test_sync_to_aws_is_signed_by_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("botocore")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    source = SourceConfig(name="gw", adapter="aws-usage-plan", url="https://apigateway.eu-west-1.amazonaws.com",
                          start=date(2022, 2, 1), options={"usage_plan_id": "plan9"})
    seen: list[httpx.Request] = []
    result = sync_source(tmp_path / "w.db", source, clock=fixed_clock(datetime(2022, 2, 2, tzinfo=timezone.utc)),
                         transport=gateway(seen))
    assert result.status == "ok", result.error
    assert seen and all(r.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
                        for r in seen)
    conn = connect(tmp_path / "w.db")
    urls = [r["url"] for r in conn.execute("SELECT url FROM sync_page")]
    assert urls and not any("EXAMPLEKEY" in url or "Signature" in url for url in urls)


def test_a_host_that_is_not_aws_without_token_env_is_a_configuration_error(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Defect 3: SigV4 is only for amazonaws.com hosts; a gateway proxy elsewhere
    gets the bearer token of ``token_env``, so without it nothing would be sent and
    the sync would fail with a misleading 401. Exit 2 at configuration time."""
    from store.config import load_config
    from tui.cli import main as cli_main

    config = tmp_path / "c.toml"
    config.write_text('[sources.gw]\nadapter = "aws-usage-plan"\nurl = "https://usage-proxy.example.com"\n'
                      'usage_plan_id = "plan9"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    message = str(caught.value)
    assert "[sources.gw]" in message and "SigV4" in message and "amazonaws.com" in message, message
    assert "token_env" in message, message
    assert cli_main(["sync", "--config", str(config), "--db", str(tmp_path / "w.db")]) == 2
    assert "token_env" in capsys.readouterr().err
    assert not (tmp_path / "w.db").exists()
    # With token_env, or on an AWS host (signed), the same source is fine.
    config.write_text(config.read_text() + 'token_env = "GW_TOKEN"\n')
    assert load_config(config).sources["gw"].token_env == "GW_TOKEN"
    config.write_text('[sources.gw]\nadapter = "aws-usage-plan"\nurl = "https://apigateway.eu-west-1.amazonaws.com"\n'
                      'usage_plan_id = "plan9"\n')
    assert load_config(config).sources["gw"].token_env is None
