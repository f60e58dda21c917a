"""http-json: any JSON usage endpoint from configuration.

Its keys are checked together (exit 2 naming the key); its pages are read with
JMESPath into the same rows the built-in adapters give, refused with a JSON path
when malformed; it follows each pagination; it sends each kind of credential and
stores none; and each of the four built-in vendors, written as an http-json
configuration, gives exactly the figures of its built-in adapter on the same
answers of the demo endpoint.
"""

from __future__ import annotations

import base64
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
from store.demo import DEMO_TOKEN_ENV, DemoEndpoint
from store.demo.sources import SHAPES, VENDORS, http_json_config
from store.demo.vendors import PLAN
from store.errors import ConfigError, PageRejected
from store.sync.adapter import Request, Window
from store.sync.adapters import adapter_for
from store.sync.adapters.http_json import HttpJson, _link_next
from store.sync.engine import sync_source
from tui.cli import main as cli_main

CLOCK = fixed_clock(datetime(2023, 1, 1, 6, tzinfo=timezone.utc))
TOKEN = "hj-token-5d1c9e"
WINDOW = Window(date(2022, 12, 1), date(2022, 12, 31))
BASE = '[sources.p]\nadapter = "http-json"\nurl = "https://api.partner.example/v2"\n'
MINIMAL = 'rows = "data"\napp = "client_id"\nday = "date"\nmetrics = { calls = "requests" }\n'


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEMO_TOKEN_ENV, TOKEN)
    monkeypatch.setenv("GITHUB_USER", "octo")


def adapter(**options: Any) -> HttpJson:
    keys = {"rows": "data", "app": "client_id", "day": "date", "metrics": {"calls": "requests"}, **options}
    made = adapter_for(SourceConfig("p", "http-json", "https://api.partner.example/v2", token_env="P_TOKEN",
                                    options={k: v for k, v in keys.items() if v is not None}))
    assert isinstance(made, HttpJson)
    return made


def usage_of(db: Path) -> dict[tuple[str, str, str], int]:
    conn = connect(db)
    try:
        return {(r[0], r[1], r[2]): r[3] for r in conn.execute("SELECT app_id, day, metric, value FROM usage")}
    finally:
        conn.close()


# --- the keys -----------------------------------------------------------------------------

@pytest.mark.parametrize(("extra", "says"), [
    (MINIMAL + "colour = 'blue'\n", "unknown key 'colour'"),
    (MINIMAL.replace('rows = "data"\n', ""), "missing required key 'rows' for adapter 'http-json'"),
    (MINIMAL.replace('day = "date"', 'day = "date[?"'),
     "'day': not a JMESPath expression: Invalid jmespath expression: Incomplete expression:"),
    (MINIMAL.replace('rows = "data"', 'rows = "^data"'),
     "'rows': a scope prefix (^) has no meaning here: the page is the scope"),
    (MINIMAL + 'paginate = "cursor"\nnext = "meta.next"\n', "paginate = 'cursor' needs 'cursor_param'"),
    (MINIMAL + 'paginate = "cursor"\ncursor_param = "after"\n', "paginate = 'cursor' needs 'next'"),
    (MINIMAL + 'paginate = "offset"\noffset_param = "offset"\n', "paginate = 'offset' needs 'page_size'"),
    (MINIMAL + 'paginate = "page"\npage_size = 50\n', "paginate = 'page' needs 'page_param'"),
    (MINIMAL + 'cursor_param = "after"\n', "'cursor_param' is only read with paginate = 'cursor'"),
    (MINIMAL + 'paginate = "link"\nnext = "next"\n', "'next' is only read with paginate = 'cursor' or 'next_url'"),
    (MINIMAL + 'next = "next"\n', "'next' is only read with paginate = 'cursor' or 'next_url'"),
    (MINIMAL + 'offset_param = "o"\n', "'offset_param' is only read with paginate = 'offset'"),
    (MINIMAL + 'page_param = "p"\n', "'page_param' is only read with paginate = 'page'"),
    (MINIMAL + "first_page = 0\n", "'first_page' is only read with paginate = 'page'"),
    (MINIMAL + 'paginate = "offset"\noffset_param = "o"\npage_size = 5\nfirst_page = 0\n',
     "'first_page' is only read with paginate = 'page'"),
    (MINIMAL + 'paginate = "cursor"\nnext = "n"\ncursor_param = "c"\nmore = "$m"\n',
     "'more': a scope prefix ($) has no meaning here: the page is the scope"),
    (MINIMAL + 'auth = "header:X-Key:v"\ntoken_env = "T"\n',
     "'auth': header:NAME needs a header name (letters, digits, '-'), not Host, Cookie, ..."),
    (MINIMAL + 'paginate = "scroll"\n', "'paginate' must be one of none, cursor, next_url, link, offset, page"),
    (MINIMAL + 'metric = "name"\n',
     "'metrics' and 'metric'/'value' do not go together: name each metric's count (metrics), or read the "
     'name and the count of one figure per item (metric and value)'),
    (MINIMAL.replace('metrics = { calls = "requests" }\n', 'metric = "name"\n'),
     "missing required key 'metrics' (or both 'metric' and 'value')"),
    (MINIMAL.replace('metrics = { calls = "requests" }', "metrics = {}"),
     "'metrics' must name at least one metric"),
    (MINIMAL.replace('calls = "requests"', '"Calls Per Day" = "requests"'),
     "'metrics': 'Calls Per Day' is not a metric name (lower case letters, digits, '_', as in "
     'calls_per_day limits)'),
    (MINIMAL.replace('day = "date"\n', ""), "missing required key 'day' (or 'days_from')"),
    (MINIMAL + 'days_from = "$.start"\n',
     "'day' and 'days_from' do not go together: give the day of each item, or the first day of a list "
     'with one item per day'),
    (MINIMAL + "window_days = 31\nlast_days = 90\n",
     "'window_days' and 'last_days' do not go together: 'last_days' is for an endpoint that gives the "
     "last N days counted back from today, 'window_days' for one asked for given days"),
    (MINIMAL + "window_days = 0\n", "'window_days' must be between 1 and 3660, got 0"),
    (MINIMAL + "last_days = 0\n", "'last_days' must be between 1 and 3660, got 0"),
    (MINIMAL + "last_days = 3661\n", "'last_days' must be between 1 and 3660, got 3661"),
    (MINIMAL + 'paginate = "offset"\noffset_param = "o"\npage_size = 0\n',
     "'page_size' must be between 1 and 1000000, got 0"),
    (MINIMAL + 'paginate = "offset"\noffset_param = "o"\npage_size = 1000001\n',
     "'page_size' must be between 1 and 1000000, got 1000001"),
    (MINIMAL + 'paginate = "page"\npage_param = "p"\npage_size = 10\nfirst_page = -1\n',
     "'first_page' must be between 0 and 1, got -1"),
    (MINIMAL + "last_days = 90\nend = 2022-12-31\n",
     "'end' cannot be honoured: last_days says the endpoint gives only the last days counted back from "
     "today; remove 'end'"),
    (MINIMAL + "window_days = 3661\n", "'window_days' must be between 1 and 3660, got 3661"),
    (MINIMAL + "last_days = 90\nstart = 2022-01-01\n",
     "'start' cannot be honoured: last_days says the endpoint gives only the last days counted back from "
     "today; remove 'start'"),
    (MINIMAL + 'path = "/usage/{month}"\n',
     "'path': unknown placeholder {month} (known: {start}, {end}, {start_epoch}, {end_epoch}, {days})"),
    (MINIMAL + 'params = { from = "{begin}" }\n',
     "'params.from': unknown placeholder {begin} (known: {start}, {end}, {start_epoch}, {end_epoch}, "
     '{days})'),
    (MINIMAL + 'params = { api_key = "k-123" }\n',
     "'params': 'api_key' looks like a credential; put the token in the variable named by token_env and "
     'use auth = "query:api_key" (sent, never stored or shown)'),
    (MINIMAL + "params = { page = true }\n", "'params': 'page' must be a string or a whole number, got a boolean"),
    (MINIMAL + 'auth = "bearer"\n',
     "auth = 'bearer' needs token_env (the variable holding the token, or the password for basic)"),
    (MINIMAL + 'auth = "header"\ntoken_env = "T"\n',
     "'auth' must be one of none, bearer, header:NAME, basic, query:NAME"),
    (MINIMAL + 'auth = "header:Host"\ntoken_env = "T"\n',
     "'auth': header:NAME needs a header name (letters, digits, '-'), not Host, Cookie, ..."),
    (MINIMAL + 'auth = "query:"\ntoken_env = "T"\n',
     "'auth' must be one of none, bearer, header:NAME, basic, query:NAME"),
    (MINIMAL + 'auth = "basic"\ntoken_env = "T"\n',
     'auth = "basic" needs user_env (the variable holding the user name)'),
    (MINIMAL + 'auth = "basic"\ntoken_env = "T"\nuser_env = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"\n',
     "'user_env' looks like a token (it starts as well-known credentials do), not the NAME of an "
     'environment variable: put the token in a variable and name that variable here'),
    (MINIMAL + 'user_env = "U"\ntoken_env = "T"\n', '\'user_env\' is only read with auth = "basic"'),
    (MINIMAL + 'auth = "none"\ntoken_env = "T"\n', '\'token_env\' is set but auth = "none" sends no token'),
    (MINIMAL + "page_size = 10\n", "'page_size' is only read with paginate = 'offset' or 'page'"),
    (MINIMAL + 'paginate = "page"\npage_param = "p"\npage_size = 10\nfirst_page = 2\n',
     "'first_page' must be between 0 and 1, got 2"),
    (MINIMAL + 'paginate = "cursor"\nnext = "n"\ncursor_param = "a b"\n',
     "'cursor_param' must be a query parameter name"),
    (MINIMAL + 'paginate = "offset"\noffset_param = "a b"\npage_size = 5\n',
     "'offset_param' must be a query parameter name"),
    (MINIMAL + 'paginate = "page"\npage_param = "p?"\npage_size = 5\n',
     "'page_param' must be a query parameter name"),
    (MINIMAL + 'auth = "query:a b"\ntoken_env = "T"\n',
     "'auth': query:NAME needs a query parameter name (letters, digits, '-', '_', '.')"),
    (MINIMAL + 'auth = "header:Bad Name"\ntoken_env = "T"\n',
     "'auth': header:NAME needs a header name (letters, digits, '-'), not Host, Cookie, ..."),
    (MINIMAL + 'auth = "header:Content-Length"\ntoken_env = "T"\n',
     "'auth': header:NAME needs a header name (letters, digits, '-'), not Host, Cookie, ..."),
    (MINIMAL + 'auth = "header:Transfer-Encoding"\ntoken_env = "T"\n',
     "'auth': header:NAME needs a header name (letters, digits, '-'), not Host, Cookie, ..."),
    (MINIMAL + 'auth = "header:Connection"\ntoken_env = "T"\n',
     "'auth': header:NAME needs a header name (letters, digits, '-'), not Host, Cookie, ..."),
    (MINIMAL + 'auth = "header: "\ntoken_env = "T"\n',
     "'auth' must be one of none, bearer, header:NAME, basic, query:NAME"),
    (MINIMAL + 'auth = "header:cookie"\ntoken_env = "T"\n',
     "'auth': header:NAME needs a header name (letters, digits, '-'), not Host, Cookie, ..."),
    (MINIMAL + 'auth = "cookie:x"\ntoken_env = "T"\n',
     "'auth' must be one of none, bearer, header:NAME, basic, query:NAME"),
    (MINIMAL + 'auth = "token"\ntoken_env = "T"\n',
     "'auth' must be one of none, bearer, header:NAME, basic, query:NAME"),
    (MINIMAL.replace('metrics = { calls = "requests" }', 'metrics = { calls = 5 }'),
     "'metrics': 'calls' must be a JMESPath expression (a string)"),
    (MINIMAL.replace('metrics = { calls = "requests" }', 'metrics = { calls = " " }'),
     "'metrics': 'calls' must be a JMESPath expression (a string)"),
    (MINIMAL.replace('metrics = { calls = "requests" }', 'metrics = { calls = "a[" }'),
     "'metrics': 'calls': not a JMESPath expression: Invalid jmespath expression: Incomplete expression:"),
    (MINIMAL.replace('metrics = { calls = "requests" }\n', 'value = "v"\n'),
     "missing required key 'metrics' (or both 'metric' and 'value')"),
    (MINIMAL + 'path = "/usage/{"\n',
     "'path': Single '{' encountered in format string (write {{ and }} for a brace)"),
    (MINIMAL + 'params = { from = "{start" }\n',
     "'params.from': expected '}' before end of string (write {{ and }} for a brace)"),
    (MINIMAL + "params = { x = 1.5 }\n", "'params': 'x' must be a string or a whole number, got a float"),
    (MINIMAL + 'paginate = "none"\nmore = "m"\n',
     "'more' is only read with paginate = 'cursor' or 'next_url' or 'offset' or 'page'"),
    (MINIMAL + 'paginate = "link"\ntotal = "t"\n', "'total' is only read with paginate = 'offset' or 'page'"),
    (MINIMAL + 'each = "^x"\n', "'each': a scope prefix (^) has no meaning here: the page is the scope"),
    (MINIMAL + 'paginate = "cursor"\nnext = "$n"\ncursor_param = "c"\n',
     "'next': a scope prefix ($) has no meaning here: the page is the scope"),
    (MINIMAL + 'paginate = "offset"\noffset_param = "o"\npage_size = 5\ntotal = "^t"\n',
     "'total': a scope prefix (^) has no meaning here: the page is the scope"),
])
def test_every_key_is_checked_and_a_problem_names_its_key(tmp_path: Path, extra: str, says: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(BASE + extra)
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    # The whole message, word for word (after the known keys, for an unknown one).
    assert str(caught.value) == f"{config}: [sources.p]: {says}" or (
        says.startswith("unknown key") and str(caught.value).startswith(f"{config}: [sources.p]: {says}; known keys: ")
    ), str(caught.value)
    assert cli_main(["sync", "--config", str(config), "--db", str(tmp_path / "w.db")]) == 2
    assert says in capsys.readouterr().err
    assert "k-123" not in str(caught.value) and "ghp_" not in str(caught.value)


@pytest.mark.parametrize("extra", [
    "window_days = 1\n", "window_days = 3660\n", "last_days = 1\n", "last_days = 3660\n",
    'paginate = "offset"\noffset_param = "o"\npage_size = 1\n',
    'paginate = "offset"\noffset_param = "o"\npage_size = 1000000\n',
    'paginate = "page"\npage_param = "p"\npage_size = 10\nfirst_page = 0\n',
    'paginate = "page"\npage_param = "p"\npage_size = 10\nfirst_page = 1\n',
])
def test_a_number_exactly_on_its_limit_is_accepted(tmp_path: Path, extra: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(BASE + MINIMAL + extra)
    source = load_config(config).sources["p"]
    name, _, value = extra.splitlines()[-1].partition(" = ")
    assert getattr(adapter_for(source).spec, name) == int(value)   # type: ignore[attr-defined]


def test_without_auth_a_token_goes_as_a_bearer_and_without_token_env_none_is_sent() -> None:
    assert adapter().auth_headers("t-1") == {"Authorization": "Bearer t-1"}
    assert adapter().auth_headers(None) == {} and adapter().auth_headers("") == {}
    assert adapter().auth_params("t-1") == () and adapter().request_auth("t-1") is None
    bare = adapter_for(SourceConfig("p", "http-json", "https://api.partner.example/v2", options={
        "rows": "data", "app": "client_id", "day": "date", "metrics": {"calls": "requests"}}))
    assert bare.auth_headers("t-1") == {} and bare.auth_params("t-1") == ()   # type: ignore[attr-defined]
    # A header or parameter name is read without the spaces around it.
    assert adapter(auth="header: X-Api-Key ").auth_headers("t-1") == {"X-Api-Key": "t-1"}
    assert adapter(auth="query: api_key ").auth_params("t-1") == (("api_key", "t-1"),)
    assert adapter(auth="query:api_key").auth_params(None) == ()
    assert adapter(auth="query:api_key").auth_headers("t-1") == {}
    assert adapter(auth="header:X-Api-Key").auth_params("t-1") == ()


def test_without_window_days_a_long_window_is_asked_for_31_days_at_a_time() -> None:
    chains = adapter(params={"from": "{start}", "to": "{end}", "n": "{days}"}).chains(
        Window(date(2022, 11, 1), date(2023, 1, 2)))
    assert chains == {
        "usage/2022-11-01..2022-12-01": Request("", (("from", "2022-11-01"), ("to", "2022-12-01"), ("n", "31"))),
        "usage/2022-12-02..2023-01-01": Request("", (("from", "2022-12-02"), ("to", "2023-01-01"), ("n", "31"))),
        "usage/2023-01-02..2023-01-02": Request("", (("from", "2023-01-02"), ("to", "2023-01-02"), ("n", "1"))),
    }


def test_the_issue_example_reads(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(BASE + textwrap.dedent('''
        auth = "bearer"
        token_env = "PARTNER_TOKEN"
        path = "/usage"
        params = { from = "{start}", to = "{end}", per_page = "500" }
        window_days = 31
        rows = "data"
        each = "daily"
        app = "^client_id"
        day = "date"
        metrics = { calls = "requests", records = "items" }
        paginate = "cursor"
        next = "meta.next_cursor"
        cursor_param = "after"
    '''))
    source = load_config(config).sources["p"]
    made = adapter_for(source)
    chains = made.chains(Window(date(2022, 11, 15), date(2023, 1, 1)))
    assert list(chains) == ["usage/2022-11-15..2022-12-15", "usage/2022-12-16..2023-01-01"]
    assert chains["usage/2022-12-16..2023-01-01"] == Request(
        "/usage", (("from", "2022-12-16"), ("to", "2023-01-01"), ("per_page", "500")))


def test_placeholders_fill_each_window(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "America/New_York")   # epoch seconds of UTC midnights, on a host in any zone
    time.tzset()
    made = adapter(path="/usage/{start}", params={"from": "{start_epoch}", "to": "{end_epoch}", "n": "{days}",
                                                  "literal": "{{start}}", "per_page": 50}, window_days=10)
    request = made.chains(Window(date(2022, 12, 1), date(2022, 12, 10)))["usage/2022-12-01..2022-12-10"]
    assert request == Request("/usage/2022-12-01", (("from", "1669852800"), ("to", "1670716800"), ("n", "10"),
                                                    ("literal", "{start}"), ("per_page", "50")))
    monkeypatch.undo()
    time.tzset()


# --- pages ----------------------------------------------------------------------------------

def test_nested_items_with_row_and_page_scopes_and_a_missing_figure() -> None:
    made = adapter(rows="data.apps", each="daily", app="^client_id", day="date",
                   metrics={"calls": "requests", "records": "$.meta.records_of_all"})
    body = {"meta": {"records_of_all": "7"}, "data": {"apps": [
        {"client_id": 29183745, "daily": [{"date": "2022-12-01T00:00:00Z", "requests": "10"},
                                          {"date": 1669939200, "requests": None}]},
        {"client_id": "b", "daily": []}]}}
    page = made.parse("usage/2022-12-01..2022-12-31", Request("u"), body, WINDOW)
    assert sorted(page.usage) == [("29183745", "2022-12-01", "calls", 10), ("29183745", "2022-12-01", "records", 7),
                                  ("29183745", "2022-12-02", "records", 7)]
    assert page.notes == ["'29183745' 2022-12-02 'calls': no figure (missing, not stored) at "
                          "$.data.apps[0].daily[1].requests"]
    assert page.next is None


@pytest.mark.parametrize(("body", "path", "why"), [
    ({"data": {"x": 1}}, "$.data.x", "rows found a single value: expected a list (or an object of them)"),
    ({"data": "all"}, "$.data", "rows found a single value: expected a list (or an object of them)"),
    ({}, "$.data", "rows found nothing: expected a list (or an object of them)"),
    ({"data": [{"client_id": "a", "date": "2022-12-01", "requests": -1}]}, "$.data[0].requests",
     "count -1 is negative"),
    ({"data": [{"client_id": "", "date": "2022-12-01", "requests": 1}]}, "$.data[0].client_id", "id is empty"),
    ({"data": [{"client_id": "a", "date": "12/01/2022", "requests": 1}]}, "$.data[0].date",
     "'12/01/2022' is not a date"),
    ({"data": [{"client_id": "a", "date": "2023-01-01", "requests": 1}]}, "$.data[0].date",
     "2023-01-01 is outside the days asked for (2022-12-01..2022-12-31)"),
    ({"data": [{"client_id": "a", "date": "2022-12-01", "requests": 1},
               {"client_id": "a", "date": "2022-12-01", "requests": 2}]}, "$.data[1].requests",
     "'a' 2022-12-01 'calls' appears twice with different values (1 at $.data[0].requests, 2 here)"),
])
def test_a_malformed_page_is_refused_with_its_json_path(body: Any, path: str, why: str) -> None:
    with pytest.raises(PageRejected) as caught:
        adapter(rows="data.x" if "x" in str(body.get("data")) else "data").parse(
            "usage/2022-12-01..2022-12-31", Request("u"), body, WINDOW)
    assert (caught.value.path, caught.value.why) == (path, why)


@pytest.mark.parametrize(("row", "path", "why"), [
    ({"id": "a", "daily": 3}, "$.data[0].daily", "each found a single value: expected a list (or an object of them)"),
    ({"id": "a"}, "$.data[0].daily", "each found nothing: expected a list (or an object of them)"),
])
def test_a_row_without_its_list_of_items_is_refused_with_its_json_path(row: Any, path: str, why: str) -> None:
    with pytest.raises(PageRejected) as caught:
        adapter(each="daily", app="^id").parse("usage/2022-12-01..2022-12-31", Request("u"), {"data": [row]}, WINDOW)
    assert (caught.value.path, caught.value.why) == (path, why)


def test_an_exact_repeat_is_stored_once() -> None:
    row = {"client_id": "a", "date": "2022-12-01", "requests": 3}
    page = adapter().parse("usage/2022-12-01..2022-12-31", Request("u"), {"data": [row, dict(row)]}, WINDOW)
    assert page.usage == [("a", "2022-12-01", "calls", 3)]


def test_an_object_of_rows_and_days_from_read_the_api_gateway_shape() -> None:
    made = adapter(rows="values", each="value", app="^key", day=None, days_from="$.startDate",
                   metrics={"calls": "[0]"})
    body = {"startDate": "2022-12-30", "values": {"k1": [[5, 95], [6, 94]], "k-2": [["7", 0]]}}
    page = made.parse("usage/2022-12-01..2022-12-31", Request("u"), body, WINDOW)
    assert sorted(page.usage) == [("k-2", "2022-12-30", "calls", 7), ("k1", "2022-12-30", "calls", 5),
                                  ("k1", "2022-12-31", "calls", 6)]
    body["values"]["k1"].append([1, 1])
    with pytest.raises(PageRejected) as caught:
        made.parse("usage/2022-12-01..2022-12-31", Request("u"), body, WINDOW)
    assert (caught.value.path, caught.value.why) == (
        "$.values.k1[2]", "2023-01-01 is outside the days asked for (2022-12-01..2022-12-31)")
    with pytest.raises(PageRejected) as caught:
        made.parse("usage/2022-12-01..2022-12-31", Request("u"), {**body, "startDate": "30/12/2022"}, WINDOW)
    assert (caught.value.path, caught.value.why) == ("$.startDate", "'30/12/2022' is not a date")


def test_days_from_without_each_gives_each_row_the_day_after_the_one_before() -> None:
    """One app's page: a list of daily counts from a first day (the row is the count)."""
    made = adapter(rows="days", app="$app", day=None, days_from="$start", metrics={"calls": "@"})
    page = made.parse("usage/2022-12-01..2022-12-31", Request("u"),
                      {"app": "a1", "start": "2022-12-29", "days": [3, "4", None]}, WINDOW)
    assert page.usage == [("a1", "2022-12-29", "calls", 3), ("a1", "2022-12-30", "calls", 4)]
    assert page.notes == ["'a1' 2022-12-31 'calls': no figure (missing, not stored) at $.days[2]"]


@pytest.mark.parametrize("days_from", ["start", "^start"])
def test_days_from_in_each_row_dates_that_rows_items(days_from: str) -> None:
    made = adapter(rows="apps", each="daily", app="^id", day=None, days_from=days_from, metrics={"calls": "@"})
    body = {"apps": [{"id": "a", "start": "2022-12-30", "daily": [1, 2]}, {"id": "b", "start": "2022-12-01",
                                                                           "daily": [5]}]}
    page = made.parse("usage/2022-12-01..2022-12-31", Request("u"), body, WINDOW)
    assert page.usage == [("a", "2022-12-30", "calls", 1), ("a", "2022-12-31", "calls", 2),
                          ("b", "2022-12-01", "calls", 5)]
    body["apps"][1]["start"] = "soon"
    with pytest.raises(PageRejected) as caught:
        made.parse("usage/2022-12-01..2022-12-31", Request("u"), body, WINDOW)
    assert (caught.value.path, caught.value.why) == ("$.apps[1].start", "'soon' is not a date")


def test_an_object_of_apps_is_read_as_entries_and_refusals_name_the_entry() -> None:
    """Rows given as an object (app id -> its figures) are read as entries
    ``{"key", "value"}``; a refusal names the entry's key in the page, not ``.key``."""
    made = adapter(rows="apps", app="key", day="$day",
                   metrics={"calls": "value.calls", "records": "length(value.items)"})
    body: dict[str, Any] = {"day": "2022-12-05", "apps": {"A1": {"calls": 3, "items": [1, 2]}}}
    page = made.parse("usage/2022-12-01..2022-12-31", Request("u"), body, WINDOW)
    assert page.usage == [("A1", "2022-12-05", "calls", 3), ("A1", "2022-12-05", "records", 2)]
    for apps, path, why in (({"A1": {"calls": -1, "items": []}}, "$.apps.A1.calls", "count -1 is negative"),
                            ({"": {"calls": 1, "items": []}}, "$.apps['']", "id is empty"),
                            ({"2 b": {"calls": -2, "items": []}}, "$.apps['2 b'].calls", "count -2 is negative")):
        with pytest.raises(PageRejected) as caught:
            made.parse("usage/2022-12-01..2022-12-31", Request("u"), {**body, "apps": apps}, WINDOW)
        assert (caught.value.path, caught.value.why) == (path, why)


def test_a_field_named_value_or_key_is_not_taken_for_an_entry() -> None:
    """Only an entry's own ``key``/``value`` are the entry: a field of that name
    in a list item, or in the page, stays in the path."""
    made = adapter(rows="values", each="value", app="^key", day=None, days_from="$value.from",
                   metrics={"calls": "value"})
    body: dict[str, Any] = {"value": {"from": "2022-12-30"}, "values": {"k1": [{"value": 4}, {"value": -1}]}}
    with pytest.raises(PageRejected) as caught:
        made.parse("usage/2022-12-01..2022-12-31", Request("u"), body, WINDOW)
    assert (caught.value.path, caught.value.why) == ("$.values.k1[1].value", "count -1 is negative")
    with pytest.raises(PageRejected) as caught:
        made.parse("usage/2022-12-01..2022-12-31", Request("u"), {**body, "value": {"from": "soon"}}, WINDOW)
    assert (caught.value.path, caught.value.why) == ("$.value.from", "'soon' is not a date")
    with pytest.raises(PageRejected) as caught:
        made.parse("usage/2022-12-01..2022-12-31", Request("u"), {**body, "values": {"": [{"value": 1}]}}, WINDOW)
    assert (caught.value.path, caught.value.why) == ("$.values['']", "id is empty")


def test_an_object_of_items_in_each_row_is_read_as_entries_and_refusals_name_the_entry() -> None:
    """``each`` finding an object (app id -> its count) reads it as entries: a
    refusal names the entry's key under its row, not its position."""
    made = adapter(rows="data", each="usage", app="key", day="^date", metrics={"calls": "value"})
    body: dict[str, Any] = {"data": [{"date": "2022-12-05", "usage": {"A1": 3, "B2": 4}}]}
    page = made.parse("usage/2022-12-01..2022-12-31", Request("u"), body, WINDOW)
    assert page.usage == [("A1", "2022-12-05", "calls", 3), ("B2", "2022-12-05", "calls", 4)]
    for usage, path, why in (({"A1": 3, "B2": -4}, "$.data[0].usage.B2", "count -4 is negative"),
                             ({"A1": 3, "": 4}, "$.data[0].usage['']", "id is empty")):
        with pytest.raises(PageRejected) as caught:
            made.parse("usage/2022-12-01..2022-12-31", Request("u"),
                       {"data": [{"date": "2022-12-05", "usage": usage}]}, WINDOW)
        assert (caught.value.path, caught.value.why) == (path, why)


def test_days_from_in_an_entry_of_an_object_of_rows_names_the_entry() -> None:
    """Rows given as an object (app id -> its first day and daily counts): a bad
    first day is refused at the entry's key in the page, not at ``.value``."""
    made = adapter(rows="apps", each="value.daily", app="^key", day=None, days_from="value.start",
                   metrics={"calls": "@"})
    body: dict[str, Any] = {"apps": {"A1": {"start": "2022-12-30", "daily": [1, 2]}}}
    page = made.parse("usage/2022-12-01..2022-12-31", Request("u"), body, WINDOW)
    assert page.usage == [("A1", "2022-12-30", "calls", 1), ("A1", "2022-12-31", "calls", 2)]
    with pytest.raises(PageRejected) as caught:
        made.parse("usage/2022-12-01..2022-12-31", Request("u"),
                   {"apps": {"A1": {"start": "soon", "daily": [1]}}}, WINDOW)
    assert (caught.value.path, caught.value.why) == ("$.apps.A1.start", "'soon' is not a date")


def test_a_row_scoped_refusal_names_the_row() -> None:
    made = adapter(rows="data", each="daily", app="^client_id")
    body = {"data": [{"client_id": "a", "daily": [{"date": "2022-12-01", "requests": 1}]},
                     {"client_id": "", "daily": [{"date": "2022-12-01", "requests": 1}]}]}
    with pytest.raises(PageRejected) as caught:
        made.parse("usage/2022-12-01..2022-12-31", Request("u"), body, WINDOW)
    assert (caught.value.path, caught.value.why) == ("$.data[1].client_id", "id is empty")


def test_a_list_of_days_past_the_last_date_is_refused() -> None:
    made = adapter(rows="days", app="$app", day=None, days_from="$start", metrics={"calls": "@"})
    window = Window(date(9999, 12, 30), date(9999, 12, 31))
    with pytest.raises(PageRejected) as caught:
        made.parse("usage/9999-12-30..9999-12-31", Request("u"), {"app": "a", "start": "9999-12-31",
                                                                  "days": [1, 2]}, window)
    assert (caught.value.path, caught.value.why) == ("$.days[1]", "1 days after 9999-12-31 is past the last date")


def test_a_figure_is_checked_against_the_days_its_own_chain_asked_for() -> None:
    """A sync's window is cut into chains; a day of the sync outside the chain's days
    was not asked for by that request."""
    body = {"data": [{"client_id": "a", "date": "2022-12-15", "requests": 1}]}
    with pytest.raises(PageRejected) as caught:
        adapter().parse("usage/2022-12-01..2022-12-10", Request("u"), body, WINDOW)
    assert (caught.value.path, caught.value.why) == (
        "$.data[0].date", "2022-12-15 is outside the days asked for (2022-12-01..2022-12-10)")
    page = adapter().parse("usage/2022-12-11..2022-12-20", Request("u"), body, WINDOW)
    assert page.usage == [("a", "2022-12-15", "calls", 1)]
    # A last_days chain asks for days before the sync's window (the endpoint counts back from today).
    made = adapter(last_days=12)
    early = {"data": [{"client_id": "a", "date": "2022-11-25", "requests": 2}]}
    assert made.parse("usage/2022-11-20..2022-12-01", Request("u"), early, WINDOW).usage == [
        ("a", "2022-11-25", "calls", 2)]


# Each of app, day, metric and value read from the item, its row (^) or the page ($): on a page
# where each level holds its own, the figure is the one of the level asked for.
SCOPED = {"date": "2022-12-05", "metric": "calls", "total": 9,
          "data": [{"app": "a", "day": "2022-12-06", "metric": "tokens", "count": 7,
                    "points": [{"app": "p", "day": "2022-12-07", "metric": "records", "v": 3}]}]}


@pytest.mark.parametrize(("keys", "usage"), [
    ({"app": "^app", "day": "$date", "metric": "^metric", "value": "v"}, [("a", "2022-12-05", "tokens", 3)]),
    ({"app": "app", "day": "^day", "metric": "$metric", "value": "^count"}, [("p", "2022-12-06", "calls", 7)]),
    ({"app": "app", "day": "day", "metric": "metric", "value": "$total"}, [("p", "2022-12-07", "records", 9)]),
    ({"app": "app", "day": "day", "metrics": {"calls": "^count", "tokens": "$total", "records": "v"}},
     [("p", "2022-12-07", "calls", 7), ("p", "2022-12-07", "tokens", 9), ("p", "2022-12-07", "records", 3)]),
])
def test_each_key_reads_the_item_its_row_or_the_page(keys: dict[str, Any], usage: list[tuple]) -> None:
    made = adapter(**{"each": "points", "metrics": None, **keys})
    assert made.parse("usage/2022-12-01..2022-12-31", Request("u"), SCOPED, WINDOW).usage == usage


def test_the_long_form_reads_the_metric_name_from_the_data() -> None:
    made = adapter(rows="rows", app="[0]", day="[1]", metrics=None, metric="[2]", value="[3]")
    page = made.parse("usage/2022-12-01..2022-12-31", Request("u"),
                      {"rows": [["a", "2022-12-01", "calls", 5], ["a", "2022-12-01", "tokens", "9"]]}, WINDOW)
    assert page.usage == [("a", "2022-12-01", "calls", 5), ("a", "2022-12-01", "tokens", 9)]
    for name in (7, " ", None):
        with pytest.raises(PageRejected) as caught:
            made.parse("usage/2022-12-01..2022-12-31", Request("u"), {"rows": [["a", "2022-12-01", name, 5]]},
                       WINDOW)
        assert (caught.value.path, caught.value.why) == ("$.rows[0][2]", "expected a metric name")


# --- paginations --------------------------------------------------------------------------------

def next_of(made: HttpJson, body: Any, request: Request = Request("u"), headers: dict[str, str] | None = None,
            ) -> Request | None:
    return made.parse("usage/2022-12-01..2022-12-31", request, body, WINDOW, headers=headers).next


ROW = {"client_id": "a", "date": "2022-12-01", "requests": 1}


def test_cursor_with_and_without_has_more() -> None:
    made = adapter(paginate="cursor", next="data[-1].id", cursor_param="after", more="has_more")
    first = next_of(made, {"data": [{**ROW, "id": "u7"}], "has_more": True}, Request("u", (("n", "1"),)))
    assert first == Request("u", (("n", "1"), ("after", "u7")))
    assert next_of(made, {"data": [{**ROW, "id": "u8"}], "has_more": True}, first) == Request(
        "u", (("n", "1"), ("after", "u8")))           # the cursor replaced, the other parameters kept
    assert next_of(made, {"data": [{**ROW, "id": "u8"}], "has_more": False}, first) is None
    for body in ({"data": [], "has_more": True}, {"data": [{**ROW, "id": ""}], "has_more": True}):
        with pytest.raises(PageRejected) as caught:
            next_of(made, body)
        assert (caught.value.path, caught.value.why) == ("$.data[-1].id", "more pages announced without a next one")
    with pytest.raises(PageRejected) as caught:
        next_of(made, {"data": [], "has_more": "yes"})
    assert (caught.value.path, caught.value.why) == ("$.has_more", "expected true or false")
    plain = adapter(paginate="cursor", next="meta.next", cursor_param="c")
    assert next_of(plain, {"data": [ROW], "meta": {"next": 42}}) == Request("u", (("c", "42"),))
    assert next_of(plain, {"data": [ROW], "meta": {"next": None}}) is None
    assert next_of(plain, {"data": [ROW], "meta": {"next": ""}}) is None
    for wrong in ({"x": 1}, True, 1.5):
        with pytest.raises(PageRejected) as caught:
            next_of(plain, {"data": [ROW], "meta": {"next": wrong}})
        assert (caught.value.path, caught.value.why) == ("$.meta.next", "expected a cursor (text or a whole number)")


def test_next_url_stays_on_the_source_host() -> None:
    made = adapter(paginate="next_url", next="links.next")
    assert next_of(made, {"data": [ROW], "links": {"next": "/v2/usage?page=2"}}) == Request(
        "https://api.partner.example/v2/usage?page=2")
    assert next_of(made, {"data": [ROW], "links": {"next": "usage?page=3"}}, Request("usage")) == Request(
        "https://api.partner.example/v2/usage?page=3")
    assert next_of(made, {"data": [ROW], "links": {"next": " HTTPS://API.Partner.Example:443/v2/usage?page=4 "}}
                   ) == Request("https://API.Partner.Example:443/v2/usage?page=4")
    for elsewhere, host in (("https://evil.example/v2/usage?page=2", "evil.example"),
                            ("//EVIL.example/v2/usage", "evil.example"),
                            ("http://api.partner.example/v2/usage", "api.partner.example"),
                            ("https://api.partner.example:8443/v2/usage", "api.partner.example"),
                            ("https://api.partner.example:99999/v2/usage", "?"),
                            ("mailto:ops@partner.example", "?")):
        with pytest.raises(PageRejected) as caught:
            next_of(made, {"data": [ROW], "links": {"next": elsewhere}})
        assert (caught.value.path, caught.value.why) == (
            "$.links.next", f"the next page is on another host ({host}); only the source's is followed")
    for wrong in (5, ["/v2/usage?page=2"]):
        with pytest.raises(PageRejected) as caught:
            next_of(made, {"data": [ROW], "links": {"next": wrong}})
        assert (caught.value.path, caught.value.why) == ("$.links.next", "expected a URL")


def test_a_malformed_next_url_refuses_its_page_and_keeps_the_pages_before(tmp_path: Path) -> None:
    """A server's next URL that urllib cannot read (a broken IPv6 host) is a page
    refused at its JSON path, not a crash of the sync."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(200, json={"data": [ROW], "next": "/v2/usage?page=2"})
        return httpx.Response(200, json={"data": [{**ROW, "date": "2022-12-02"}], "next": "http://[::1/usage"})

    options = {"path": "usage", "rows": "data", "app": "client_id", "day": "date", "metrics": {"calls": "requests"},
               "paginate": "next_url", "next": "next"}
    source = SourceConfig("p", "http-json", "https://api.partner.example/v2", token_env=DEMO_TOKEN_ENV,
                          start=date(2022, 12, 1), end=date(2022, 12, 31), options=options)
    result = sync_source(tmp_path / "w.db", source, clock=CLOCK, transport=httpx.MockTransport(answer))
    assert result.status == "partial" and len(seen) == 2
    assert result.error == ("source 'p', https://api.partner.example/v2/usage?page=2, at $.next: "
                            "expected a URL: Invalid IPv6 URL"), result.error
    assert usage_of(tmp_path / "w.db") == {("a", "2022-12-01", "calls"): 1}
    with pytest.raises(PageRejected) as caught:
        next_of(adapter(paginate="link"), {"data": [ROW]}, headers={"link": '<http://[::1/usage>; rel="next"'})
    assert (caught.value.path, caught.value.why) == (
        'the Link header (rel="next")', "expected a URL: Invalid IPv6 URL")


def test_link_header() -> None:
    assert _link_next('<https://a.example/u?page=2>; rel="next", <https://a.example/u?page=9>; rel="last"') == \
        "https://a.example/u?page=2"
    assert _link_next('<https://a.example/u?page=9>; rel="last"') is None
    assert _link_next('<https://a.example/u?p=2,3>; rel="prev next"; title="x"') == "https://a.example/u?p=2,3"
    assert _link_next("") is None and _link_next("garbage") is None
    assert _link_next('<https://a.example/u?p=4>; REL = "Next"') == "https://a.example/u?p=4"
    assert _link_next('<https://a.example/u?p=5>; rel="next x=y"') == "https://a.example/u?p=5"
    assert _link_next('<https://a.example/u?p=6>; rel="nextX"') is None
    assert _link_next('<https://a.example/u?p=7>; title="a=b"; rel=next') == "https://a.example/u?p=7"
    made = adapter(paginate="link")
    assert made.response_headers == ("link",)
    assert adapter().response_headers == () and adapter(paginate="next_url", next="n").response_headers == ()
    link = {"link": '<https://api.partner.example/v2/usage?page=2>; rel="next"'}
    assert next_of(made, {"data": [ROW]}, headers=link) == Request("https://api.partner.example/v2/usage?page=2")
    assert next_of(made, {"data": [ROW]}, headers={}) is None
    assert next_of(made, {"data": [ROW]}) is None      # the last page: the fetcher kept no header at all


def test_offset_and_page_stop_at_a_short_page_or_the_total() -> None:
    offset = adapter(paginate="offset", offset_param="offset", page_size=2, total="total")
    request = offset.chains(WINDOW)["usage/2022-12-01..2022-12-31"]
    assert dict(request.params)["offset"] == "0"
    second = next_of(offset, {"data": [ROW, {**ROW, "client_id": "b"}], "total": 5}, request)
    assert dict(second.params)["offset"] == "2"
    assert next_of(offset, {"data": [ROW], "total": 3}, second) is None           # 2 + 1 = 3: the total
    with pytest.raises(PageRejected) as caught:
        next_of(offset, {"data": [], "total": 5}, second)
    assert (caught.value.path, caught.value.why) == (
        "$.total", "an empty page before the total was reached (2 of 5 rows)")
    with pytest.raises(PageRejected) as caught:
        next_of(offset, {"data": [], "total": 1500}, Request("u", (("offset", "1200"),)))
    assert caught.value.why == "an empty page before the total was reached (1,200 of 1,500 rows)"
    capped = next_of(offset, {"data": [ROW], "total": 5}, second)                   # the server gave 1 of 2
    assert dict(capped.params)["offset"] == "3"
    # A request without the offset (a cancelled cursor run resumed after paginate was changed): from 0.
    assert next_of(offset, {"data": [ROW, {**ROW, "client_id": "b"}], "total": 5}, Request("u")) == Request(
        "u", (("offset", "2"),))
    no_total = adapter(paginate="offset", offset_param="offset", page_size=2)
    assert next_of(no_total, {"data": [ROW]}, request) is None                      # a short page: the last
    page = adapter(paginate="page", page_param="p", page_size=2, first_page=0)
    first = page.chains(WINDOW)["usage/2022-12-01..2022-12-31"]
    assert dict(first.params)["p"] == "0"
    assert dict(next_of(page, {"data": [ROW, {**ROW, "client_id": "b"}]}, first).params)["p"] == "1"
    assert next_of(page, {"data": [ROW]}, first) is None


# --- credentials ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("auth", "sent"), [
    ("bearer", lambda r: r.headers.get("Authorization") == f"Bearer {TOKEN}"),
    ("header:X-Api-Key", lambda r: r.headers.get("X-Api-Key") == TOKEN and "Authorization" not in r.headers),
    ("basic", lambda r: r.headers.get("Authorization") == "Basic " + base64.b64encode(
        f"octo:{TOKEN}".encode()).decode()),
    ("query:api_key", lambda r: r.url.params.get("api_key") == TOKEN and "Authorization" not in r.headers),
])
def test_each_auth_mode_sends_the_token_and_stores_none(tmp_path: Path, auth: str, sent: Any) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body: dict[str, Any] = {"data": [{**ROW, "id": f"r{len(seen)}"}]}
        if len(seen) == 1:   # a next URL echoing the token, as some servers do
            body["next"] = f"https://api.partner.example/v2/usage?page=2&api_key={TOKEN}"
        return httpx.Response(200, json=body)

    options: dict[str, Any] = {"auth": auth, "path": "usage", "rows": "data", "app": "client_id", "day": "date",
                               "metrics": {"calls": "requests"}, "paginate": "next_url", "next": "next"}
    if auth == "basic":
        options["user_env"] = "GITHUB_USER"
    source = SourceConfig("p", "http-json", "https://api.partner.example/v2", token_env=DEMO_TOKEN_ENV,
                          start=date(2022, 12, 1), end=date(2022, 12, 31), options=options)
    result = sync_source(tmp_path / "w.db", source, clock=CLOCK, transport=httpx.MockTransport(answer))
    if auth == "query:api_key":
        assert result.status == "ok", result.error
        assert [r.url.params.get_list("api_key") for r in seen] == [[TOKEN], [TOKEN]]   # once each, not twice
        assert [str(r.url.copy_remove_param("api_key")) for r in seen] == [
            "https://api.partner.example/v2/usage", "https://api.partner.example/v2/usage?page=2"]
    else:
        # The echoed token would go into the next request and be stored: refused instead.
        assert result.status == "partial" and "carries the token" in (result.error or ""), result.error
    assert all(sent(request) for request in seen)
    assert TOKEN not in repr(result)
    for path in tmp_path.iterdir():
        assert TOKEN.encode() not in path.read_bytes(), path


def test_basic_without_its_user_variable_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_USER")
    source = SourceConfig("p", "http-json", "https://api.partner.example/v2", token_env=DEMO_TOKEN_ENV,
                          options={"auth": "basic", "user_env": "GITHUB_USER", "rows": "data", "app": "a",
                                   "day": "d", "metrics": {"calls": "c"}})
    with pytest.raises(ConfigError) as caught:
        adapter_for(source).request_auth(TOKEN)
    assert str(caught.value) == ("source 'p': environment variable GITHUB_USER is not set (user_env names the "
                                 "variable that holds the user name)")


def test_a_source_built_without_the_configuration_reader_is_checked_too() -> None:
    with pytest.raises(ConfigError) as caught:
        adapter_for(SourceConfig("p", "http-json", "https://api.partner.example/v2", options={"rows": "data"}))
    assert str(caught.value) == "source 'p': missing required key 'app' for adapter 'http-json'"


def test_a_github_style_403_without_requests_left_waits_for_the_reset() -> None:
    verdict = adapter().classify_error(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000060"},
                                       b'{"message": "API rate limit exceeded"}', 1700000000.0)
    assert verdict.retry and verdict.retry_after == 60.0 and "API rate limit exceeded" in verdict.reason
    plain = adapter().classify_error(403, {}, b'{"message": "Resource not accessible"}', 0.0)
    assert not plain.retry and "HTTP 403" in plain.reason



# The server's own words, from each key a JSON error body may use: the first found, in this order.
@pytest.mark.parametrize(("body", "reason"), [
    (b'{"message": "Bad token", "detail": "expired"}', "not authorised (HTTP 401): check the token: Bad token"),
    (b'{"detail": "Token expired", "title": "Unauthorized"}',
     "not authorised (HTTP 401): check the token: Token expired"),
    (b'{"title": "Unauthorized", "error_description": "x"}',
     "not authorised (HTTP 401): check the token: Unauthorized"),
    (b'{"error": "invalid_token", "error_description": "The access token expired"}',
     "not authorised (HTTP 401): check the token: The access token expired"),
    (b'{"error": "invalid_token"}', "not authorised (HTTP 401): check the token: invalid_token"),
    (b'{"error": {"message": "Key revoked"}}', "not authorised (HTTP 401): check the token: Key revoked"),
    (b'not json', "not authorised (HTTP 401): check the token"),
])
def test_an_error_quotes_the_servers_message_from_each_key_it_may_use(body: bytes, reason: str) -> None:
    verdict = adapter().classify_error(401, {}, body, 1700000000.0)
    assert (verdict.retry, verdict.reason, verdict.retry_after) == (False, reason, None)


# now = 1700000000 is Tue, 14 Nov 2023 22:13:20 GMT.
@pytest.mark.parametrize(("status", "headers", "body", "retry", "reason", "wait"), [
    (429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000045"}, b"",
     True, "rate limited (HTTP 429, no requests left)", 45.0),
    (403, {"x-ratelimit-remaining": " 0 ", "x-ratelimit-reset": "1700000045"}, b'{"message": "Slow down"}',
     True, "rate limited (HTTP 403, no requests left): Slow down", 45.0),
    # Retry-After, when the server sends it too, wins over the reset time; as an HTTP-date too.
    (429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000045",
           "retry-after": "Tue, 14 Nov 2023 22:14:50 GMT"}, b"",
     True, "rate limited (HTTP 429, no requests left)", 90.0),
    (403, {"x-ratelimit-remaining": "0"}, b"", True, "rate limited (HTTP 403, no requests left)", None),
    (403, {"x-ratelimit-remaining": "1", "x-ratelimit-reset": "1700000045"}, b"",
     False, "forbidden (HTTP 403): the token lacks access", None),
    (429, {"x-ratelimit-remaining": "3", "x-ratelimit-reset": "1700000045"}, b"",
     True, "rate limited (HTTP 429)", None),
    (503, {"retry-after": "Tue, 14 Nov 2023 22:13:50 GMT"}, b'{"detail": "Maintenance"}',
     True, "server error (HTTP 503): Maintenance", 30.0),
    (500, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000045"}, b"",
     True, "server error (HTTP 500)", None),
])
def test_a_rate_limit_or_server_error_says_why_and_how_long_to_wait(
        status: int, headers: dict[str, str], body: bytes, retry: bool, reason: str, wait: float | None) -> None:
    verdict = adapter().classify_error(status, headers, body, 1700000000.0)
    assert (verdict.retry, verdict.reason, verdict.retry_after) == (retry, reason, wait)

# --- the four built-in vendors, as http-json --------------------------------------------------------

def builtin(kind: str, endpoint: DemoEndpoint) -> SourceConfig:
    common: dict[str, Any] = {"token_env": DEMO_TOKEN_ENV}
    if kind == "x-usage":
        return SourceConfig("v", kind, endpoint.x_url, options={"days": 12}, **common)
    start = {"start": date(2022, 11, 20)}
    if kind == "aws-usage-plan":
        return SourceConfig("v", kind, endpoint.base_url, options={"usage_plan_id": PLAN, "limit": 2}, **common,
                            **start)
    if kind == "openai-usage":
        return SourceConfig("v", kind, endpoint.base_url, options={"bucket_limit": 5}, **common, **start)
    return SourceConfig("v", kind, endpoint.feed_url, options={"shards": 2, "limit": 40}, **common, **start)


def as_http_json(kind: str, endpoint: DemoEndpoint, folder: Path, limit: int) -> SourceConfig:
    text = http_json_config(VENDORS[kind], name="v", url=endpoint.base_url, token_env=DEMO_TOKEN_ENV, limit=limit)
    if kind != "x-usage":
        text += "start = 2022-11-20\n"
    (folder / f"{kind}.toml").write_text(text)
    return load_config(folder / f"{kind}.toml").sources["v"]


@pytest.mark.parametrize("kind", list(VENDORS))
def test_each_builtin_vendor_as_http_json_gives_exactly_its_figures(kind: str, tmp_path: Path) -> None:
    limit = {"x-usage": 12, "aws-usage-plan": 2, "openai-usage": 5, "warden-feed": 40}[kind]
    with DemoEndpoint(consumers=6, env_faults=False, require_token=TOKEN) as endpoint:
        ours = sync_source(tmp_path / "builtin.db", builtin(kind, endpoint), clock=CLOCK)
        theirs = sync_source(tmp_path / "http-json.db", as_http_json(kind, endpoint, tmp_path, limit), clock=CLOCK)
    assert ours.status == theirs.status == "ok", (ours.error, theirs.error)
    expected = usage_of(tmp_path / "builtin.db")
    assert len(expected) > 50
    assert usage_of(tmp_path / "http-json.db") == expected
    conn = connect(tmp_path / "http-json.db")
    window = conn.execute("SELECT window_start, window_end FROM sync_run").fetchone()
    conn.close()
    conn = connect(tmp_path / "builtin.db")
    assert tuple(window) == tuple(conn.execute("SELECT window_start, window_end FROM sync_run").fetchone())
    conn.close()


def test_x_as_http_json_keeps_a_day_without_its_figure_missing_like_the_builtin(tmp_path: Path) -> None:
    with DemoEndpoint(consumers=2, env_faults=False, faults=["missing_count@/2/usage/tweets,times=0"]) as endpoint:
        ours = sync_source(tmp_path / "builtin.db", builtin("x-usage", endpoint), clock=CLOCK)
        theirs = sync_source(tmp_path / "http-json.db", as_http_json("x-usage", endpoint, tmp_path, 12), clock=CLOCK)
    assert ours.status == theirs.status == "ok"
    assert usage_of(tmp_path / "http-json.db") == usage_of(tmp_path / "builtin.db")
    notes = []
    for name in ("builtin.db", "http-json.db"):
        conn = connect(tmp_path / name)
        notes.append([r[0] for r in conn.execute("SELECT notes FROM sync_page WHERE notes IS NOT NULL")])
        conn.close()
    assert all(len(n) == 1 and "2022-12-20" in n[0] for n in notes), notes


@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_demo_shape_gives_the_feeds_figures(shape: str, tmp_path: Path) -> None:
    with DemoEndpoint(consumers=6, env_faults=False, require_token=TOKEN) as endpoint:
        feed = sync_source(tmp_path / "feed.db", builtin("warden-feed", endpoint), clock=CLOCK)
        text = http_json_config(SHAPES[shape], name="v", url=endpoint.base_url, token_env=DEMO_TOKEN_ENV, limit=25)
        (tmp_path / "c.toml").write_text(text + "start = 2022-11-20\n")
        result = sync_source(tmp_path / "shape.db", load_config(tmp_path / "c.toml").sources["v"], clock=CLOCK)
        pages = endpoint.requests(f"/{shape}/")
    assert feed.status == result.status == "ok", result.error
    assert pages > 10   # it did page
    assert usage_of(tmp_path / "shape.db") == usage_of(tmp_path / "feed.db")


# --- the README's worked examples ---------------------------------------------------------------------

def readme_examples() -> list[str]:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Any JSON usage endpoint (`http-json`)", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in section.split("```toml\n")[1:]]


def test_the_readme_documents_every_key_and_its_examples_sync_as_documented(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The three worked examples (and X written as http-json), pointed at the
    demo endpoint: each reads, syncs, and gives the figures its shape promises."""
    import re

    from store.sync.adapters.http_json_spec import OPTIONS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Any JSON usage endpoint (`http-json`)", 1)[1].split("\n## ", 1)[0]
    assert all(f"`{option.name}`" in section for option in OPTIONS), [
        o.name for o in OPTIONS if f"`{o.name}`" not in section]
    examples = readme_examples()
    assert len(examples) == 4
    for name in ("BILLING_TOKEN", "FORGE_TOKEN", "GATEWAY_KEY", "X_BEARER_TOKEN"):
        monkeypatch.setenv(name, TOKEN)
    with DemoEndpoint(consumers=6, env_faults=False, require_token=TOKEN) as endpoint:
        feed = sync_source(tmp_path / "feed.db", builtin("warden-feed", endpoint), clock=CLOCK)
        x = sync_source(tmp_path / "x.db", builtin("x-usage", endpoint), clock=CLOCK)
        for n, text in enumerate(examples):
            text = re.sub(r'url = "https://[^"]+"', f'url = "{endpoint.base_url}"', text)
            if "last_days" in text:
                text = text.replace("last_days = 90", "last_days = 12")
            else:
                text += "start = 2022-11-20\n"
            (tmp_path / f"{n}.toml").write_text(text)
            (source,) = load_config(tmp_path / f"{n}.toml").sources.values()
            result = sync_source(tmp_path / f"{n}.db", source, clock=CLOCK)
            assert result.status == "ok", (source.name, result.error)
            reference = tmp_path / ("x.db" if "last_days" in text else "feed.db")
            assert usage_of(tmp_path / f"{n}.db") == usage_of(reference), source.name
    assert feed.status == x.status == "ok"


def test_a_cancelled_http_json_sync_resumes_its_run_and_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    """Each chain's next request (a cursor, a Link URL, an offset) is stored with
    its page, so the next sync continues the same run where it stopped."""
    import threading

    from store.sync.events import PageStored

    with DemoEndpoint(consumers=6, env_faults=False) as endpoint:
        for shape in SHAPES:
            text = http_json_config(SHAPES[shape], name="v", url=endpoint.base_url, token_env=DEMO_TOKEN_ENV,
                                    limit=10)
            (tmp_path / f"{shape}.toml").write_text(text + "start = 2022-11-20\nconcurrency = 1\n")
            source = load_config(tmp_path / f"{shape}.toml").sources["v"]
            clean = sync_source(tmp_path / f"{shape}-clean.db", source, clock=CLOCK)
            cancel = threading.Event()

            def stop_after_three(event: object) -> None:
                if isinstance(event, PageStored) and event.pages >= 3:
                    cancel.set()

            db = tmp_path / f"{shape}.db"
            first = sync_source(db, source, clock=CLOCK, cancel=cancel, on_event=stop_after_three)
            second = sync_source(db, source, clock=CLOCK)
            assert clean.status == "ok" and first.status == "cancelled" and second.status == "ok", shape
            assert second.run_id == first.run_id and second.pages > first.pages, shape
            assert usage_of(db) == usage_of(tmp_path / f"{shape}-clean.db"), shape


def test_a_next_request_is_refused_for_a_real_token_in_it_not_for_a_short_one_by_chance() -> None:
    from store.sync.fetch import PageFetcher

    source = SourceConfig("p", "http-json", "https://api.partner.example/v2")
    made = adapter()
    long = PageFetcher(httpx.Client(), source, made, token="sk-" + "a1" * 8, clock=CLOCK, cancel=None)  # type: ignore[arg-type]
    assert long.carries_secret('{"path": "u", "params": [["after", "xx-sk-a1a1a1a1a1"]]}')   # a run of 8 of it
    assert not long.carries_secret('{"path": "u", "params": [["after", "sk-a1a"]]}')
    short = PageFetcher(httpx.Client(), source, made, token="t0", clock=CLOCK, cancel=None)  # type: ignore[arg-type]
    assert not short.carries_secret('{"path": "u", "params": [["after", "cursor-t0"]]}')


def test_more_false_ends_an_offset_and_a_total_ends_pages() -> None:
    offset = adapter(paginate="offset", offset_param="o", page_size=1, more="more")
    request = offset.chains(WINDOW)["usage/2022-12-01..2022-12-31"]
    assert next_of(offset, {"data": [ROW], "more": True}, request) is not None
    assert next_of(offset, {"data": [ROW], "more": False}, request) is None
    page = adapter(paginate="page", page_param="p", page_size=2, total="meta.total")
    first = page.chains(WINDOW)["usage/2022-12-01..2022-12-31"]
    two = [ROW, {**ROW, "client_id": "b"}]
    second = next_of(page, {"data": two, "meta": {"total": "4"}}, first)
    assert dict(second.params)["p"] == "2"
    assert next_of(page, {"data": two, "meta": {"total": 4}}, second) is None      # 2 pages of 2: all 4
    with pytest.raises(PageRejected) as caught:
        next_of(page, {"data": two, "meta": {"total": -1}}, first)
    assert (caught.value.path, caught.value.why) == ("$.meta.total", "count -1 is negative")
    with pytest.raises(PageRejected) as caught:
        next_of(page, {"data": [], "meta": {"total": 5}}, second)
    assert (caught.value.path, caught.value.why) == ("$.meta.total",
                                                     "an empty page before the total was reached (4 of 5 rows)")


def test_a_last_days_endpoint_asks_for_the_last_days_and_covers_all_but_the_first() -> None:
    made = adapter(last_days=12, params={"days": "{days}"})
    long = Window(date(2022, 1, 1), date(2023, 1, 1))
    assert made.requested(long) == Window(date(2022, 12, 20), date(2023, 1, 1))
    assert made.covered(made.requested(long)) == Window(date(2022, 12, 21), date(2023, 1, 1))
    assert made.chains(long) == {"usage/2022-12-20..2023-01-01": Request("", (("days", "12"),))}
    short = Window(date(2022, 12, 29), date(2023, 1, 1))
    assert made.chains(short) == {"usage/2022-12-28..2023-01-01": Request("", (("days", "4"),))}
    one = Window(date(2023, 1, 1), date(2023, 1, 1))
    assert made.chains(one) == {"usage/2022-12-31..2023-01-01": Request("", (("days", "1"),))}
    absolute = adapter()
    assert absolute.requested(long) == long and absolute.covered(long) == long
