"""``warden-feed``: warden's own summary format, for platforms that publish usage
summaries from their own warehouse.

The format (also in README.md)::

    Base URL, e.g. https://usage.example.com/feed/v1; auth: Authorization: Bearer <token>.
    Every list is cursor-paginated: ?cursor=<opaque> (absent: first page),
    ?limit=N (the server may cap it); the answer's "next" is the cursor of the
    next page, or null on the last one.

    Sharding is chosen by the client: ?shard=K&shards=N (0 <= K < N <= 256).
    The server splits its consumers, in its own stable order, into N contiguous
    ranges; shard K answers only the rows of range K. A client fetches the N
    shards concurrently; within a shard the cursor chain is sequential.

    GET {base}/tiers                               (not sharded)
      {"data": [{"id", "name", "agreement_version", "allowed_endpoints": [..] | null,
                 "limits": [{"metric": "calls", "period": "day"|"month"|"year", "max": 100000}],
                 "clauses": {"volume_cap": "§3.1 ...", ...}}], "next": ...}
    GET {base}/consumers?shard&shards&cursor&limit
      {"data": [{"id", "legal_name", "notice_contact", "tier", "agreement_version",
                 "declared_use_case" | null, "government_end_users" | null,
                 "apps": [{"id", "name", "declared_use_case" | null}]}], "next": ...}
    GET {base}/usage?shard&shards&start=YYYY-MM-DD&end=YYYY-MM-DD&cursor&limit
      {"columns": ["app", "day", "metric", "value"],
       "rows": [["app-17", "2022-01-01", "calls", 1234], ...], "next": ...}
    GET {base}/endpoints?shard&shards&start&end&cursor&limit
      {"columns": ["app", "day", "endpoint", "calls"], "rows": [...], "next": ...}
    Errors: {"error": {"code", "message"}} with the HTTP status; 429 and 503
    carry Retry-After (seconds or an HTTP-date).

    Conditional requests (optional for servers): a server may send
    ETag: "<hex SHA-256 of the body>" and answer If-None-Match naming the tag of
    the page it would send now with 304 Not Modified and no body. warden sends
    If-None-Match for the pages of records (tiers, consumers) its last complete
    sync stored; a server that ignores it sends the page, as always.

Counts are JSON numbers or digit strings ("200", "010", "62.0"): whole,
non-negative, at most 2^63-1. Days are UTC, and a row for a day outside the
request's ``start`` .. ``end`` rejects its page. App ids are the app's id within the
source; usage rows and the consumers' apps agree. Metrics are "calls" and
"records" (others are stored as they come).

Chains: ``tiers``, then per shard K of N: ``consumers/K``, ``usage/K``,
``endpoints/K`` (option ``shards``, default 4).

Usage pages are compact rows: the hot path of a sync. Rows whose values are
already well-typed are passed on as they are; only the odd ones ("200", "62.0")
go through :func:`store.sync.counts.parse_count`.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from store.domain import LIMIT_PERIODS
from store.errors import PageRejected
from store.sync.adapter import (
    AppRecord, ConsumerRecord, ErrorVerdict, Option, ParsedPage, Request, TierRecord, Window, expect,
    expect_in_window, options_of,
)
from store.sync.counts import INT64_MAX, parse_count, parse_day, parse_id
from store.sync.retry import default_verdict, error_detail

if TYPE_CHECKING:
    from store.config import SourceConfig

USAGE_COLUMNS = ["app", "day", "metric", "value"]
ENDPOINT_COLUMNS = ["app", "day", "endpoint", "calls"]
MAX_SHARDS = 256


class WardenFeed:
    """Adapter for the ``warden-feed`` format. Options: ``shards`` (1..256,
    default 4), ``limit`` (rows per page asked for; the server may cap it)."""

    kind: ClassVar[str] = "warden-feed"
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option("shards", int, default=4, low=1, high=MAX_SHARDS),
        Option("limit", int, low=1, high=1_000_000),
    )
    # Pages of records stored before are asked for with If-None-Match: "<their SHA-256>";
    # a server that keeps ETags answers 304 Not Modified instead of the same body.
    conditional_requests: ClassVar[bool] = True

    def __init__(self, source: SourceConfig) -> None:
        self.source = source
        options = options_of(self, source)
        self.shards: int = options["shards"]
        self.limit: int | None = options["limit"]
        # Days (per window asked for) and metrics seen valid in this sync: a page
        # repeats a few hundred distinct days across ten thousand rows, so each is
        # checked once.
        self._days: dict[Window, set[str]] = {}
        self._names: set[str] = set()

    # -- requests ------------------------------------------------------------------

    def chains(self, window: Window) -> dict[str, Request]:
        span = {"start": window.start.isoformat(), "end": window.end.isoformat()}
        chains: dict[str, Request] = {"tiers": Request.get("tiers", limit=self.limit)}
        for shard in range(self.shards):
            sharding = {"shard": shard, "shards": self.shards}
            chains[f"consumers/{shard}"] = Request.get("consumers", **sharding, limit=self.limit)
            chains[f"usage/{shard}"] = Request.get("usage", **sharding, **span, limit=self.limit)
            chains[f"endpoints/{shard}"] = Request.get("endpoints", **sharding, **span, limit=self.limit)
        return chains

    def auth_headers(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes, now: float) -> ErrorVerdict:
        return default_verdict(status, headers, now, detail=error_detail(body, "message", "code"))

    # -- parsing -------------------------------------------------------------------

    def parse(self, chain: str, request: Request, body: Any, window: Window) -> ParsedPage:
        expect(isinstance(body, dict), "expected a JSON object", "$")
        kind = chain.split("/", 1)[0]
        if kind == "usage":
            page = ParsedPage(usage=self._rows(body, USAGE_COLUMNS, _asked(request, window)))
        elif kind == "endpoints":
            page = ParsedPage(endpoint_usage=self._rows(body, ENDPOINT_COLUMNS, _asked(request, window)))
        elif kind == "consumers":
            page = self._consumers(body)
        elif kind == "tiers":
            page = ParsedPage(tiers=[self._tier(item, f"$.data[{i}]") for i, item in enumerate(_data(body))])
        else:
            raise PageRejected(f"unknown chain {chain!r}", path="$")
        page.next = _next(body, request)
        return page

    def _rows(self, body: dict[str, Any], columns: list[str], asked: Window) -> list[Any]:
        expect(body.get("columns") == columns, f"expected columns {columns}", "$.columns")
        rows = body.get("rows")
        expect(isinstance(rows, list), "expected a list of rows", "$.rows")
        days = self._days.setdefault(asked, set())
        names = self._names
        # Fast path: a few cheap checks per row, no call; the rows (JSON lists) go to
        # executemany unchanged. Days and names already seen valid are set lookups.
        try:
            for row in rows:
                app, day, name, value = row
                if not (type(row) is list and type(app) is str and app and type(value) is int
                        and 0 <= value <= INT64_MAX and day in days and name in names):
                    break
            else:
                return _without_duplicates(rows)
        except (TypeError, ValueError):  # not a 4-item sequence, or an unhashable cell
            pass
        # Something is new or unusual: row by row, so a bad row is named by its
        # path and tolerated values ("200", "62.0") are converted.
        for i, row in enumerate(rows):
            if (type(row) is list and len(row) == 4
                    and type(row[0]) is str and row[0]
                    and type(row[1]) is str and row[1] in days
                    and type(row[2]) is str and row[2] in names
                    and type(row[3]) is int and 0 <= row[3] <= INT64_MAX):
                continue
            rows[i] = self._row(row, i, days, names, asked)
        return _without_duplicates(rows)

    def _row(self, row: Any, i: int, days: set[str], names: set[str], asked: Window) -> list[Any]:
        path = f"$.rows[{i}]"
        expect(isinstance(row, list) and len(row) == 4, "expected [app, day, name, value]", path)
        app = parse_id(row[0], f"{path}[0]")
        day = row[1]
        if not isinstance(day, str) or day not in days:
            expect(isinstance(day, str), "expected a day YYYY-MM-DD", f"{path}[1]")
            expect(parse_day(day, f"{path}[1]") == day, f"{day!r} is not a day YYYY-MM-DD", f"{path}[1]")
            expect_in_window(day, asked, f"{path}[1]")
            days.add(day)
        name = row[2]
        if not isinstance(name, str) or name not in names:
            expect(isinstance(name, str) and bool(name.strip()), "expected a metric or endpoint name",
                   f"{path}[2]")
            names.add(name)
        return [app, day, name, parse_count(row[3], f"{path}[3]")]

    def _consumers(self, body: dict[str, Any]) -> ParsedPage:
        page = ParsedPage()
        for i, item in enumerate(_data(body)):
            path = f"$.data[{i}]"
            expect(isinstance(item, dict), "expected an object", path)
            consumer_id = parse_id(item.get("id"), f"{path}.id")
            legal_name = item.get("legal_name")
            expect(isinstance(legal_name, str) and bool(legal_name.strip()), "expected a legal name",
                   f"{path}.legal_name")
            page.consumers.append(ConsumerRecord(
                id=consumer_id,
                legal_name=legal_name,
                notice_contact=_text(item, "notice_contact", path),
                tier_id=_text(item, "tier", path),
                agreement_version=_text(item, "agreement_version", path),
                declared_use_case=_text(item, "declared_use_case", path),
                government_end_users=_text(item, "government_end_users", path),
            ))
            apps = item.get("apps", [])
            expect(isinstance(apps, list), "expected a list of apps", f"{path}.apps")
            for j, app in enumerate(apps):
                app_path = f"{path}.apps[{j}]"
                expect(isinstance(app, dict), "expected an object", app_path)
                page.apps.append(AppRecord(
                    app_id=parse_id(app.get("id"), f"{app_path}.id"),
                    consumer_id=consumer_id,
                    name=_text(app, "name", app_path),
                    declared_use_case=_text(app, "declared_use_case", app_path),
                ))
        return page

    def _tier(self, item: Any, path: str) -> TierRecord:
        expect(isinstance(item, dict), "expected an object", path)
        tier_id = parse_id(item.get("id"), f"{path}.id")
        endpoints = item.get("allowed_endpoints")
        if endpoints is not None:
            expect(isinstance(endpoints, list) and all(isinstance(e, str) for e in endpoints),
                   "expected a list of endpoint patterns or null", f"{path}.allowed_endpoints")
        limits = []
        raw_limits = item.get("limits", [])
        expect(isinstance(raw_limits, list), "expected a list of limits", f"{path}.limits")
        for j, limit in enumerate(raw_limits):
            limit_path = f"{path}.limits[{j}]"
            expect(isinstance(limit, dict), "expected an object", limit_path)
            metric = limit.get("metric")
            expect(isinstance(metric, str) and bool(metric), "expected a metric", f"{limit_path}.metric")
            period = limit.get("period")
            expect(period in LIMIT_PERIODS, f"expected a period ({', '.join(LIMIT_PERIODS)})", f"{limit_path}.period")
            limits.append((metric, period, parse_count(limit.get("max"), f"{limit_path}.max")))
        clauses = item.get("clauses") or {}
        expect(isinstance(clauses, dict) and all(isinstance(v, str) for v in clauses.values()),
               "expected an object of clause references", f"{path}.clauses")
        name = item.get("name")
        return TierRecord(
            id=tier_id,
            name=name if isinstance(name, str) and name else tier_id,
            agreement_version=_text(item, "agreement_version", path),
            allowed_endpoints=endpoints,
            limits=limits,
            clauses=dict(clauses),
        )


def _asked(request: Request, window: Window) -> Window:
    """The days a usage or endpoints request asked for (its ``start`` and ``end``)."""
    params = dict(request.params)
    try:
        return Window(date.fromisoformat(params["start"]), date.fromisoformat(params["end"]))
    except (KeyError, ValueError):
        return window


def _data(body: dict[str, Any]) -> list[Any]:
    data = body.get("data")
    expect(isinstance(data, list), "expected a list", "$.data")
    return data


def _text(item: dict[str, Any], key: str, path: str) -> str | None:
    value = item.get(key)
    expect(value is None or isinstance(value, str), "expected text or null", f"{path}.{key}")
    return value


def _next(body: dict[str, Any], request: Request) -> Request | None:
    cursor = body.get("next")
    if cursor is None:
        return None
    expect(isinstance(cursor, str) and bool(cursor), "expected a cursor or null", "$.next")
    params = tuple(p for p in request.params if p[0] != "cursor") + (("cursor", cursor),)
    return Request(request.path, params)


def _without_duplicates(rows: list[Any]) -> list[Any]:
    """The rows with exact repeats dropped; a figure given twice with two values
    rejects the page, since storing either would be a silently wrong number."""
    if len({(row[0], row[1], row[2]) for row in rows}) == len(rows):
        return rows
    first: dict[tuple[str, str, str], tuple[int, int]] = {}
    kept: list[Any] = []
    for i, row in enumerate(rows):
        key = (row[0], row[1], row[2])
        seen = first.get(key)
        if seen is None:
            first[key] = (i, row[3])
            kept.append(row)
        elif seen[1] != row[3]:
            raise PageRejected(
                f"{key[0]!r} {key[1]} {key[2]!r} appears twice with different values "
                f"({seen[1]} at $.rows[{seen[0]}], {row[3]} here)",
                path=f"$.rows[{i}]",
            )
    return kept
