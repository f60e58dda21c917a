"""One GET with retries, a size limit, a hash, and a URL fit to store.

The fetch threads of :mod:`store.sync.engine` call :meth:`PageFetcher.get`; it
never touches the database. What it learnt about a response that failed travels
in :class:`FetchFailed` so the writer can still record the page.
"""

from __future__ import annotations

import hashlib
import ssl
import threading
import time
import zlib
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator
from urllib.parse import urlsplit

import httpx

from store.clock import Clock, iso
from store.config import SourceConfig
from store.errors import PageRejected, SourceStopped, SyncError
from store.secrets import SECRET_FRAGMENT, public_url, query_pairs, redact
from store.sync.adapter import Adapter, ErrorVerdict, Request, full_url
from store.sync.retry import backoff_delay
from store.text import printable

# A whole response (headers and body) must arrive within this many times the
# source's timeout: the timeout bounds each read, this bounds a server that
# sends a byte just before each read would time out.
WHOLE_RESPONSE_TIMEOUTS = 4

# An error body is only read this far: enough for the vendor's message.
ERROR_BODY_BYTES = 64 * 1024

Sleep = Callable[[float], None]
OnRetry = Callable[[str, float, str], None]  # (public url, wait seconds, reason)


class Cancelled(Exception):
    """The sync was asked to stop; the page in hand is dropped (not committed)."""


@dataclass(frozen=True)
class Fetched:
    url: str          # without secrets
    status: int
    body: bytes       # as delivered after content decoding (gzip ...)
    sha256: str
    fetched_at: str
    headers: dict[str, str] = field(default_factory=dict)   # those the adapter reads (``response_headers``)


class FetchFailed(Exception):
    """A request that ended without a usable body: ``error`` says why (a
    ``SourceStopped`` or ``PageRejected``); the rest is provenance for ``sync_page``."""

    def __init__(self, error: SyncError, *, url: str, fetched_at: str, status: int | None = None,
                 body_bytes: int | None = None, sha256: str | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.url = url
        self.fetched_at = fetched_at
        self.status = status
        self.body_bytes = body_bytes
        self.sha256 = sha256


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


class PageFetcher:
    """GETs the pages of one source, retrying what is worth retrying.

    Shared by the source's fetch threads (``httpx.Client`` is thread-safe).
    ``sleep`` is injectable so tests do not wait for real; by default the wait
    ends early when ``cancel`` is set.
    """

    def __init__(self, client: httpx.Client, source: SourceConfig, adapter: Adapter, *,
                 token: str | None, clock: Clock, cancel: threading.Event,
                 sleep: Sleep | None = None, on_retry: OnRetry | None = None) -> None:
        self.client = client
        self.source = source
        self.adapter = adapter
        self.clock = clock
        self.cancel = cancel
        self.sleep = sleep
        self.on_retry = on_retry
        self._token = token
        # The base URL's own query may hold what no parameter name reveals: its values are never shown.
        self._masked = frozenset(name for name, _ in query_pairs(urlsplit(source.url).query))
        self._headers = {"Accept": "application/json", **adapter.auth_headers(token)}
        # A token sent as a query parameter (``query:NAME``) is added only when sending.
        auth_params = getattr(adapter, "auth_params", None)
        self._auth_params: list[tuple[str, str]] = list(auth_params(token)) if auth_params is not None else []
        self._read_headers: tuple[str, ...] = tuple(getattr(adapter, "response_headers", ()))
        self._auth = request_auth(adapter, token)

    def url_of(self, request: Request) -> str:
        """The URL of ``request`` as it may be stored and shown."""
        return public_url(full_url(self.source.url, request), request.params, secrets=self._secrets(),
                          masked=self._masked)

    def _secrets(self) -> tuple[str, ...]:
        return (self._token,) if self._token else ()

    def redact(self, text: str) -> str:
        """``text`` (an error message that may quote a server) without the token."""
        return redact(text, self._secrets())

    def carries_secret(self, text: str) -> bool:
        """Whether ``text`` holds the token (or a long enough run of it). A token
        shorter than ``SECRET_FRAGMENT`` is no secret worth the name, and would be
        found in any cursor by chance."""
        secrets = tuple(s for s in self._secrets() if len(s) >= SECRET_FRAGMENT)
        return redact(text, secrets) != text

    def get(self, request: Request, *, etag: str | None = None) -> Fetched:
        """The body of ``request``; raises :class:`FetchFailed` (source stopped, or
        body too large) or :class:`Cancelled`.

        ``etag``: the SHA-256 of the body stored from this URL before; sent as
        ``If-None-Match: "<etag>"``, and a ``304 Not Modified`` then comes back as
        a ``Fetched`` with status 304, no body and that SHA-256 (the same body
        again). A 304 to a request without one is refused (:func:`_not_modified`)."""
        source = self.source
        # httpx replaces a URL's query with params=: the URL's own query goes first in them.
        url = httpx.URL(full_url(source.url, request))
        target = url.copy_with(query=None)
        params = url.params.multi_items() + list(request.params) + self._auth_params
        shown = self.url_of(request)
        headers = self._headers if etag is None else {**self._headers, "If-None-Match": f'"{etag}"'}
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            if self.cancel.is_set():
                raise Cancelled()
            fetched_at = iso(self.clock())
            status: int | None = None
            deadline = time.monotonic() + source.timeout * WHOLE_RESPONSE_TIMEOUTS
            try:
                with self.client.stream("GET", target, params=params, headers=headers,
                                        auth=self._auth) as response:
                    status = response.status_code
                    if status == 304:
                        return _not_modified(response, etag, shown, fetched_at, source.name)
                    if 200 <= status < 300:
                        try:
                            body = _read(response, source.max_body_bytes, deadline=deadline)
                        except _TooLarge as too_large:
                            error = PageRejected(
                                f"response body is larger than max_body_bytes ({source.max_body_bytes:,} bytes)",
                                path="$", source=source.name, url=shown)
                            raise FetchFailed(error, url=shown, fetched_at=fetched_at, status=status,
                                              body_bytes=too_large.size) from None
                        kept = {name: response.headers[name] for name in self._read_headers
                                if name in response.headers}
                        return Fetched(shown, status, body, hashlib.sha256(body).hexdigest(), fetched_at, kept)
                    try:
                        error_body = _read(response, ERROR_BODY_BYTES, truncate=True, deadline=deadline)
                    except httpx.HTTPError:
                        error_body = b""
                    # Real time, not the sync's clock: Retry-After dates and
                    # x-rate-limit-reset are the server's wall clock.
                    verdict = self.adapter.classify_error(status, response.headers, error_body, time.time())
            except httpx.TimeoutException as exc:
                verdict = ErrorVerdict(retry=True, reason=f"timed out ({_kind(exc)})")
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                tls = _tls_failure(exc)
                # A certificate the verifier refuses will be refused again: say why, do not retry.
                verdict = (ErrorVerdict(retry=False, reason=f"{tls}; not retried") if tls is not None
                           else ErrorVerdict(retry=True, reason=f"connection failed ({_kind(exc)})"))
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                verdict = ErrorVerdict(retry=False, reason=f"request failed ({_kind(exc)})")
            # A hostile or careless server may quote the token in its error body.
            # ... or escape sequences that would act on the terminal showing the message.
            verdict = replace(verdict, reason=self.redact(printable(verdict.reason)))

            def stop(why: str) -> FetchFailed:
                return FetchFailed(SourceStopped(f"source {source.name!r} stopped: {why} ({shown})",
                                                 source=source.name),
                                   url=shown, fetched_at=fetched_at, status=status)

            if not verdict.retry:
                raise stop(verdict.reason)
            if attempt >= source.max_attempts:
                raise stop(f"{verdict.reason}; gave up after {attempt} attempts")
            wait = verdict.retry_after if verdict.retry_after is not None else backoff_delay(attempt)
            if waited + wait > source.max_retry_seconds:
                raise stop(f"{verdict.reason}; waiting {wait:.0f} s more would exceed "
                           f"max_retry_seconds ({source.max_retry_seconds:g} s)")
            if self.on_retry is not None:
                self.on_retry(shown, wait, verdict.reason)
            if self.sleep is not None:
                self.sleep(wait)
            elif self.cancel.wait(wait):
                raise Cancelled()
            waited += wait


def entity_tags(header: str) -> set[str]:
    """The tags an ``ETag`` or ``If-None-Match`` header names, without quotes and
    without the weak mark (``W/"a", "b"`` -> ``{"a", "b"}``)."""
    return {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",") if tag.strip()}


def _not_modified(response: httpx.Response, etag: str | None, shown: str, fetched_at: str,
                  source: str) -> Fetched:
    """A ``304 Not Modified``: the body warden stored from this URL before, whose
    SHA-256 ``etag`` it sent, is still the server's. Without ``etag`` (warden has
    no page stored from this URL, so it asked for no comparison), or with another
    tag named in the answer, there is nothing the 304 could stand for: refused."""
    tags = entity_tags(response.headers.get("etag", ""))
    if etag is None or (tags and tags != {etag}):
        why = ("to a request without If-None-Match (warden has no page stored from this URL)" if etag is None
               else f"naming another tag than the one asked about ({printable(response.headers['etag'])[:80]})")
        error = PageRejected(f"HTTP 304 Not Modified {why}: there is no body to store, so the page is refused; "
                             "nothing stored before is lost", path="$", source=source, url=shown)
        raise FetchFailed(error, url=shown, fetched_at=fetched_at, status=304, body_bytes=0)
    return Fetched(shown, 304, b"", etag, fetched_at)


def request_auth(adapter: Adapter, token: str | None) -> httpx.Auth | None:
    """The adapter's per-request signing (``SignsRequests``, e.g. AWS SigV4), if it
    has one; may raise ``ConfigError`` (credentials missing)."""
    signer = getattr(adapter, "request_auth", None)
    return signer(token) if signer is not None else None


def _read(response: httpx.Response, limit: int, *, truncate: bool = False, deadline: float | None = None) -> bytes:
    """The decoded body, counted as it streams so a huge (or decompression-bomb)
    body is refused without being held in memory, and timed so that a body
    trickling in (each read quicker than the timeout) cannot hold the sync
    past ``deadline`` (``time.monotonic()``): that is a read timeout, retried."""
    length = response.headers.get("content-length")
    if not truncate and length and length.isdigit() and "content-encoding" not in response.headers:
        if int(length) > limit:
            raise _TooLarge(int(length))
    chunks: list[bytes] = []
    total = 0
    for chunk in _decoded(response):
        if deadline is not None and time.monotonic() > deadline:
            raise httpx.ReadTimeout("the whole response took too long", request=response.request)
        total += len(chunk)
        if total > limit:
            if truncate:
                chunks.append(chunk[: limit - (total - len(chunk))])
                break
            raise _TooLarge(total)
        chunks.append(chunk)
    return b"".join(chunks)


# Compressed bodies are inflated at most this much at a time: httpx inflates each
# network read whole, and 64 KiB of a gzip bomb inflate to 64 MiB at once.
INFLATE_BYTES = 256 * 1024
# zlib window bits: gzip only, or zlib/gzip by header (HTTP "deflate").
_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 47}


def _decoded(response: httpx.Response) -> Iterator[bytes]:
    """The body after content decoding, in pieces of at most ``INFLATE_BYTES`` for
    gzip and deflate (a decompression bomb is counted as it inflates, not after)."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in _WBITS:
        yield from response.iter_bytes()
        return
    inflater = zlib.decompressobj(_WBITS[encoding])
    for raw in response.iter_raw(chunk_size=16 * 1024):
        data = raw
        while data:
            try:
                piece = inflater.decompress(data, INFLATE_BYTES)
            except zlib.error as exc:
                raise httpx.DecodingError(f"bad {encoding} body: {exc}", request=response.request) from None
            data = inflater.unconsumed_tail
            if inflater.eof and inflater.unused_data:  # a second gzip member follows
                data = inflater.unused_data
                inflater = zlib.decompressobj(_WBITS[encoding])
            if piece:
                yield piece


def _tls_failure(exc: BaseException) -> str | None:
    """What the TLS layer refused, from the exceptions behind a transport error
    (httpx raises its ``ConnectError`` *from* the ``ssl`` error), or ``None``."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS certificate not accepted: {seen.verify_message or seen.reason or 'verification failed'}"
        if isinstance(seen, ssl.SSLError):
            return f"TLS handshake failed: {seen.reason or type(seen).__name__}"
        seen = seen.__cause__ or seen.__context__
    return None


def _kind(exc: Exception) -> str:
    """A short name for a transport error; its text may quote the URL, so it is not used."""
    return type(exc).__name__

