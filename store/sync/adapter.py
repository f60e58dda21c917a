"""What an adapter is: a pure translator between one vendor's usage endpoint and
warden's rows.

The engine (``store.sync.engine``) owns HTTP, retries, size limits, hashing,
provenance, transactions and resume. An adapter only:

1. says which independent page sequences ("chains") a sync of a window needs
   (:meth:`Adapter.chains`): chains are fetched concurrently;
2. parses one response body into a :class:`ParsedPage` (rows plus the request for
   the next page of that chain, or ``None``), raising ``PageRejected`` with a JSON
   path for anything malformed;
3. classifies error responses (:meth:`Adapter.classify_error`): retry or stop, and why.

Its configuration keys (``days``, ``shards``, ``usage_plan_id``, ...) are declared
once, as ``OPTIONS`` on the class (:class:`Option`): the configuration reader
checks a ``[sources.<name>]`` table against them (through the registry in
:mod:`store.sync.adapters`) and the adapter reads them with :func:`options_of`.

Optional parts, each read with ``getattr`` by the engine or the reader:

* ``request_auth(token) -> httpx.Auth | None`` (:class:`SignsRequests`): a
  credential computed per request (AWS SigV4, basic auth), passed as ``auth=``;
* ``auth_params(token)``: query parameters carrying the credential, added when
  sending and never part of a stored URL (``http-json``'s ``query:NAME``);
* ``response_headers``: the response headers ``parse`` is given as ``headers=``
  (``http-json``'s Link pagination);
* ``requested(window)`` / ``covered(requested)`` (:class:`AsksOtherDays`): the
  days really asked for, when a request does not name the window (X);
* ``check_source(source)`` (:class:`ChecksSource`): checks of the keys together,
  when the configuration is read.

``parse`` must be pure (no I/O, no database): the property tests feed it arbitrary
JSON. A :class:`Request` is plain JSON-serialisable data so the engine can store
"the next page of each chain" in ``sync_cursor`` and resume after a kill.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Protocol, Sequence
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    import httpx

    from store.config import SourceConfig

from store.errors import ConfigError, PageRejected
from store.secrets import kind_of


@dataclass(frozen=True)
class Option:
    """One adapter-specific key of a ``[sources.<name>]`` table.

    ``kind`` is ``int`` (a whole number in ``low..high``), ``str`` (not empty),
    ``list`` (of non-empty strings) or ``dict`` (a table of strings or whole
    numbers). ``default`` is what the adapter uses when the key is absent; a
    ``required`` key has none.
    """

    name: str
    kind: type
    default: Any = None
    low: int | None = None
    high: int | None = None
    required: bool = False

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` for this key (never quoting a string: it
        may be a secret pasted in the wrong place), or ``None``."""
        key = repr(self.name)
        if self.kind is int:
            if type(value) is not int:
                return f"{key} must be an integer, got {kind_of(value)}"
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                if self.low is not None and self.high is not None:
                    span = f"between {self.low} and {self.high}"
                else:
                    span = f">= {self.low}" if self.low is not None else f"<= {self.high}"
                return f"{key} must be {span}, got {value}"
        elif self.kind is str:
            if not isinstance(value, str):
                return f"{key} must be a string, got {kind_of(value)}"
            if not value.strip():
                return f"{key} must not be empty"
        elif self.kind is dict:
            if not isinstance(value, dict):
                return f"{key} must be a table, got {kind_of(value)}"
            for name, item in value.items():
                if isinstance(item, bool) or not isinstance(item, (str, int)):
                    return f"{key}: {name!r} must be a string or a whole number, got {kind_of(item)}"
        elif not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            return f"{key} must be a list of non-empty strings, got {kind_of(value)}"
        return None


def check_options(kind: str, declared: Sequence[Option], given: Mapping[str, Any],
                  fail: Callable[[str], Exception]) -> dict[str, Any]:
    """The options ``given`` (only the keys ``declared`` names) after checking each,
    without defaults; raises ``fail(message)`` for a bad value or a missing
    required key. The one check of adapter options: the configuration reader and
    :func:`options_of` both call it."""
    checked: dict[str, Any] = {}
    for option in declared:
        if option.name not in given:
            if option.required:
                raise fail(f"missing required key {option.name!r} for adapter {kind!r}")
            continue
        problem = option.problem(given[option.name])
        if problem is not None:
            raise fail(problem)
        checked[option.name] = given[option.name]
    return checked


def options_of(adapter: "type[Adapter] | Adapter", source: "SourceConfig") -> dict[str, Any]:
    """The adapter's options for ``source``: checked, every absent key at its
    default. Raises ``ConfigError`` naming the source."""
    given = check_options(adapter.kind, adapter.OPTIONS, source.options,
                          lambda message: ConfigError(f"source {source.name!r}: {message}"))
    return {option.name: given.get(option.name, option.default) for option in adapter.OPTIONS}


@dataclass(frozen=True)
class Request:
    """One GET: ``path`` is joined to the source URL (or is absolute), ``params`` the query."""

    path: str
    params: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "params": [list(p) for p in self.params]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Request":
        return cls(path=str(data["path"]), params=tuple((str(k), str(v)) for k, v in data["params"]))

    @classmethod
    def get(cls, path: str, **params: object) -> "Request":
        return cls(path=path, params=tuple((k, str(v)) for k, v in params.items() if v is not None))


def full_url(base: str, request: Request) -> str:
    """The request's path joined to the source's base URL (absolute paths win),
    before the base URL's own query, which stays (``.../v1?region=eu`` and
    ``tiers`` make ``.../v1/tiers?region=eu``); the request's params are added
    to it when the request is sent."""
    if request.path.startswith(("http://", "https://")):
        return request.path
    if not request.path:
        return base
    parts = urlsplit(base)
    path = parts.path.rstrip("/") + "/" + request.path.lstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


@dataclass(frozen=True)
class Window:
    """The UTC days a sync fetches, inclusive."""

    start: date
    end: date

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    def months(self) -> list["Window"]:
        """The window cut at calendar-month boundaries (for one chain per month)."""
        parts: list[Window] = []
        start = self.start
        while start <= self.end:
            next_month = (start.replace(day=1) + timedelta(days=32)).replace(day=1)
            end = min(self.end, next_month - timedelta(days=1))
            parts.append(Window(start, end))
            start = next_month
        return parts


@dataclass
class AppRecord:
    app_id: str
    consumer_id: str | None = None  # None: the roster in the config decides, else the app is its own consumer
    name: str | None = None
    declared_use_case: str | None = None


@dataclass
class ConsumerRecord:
    id: str
    legal_name: str
    notice_contact: str | None = None
    tier_id: str | None = None
    agreement_version: str | None = None
    declared_use_case: str | None = None
    government_end_users: str | None = None


@dataclass
class TierRecord:
    id: str
    name: str
    agreement_version: str | None = None
    allowed_endpoints: list[str] | None = None
    limits: list[tuple[str, str, int]] = field(default_factory=list)  # (metric, period, max)
    clauses: dict[str, str] = field(default_factory=dict)  # category -> clause reference


# (app_id, day "YYYY-MM-DD", metric, value). Plain tuples: this is the hot path.
UsageRow = tuple[str, str, str, int]
# (app_id, day, endpoint, calls)
EndpointRow = tuple[str, str, str, int]


@dataclass
class ParsedPage:
    """What one response body held, as rows for the writer, and the next request of its chain."""

    usage: list[UsageRow] = field(default_factory=list)
    endpoint_usage: list[EndpointRow] = field(default_factory=list)
    apps: list[AppRecord] = field(default_factory=list)
    consumers: list[ConsumerRecord] = field(default_factory=list)
    tiers: list[TierRecord] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)  # source-level facts: project_cap, quota_limit, ...
    next: Request | None = None
    # What the page's log should say besides its rows: a figure the source left
    # out (missing, not zero), with where. Stored with the page (sync_page.notes).
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ErrorVerdict:
    """What to do with a non-2xx response."""

    retry: bool
    reason: str  # user-facing, never containing a secret
    retry_after: float | None = None  # seconds, from Retry-After / x-rate-limit-reset


class Adapter(Protocol):
    """One remote endpoint format: which requests to make and how to read the answers."""

    kind: ClassVar[str]
    OPTIONS: ClassVar[tuple[Option, ...]]   # its keys in a [sources.<name>] table

    def chains(self, window: Window) -> dict[str, Request]:
        """The first request of each independent page sequence, by chain name."""
        ...

    def parse(self, chain: str, request: Request, body: Any, window: Window) -> ParsedPage:
        """Turn one decoded JSON body into rows; raise ``PageRejected`` with a path."""
        ...

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes, now: float) -> ErrorVerdict:
        """Retry or stop for a non-2xx response (``now`` is epoch seconds)."""
        ...

    def auth_headers(self, token: str | None) -> dict[str, str]:
        """Headers that carry the credential (never logged, never stored)."""
        ...


def expect(condition: bool, why: str, path: str) -> None:
    """Reject the page unless ``condition`` holds."""
    if not condition:
        raise PageRejected(why, path=path)


class SignsRequests(Protocol):
    """Optional part of an adapter: a credential computed per request (AWS SigV4)."""

    def request_auth(self, token: str | None) -> "httpx.Auth | None":
        """An ``httpx.Auth`` that signs each request, or ``None`` to rely on ``auth_headers``."""
        ...


class AsksOtherDays(Protocol):
    """Optional part of an adapter whose requests do not name the sync's window
    (X's ``days`` counts at most 90 back from today).

    ``requested`` is the window actually asked for: it is the run's window (logged,
    stored in ``sync_run``, passed to ``parse``), and a figure outside it refuses
    its page. ``covered`` is the part of it every complete answer re-fetches: only
    there is a figure missing from the answers taken for withdrawn upstream.
    """

    def requested(self, window: Window) -> Window:
        """The days the chains of a sync of ``window`` really ask for."""
        ...

    def covered(self, requested: Window) -> Window:
        """The part of ``requested`` a complete answer surely holds."""
        ...


class ChecksSource(Protocol):
    """Optional part of an adapter: checks of a ``[sources.<name>]`` table beyond
    its options' types (keys that cannot go together, a key the endpoint cannot
    honour), run when the configuration is read."""

    @classmethod
    def check_source(cls, source: "SourceConfig") -> str | None:
        """What is wrong with ``source`` for this adapter (never quoting a value), or ``None``."""
        ...


def requested_window(adapter: object, window: Window) -> Window:
    """The window ``adapter`` really asks for when syncing ``window`` (``AsksOtherDays``)."""
    requested = getattr(adapter, "requested", None)
    return requested(window) if requested is not None else window


def covered_window(adapter: object, requested: Window) -> Window:
    """The part of ``requested`` a complete sync re-fetched (``AsksOtherDays``)."""
    covered = getattr(adapter, "covered", None)
    return covered(requested) if covered is not None else requested


def last_days(window: Window, days: int) -> Window:
    """What an endpoint that gives "the last ``days`` days" counted back from today
    (``window.end``) answers: the ``days`` whole days before today, and a figure
    for today itself may come too."""
    return Window(window.end - timedelta(days=days), window.end)


def expect_in_window(day: str, window: Window, path: str) -> None:
    """Reject the page when ``day`` (``YYYY-MM-DD``) is not one the request asked
    for: evidence must never cite a request for other days as a figure's source."""
    if not window.start.isoformat() <= day <= window.end.isoformat():
        raise PageRejected(f"{day} is outside the days asked for ({window})", path=path)
