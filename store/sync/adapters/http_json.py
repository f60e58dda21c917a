"""``http-json``: any JSON usage endpoint, described by configuration.

A platform onboards its own gateway, warehouse API or a vendor warden has no
adapter for with a ``[sources.<name>]`` table instead of code (the keys:
:mod:`store.sync.adapters.http_json_spec`; worked examples: README.md). The
guarantees are the built-in adapters': retries and resume (the engine's),
provenance, look-back, tolerant counts, a figure for a day not asked for
refusing its page, every malformed page refused with a JSON path, secrets
never stored nor shown.

Requests. The sync's window is cut into windows of at most ``window_days`` days,
one chain each (``usage/2022-12-01..2022-12-31``), whose first request is
``path`` and ``params`` with ``{start}`` ``{end}`` (ISO days, inclusive),
``{start_epoch}`` ``{end_epoch}`` (UTC seconds; the end is the midnight after
the last day) and ``{days}`` filled in. An endpoint that only gives "the last N
days" counted back from today (X) says ``last_days = N``: one chain asks for the
last N days (``{days}``), and figures for those days and today are accepted.

Pages. ``rows`` finds the page's list of rows (an object is read as its
entries, ``{"key": name, "value": value}``); ``each`` optionally finds, in each
row, a list of items, which are then read instead of the row (X's per-app daily
usage). From each item: ``app`` (its id), ``day`` (ISO date, ISO timestamp in
UTC, or epoch seconds) or ``days_from`` (the first day of a list with one item
per day: API Gateway's ``[used, remaining]`` pairs), and either ``metrics``
(metric name = path to its count) or ``metric`` and ``value`` (one figure per
item, its metric named by the data). Paths are JMESPath, on the item; ``^path``
reads the row, ``$path`` the page. A count that is missing or null is a missing
figure (not zero): not stored, and the page's log says where.

Pagination: ``none``; ``cursor`` (``next`` finds the cursor, sent as
``cursor_param``; ``more``, when given, must say true for another page);
``next_url`` (``next`` finds the next page's URL); ``link`` (RFC 8288 ``Link``
header, ``rel="next"``); ``offset`` (``offset_param`` advances by the rows of
each page until a page holds fewer than ``page_size`` or ``total`` is reached);
``page`` (``page_param`` from ``first_page``, likewise). A next URL must stay on
the source's scheme, host and port.

Auth: ``bearer`` (``Authorization: Bearer``), ``header:NAME``, ``basic``
(``user_env`` and ``token_env``), ``query:NAME`` (the token as a query
parameter, added when sending: never in a stored URL, a cursor or a message).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping
from urllib.parse import urljoin, urlsplit

import httpx

from store.errors import ConfigError, PageRejected
from store.secrets import secret_from_env
from store.sync.adapter import (
    ErrorVerdict, Option, ParsedPage, Request, Window, check_options, expect, expect_in_window, full_url,
    last_days,
)
from store.sync.adapters.http_json_spec import OPTIONS, HttpJsonSpec, read_spec
from store.sync.counts import parse_count, parse_day, parse_id
from store.sync.jsonpaths import JsonPath
from store.sync.retry import default_verdict, error_detail, retry_after_seconds

if TYPE_CHECKING:
    from store.config import SourceConfig

CHAIN = "usage"
_LINK = re.compile(r'<([^>]*)>((?:\s*;\s*[A-Za-z0-9!#$&+.^_`|~-]+\s*(?:=\s*(?:"[^"]*"|[^;,]*))?)*)')
_DEFAULT_PORTS = {"http": 80, "https": 443}


class HttpJson:
    """Adapter for a JSON usage endpoint described by its source's keys."""

    kind: ClassVar[str] = "http-json"
    OPTIONS: ClassVar[tuple[Option, ...]] = OPTIONS

    def __init__(self, source: SourceConfig) -> None:
        self.source = source
        self.spec = _spec(source, lambda message: ConfigError(f"source {source.name!r}: {message}"))
        # The engine hands parse() these response headers (the Link header of link pagination).
        self.response_headers: tuple[str, ...] = ("link",) if self.spec.paginate == "link" else ()

    @classmethod
    def check_source(cls, source: SourceConfig) -> str | None:
        """Every key together (see :func:`read_spec`); a relative endpoint cannot take start or end."""
        try:
            spec = _spec(source, _Problem)
        except _Problem as problem:
            return str(problem)
        for key in ("start", "end"):
            if spec.last_days is not None and getattr(source, key) is not None:
                return (f"{key!r} cannot be honoured: last_days says the endpoint gives only the last days counted "
                        f"back from today; remove {key!r}")
        return None

    # -- requests ------------------------------------------------------------------

    def _days(self, window: Window) -> int:
        assert self.spec.last_days is not None
        return max(1, min(self.spec.last_days, (window.end - window.start).days + 1))

    def requested(self, window: Window) -> Window:
        """The days the chains of ``window`` ask for: ``window`` itself, or for a
        ``last_days`` endpoint the last N days before today (and today)."""
        return last_days(window, self._days(window)) if self.spec.last_days is not None else window

    def covered(self, requested: Window) -> Window:
        """For a ``last_days`` endpoint, not the first day (it may count today in
        its N days); otherwise every day asked for."""
        if self.spec.last_days is None:
            return requested
        return Window(requested.start + timedelta(days=1), requested.end)

    def chains(self, window: Window) -> dict[str, Request]:
        if self.spec.last_days is not None:
            days = self._days(window)
            asked = last_days(window, days)
            return {f"{CHAIN}/{asked}": self._first(asked, days)}
        chains: dict[str, Request] = {}
        start = window.start
        while start <= window.end:
            end = min(window.end, start + timedelta(days=self.spec.window_days - 1))
            part = Window(start, end)
            chains[f"{CHAIN}/{part}"] = self._first(part, (end - start).days + 1)
            start = end + timedelta(days=1)
        return chains

    def _first(self, window: Window, days: int) -> Request:
        spec = self.spec
        values = {"start": window.start.isoformat(), "end": window.end.isoformat(),
                  "start_epoch": str(_epoch(window.start)), "end_epoch": str(_epoch(window.end + timedelta(days=1))),
                  "days": str(days)}
        params = [(name, value.format(**values)) for name, value in spec.params]
        if spec.paginate == "offset":
            params.append((spec.offset_param, "0"))  # type: ignore[arg-type]
        elif spec.paginate == "page":
            params.append((spec.page_param, str(spec.first_page)))  # type: ignore[arg-type]
        return Request(path=spec.path.format(**values), params=tuple(params))

    # -- credentials -----------------------------------------------------------------

    def auth_headers(self, token: str | None) -> dict[str, str]:
        if not token:
            return {}
        if self.spec.auth == "bearer":
            return {"Authorization": f"Bearer {token}"}
        if self.spec.auth == "header":
            return {self.spec.auth_name: token}  # type: ignore[dict-item]
        return {}

    def auth_params(self, token: str | None) -> tuple[tuple[str, str], ...]:
        """``query:NAME``: the token as a query parameter, added only when sending."""
        if token and self.spec.auth == "query":
            return ((self.spec.auth_name, token),)  # type: ignore[return-value]
        return ()

    def request_auth(self, token: str | None) -> httpx.Auth | None:
        """``basic``: the user from ``user_env``, the password from ``token_env``
        (``ConfigError`` naming the variable when it is unset)."""
        if self.spec.auth != "basic" or not token:
            return None
        user = secret_from_env(self.source.name, "user_env", self.spec.user_env)
        return httpx.BasicAuth(user or "", token)

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes, now: float) -> ErrorVerdict:
        detail = error_detail(body, "message", "detail", "title", "error_description", "error")
        remaining = headers.get("x-ratelimit-remaining")
        if status in (403, 429) and remaining is not None and remaining.strip() == "0":
            # GitHub-style: a 403 with no requests left is a rate limit, over at x-ratelimit-reset.
            reset = headers.get("x-ratelimit-reset")
            wait = retry_after_seconds({"x-rate-limit-reset": reset}, now) if reset else None
            said = f": {detail}" if detail else ""
            return ErrorVerdict(retry=True, reason=f"rate limited (HTTP {status}, no requests left){said}",
                                retry_after=retry_after_seconds(headers, now) or wait)
        return default_verdict(status, headers, now, detail=detail)

    # -- pages -----------------------------------------------------------------------

    def parse(self, chain: str, request: Request, body: Any, window: Window,
              headers: Mapping[str, str] | None = None) -> ParsedPage:
        spec = self.spec
        asked = _chain_window(chain) or window
        rows_path = spec.rows.where("$")
        rows, entries = _listed(spec.rows.value(body), rows_path, "rows")
        page = ParsedPage()
        figures: dict[tuple[str, str, str], tuple[int, str]] = {}
        for i, row in enumerate(rows):
            row_path = _item_path(rows_path, i, row, entries)
            if spec.each is None:
                items: list[Any] = [row]
                items_path, item_entries = None, entries
            else:
                items_path = _entry_where(spec.each, row_path, row_path, (entries, entries))
                items, item_entries = _listed(spec.each.value(row), items_path, "each")
            first_day = self._days_from(row, body, row_path, entries) if spec.days_from is not None else None
            for j, item in enumerate(items):
                item_path = row_path if items_path is None else _item_path(items_path, j, item, item_entries)
                self._item(item, row, body, item_path, row_path, (item_entries, entries), asked,
                           _day_after(first_day, i if items_path is None else j, item_path), figures, page)
        page.usage = [(app, day, metric, value) for (app, day, metric), (value, _) in figures.items()]
        page.next = self._next(request, body, headers or {}, len(rows))
        return page

    def _days_from(self, row: Any, body: Any, row_path: str, entries: bool) -> date:
        path = self.spec.days_from
        assert path is not None
        where = _entry_where(path, row_path, row_path, (entries, entries))
        return date.fromisoformat(parse_day(path.value(row, row, body), where))

    def _item(self, item: Any, row: Any, body: Any, item_path: str, row_path: str, entries: tuple[bool, bool],
              asked: Window,
              day: str | None, figures: dict[tuple[str, str, str], tuple[int, str]], page: ParsedPage) -> None:
        spec = self.spec

        def where(path: JsonPath) -> str:
            return _entry_where(path, item_path, row_path, entries)

        app = parse_id(spec.app.value(item, row, body), where(spec.app))
        if spec.day is not None:
            day_at = where(spec.day)
            day = parse_day(spec.day.value(item, row, body), day_at)
        else:
            day_at = item_path
        assert day is not None
        expect_in_window(day, asked, day_at)
        if spec.metrics:
            pairs = [(metric, path) for metric, path in spec.metrics]
            named = [(metric, path.value(item, row, body), where(path)) for metric, path in pairs]
        else:
            assert spec.metric is not None and spec.value is not None
            metric = spec.metric.value(item, row, body)
            expect(isinstance(metric, str) and bool(metric.strip()), "expected a metric name", where(spec.metric))
            named = [(metric, spec.value.value(item, row, body), where(spec.value))]
        for metric, raw, at in named:
            if raw is None:
                page.notes.append(f"{app!r} {day} {metric!r}: no figure (missing, not stored) at {at}")
                continue
            value = parse_count(raw, at)
            key = (app, day, metric)
            before = figures.get(key)
            if before is None:
                figures[key] = (value, at)
            elif before[0] != value:
                # Storing either would be a silently wrong number.
                raise PageRejected(f"{app!r} {day} {metric!r} appears twice with different values "
                                   f"({before[0]} at {before[1]}, {value} here)", path=at)

    # -- the next page ---------------------------------------------------------------

    def _next(self, request: Request, body: Any, headers: Mapping[str, str], count: int) -> Request | None:
        spec = self.spec
        mode = spec.paginate
        if mode == "none":
            return None
        more = self._more(body)
        if mode == "link":
            target = _link_next(headers.get("link"))   # the fetcher keeps it as "link", whatever its case
            return None if target is None else self._follow(request, target, "the Link header (rel=\"next\")")
        if mode in ("cursor", "next_url"):
            assert spec.next is not None
            at = spec.next.where("$")
            found = spec.next.value(body)
            if more is False or (more is None and found in (None, "")):
                return None
            expect(found not in (None, ""), "more pages announced without a next one", at)
            expect(isinstance(found, str) or type(found) is int, "expected a cursor (text or a whole number)"
                   if mode == "cursor" else "expected a URL", at)
            if mode == "next_url":
                expect(isinstance(found, str), "expected a URL", at)
                return self._follow(request, found, at)
            return _with(request, spec.cursor_param, str(found))  # type: ignore[arg-type]
        # offset / page: advance while pages are full and the total is not reached.
        assert spec.page_size is not None
        param = spec.offset_param if mode == "offset" else spec.page_param
        assert param is not None
        current = int(dict(request.params).get(param, "0"))
        # A page holds at most page_size rows: more are repeats (a row given twice), which
        # must not push the offset past rows not yet fetched; fewer, a server's own cap.
        count = min(count, spec.page_size)
        following = _with(request, param, str(current + count if mode == "offset" else current + 1))
        if more is False:
            return None
        total = spec.total.value(body) if spec.total is not None else None
        if total is not None:
            # With a total, pages go on until it is reached (a server may cap the page size) ...
            assert spec.total is not None
            at = spec.total.where("$")
            seen = current + count if mode == "offset" else (current - spec.first_page + 1) * spec.page_size
            expected = parse_count(total, at)
            if expected <= seen:
                return None
            # ... and an empty page before it would end the chain with rows never fetched.
            expect(count > 0, f"an empty page before the total was reached ({seen:,} of {expected:,} rows)", at)
            return following
        return following if count >= spec.page_size else None

    def _more(self, body: Any) -> bool | None:
        if self.spec.more is None:
            return None
        value = self.spec.more.value(body)
        expect(isinstance(value, bool), "expected true or false", self.spec.more.where("$"))
        return value

    def _follow(self, request: Request, target: str, at: str) -> Request:
        """The next page at ``target`` (absolute, or relative to this page's URL):
        on the source's scheme, host and port only, and without the token."""
        here = full_url(self.source.url, request)
        try:
            url = urljoin(here, target.strip())
        except ValueError as exc:   # urllib refuses a malformed host ("Invalid IPv6 URL")
            raise PageRejected(f"expected a URL: {exc}", path=at) from None
        expect(_origin(url) == _origin(self.source.url),
               f"the next page is on another host ({_origin(url)[1] or '?'}); only the source's is followed", at)
        if self.spec.auth == "query":
            # A server may echo the token in its next URL: the fetcher adds it when sending.
            url = str(httpx.URL(url).copy_remove_param(self.spec.auth_name))  # type: ignore[arg-type]
        return Request(path=url)


class _Problem(Exception):
    """A problem found by :meth:`HttpJson.check_source` (its message, without the source's name)."""


def _spec(source: SourceConfig, fail: Callable[[str], Exception]) -> HttpJsonSpec:
    given = check_options(HttpJson.kind, OPTIONS, source.options, fail)
    options = {option.name: given.get(option.name, option.default) for option in OPTIONS}
    return read_spec(source, options, fail)


def _listed(value: Any, path: str, key: str) -> tuple[list[Any], bool]:
    """The list of rows (or items) found at ``path``; an object's entries as
    ``{"key", "value"}`` items; ``(items, whether they are entries)``."""
    if isinstance(value, list):
        return value, False
    if isinstance(value, dict):
        return [{"key": name, "value": item} for name, item in value.items()], True
    what = "found nothing" if value is None else "found a single value"
    raise PageRejected(f"{key} {what}: expected a list (or an object of them)", path=path)


def _item_path(base: str, index: int, item: Any, entries: bool) -> str:
    if entries:
        name = item["key"]
        return f"{base}.{name}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name) else f"{base}[{name!r}]"
    return f"{base}[{index}]"


def _entry_where(path: JsonPath, item_path: str, row_path: str, entries: tuple[bool, bool]) -> str:
    """``path.where``, where an object's entry (``{"key", "value"}``) is the entry
    itself: ``value[0]`` of entry ``k1`` of ``$.values`` is ``$.values.k1[0]``.
    ``entries``: whether the item, and the row, are such entries."""
    entry = entries[0] if path.scope == "item" else entries[1] if path.scope == "row" else False
    if entry and path.steps and path.steps[0] in ("key", "value"):
        rest = JsonPath(path.text, path.expression, path.scope, path.compiled, path.steps[1:])
        return rest.where(item_path, row_path)
    return path.where(item_path, row_path)


def _day_after(first: date | None, offset: int, path: str) -> str | None:
    if first is None:
        return None
    try:
        return (first + timedelta(days=offset)).isoformat()
    except OverflowError:
        raise PageRejected(f"{offset} days after {first} is past the last date", path=path) from None


def _with(request: Request, name: str, value: str) -> Request:
    return Request(path=request.path, params=tuple(p for p in request.params if p[0] != name) + ((name, value),))


def _chain_window(chain: str) -> Window | None:
    """The window a chain was named after (``usage/2022-12-01..2022-12-31``)."""
    _, _, span = chain.partition("/")
    start, _, end = span.partition("..")
    try:
        return Window(date.fromisoformat(start), date.fromisoformat(end))
    except ValueError:
        return None


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def _origin(url: str) -> tuple[str, str, int | None]:
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return "", "", None


def _link_next(header: str | None) -> str | None:
    """The ``rel="next"`` target of an RFC 8288 ``Link`` header, or ``None``."""
    if not header:
        return None
    for match in _LINK.finditer(header):
        for param in match.group(2).split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "rel" and "next" in value.strip().strip('"').lower().split():
                return match.group(1)
    return None
