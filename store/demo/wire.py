"""What the demo endpoint sends: an answer (status, body, headers) and errors in
the shape of the API asked, shared by its routes (:mod:`store.demo.server`) and
the faults played on the wire (:mod:`store.demo.wire_faults`)."""

from __future__ import annotations

import json
from typing import Any

X_RATE_LIMIT = 50
USAGE_CAPPED = "https://api.twitter.com/2/problems/usage-capped"


class Answer:
    """What a route produced, before faults rewrite or replace it."""

    __slots__ = ("status", "body", "headers", "family", "start_cursor")

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None, *,
                 family: str = "", start_cursor: str | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.family = family                # "rows" | "data" | "x" | "" (what page faults rewrite)
        self.start_cursor = start_cursor    # a cursor for where this page began


def dumps(value: Any) -> bytes:
    """Compact JSON, as bytes."""
    return json.dumps(value, separators=(",", ":")).encode()


def error(status: int, code: str, message: str, *, x: bool, headers: dict[str, str] | None = None) -> Answer:
    """An error in the shape of the API asked: X's RFC 7807 problem, or the feed's."""
    if x:
        titles = {400: "Invalid Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found Error",
                  429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
                  503: "Service Unavailable"}
        title = titles.get(status, "Error")
        body = {"title": title, "type": "about:blank", "status": status, "detail": message}
    else:
        body = {"error": {"code": code, "message": message}}
    return Answer(status, dumps(body), dict(headers or {}))


# The feed's error code for each HTTP status.
ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 429: "rate_limited",
               500: "internal", 502: "bad_gateway", 503: "unavailable"}
