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

import os
import re
from datetime import date, datetime
from typing import Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx

from store.errors import ConfigError

# A query parameter whose name holds one of these words may carry a credential
# (``access_token``, ``X-Amz-Signature``, ``pageToken``, ``sessionid``) ...
_CREDENTIAL_WORDS = frozenset({
    "token", "secret", "password", "passwd", "pwd", "auth", "authorization", "sig", "signature",
    "credential", "credentials", "session", "sessionid", "apikey", "jwt", "bearer",
})
# ... and so does "key" or "code" alone or after these words only (``key``,
# ``x-api-key``, ``apiKey``, ``access_code``), while ``key_id`` or
# ``country_code`` are left alone.
_ALONE_WORDS = frozenset({"key", "code"})
_PREFIX_WORDS = frozenset({"x", "api", "access", "client", "app", "amz", "private", "secret", "auth"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")

# A run of this many characters of a secret is hidden too: a server's message
# cut at 200 characters, or a value shown cut at 40, may hold part of a token.
SECRET_FRAGMENT = 8
# What a hidden value is shown as.
HIDDEN = "***"


def looks_like_credential(name: str) -> bool:
    """Whether a query parameter called ``name`` may carry a credential (its words,
    split at ``-``, ``_``, ``.`` and camelCase, hold one of the credential words)."""
    words = [word for word in re.split(r"[^a-z0-9]+", _CAMEL.sub(" ", name).lower()) if word]
    if any(word in _CREDENTIAL_WORDS for word in words):
        return True
    return bool(words) and words[-1] in _ALONE_WORDS and all(word in _PREFIX_WORDS for word in words[:-1])


def query_pairs(query: str) -> list[tuple[str, str]]:
    """A URL query's ``(name, value)`` pairs, separated by ``&`` or ``;`` (both
    are in use, and a credential must not hide behind the one not split on)."""
    return [pair for part in query.split(";") for pair in parse_qsl(part, keep_blank_values=True)]


def secret_params(query: str) -> list[str]:
    """The names (as written, sorted, once each) of the parameters in a URL's
    ``query`` that may carry a credential; never their values."""
    return sorted({key for key, _ in query_pairs(query) if looks_like_credential(key)})


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret, and every run of ``SECRET_FRAGMENT`` or more
    characters of one, replaced by ``***``."""
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, HIDDEN)
        if len(secret) <= SECRET_FRAGMENT:
            continue
        out: list[str] = []
        i = 0
        while i < len(text):
            end = i + SECRET_FRAGMENT
            if end <= len(text) and text[i:end] in secret:
                while end < len(text) and text[i:end + 1] in secret:
                    end += 1
                out.append(HIDDEN)
                i = end
            else:
                out.append(text[i])
                i += 1
        text = "".join(out)
    return text


def public_url(url: str, params: tuple[tuple[str, str], ...] = (), *, secrets: tuple[str, ...] = (),
               masked: frozenset[str] = frozenset()) -> str:
    """``url`` with ``params``, minus anything secret: user:password, query
    parameters named like credentials, and any of ``secrets`` appearing anywhere;
    the values of the parameters named in ``masked`` (a base URL's own query,
    which may hold what no name reveals) are shown as ``***``."""
    parsed = httpx.URL(url)
    # Values are hidden before encoding: a token with '+', '/' or '=' (base64) is
    # percent-encoded in the URL, where a plain replace would not find it.
    kept = [(k, HIDDEN if k in masked else redact(v, secrets))
            for k, v in list(parsed.params.multi_items()) + list(params) if not looks_like_credential(k)]
    clean = str(parsed.copy_with(username=None, password=None, query=None, fragment=None))
    for secret in secrets:
        if secret and secret not in clean and secret in unquote(clean):
            clean = unquote(clean)   # a secret percent-encoded in the path: show the path decoded
    clean = redact(clean, secrets)
    if kept:
        clean += "?" + str(httpx.QueryParams(kept)).replace("%2A%2A%2A", HIDDEN)
    return clean


def shown_source_url(url: str) -> str:
    """A source's base URL as it may be stored and shown: every value of its own
    query hidden (``?region=***``)."""
    query = urlsplit(url).query
    return public_url(url, masked=frozenset(name for name, _ in query_pairs(query)))


# Prefixes of well-known credentials: GitHub, GitLab, Slack, Stripe, OpenAI,
# AWS access keys, Google API keys and OAuth tokens, JWTs.
_TOKEN_PREFIX = re.compile(
    r"(gh[pousr]_|github_pat_|glpat-|xox[abposr]-|sk-|sk_(live|test)_|rk_(live|test)_|pk_(live|test)_|whsec_"
    r"|AKIA|ASIA|AIza|ya29\.|eyJ)")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_USUAL_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def env_name_problem(key: str, value: str) -> str | None:
    """What is wrong with ``value`` as the *name* of an environment variable given
    as ``key`` (``token_env``, ``user_env``): not a name, or a credential pasted
    by mistake (a known token's prefix); never quoting it."""
    if not _ENV_NAME.fullmatch(value):
        return (f"{key!r} must be the NAME of an environment variable (letters, digits, '_'), "
                "not the token itself")
    if _TOKEN_PREFIX.match(value):
        return (f"{key!r} looks like a token (it starts as well-known credentials do), not the NAME of an "
                "environment variable: put the token in a variable and name that variable here")
    return None


def shown_env_name(key: str, name: str) -> str:
    """How a message names the variable ``key`` names: itself when it is written
    the usual way (``X_BEARER_TOKEN``), else only by the key, since it may be a
    credential pasted in the wrong place."""
    if _USUAL_ENV_NAME.fullmatch(name) and not _TOKEN_PREFIX.match(name):
        return f"environment variable {name}"
    return f"the environment variable {key} names (not shown: it is not written like one, in capitals)"


def secret_from_env(source: str, key: str, name: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of the environment variable ``name`` that the source's ``key``
    (``token_env``, ``user_env``) names, or ``None`` without one. Raises
    ``ConfigError`` when the name is not a variable's or it is unset; the message
    shows the name only when it cannot be a token pasted by mistake."""
    if not name:
        return None
    problem = env_name_problem(key, name)
    if problem is not None:
        raise ConfigError(f"source {source!r}: {problem}")
    env = os.environ if environ is None else environ
    value = env.get(name)
    if not value:
        what = "user name" if key == "user_env" else "token"
        raise ConfigError(f"source {source!r}: {shown_env_name(key, name)} is not set "
                          f"({key} names the variable that holds the {what})")
    return value


# What a value is called in TOML, most specific type first (a bool is an int, a
# datetime a date).
_TOML_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"),
    (datetime, "a date-time"), (date, "a date"), (list, "an array"), (dict, "a table"),
)


def kind_of(value: object) -> str:
    """The TOML type of a value, for messages (never the value: it may be a secret)."""
    return next((word for kind, word in _TOML_KINDS if isinstance(value, kind)), type(value).__name__)
