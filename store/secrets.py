"""Secrets in URLs and in text: which query parameters carry a credential, how a
token is hidden from a message, and the URL of a request as it may be stored and
shown.

Tokens come from environment variables (``store.config.token_for``); they are
never written to the database, a log, an export or an error message. Both the
configuration reader (a credential in a source URL's query is refused) and the
sync's fetcher (every URL stored is public) use this module, so neither imports
the other.
"""

from __future__ import annotations

from datetime import date, datetime
from urllib.parse import parse_qsl, unquote

import httpx

# Query parameters that may carry a credential: never stored, never shown.
SECRET_PARAMS = frozenset({
    "token", "access_token", "api_key", "apikey", "key", "secret", "client_secret", "password",
    "sig", "signature", "auth", "authorization", "x-amz-signature", "x-amz-credential",
    "x-amz-security-token",
})

# A run of this many characters of a secret is hidden too: a server's message
# cut at 200 characters, or a value shown cut at 40, may hold part of a token.
SECRET_FRAGMENT = 8


def secret_params(query: str) -> list[str]:
    """The names (as written, sorted, once each) of the parameters in a URL's
    ``query`` that may carry a credential; never their values."""
    return sorted({key for key, _ in parse_qsl(query, keep_blank_values=True) if key.lower() in SECRET_PARAMS})


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret, and every run of ``SECRET_FRAGMENT`` or more
    characters of one, replaced by ``***``."""
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, "***")
        if len(secret) <= SECRET_FRAGMENT:
            continue
        out: list[str] = []
        i = 0
        while i < len(text):
            end = i + SECRET_FRAGMENT
            if end <= len(text) and text[i:end] in secret:
                while end < len(text) and text[i:end + 1] in secret:
                    end += 1
                out.append("***")
                i = end
            else:
                out.append(text[i])
                i += 1
        text = "".join(out)
    return text


def public_url(url: str, params: tuple[tuple[str, str], ...] = (), *, secrets: tuple[str, ...] = ()) -> str:
    """``url`` with ``params``, minus anything secret: user:password, query
    parameters named like credentials, and any of ``secrets`` appearing anywhere."""
    parsed = httpx.URL(url)
    # Values are hidden before encoding: a token with '+', '/' or '=' (base64) is
    # percent-encoded in the URL, where a plain replace would not find it.
    kept = [(k, redact(v, secrets)) for k, v in list(parsed.params.multi_items()) + list(params)
            if k.lower() not in SECRET_PARAMS]
    clean = str(parsed.copy_with(username=None, password=None, query=None, fragment=None))
    for secret in secrets:
        if secret and secret not in clean and secret in unquote(clean):
            clean = unquote(clean)   # a secret percent-encoded in the path: show the path decoded
    clean = redact(clean, secrets)
    if kept:
        clean += "?" + str(httpx.QueryParams(kept))
    return clean


# What a value is called in TOML, most specific type first (a bool is an int, a
# datetime a date).
_TOML_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"),
    (datetime, "a date-time"), (date, "a date"), (list, "an array"), (dict, "a table"),
)


def kind_of(value: object) -> str:
    """The TOML type of a value, for messages (never the value: it may be a secret)."""
    return next((word for kind, word in _TOML_KINDS if isinstance(value, kind)), type(value).__name__)
