"""When to retry a request, and how long to wait.

Adapters classify their vendor's error responses with :func:`default_verdict`
(plus their own special cases, such as X's ``usage-capped`` problem); the engine
waits with :func:`backoff_delay` unless the server said how long to wait
(:func:`retry_after_seconds`).
"""

from __future__ import annotations

import json
import random
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any, Mapping

from store.sync.adapter import ErrorVerdict

# Statuses worth asking again: rate limited, or the server (or a proxy) failing.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asks us to wait, from ``Retry-After`` (seconds or an
    HTTP-date) or ``x-rate-limit-reset`` (epoch seconds, X); ``None`` if neither.

    ``now`` is epoch seconds. A moment already past means "now" (0).
    """
    value = _header(headers, "retry-after")
    if value is not None:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                # HTTP-dates are always GMT; the asctime form (and "-0000") parse
                # without a zone, which .timestamp() would read as local time.
                moment = moment.replace(tzinfo=timezone.utc)
            return max(0.0, moment.timestamp() - now)
    reset = _header(headers, "x-rate-limit-reset")
    if reset is not None:
        try:
            return max(0.0, float(reset.strip()) - now)
        except ValueError:
            return None
    return None


def default_verdict(status: int, headers: Mapping[str, str], now: float, *, detail: str = "") -> ErrorVerdict:
    """The usual reading of an HTTP error status.

    429, 408 and 5xx are retried (honouring ``Retry-After``); 401 and 403 stop the
    source (the credential is wrong, asking again will not help); any other status
    stops too. ``detail`` is a short server message to quote (never a secret).
    """
    said = f": {detail}" if detail else ""
    if status in RETRY_STATUSES:
        reason = "rate limited (HTTP 429)" if status == 429 else f"server error (HTTP {status})"
        return ErrorVerdict(retry=True, reason=reason + said, retry_after=retry_after_seconds(headers, now))
    if status == 401:
        return ErrorVerdict(retry=False, reason=f"not authorised (HTTP 401): check the token{said}")
    if status == 403:
        return ErrorVerdict(retry=False, reason=f"forbidden (HTTP 403): the token lacks access{said}")
    return ErrorVerdict(retry=False, reason=f"unexpected HTTP {status}{said}")


def backoff_delay(attempt: int, *, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter for the ``attempt``-th retry (1-based): a
    random wait between half and all of ``min(cap, base * 2**(attempt-1))``, so
    clients retrying together spread out yet each still backs off."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(ceiling / 2, ceiling)


def error_json(body: bytes) -> Any:
    """An error body decoded as JSON (its first 64 KiB), or ``None`` when it is not JSON."""
    try:
        return json.loads(body[:65536])
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deeply
        return None


def error_detail(body: bytes, *keys: str) -> str:
    """A short message from a JSON error body (the first of ``keys`` that is a
    string, looked up at the top level and under ``error``), or ``""``."""
    data = error_json(body)
    for holder in (data, data.get("error") if isinstance(data, dict) else None):
        if isinstance(holder, dict):
            for key in keys or ("message", "detail", "title"):
                value = holder.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()[:200]
    return ""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """The header ``name`` (lower case) in any case: httpx.Headers ignore case, plain dicts do not."""
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
