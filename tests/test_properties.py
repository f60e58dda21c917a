"""Property tests of every adapter's parser, and of the sync around it.

For any JSON (arbitrary, or a valid page with one part changed), ``parse``
either returns valid rows (ids non-empty text, days real ``YYYY-MM-DD`` dates,
counts whole numbers in 0..2**63-1) or raises ``PageRejected`` with a JSON path;
never another exception. And a sync meeting such a page writes all of it or
none of it: a refused page leaves no row behind.
"""

from __future__ import annotations

import copy
import json
import tempfile
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from store.clock import fixed_clock
from store.config import SourceConfig
from store.db import connect
from store.errors import PageRejected
from store.sync.adapter import Adapter, ParsedPage, Request, Window, requested_window
from store.sync.adapters import adapter_for
from store.sync.counts import INT64_MAX, parse_count, parse_day, parse_id
from store.sync.engine import sync_source
from tests.strategies import TRICKY_NUMBERS, TRICKY_TEXT, json_values

WINDOW = Window(date(2022, 12, 1), date(2023, 1, 1))
DEC_1 = int(datetime(2022, 12, 1, tzinfo=timezone.utc).timestamp())
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def source(kind: str) -> SourceConfig:
    if kind.startswith("http-json/"):
        return http_json_source(kind.split("/", 1)[1])
    options: dict[str, Any] = {"warden-feed": {"shards": 1}, "x-usage": {},
                               "aws-usage-plan": {"usage_plan_id": "p1"}, "openai-usage": {}}[kind]
    return SourceConfig(f"s-{kind}", kind, "http://127.0.0.1:9/base", options=options)


def http_json_source(name: str) -> SourceConfig:
    """The demo's http-json configuration of a shape or a vendor, read as a TOML file is."""
    from store.config import load_config
    from store.demo.sources import SHAPES, VENDORS, http_json_config

    text = http_json_config({**SHAPES, **VENDORS}[name], name="hj", url="http://127.0.0.1:9", token_env="T",
                            limit=12 if name == "x-usage" else 3)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "c.toml").write_text(text)
        return load_config(Path(folder) / "c.toml").sources["hj"]


# Every shape an http-json source of the demo reads, and the four vendors written as http-json.
HTTP_JSON = ("http-json/stripe", "http-json/github", "http-json/offset", "http-json/x-usage",
             "http-json/aws-usage-plan", "http-json/openai-usage", "http-json/warden-feed")
ADAPTERS: dict[str, Adapter] = {kind: adapter_for(source(kind)) for kind in
                                ("warden-feed", "x-usage", "aws-usage-plan", "openai-usage") + HTTP_JSON}
# Every chain of every adapter, with its first request.
CHAINS = [(kind, chain, request) for kind, adapter in ADAPTERS.items()
          for chain, request in adapter.chains(WINDOW).items()]


def valid_page(kind: str, chain: str) -> Any:
    """A well-formed page of each adapter and chain, in the vendor's shape."""
    if kind.startswith("http-json/"):
        return valid_http_json_page(kind.split("/", 1)[1], chain)
    if kind == "warden-feed":
        what = chain.split("/")[0]
        if what == "usage":
            return {"columns": ["app", "day", "metric", "value"],
                    "rows": [["app-1", "2022-12-01", "calls", 5], ["app-1", "2022-12-01", "records", "200"],
                             ["app-2", "2022-12-02", "calls", 62.0]], "next": "p2-0"}
        if what == "endpoints":
            return {"columns": ["app", "day", "endpoint", "calls"],
                    "rows": [["app-1", "2022-12-01", "/2/tweets", 3]], "next": None}
        if what == "consumers":
            return {"data": [{"id": "c1", "legal_name": "C One", "notice_contact": None, "tier": "basic",
                              "agreement_version": "v1", "declared_use_case": None, "government_end_users": None,
                              "apps": [{"id": "app-1", "name": "A", "declared_use_case": None}]}], "next": None}
        return {"data": [{"id": "basic", "name": "Basic", "agreement_version": "v1", "allowed_endpoints": None,
                          "limits": [{"metric": "calls", "period": "day", "max": 1000}],
                          "clauses": {"volume_cap": "§1"}}], "next": None}
    if kind == "x-usage":
        return {"data": {"project_id": "1234567890123456789012", "project_cap": "50000000000",
                         "project_usage": 7, "cap_reset_day": 19,
                         "daily_client_app_usage": [{"client_app_id": "29183745", "usage": [
                             {"date": "2022-12-01T00:00:00.000Z", "usage": "200"},
                             {"date": "2022-12-02T00:00:00.000Z", "usage": 3}]}]}}
    if kind == "aws-usage-plan":
        if chain == "plan":
            return {"id": "p1", "name": "Gold", "quota": {"limit": 5000, "offset": 0, "period": "MONTH"},
                    "throttle": {"rateLimit": 10.0, "burstLimit": 20}}
        if chain == "keys":
            return {"item": [{"id": "k1", "name": "Key 1", "type": "API_KEY", "value": "x"}], "position": "2"}
        if chain == "usage/2023-01":   # the window's last month holds one day
            return {"startDate": "2023-01-01", "endDate": "2023-01-01", "values": {"k1": [[10, 90]]}}
        return {"startDate": "2022-12-01", "endDate": "2022-12-31", "position": "x",
                "values": {"k1": [[10, 90], [20, 80]], "k2": [[1, 0]]}}
    if chain == "completions/2023-01":   # the window's last month holds one day
        jan_1 = DEC_1 + 31 * 86400
        return {"object": "page", "has_more": False, "data": [{"object": "bucket", "start_time": jan_1,
                "end_time": jan_1 + 86400, "results": [{"api_key_id": "key_a", "num_model_requests": 5,
                                                         "input_tokens": "100", "output_tokens": 7.0}]}]}
    return {"object": "page", "has_more": True, "next_page": "page_2", "data": [
        {"object": "bucket", "start_time": DEC_1, "end_time": DEC_1 + 86400, "results": [
            {"api_key_id": "key_a", "num_model_requests": 5, "input_tokens": "100", "output_tokens": 7.0}]},
        {"object": "bucket", "start_time": DEC_1 + 86400, "end_time": DEC_1 + 2 * 86400, "results": []}]}


def valid_http_json_page(name: str, chain: str) -> Any:
    """A well-formed page of an http-json chain (``usage/<first>..<last>``), its days the chain's."""
    first = date.fromisoformat(chain.split("/", 1)[1].split("..")[0])
    day, stamp = first.isoformat(), int(datetime(first.year, first.month, first.day, tzinfo=timezone.utc).timestamp())
    if name == "stripe":
        return {"object": "list", "has_more": True, "data": [
            {"id": "ur_1_0_1", "subscription_item": "app-1", "timestamp": stamp, "usage": {"calls": 5, "records": "7"}},
            {"id": "ur_1_0_2", "subscription_item": 12, "timestamp": stamp, "usage": {"calls": 6.0, "records": None}}]}
    if name == "github":
        return [{"app_id": "app-1", "day": f"{day}T00:00:00Z", "calls": 5, "records": "9"},
                {"app_id": "app-2", "day": stamp, "calls": 0, "records": 1}]
    if name == "offset":
        return {"total": 10, "offset": 0, "limit": 3, "items": [
            {"app": "a", "date": day, "metrics": [{"name": "calls", "value": 5}, {"name": "records", "value": "9"}]},
            {"app": "b", "date": day, "metrics": []}]}
    if name == "x-usage":
        return {"data": {"daily_client_app_usage": [{"client_app_id": "29183745", "usage": [
            {"date": f"{day}T00:00:00.000Z", "usage": "200"}, {"date": f"{day}T00:00:00.000Z"}]}]}}
    if name == "aws-usage-plan":
        return {"startDate": day, "position": "x", "values": {"k1": [[10, 90]], "k2": [["1", 0]]}}
    if name == "openai-usage":
        return {"has_more": True, "next_page": "p2", "data": [{"start_time": stamp, "results": [
            {"api_key_id": "key_a", "num_model_requests": 5, "input_tokens": "100", "output_tokens": 7.0}]}]}
    return {"columns": ["app", "day", "metric", "value"], "next": "c2",
            "rows": [["app-1", day, "calls", 5], ["app-1", day, "records", "200"]]}


def check(parsed: ParsedPage) -> None:
    """Everything a parser returns is fit to store."""
    for rows in (parsed.usage, parsed.endpoint_usage):
        for row in rows:
            assert len(row) == 4
            app, day, name, value = row
            assert isinstance(app, str) and app, row
            assert isinstance(day, str) and len(day) == 10 and date.fromisoformat(day).isoformat() == day, row
            assert isinstance(name, str) and name, row
            assert type(value) is int and 0 <= value <= INT64_MAX, row
    for app_record in parsed.apps:
        assert isinstance(app_record.app_id, str) and app_record.app_id
    for consumer in parsed.consumers:
        assert isinstance(consumer.id, str) and consumer.id and isinstance(consumer.legal_name, str)
    for tier in parsed.tiers:
        assert isinstance(tier.id, str) and tier.id
        for _, _, maximum in tier.limits:
            assert type(maximum) is int and 0 <= maximum <= INT64_MAX
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.facts.items())
    if parsed.next is not None:
        assert isinstance(parsed.next, Request)
        json.dumps(parsed.next.to_json())


def parse_or_reject(kind: str, chain: str, request: Request, body: Any) -> ParsedPage | None:
    adapter = ADAPTERS[kind]
    try:
        # The window a run passes is the one the adapter really asks for (X: the last N days).
        parsed = adapter.parse(chain, request, copy.deepcopy(body), requested_window(adapter, WINDOW))
    except PageRejected as rejected:
        assert rejected.path.startswith("$"), rejected.path
        assert rejected.why
        return None
    check(parsed)
    return parsed


def test_every_valid_page_parses() -> None:
    for kind, chain, request in CHAINS:
        parsed = parse_or_reject(kind, chain, request, valid_page(kind, chain))
        assert parsed is not None, (kind, chain)


@PROPERTY
@given(case=st.sampled_from(CHAINS), body=json_values)
def test_parsers_on_arbitrary_json(case: tuple[str, str, Request], body: Any) -> None:
    kind, chain, request = case
    parse_or_reject(kind, chain, request, body)


def paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every location in a JSON document."""
    out = [at]
    if isinstance(value, dict):
        for key, child in value.items():
            out += paths(child, at + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += paths(child, at + (i,))
    return out


def mutate(doc: Any, at: tuple[Any, ...], how: str, new: Any) -> Any:
    if not at:
        return new if how == "replace" else doc
    parent = doc
    for step in at[:-1]:
        parent = parent[step]
    key = at[-1]
    if how == "replace":
        parent[key] = new
    elif how == "delete":
        del parent[key]
    elif how == "duplicate" and isinstance(parent, list):
        parent.insert(key, copy.deepcopy(parent[key]))
    return doc


mutations = st.sampled_from(["replace", "replace", "delete", "duplicate"])


@PROPERTY
@given(case=st.sampled_from(CHAINS), data=st.data())
def test_parsers_on_valid_pages_with_one_part_changed(case: tuple[str, str, Request], data: st.DataObject) -> None:
    kind, chain, request = case
    doc = valid_page(kind, chain)
    at = data.draw(st.sampled_from(paths(doc)), label="where")
    how = data.draw(mutations, label="how")
    new = data.draw(json_values, label="new") if how == "replace" else None
    parse_or_reject(kind, chain, request, mutate(doc, at, how, new))


# --- a sync meeting a mutated page writes all of it or nothing -----------------------------

def feed_server(second_page: bytes) -> Callable[[httpx.Request], httpx.Response]:
    first = {"columns": ["app", "day", "metric", "value"],
             "rows": [["app-1", "2022-12-01", "calls", 5], ["app-1", "2022-12-01", "records", 9]], "next": "two"}

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/usage"):
            if request.url.params.get("cursor") == "two":
                return httpx.Response(200, content=second_page)
            return httpx.Response(200, json=first)
        if path.endswith("/endpoints"):
            return httpx.Response(200, json={"columns": ["app", "day", "endpoint", "calls"], "rows": [], "next": None})
        return httpx.Response(200, json={"data": [], "next": None})

    return handle


@pytest.mark.parametrize("kind", ["warden-feed", "http-json/warden-feed"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_sync_stores_a_mutated_page_whole_or_not_at_all(kind: str, data: st.DataObject) -> None:
    doc = {"columns": ["app", "day", "metric", "value"],
           "rows": [["app-2", "2022-12-02", "calls", 7], ["app-2", "2022-12-03", "calls", "8"],
                    ["app-3", "2022-12-03", "records", 10]], "next": None}
    at = data.draw(st.sampled_from(paths(doc)), label="where")
    how = data.draw(mutations, label="how")
    new = data.draw(json_values, label="new") if how == "replace" else None
    page = mutate(copy.deepcopy(doc), at, how, new)
    body = json.dumps(page).encode() if data.draw(st.booleans(), label="json") else \
        json.dumps(page).encode()[: data.draw(st.integers(0, 200), label="cut")]
    if kind == "warden-feed":
        chain, feed = "usage/0", SourceConfig("feed", kind, "http://127.0.0.1:9/feed/v1", start=date(2022, 12, 1),
                                              options={"shards": 1})
    else:
        chain, feed = "usage/2022-12-01..2022-12-05", http_json_source("warden-feed")
        feed.start, feed.token_env = date(2022, 12, 1), None
        feed.options = {**feed.options, "auth": "none"}
    expected = parse_or_reject(kind, chain, Request("usage", (("cursor", "two"),)), _loads(body))
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "w.db"
        result = sync_source(db, feed, clock=fixed_clock(datetime(2022, 12, 5, tzinfo=timezone.utc)),
                             transport=httpx.MockTransport(feed_server(body)), sleep=lambda s: None)
        conn = connect(db)
        try:
            stored = sorted(tuple(r) for r in conn.execute("SELECT app_id, day, metric, value FROM usage"))
            refused = conn.execute("SELECT count(*) FROM sync_page WHERE error IS NOT NULL").fetchone()[0]
        finally:
            conn.close()
    first = [("app-1", "2022-12-01", "calls", 5), ("app-1", "2022-12-01", "records", 9)]
    if expected is None or (expected.next is not None):
        # Refused (or a page that continues to a cursor this server does not know): the first page only.
        assert result.status in ("partial", "failed", "ok"), result
        if expected is None:
            assert result.status == "partial" and refused == 1, result
            assert stored == sorted(first)
    else:
        assert result.status == "ok", result
        rows = {(a, d, m): v for a, d, m, v in first}
        for a, d, m, v in expected.usage:
            rows[(a, d, m)] = v  # a duplicate row in one page: the last one stands
        assert stored == sorted((a, d, m, v) for (a, d, m), v in rows.items())


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return PageRejectedBody


class _Unparseable:
    """Stands for a body that is not JSON: every parser must refuse it."""


PageRejectedBody = _Unparseable()


TRICKY = TRICKY_TEXT + TRICKY_NUMBERS + [None, [], {}, [1, 2], {"value": 1}]


def test_every_tricky_value_at_every_place_of_every_page() -> None:
    """Exhaustive where hypothesis samples: each tricky value put at each location
    of each valid page (and each location deleted)."""
    tried = 0
    for kind, chain, request in CHAINS:
        base = valid_page(kind, chain)
        for at in paths(base):
            for value in TRICKY:
                parse_or_reject(kind, chain, request, mutate(copy.deepcopy(base), at, "replace", value))
                tried += 1
            parse_or_reject(kind, chain, request, mutate(copy.deepcopy(base), at, "delete", None))
    assert tried > 5_000


# --- the tolerant count, id and day parsers themselves ----------------------------------------



@PROPERTY
@given(value=json_values | st.text(alphabet="0123456789.+- eE\u0663\u00a0", max_size=6000))
def test_count_id_and_day_parsers_refuse_cleanly(value: Any) -> None:
    for parse, valid in ((parse_count, lambda v: type(v) is int and 0 <= v <= INT64_MAX),
                         (parse_id, lambda v: isinstance(v, str) and v.strip() != ""),
                         (parse_day, lambda v: date.fromisoformat(v).isoformat() == v)):
        try:
            result = parse(value, "$.x")
        except PageRejected as rejected:
            assert rejected.path == "$.x"
            continue
        assert valid(result), (parse.__name__, value, result)


@PROPERTY
@given(number=st.integers(0, INT64_MAX), zeros=st.integers(0, 30), form=st.sampled_from(["{}", "{}.0", " +{} "]))
def test_every_count_that_fits_is_read_back_exactly(number: int, zeros: int, form: str) -> None:
    text = form.format("0" * zeros + str(number))
    assert parse_count(text, "$") == number
    assert parse_count(number, "$") == number


# --- the reviewer's queue filter ------------------------------------------------------------

FILTER_WORDS = ["status:", "category:", "severity:", "over:", "tier:", "state:", "name:", "id:", "x", "%", "_",
                "\\", "'", '"', ",", " ", "1e400x", "nan", "-1x", "150%", "×", "\x00", "\x1b[31m", "[b]", "é", "\ud800"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(text=st.lists(st.sampled_from(FILTER_WORDS) | st.text(max_size=8), max_size=8).map("".join))
def test_any_filter_text_is_a_query_or_a_filter_error(text: str, review_db: Path) -> None:
    """Whatever a reviewer types (or pastes) into ``/``: a query that runs, or a
    FilterError that says why; never another exception, never an SQL error."""
    from store.errors import FilterError
    from store.queue import QueueQuery, QueueReader
    from store.queue_filter import parse_filter

    try:
        flt = parse_filter(text)
    except FilterError as exc:
        assert str(exc)
        return
    conn = connect(review_db)
    try:
        query = QueueQuery(flt)
        reader = QueueReader(lambda: conn)
        total = reader.count(query)
        assert len(reader.page(query, 0, 20)) == min(20, total)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def review_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tui_data import seed_review_db

    return seed_review_db(tmp_path_factory.mktemp("queue") / "review.db")


# --- one figure given twice in one page --------------------------------------------------------

CONFLICTING = {
    "warden-feed": ("usage/0", {"columns": ["app", "day", "metric", "value"], "next": None,
                                "rows": [["a", "2022-12-01", "calls", 5], ["a", "2022-12-01", "calls", 7]]}),
    "x-usage": ("usage", {"data": {"daily_client_app_usage": [{"client_app_id": "9", "usage": [
        {"date": "2022-12-01T00:00:00.000Z", "usage": "5"}, {"date": "2022-12-01T00:00:00.000Z", "usage": "7"}]}]}}),
    "openai-usage": ("completions/2022-12", {"has_more": False, "data": [
        {"start_time": DEC_1, "results": [{"api_key_id": "k", "num_model_requests": 5, "input_tokens": 1,
                                           "output_tokens": 1},
                                          {"api_key_id": "k", "num_model_requests": 7, "input_tokens": 1,
                                           "output_tokens": 1}]}]}),
}


@pytest.mark.parametrize("kind", sorted(CONFLICTING))
def test_a_figure_given_twice_with_two_values_rejects_the_page(kind: str) -> None:
    """Storing either value would be a silently wrong number."""
    chain, body = CONFLICTING[kind]
    request = ADAPTERS[kind].chains(WINDOW)[chain]
    assert parse_or_reject(kind, chain, request, body) is None
    # The same figure repeated with the same value is harmless: stored once.
    same = json.loads(json.dumps(body).replace('"7"', '"5"').replace(": 7", ": 5").replace(", 7]", ", 5]"))
    if kind != "openai-usage":  # OpenAI: a key twice in one bucket is refused either way (it would add up)
        parsed = parse_or_reject(kind, chain, request, same)
        assert parsed is not None and len({tuple(row[:3]) for row in parsed.usage}) == len(parsed.usage) == 1


def test_a_float_count_too_large_to_be_exact_is_refused_not_rounded() -> None:
    # json.loads reads 9007199254740993.0 as 9007199254740992.0: storing it would
    # silently store another figure than the source sent.
    body = json.loads('{"usage": 9007199254740993.0}')
    with pytest.raises(PageRejected, match="exact"):
        parse_count(body["usage"], "$.usage")
    assert parse_count(json.loads("9007199254740991.0"), "$") == 2**53 - 1   # still exact: kept
    assert parse_count("9007199254740993.0", "$") == 2**53 + 1           # strings are exact
