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
