"""``aws-usage-plan``: Amazon API Gateway usage plans (REST API).

Chains for a window:

``plan``
    ``GET /usageplans/{id}``: ``quota.limit``, ``quota.period``, ``quota.offset``,
    ``throttle.rateLimit``, ``throttle.burstLimit`` and ``name`` become source
    facts (``quota_limit``, ``quota_period``, ...). Not usage: the plan's quota is
    what AWS enforces, the tier in the config is what the agreement says.
``keys``
    ``GET /usageplans/{id}/keys?limit&position``: ``{"item": [{"id", "name",
    "type", "value"}], "position"}``; each key becomes an app (id, name) owned by
    nobody until the roster says so. The key's ``value`` is the API key itself and
    is never read.
``usage/YYYY-MM``
    one per calendar month of the window: ``GET /usageplans/{id}/usage?startDate
    &endDate&limit&position``: ``{"startDate", "endDate", "position", "values":
    {"<key id>": [[used, remaining], ...]}}`` with one pair per day from
    ``startDate``; ``used`` becomes metric ``calls`` for (key, day). (The SDKs call
    ``values`` ``items``; both are read.) A day pair that is not a pair, or more
    pairs than days asked for, or a day the request did not ask for (an answer whose
    ``startDate`` is not the one asked), rejects the page.

Errors are ``{"message": "..."}``; 429 carries ``Retry-After`` (both handled by
:func:`store.sync.retry.default_verdict`).

Credentials: a URL on ``*.amazonaws.com`` is signed with AWS Signature Version 4
by botocore (``pip install 'warden[aws]'``), with credentials from the standard
environment variables ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and
``AWS_SESSION_TOKEN``; the region is option ``region`` or read from the host
(``apigateway.eu-west-1.amazonaws.com``). Any other URL (a gateway proxy, the
loopback test server) gets ``Authorization: Bearer <token>`` from ``token_env``,
which the configuration must then name.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generator, Mapping
from urllib.parse import urlsplit

import httpx

from store.errors import ConfigError, PageRejected
from store.sync.adapter import (
    AppRecord, ErrorVerdict, Option, ParsedPage, Request, Window, expect, expect_in_window, options_of,
)
from store.sync.counts import parse_count, parse_day, parse_id
from store.sync.retry import default_verdict, error_detail

if TYPE_CHECKING:
    from store.config import SourceConfig

METRIC = "calls"
DEFAULT_PAGE_LIMIT = 500
_AWS_HOST = re.compile(r"(?:[a-z0-9-]+\.)*?(?:apigateway\.)?([a-z]{2}(?:-gov)?-[a-z]+-\d)\.amazonaws\.com(?:\.cn)?")


def is_aws_host(host: str) -> bool:
    """Whether requests to ``host`` go to AWS itself (and must be signed)."""
    host = host.lower().rstrip(".")
    return host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn")


class AwsUsagePlan:
    """Adapter for one API Gateway usage plan (option ``usage_plan_id``)."""

    kind: ClassVar[str] = "aws-usage-plan"
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option("usage_plan_id", str, required=True),
        Option("region", str),                   # default: read from the URL's host
        Option("limit", int, default=DEFAULT_PAGE_LIMIT, low=1, high=1000),   # keys per page
    )

    def __init__(self, source: SourceConfig) -> None:
        self.source = source
        options = options_of(self, source)
        self.plan_id: str = options["usage_plan_id"]
        self.page_limit: int = options["limit"]
        host = urlsplit(source.url).hostname or ""
        self.signed = is_aws_host(host)
        self.region: str | None = options["region"]
        if self.signed:
            if self.region is None:
                match = _AWS_HOST.fullmatch(host.lower())
                if match is None:
                    raise ConfigError(f"source {source.name!r}: cannot tell the AWS region from {host!r}; "
                                      "set option region")
                self.region = match.group(1)
            try:
                import botocore.auth  # noqa: F401  (optional dependency, checked up front)
            except ImportError:
                raise ConfigError(
                    f"source {source.name!r}: requests to AWS must be signed (SigV4), which needs botocore: "
                    "pip install 'warden[aws]'") from None

    @classmethod
    def check_source(cls, source: SourceConfig) -> str | None:
        """SigV4 is for AWS itself; any other host (a gateway proxy) takes the
        bearer token of ``token_env``: without one nothing would be sent."""
        host = urlsplit(source.url).hostname or ""
        if not is_aws_host(host) and not source.token_env:
            return (f"requests are signed with SigV4 only for amazonaws.com hosts; {host!r} is not one, so it "
                    "needs token_env (the variable holding its bearer token)")
        return None

    # --- requests -------------------------------------------------------------

    def chains(self, window: Window) -> dict[str, Request]:
        base = f"usageplans/{self.plan_id}"
        chains = {
            "plan": Request.get(base),
            "keys": Request.get(f"{base}/keys", limit=self.page_limit),
        }
        for month in window.months():
            chains[f"usage/{month.start:%Y-%m}"] = Request.get(
                f"{base}/usage", startDate=month.start.isoformat(), endDate=month.end.isoformat(),
                limit=self.page_limit)
        return chains

    def auth_headers(self, token: str | None) -> dict[str, str]:
        if self.signed or not token:
            return {}
        return {"Authorization": f"Bearer {token}"}

    def request_auth(self, token: str | None) -> httpx.Auth | None:
        """SigV4 signing for AWS hosts (credentials from the AWS_* variables)."""
        if not self.signed:
            return None
        assert self.region is not None
        return SigV4(_credentials_from_env(self.source.name), self.region)

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes, now: float) -> ErrorVerdict:
        return default_verdict(status, headers, now, detail=error_detail(body, "message", "Message"))

    # --- responses ----------------------------------------------------------------

    def parse(self, chain: str, request: Request, body: Any, window: Window) -> ParsedPage:
        expect(isinstance(body, dict), "expected a JSON object", "$")
        if chain == "plan":
            return self._plan(body)
        if chain == "keys":
            return self._keys(request, body)
        return self._usage(request, body)

    def _plan(self, body: dict[str, Any]) -> ParsedPage:
        page = ParsedPage()
        if isinstance(body.get("name"), str):
            page.facts["plan_name"] = body["name"]
        quota = body.get("quota")
        if quota is not None:
            expect(isinstance(quota, dict), "expected an object", "$.quota")
            expect("limit" in quota, "quota without its limit", "$.quota.limit")
            page.facts["quota_limit"] = str(parse_count(quota["limit"], "$.quota.limit"))
            period = quota.get("period")
            expect(isinstance(period, str) and period.upper() in ("DAY", "WEEK", "MONTH"),
                   "expected DAY, WEEK or MONTH", "$.quota.period")
            page.facts["quota_period"] = period.upper()
            if quota.get("offset") is not None:
                page.facts["quota_offset"] = str(parse_count(quota["offset"], "$.quota.offset"))
        throttle = body.get("throttle")
        if throttle is not None:
            expect(isinstance(throttle, dict), "expected an object", "$.throttle")
            rate = throttle.get("rateLimit")
            if rate is not None:
                expect(isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate >= 0,
                       "expected a non-negative number", "$.throttle.rateLimit")
                page.facts["throttle_rate_limit"] = repr(float(rate))
            if throttle.get("burstLimit") is not None:
                page.facts["throttle_burst_limit"] = str(parse_count(throttle["burstLimit"], "$.throttle.burstLimit"))
        return page

    def _keys(self, request: Request, body: dict[str, Any]) -> ParsedPage:
        items, path = _first_list(body, ("item", "items"))
        if items is None and isinstance(body.get("_embedded"), dict):  # HAL form of the REST API
            items, path = _first_list(body["_embedded"], ("item",))
            path = "$._embedded.item"
        if items is None:
            # An empty plan may answer {} (AWS omits empty lists).
            expect(not body.get("item") and "position" not in body, "expected a list of keys", "$.item")
            items, path = [], "$.item"
        page = ParsedPage()
        for i, item in enumerate(items):
            where = f"{path}[{i}]"
            expect(isinstance(item, dict), "expected an object", where)
            app_id = parse_id(item.get("id"), f"{where}.id")
            name = item.get("name")
            expect(name is None or isinstance(name, str), "expected a string", f"{where}.name")
            # item["value"] is the API key itself: never read.
            page.apps.append(AppRecord(app_id=app_id, name=name or None))
        page.next = _next(request, body)
        return page

    def _usage(self, request: Request, body: dict[str, Any]) -> ParsedPage:
        params = dict(request.params)
        asked = Window(date.fromisoformat(params["startDate"]), date.fromisoformat(params["endDate"]))
        start, end = asked.start, asked.end
        if body.get("startDate") is not None:
            # Where the answer's list of days begins; each day must still be one asked for.
            start = date.fromisoformat(parse_day(body["startDate"], "$.startDate"))
        values, path = _first_dict(body, ("values", "items"))
        if values is None:
            expect("position" not in body and not any(k in body for k in ("values", "items")),
                   "expected an object of usage per key", "$.values")
            values, path = {}, "$.values"
        span = (end - start).days + 1
        page = ParsedPage()
        rows = page.usage
        for key_id, days in values.items():
            where = f"{path}.{key_id}"
            expect(isinstance(days, list), "expected a list of [used, remaining] pairs", where)
            expect(len(days) <= span, f"{len(days)} days of usage for a window of {span} days", where)
            app_id = parse_id(key_id, where)
            for offset, pair in enumerate(days):
                pair_path = f"{where}[{offset}]"
                expect(isinstance(pair, list) and len(pair) == 2, "expected a [used, remaining] pair", pair_path)
                day = _day_after(start, offset, pair_path)
                expect_in_window(day, asked, pair_path)
                used = parse_count(pair[0], f"{pair_path}[0]")
                rows.append((app_id, day, METRIC, used))
        page.next = _next(request, body)
        return page


def _day_after(start: date, offset: int, path: str) -> str:
    try:
        return (start + timedelta(days=offset)).isoformat()
    except OverflowError:
        raise PageRejected(f"{offset} days after {start} is past the last date", path=path) from None


def _first_list(body: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[list[Any] | None, str]:
    for key in keys:
        if key in body:
            expect(isinstance(body[key], list), "expected a list", f"$.{key}")
            return body[key], f"$.{key}"
    return None, "$"


def _first_dict(body: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[dict[str, Any] | None, str]:
    for key in keys:
        if key in body:
            expect(isinstance(body[key], dict), "expected an object keyed by API key id", f"$.{key}")
            return body[key], f"$.{key}"
    return None, "$"


def _next(request: Request, body: Mapping[str, Any]) -> Request | None:
    position = body.get("position")
    if position is None or position == "":
        return None
    expect(isinstance(position, str), "expected a string", "$.position")
    params = tuple((k, v) for k, v in request.params if k != "position") + (("position", position),)
    return Request(path=request.path, params=params)


# --- SigV4 ------------------------------------------------------------------------

def _credentials_from_env(source_name: str) -> Any:
    """botocore credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
    AWS_SESSION_TOKEN only (no profile files, no instance metadata calls)."""
    from botocore.credentials import EnvProvider

    credentials = EnvProvider().load()
    if credentials is None:
        raise ConfigError(f"source {source_name!r}: AWS credentials not found: set AWS_ACCESS_KEY_ID and "
                          "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)")
    return credentials


class SigV4(httpx.Auth):
    """Signs each request with AWS Signature Version 4 (botocore), service ``apigateway``."""

    def __init__(self, credentials: Any, region: str, service: str = "apigateway") -> None:
        self.credentials = credentials
        self.region = region
        self.service = service

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        aws_request = AWSRequest(method=request.method, url=str(request.url), data=request.content,
                                 headers={"host": request.url.netloc.decode("ascii")})
        SigV4Auth(self.credentials, self.service, self.region).add_auth(aws_request)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256"):
            if name in aws_request.headers:
                request.headers[name] = aws_request.headers[name]
        yield request
