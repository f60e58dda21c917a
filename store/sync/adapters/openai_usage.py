"""``openai-usage``: OpenAI's organization usage API, completions.

``GET /v1/organization/usage/completions?start_time&end_time&bucket_width=1d
&group_by=api_key_id&limit&page`` (an admin key as bearer token), one chain per
calendar month of the window (``completions/YYYY-MM``), each followed through
``has_more`` / ``next_page``::

    {"object": "page",
     "data": [{"object": "bucket", "start_time": 1730419200, "end_time": 1730505600,
               "results": [{"object": "organization.usage.completions.result",
                            "api_key_id": "key_abc", "num_model_requests": 5,
                            "input_tokens": 1000, "output_tokens": 500, ...}]}],
     "has_more": true, "next_page": "page_AAAA..."}

Each result becomes, for its API key (the app) and the bucket's UTC day, the
metrics ``calls`` (``num_model_requests``), ``input_tokens`` and
``output_tokens``. A bucket is assigned to the UTC day of its ``start_time``: the
first bucket can be partial (it starts when asked, not at midnight) and still
counts for the day it starts in; two buckets landing on one day add up. A day
without usage is ``results: []`` and gives no rows: missing is not zero. A
bucket starting outside the request's ``start_time`` .. ``end_time`` rejects the
page (its figures were not asked for). A result without ``api_key_id`` (or any of the three counts) rejects the page.

Option ``bucket_limit`` (1..31, default 31) is the page size in buckets;
``project_ids`` restricts the query to those projects.

Errors are ``{"error": {"message", "type", "code"}}``. A 429 whose type is
``insufficient_quota`` is a billing stop, not a rate limit: not retried.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from store.sync.adapter import (
    ErrorVerdict, Option, ParsedPage, Request, Window, expect, expect_in_window, options_of,
)
from store.sync.counts import parse_count, parse_day, parse_id
from store.sync.retry import default_verdict, error_json

if TYPE_CHECKING:
    from store.config import SourceConfig

PATH = "v1/organization/usage/completions"
MAX_BUCKETS = 31
# Result field -> metric.
METRICS = (("num_model_requests", "calls"), ("input_tokens", "input_tokens"), ("output_tokens", "output_tokens"))
# Error types that look like a rate limit but will not clear by waiting.
NOT_RETRIED_TYPES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})


class OpenAIUsage:
    """Adapter for OpenAI completions usage grouped by API key."""

    kind: ClassVar[str] = "openai-usage"
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option("bucket_limit", int, default=MAX_BUCKETS, low=1, high=MAX_BUCKETS),
        Option("project_ids", list, default=[]),
    )

    def __init__(self, source: SourceConfig) -> None:
        self.source = source
        options = options_of(self, source)
        self.bucket_limit: int = options["bucket_limit"]
        self.project_ids: list[str] = list(options["project_ids"])

    def chains(self, window: Window) -> dict[str, Request]:
        chains: dict[str, Request] = {}
        for month in window.months():
            start = datetime(month.start.year, month.start.month, month.start.day, tzinfo=timezone.utc)
            end = datetime(month.end.year, month.end.month, month.end.day, tzinfo=timezone.utc) + timedelta(days=1)
            params: list[tuple[str, str]] = [
                ("start_time", str(int(start.timestamp()))), ("end_time", str(int(end.timestamp()))),
                ("bucket_width", "1d"), ("group_by", "api_key_id"), ("limit", str(self.bucket_limit)),
            ]
            params += [("project_ids", project) for project in self.project_ids]
            chains[f"completions/{month.start:%Y-%m}"] = Request(path=PATH, params=tuple(params))
        return chains

    def auth_headers(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes, now: float) -> ErrorVerdict:
        error = _error(body)
        kind = error.get("type") if isinstance(error.get("type"), str) else ""
        code = error.get("code") if isinstance(error.get("code"), str) else ""
        message = error.get("message")
        detail = message.strip()[:200] if isinstance(message, str) else ""
        if kind in NOT_RETRIED_TYPES or code in NOT_RETRIED_TYPES:
            said = f": {detail}" if detail else ""
            return ErrorVerdict(retry=False, reason=f"{kind or code} (HTTP {status}){said}; not retried")
        return default_verdict(status, headers, now, detail=detail)

    def parse(self, chain: str, request: Request, body: Any, window: Window) -> ParsedPage:
        expect(isinstance(body, dict), "expected a JSON object", "$")
        buckets = body.get("data")
        expect(isinstance(buckets, list), "expected a list of buckets", "$.data")
        asked = _asked(request, window)
        # (app, day, metric) -> value; buckets of one day (a partial first one) add up.
        figures: dict[tuple[str, str, str], int] = {}
        # A bucket or a key repeated within a page would be added twice: refused.
        starts: set[object] = set()
        for i, bucket in enumerate(buckets):
            where = f"$.data[{i}]"
            expect(isinstance(bucket, dict), "expected an object", where)
            expect("start_time" in bucket, "bucket without start_time", f"{where}.start_time")
            day = parse_day(bucket["start_time"], f"{where}.start_time")
            expect_in_window(day, asked, f"{where}.start_time")
            expect(bucket["start_time"] not in starts, "this bucket's start_time appears twice in the page",
                   f"{where}.start_time")
            starts.add(bucket["start_time"])
            keys: set[str] = set()
            results = bucket.get("results")
            expect(isinstance(results, list), "expected a list of results", f"{where}.results")
            for j, result in enumerate(results):
                at = f"{where}.results[{j}]"
                expect(isinstance(result, dict), "expected an object", at)
                expect("api_key_id" in result, "result without api_key_id (group_by=api_key_id)", f"{at}.api_key_id")
                app_id = parse_id(result["api_key_id"], f"{at}.api_key_id")
                expect(app_id not in keys, "this api_key_id appears twice in the bucket", f"{at}.api_key_id")
                keys.add(app_id)
                for field, metric in METRICS:
                    expect(field in result, f"result without {field}", f"{at}.{field}")
                    value = parse_count(result[field], f"{at}.{field}")
                    key = (app_id, day, metric)
                    figures[key] = figures.get(key, 0) + value
        page = ParsedPage(usage=[(app, day, metric, value) for (app, day, metric), value in figures.items()])
        has_more = body.get("has_more", False)
        expect(isinstance(has_more, bool), "expected true or false", "$.has_more")
        if has_more:
            cursor = body.get("next_page")
            expect(isinstance(cursor, str) and bool(cursor), "has_more without next_page", "$.next_page")
            params = tuple((k, v) for k, v in request.params if k != "page") + (("page", cursor),)
            page.next = Request(path=request.path, params=params)
        return page


def _asked(request: Request, window: Window) -> Window:
    """The UTC days between the request's ``start_time`` and ``end_time`` (exclusive)."""
    params = dict(request.params)
    try:
        start = datetime.fromtimestamp(int(params["start_time"]), timezone.utc).date()
        end = datetime.fromtimestamp(int(params["end_time"]) - 1, timezone.utc).date()
    except (KeyError, ValueError, OverflowError, OSError):
        return window
    return Window(start, end)


def _error(body: bytes) -> dict[str, Any]:
    data = error_json(body)
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}
