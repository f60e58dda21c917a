"""The demo endpoint answering as two vendors' documented usage APIs, so that
``aws-usage-plan`` and ``openai-usage`` (and ``http-json`` configurations of
them) sync from the same server, faults included, as the feed and X do.

Amazon API Gateway (``/usageplans/{PLAN}``, ``/keys``, ``/usage``)
    one usage plan, ``PLAN``, with three API keys; ``used`` per key and day from
    :func:`used`; two keys per page, chained by ``position``.
OpenAI (``/v1/organization/usage/completions``)
    daily buckets between ``start_time`` and ``end_time``, ``limit`` buckets a
    page, chained by ``page``; every fifth day of the month has ``results: []``.

Figures are a pure function of (key, day): they do not depend on the window asked
for, so a configuration asking by other windows must get the same totals.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from typing import Any

from store.demo.faults import Fault
from store.demo.wire import Answer, dumps

PLAN = "plan7"
KEYS = ("key-a", "key-b", "key-c")
AWS_PREFIX = "/usageplans/"
OPENAI_PATH = "/v1/organization/usage/completions"
DAY = 86_400
FAMILIES = frozenset({"aws", "openai"})


def used(key: str, day: date) -> int:
    """Calls of API key ``key`` on ``day`` (also the OpenAI requests of that key)."""
    return (sum(map(ord, key)) * 7 + day.toordinal() % 97) * 13


def serves(path: str) -> bool:
    return path.startswith(AWS_PREFIX) or path == OPENAI_PATH


def answer(path: str, query: dict[str, str]) -> Answer:
    """The vendor's answer (404 in its words for anything else; 400 for a bad parameter)."""
    try:
        body, family = _body(path, query)
    except (KeyError, ValueError, OverflowError, OSError):
        return _error(path, 400, "a required parameter is missing or malformed")
    if body is None:
        return _error(path, 404, f"no such resource: {path}")
    return Answer(200, dumps(body), family=family)


def _body(path: str, query: dict[str, str]) -> tuple[dict[str, Any] | None, str]:
    at = int(query.get("position", query.get("page", "0")).split("+")[0])
    if path == f"{AWS_PREFIX}{PLAN}":
        return {"id": PLAN, "name": "Gold", "quota": {"limit": 5_000_000_000, "offset": 0, "period": "MONTH"},
                "throttle": {"rateLimit": 100.0, "burstLimit": 200}}, "aws-plan"
    if path == f"{AWS_PREFIX}{PLAN}/keys":
        body: dict[str, Any] = {"item": [{"id": k, "name": f"Key {k}", "type": "API_KEY", "value": "SECRET-VALUE"}
                                         for k in KEYS[at:at + 2]]}
        if at + 2 < len(KEYS):
            body["position"] = str(at + 2)
        return body, "aws-keys"
    if path == f"{AWS_PREFIX}{PLAN}/usage":
        start, end = date.fromisoformat(query["startDate"]), date.fromisoformat(query["endDate"])
        days = [start + timedelta(n) for n in range((end - start).days + 1)]
        body = {"startDate": query["startDate"], "endDate": query["endDate"],
                "values": {k: [[used(k, d), 10**9] for d in days] for k in KEYS[at:at + 2]}}
        if at + 2 < len(KEYS):
            body["position"] = str(at + 2)
        return body, "aws"
    if path == OPENAI_PATH:
        start, end = int(query["start_time"]), int(query["end_time"])
        limit = int(query.get("limit", "31"))
        stamps = list(range(start, end, DAY))
        buckets = []
        for stamp in stamps[at:at + limit]:
            day = datetime.fromtimestamp(stamp, timezone.utc).date()
            results = [] if day.day % 5 == 0 else [
                {"object": "organization.usage.completions.result", "api_key_id": k,
                 "num_model_requests": used(k, day), "input_tokens": str(used(k, day) * 40),
                 "output_tokens": used(k, day) * 9, "model": None, "project_id": None}
                for k in KEYS]
            buckets.append({"object": "bucket", "start_time": stamp, "end_time": stamp + DAY, "results": results})
        more = at + limit < len(stamps)
        return {"object": "page", "data": buckets, "has_more": more,
                "next_page": str(at + limit) if more else None}, "openai"
    return None, ""


def _error(path: str, status: int, message: str) -> Answer:
    if path == OPENAI_PATH:
        return Answer(status, dumps({"error": {"message": message, "type": "invalid_request_error"}}))
    return Answer(status, dumps({"message": message}))


_BAD: dict[str, Any] = {"wrong_type": {"value": 1}, "negative": -5, "over64": 2**64 + 5, "fractional": 62.5}


def rewrite(fault: Fault, answer: Answer, query: dict[str, str]) -> Answer:
    """A usage page of either vendor rewritten by a page fault (the first count,
    row, cursor ...); their keys and plan pages are left as they are."""
    if answer.family not in FAMILIES:
        return answer
    body = json.loads(answer.body)
    kind = fault.kind
    if answer.family == "openai":
        rows = [b for b in body["data"] if b["results"]]
        if kind in _BAD and rows:
            rows[0]["results"][0]["num_model_requests"] = _BAD[kind]
        elif kind == "duplicate" and rows:
            body["data"].insert(1, json.loads(json.dumps(rows[0])))
        elif kind == "repeat_cursor":
            body["has_more"], body["next_page"] = True, query.get("page", "0")
        elif kind == "empty_page":
            body["data"] = []
            body["has_more"], body["next_page"] = True, query.get("page", "0") + "+0"
    else:
        values = body["values"]
        first = next(iter(values), None)
        if kind in _BAD and first is not None:
            values[first][0][0] = _BAD[kind]
        elif kind == "duplicate" and first is not None:
            values[first].insert(1, list(values[first][0]))
        elif kind == "repeat_cursor":
            body["position"] = query.get("position", "0")
        elif kind == "empty_page":
            body["values"] = {}
            body["position"] = query.get("position", "0") + "+0"
    return Answer(answer.status, dumps(body), answer.headers, family=answer.family)
