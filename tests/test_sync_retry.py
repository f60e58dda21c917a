"""Retry policy and what a stored URL may contain."""

from __future__ import annotations

import random
from email.utils import format_datetime
from datetime import datetime, timezone

from store.secrets import public_url
from store.sync.retry import backoff_delay, default_verdict, retry_after_seconds

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()


def test_retry_after_in_seconds_http_date_and_x_rate_limit_reset() -> None:
    assert retry_after_seconds({"Retry-After": "7"}, NOW) == 7.0
    later = datetime.fromtimestamp(NOW + 30, timezone.utc)
    assert retry_after_seconds({"retry-after": format_datetime(later, usegmt=True)}, NOW) == 30.0
    assert retry_after_seconds({"x-rate-limit-reset": str(int(NOW) + 12)}, NOW) == 12.0
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, NOW) == 0.0  # past: now
    assert retry_after_seconds({}, NOW) is None
    assert retry_after_seconds({"Retry-After": "soon"}, NOW) is None


def test_default_verdict() -> None:
    assert default_verdict(429, {"Retry-After": "2"}, NOW).retry_after == 2.0
    assert all(default_verdict(s, {}, NOW).retry for s in (500, 502, 503, 504, 408))
    assert not any(default_verdict(s, {}, NOW).retry for s in (400, 401, 403, 404))
    assert "401" in default_verdict(401, {}, NOW).reason


def test_backoff_grows_with_attempts_and_is_capped() -> None:
    rng = random.Random(1)
    first = [backoff_delay(1, rng=rng) for _ in range(50)]
    fifth = [backoff_delay(5, rng=rng) for _ in range(50)]
    assert max(first) <= 0.5 < min(fifth)
    assert len(set(first)) > 1  # jittered
    assert max(backoff_delay(40, rng=rng) for _ in range(50)) <= 30.0


def test_public_url_drops_credentials() -> None:
    url = public_url("https://user:pw@api.example/v1/usage?api_key=k1&start=2022-01-01",
                     (("token", "t1"), ("cursor", "abc"), ("x", "sekrit-123")), secrets=("sekrit-123",))
    assert "pw" not in url and "user" not in url and "k1" not in url and "t1" not in url
    assert "sekrit-123" not in url
    assert url.startswith("https://api.example/v1/usage?")
    assert "start=2022-01-01" in url and "cursor=abc" in url


def test_retry_after_http_date_without_a_zone_is_gmt_on_any_host(monkeypatch) -> None:
    # RFC 9110 makes recipients accept the asctime form, which names no zone but
    # is GMT; a host whose local zone is not UTC must wait the same 30 seconds.
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        asctime = datetime.fromtimestamp(NOW + 30, timezone.utc).strftime("%a %b %d %H:%M:%S %Y")
        assert retry_after_seconds({"Retry-After": asctime}, NOW) == 30.0
        numeric = datetime.fromtimestamp(NOW + 30, timezone.utc).strftime("%a, %d %b %Y %H:%M:%S -0000")
        assert retry_after_seconds({"Retry-After": numeric}, NOW) == 30.0
    finally:
        monkeypatch.undo()
        time.tzset()


def test_public_url_hides_a_secret_that_the_url_percent_encodes() -> None:
    # Tokens are often base64 ('+', '/', '='): in a URL they are percent-encoded,
    # and the stored URL (sync_page.url, messages, evidence in exports) must not
    # hold them in any spelling.
    from urllib.parse import unquote, unquote_plus

    secret = "sk-abc+def/ghi=jkl123"
    url = public_url(f"https://api.example/v1/{secret.replace('/', '%2F')}/usage?after={secret.replace('+', '%2B')}",
                     (("cursor", "c-" + secret),), secrets=(secret,))
    for spelling in (url, unquote(url), unquote_plus(url)):
        assert "abc+def" not in spelling and "abc def" not in spelling and "jkl123" not in spelling, url
    assert url.startswith("https://api.example/v1/") and "cursor=" in url and "after=" in url


def test_secret_params_names_the_credential_parameters_never_their_values() -> None:
    from store.secrets import secret_params

    assert secret_params("start=2022-01-01&API_KEY=k1&x-amz-signature=s&api_key=k2&cursor=c") == [
        "API_KEY", "api_key", "x-amz-signature"]
    assert secret_params("start=2022-01-01&keys=3&tokens=") == []
    assert secret_params("") == []


def test_kind_of_names_the_toml_type_never_the_value() -> None:
    from datetime import date, datetime

    from store.secrets import kind_of

    values = (True, 7, 1.5, "sk-live-secret", datetime(2022, 1, 1, 3), date(2022, 1, 1), ["x"], {"k": "v"}, None)
    assert [kind_of(v) for v in values] == ["a boolean", "an integer", "a float", "a string", "a date-time",
                                            "a date", "an array", "a table", "NoneType"]


# --- known answers on every limit (written out here, not the module's constants) ---


def test_a_negative_or_zero_retry_after_means_now_and_a_fraction_is_kept() -> None:
    assert retry_after_seconds({"Retry-After": "-5"}, NOW) == 0.0
    assert retry_after_seconds({"Retry-After": "0"}, NOW) == 0.0
    assert retry_after_seconds({"Retry-After": "0.5"}, NOW) == 0.5
    assert retry_after_seconds({"Retry-After": " 3 "}, NOW) == 3.0
    assert retry_after_seconds({"x-rate-limit-reset": str(int(NOW) - 60)}, NOW) == 0.0   # a reset already past
    assert retry_after_seconds({"x-rate-limit-reset": str(int(NOW))}, NOW) == 0.0
    assert retry_after_seconds({"x-rate-limit-reset": str(int(NOW) + 1)}, NOW) == 1.0
    assert retry_after_seconds({"x-rate-limit-reset": "soon"}, NOW) is None
    assert retry_after_seconds({"Retry-After": format_datetime(datetime.fromtimestamp(NOW, timezone.utc),
                                                               usegmt=True)}, NOW) == 0.0
    one_past = datetime.fromtimestamp(NOW + 1, timezone.utc)
    assert retry_after_seconds({"Retry-After": format_datetime(one_past, usegmt=True)}, NOW) == 1.0


def test_retry_after_reads_headers_in_any_case_and_prefers_retry_after() -> None:
    for name in ("Retry-After", "retry-after", "RETRY-AFTER"):
        assert retry_after_seconds({name: "4"}, NOW) == 4.0
    for name in ("x-rate-limit-reset", "X-Rate-Limit-Reset"):
        assert retry_after_seconds({name: str(int(NOW) + 9)}, NOW) == 9.0
    both = {"X-Rate-Limit-Reset": str(int(NOW) + 9), "Retry-After": "4"}
    assert retry_after_seconds(both, NOW) == 4.0
    # An unreadable Retry-After falls back to X's reset time.
    assert retry_after_seconds({"Retry-After": "later", "x-rate-limit-reset": str(int(NOW) + 9)}, NOW) == 9.0


def test_an_http_date_with_a_numeric_zone_is_read_in_that_zone() -> None:
    # 01:00:30 at +0100 is 00:00:30 UTC: 30 seconds after NOW (midnight UTC).
    assert retry_after_seconds({"Retry-After": "Thu, 01 Jan 2026 01:00:30 +0100"}, NOW) == 30.0


def test_each_status_gets_its_reason_word_for_word() -> None:
    cases = {
        429: (True, "rate limited (HTTP 429)"),
        408: (True, "server error (HTTP 408)"),
        425: (True, "server error (HTTP 425)"),
        500: (True, "server error (HTTP 500)"),
        502: (True, "server error (HTTP 502)"),
        503: (True, "server error (HTTP 503)"),
        504: (True, "server error (HTTP 504)"),
        401: (False, "not authorised (HTTP 401): check the token"),
        403: (False, "forbidden (HTTP 403): the token lacks access"),
        400: (False, "unexpected HTTP 400"),
        402: (False, "unexpected HTTP 402"),
        404: (False, "unexpected HTTP 404"),
        430: (False, "unexpected HTTP 430"),
        501: (False, "unexpected HTTP 501"),
    }
    for status, (retry, reason) in cases.items():
        verdict = default_verdict(status, {"Retry-After": "3"}, NOW)
        assert (verdict.retry, verdict.reason) == (retry, reason), status
        assert verdict.retry_after == (3.0 if retry else None), status
    assert default_verdict(503, {}, NOW).retry_after is None
    assert default_verdict(503, {"x-rate-limit-reset": str(int(NOW) + 5)}, NOW).retry_after == 5.0
    assert default_verdict(429, {}, NOW, detail="slow down").reason == "rate limited (HTTP 429): slow down"
    assert default_verdict(401, {}, NOW, detail="bad key").reason == "not authorised (HTTP 401): check the token: bad key"
    assert default_verdict(403, {}, NOW, detail="no").reason == "forbidden (HTTP 403): the token lacks access: no"
    assert default_verdict(418, {}, NOW, detail="teapot").reason == "unexpected HTTP 418: teapot"


class _Bounds:
    """A random source that answers the top of the range asked for, and records it."""

    def __init__(self) -> None:
        self.asked: list[tuple[float, float]] = []

    def uniform(self, low: float, high: float) -> float:
        self.asked.append((low, high))
        return high


def test_backoff_waits_half_to_all_of_a_doubling_ceiling_capped_at_30_seconds() -> None:
    rng = _Bounds()
    waits = [backoff_delay(attempt, rng=rng) for attempt in (0, 1, 2, 3, 4, 5, 6, 7, 40)]  # type: ignore[arg-type]
    assert rng.asked == [(0.25, 0.5), (0.25, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, 8.0),
                         (8.0, 16.0), (15.0, 30.0), (15.0, 30.0)]
    assert waits == [0.5, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    # Without a random source of its own it draws from the module's.
    assert 0.25 <= backoff_delay(1) <= 0.5


def test_an_error_body_gives_its_message_from_the_first_key_that_holds_text() -> None:
    from store.sync.retry import error_detail, error_json

    assert error_detail(b'{"message": "quota", "detail": "d", "title": "t"}') == "quota"
    assert error_detail(b'{"detail": "d", "title": "t"}') == "d"
    assert error_detail(b'{"title": "t"}') == "t"
    assert error_detail(b'{"message": 5, "detail": "  d  "}') == "d"          # not text: the next key
    assert error_detail(b'{"message": "   ", "title": "t"}') == "t"           # blank: the next key
    assert error_detail(b'{"error": {"message": "nested"}}') == "nested"      # OpenAI nests it
    assert error_detail(b'{"message": "top", "error": {"message": "nested"}}') == "top"
    assert error_detail(b'{"error": "flat"}') == ""
    assert error_detail(b'{"error": {"code": "x"}, "code": "y"}', "code") == "y"
    assert error_detail(b'{"error": {"code": "x"}}', "code") == "x"
    assert error_detail(b'{"message": "m"}', "code") == ""                    # only the keys asked for
    assert error_detail(b'["message"]') == "" and error_detail(b"not json") == "" and error_detail(b"") == ""
    assert error_detail(b"\xff\xfe") == ""
    assert error_detail(b'{"message": "' + b"m" * 300 + b'"}') == "m" * 200   # quoted at most 200 characters
    # The first 64 KiB of a body are read, no more: a body one byte longer is cut, so not JSON.
    exactly = b'{"message": "' + b"m" * (65536 - 15) + b'"}'
    assert len(exactly) == 65536 and error_json(exactly) == {"message": "m" * (65536 - 15)}
    assert error_json(exactly[:-2] + b'm"}') is None
    assert error_json(b"[" * 100_000) is None                                  # nested too deeply: not JSON
