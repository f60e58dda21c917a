"""Faults the demo endpoint injects on request, so tests (and ``warden demo
--fault``) can prove what a sync does when an endpoint misbehaves.

A :class:`Fault` says which requests it hits (a path prefix, query parameters
that must match, which of the matching requests) and what happens instead of
the normal answer. Written as text (``--fault SPEC``, or ``WARDEN_DEMO_FAULTS``
with specs separated by ``;``)::

    SPEC    := KIND ["@" PATH] ("," KEY "=" VALUE)*
    KIND    := a status code (429, 500, ...) | a kind name below
    PATH    := path prefix, e.g. /feed/v1/usage or /2/usage/tweets (default: every path)
    KEYS    := query=shard=1&shards=4   query parameters that must all match
               nth=N       first matching request hit (1-based, default 1)
               every=K     then every K-th matching request (default 1)
               times=T     at most T hits (default 1; 0 = no limit)
               plus the kind's own keys (below)

    429@/feed/v1/usage,retry_after=1          429 with Retry-After: 1
    503,retry_after_date=2,times=2            503 with Retry-After as an HTTP-date 2 s ahead
    429@/2/usage/tweets,reset=1               429 with x-rate-limit-reset = now + 1 (epoch s)
    usage_capped@/2/usage/tweets              X's usage-capped problem as HTTP 429
    reset@/feed/v1/usage,query=shard=1,nth=2  the 2nd shard-1 usage request: connection closed

Kinds (and their keys):

========================  ==========================================================
``status``  / a code       HTTP ``code`` with a JSON error body (feed shape, or an RFC
                           7807 problem under ``/2/``); ``retry_after`` (s),
                           ``retry_after_date`` (s ahead, as an HTTP-date), ``reset`` (s
                           ahead, as ``x-rate-limit-reset``), ``body`` (raw text);
                           304 (Not Modified) is sent without a body, as HTTP has it
``usage_capped``           X's usage-capped problem, HTTP ``code`` (default 429)
``reset``                  the connection is closed without an answer
``stall``                  nothing is sent for ``seconds`` (default 5), then the answer
``drip``                   the answer trickles out in 20 pieces over ``seconds`` (default
                           5): no single read waits long, the whole takes that long
``truncated``              Content-Length of the full answer, half of it sent, closed
``non_json``               200 with an HTML body
``wrong_type``             the first count is an object (``as=object``) or a list (``as=list``);
                           in a consumers page (no counts) the first legal_name is
``negative``               the first count is -5
``over64``                 the first count is 2**64 + 5
``fractional``             the first count is 62.5 (the first count: a usage / endpoint row's
                           value, a tier's first limit, X's first daily usage)
``string_counts``          not a fault: every count of the page as text, in turn "200", "0200"
                           and "200.0" (tolerated; the stored figures must not change)
``missing_id``             the first row's / item's id is missing (null in compact rows)
``missing_count``          the first count is missing (its key removed; null in compact rows):
                           X's answer for a day it has no figure for
``duplicate``              the first row (item) appears twice in the page; ``differ=N``: the
                           copy's count is N more (same key, two values)
``repeat_cursor``          ``next`` is the cursor of the request (first page: of the start)
``empty_page``             no rows, and a ``next`` that resumes where this page began
``huge``                   200 with a JSON body of ``size`` bytes (default 300 MB), streamed;
                           ``chunked=1`` sends it without Content-Length
``gzip_bomb``              ``Content-Encoding: gzip``: about a thousandth of ``size``
                           bytes (default 1 GiB) that inflate to ``size`` bytes
========================  ==========================================================
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl

from store.errors import ConfigError

FAULTS_ENV = "WARDEN_DEMO_FAULTS"

KINDS = (
    "status", "usage_capped", "reset", "stall", "drip", "truncated", "non_json", "wrong_type", "negative",
    "over64", "fractional", "string_counts", "missing_id", "missing_count", "duplicate", "repeat_cursor",
    "empty_page", "huge", "gzip_bomb",
)
# Kinds that rewrite a normal JSON page instead of replacing it.
PAGE_KINDS = frozenset({"wrong_type", "negative", "over64", "fractional", "string_counts", "missing_id",
                        "missing_count", "duplicate", "repeat_cursor", "empty_page"})
_SELECT_KEYS = ("query", "nth", "every", "times")
_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "status": ("code", "retry_after", "retry_after_date", "reset", "body"),
    "usage_capped": ("code",),
    "stall": ("seconds",),
    "drip": ("seconds",),
    "wrong_type": ("as",),
    "huge": ("size", "chunked"),
    "gzip_bomb": ("size",),
    "duplicate": ("differ",),
}


class FaultSpecError(ConfigError, ValueError):
    """A fault spec that does not parse; the message names the spec and the key
    (a ``ConfigError``: ``warden demo --fault`` exits with code 2)."""

    title = "Bad fault spec"


@dataclass
class Fault:
    """One injected fault. ``params`` holds the kind's own keys (``code``,
    ``retry_after``, ``seconds``, ``size`` ...), already typed."""

    kind: str
    path: str = ""
    query: dict[str, str] = field(default_factory=dict)
    nth: int = 1
    every: int = 1
    times: int = 1                 # 0: no limit
    params: dict[str, Any] = field(default_factory=dict)
    seen: int = 0                  # matching requests so far
    fired: int = 0                 # hits so far

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FaultSpecError(f"unknown fault kind {self.kind!r} (known: {', '.join(KINDS)})")
        if self.nth < 1 or self.every < 1 or self.times < 0:
            raise FaultSpecError("nth and every must be >= 1, times >= 0")
        if self.kind == "status" and not isinstance(self.params.get("code"), int):
            raise FaultSpecError("a status fault needs code=NNN")

    def matches(self, path: str, query: Mapping[str, str]) -> bool:
        return path.startswith(self.path) and all(query.get(k) == v for k, v in self.query.items())

    def due(self) -> bool:
        """Whether the matching request just counted in ``seen`` is one this fault hits."""
        if self.times and self.fired >= self.times:
            return False
        return self.seen >= self.nth and (self.seen - self.nth) % self.every == 0


def parse_fault(spec: str) -> Fault:
    """A :class:`Fault` from its text form (see the module docstring)."""
    head, *pairs = [part.strip() for part in spec.strip().split(",")]
    kind, _, path = head.partition("@")
    params: dict[str, Any] = {}
    if kind.isdigit():
        params["code"] = int(kind)
        kind = "status"
    if kind not in KINDS:
        raise FaultSpecError(f"fault {spec!r}: unknown kind {kind!r} (known: a status code, {', '.join(KINDS)})")
    select: dict[str, Any] = {}
    allowed = _SELECT_KEYS + _KIND_KEYS.get(kind, ())
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in allowed:
            raise FaultSpecError(f"fault {spec!r}: unknown key {key!r} for {kind} (known: {', '.join(allowed)})")
        if key == "query":
            select["query"] = dict(parse_qsl(value, keep_blank_values=True))
        elif key in ("body", "as"):
            params[key] = value
        else:
            try:
                number: Any = float(value) if key in ("seconds",) else int(value)
            except ValueError:
                raise FaultSpecError(f"fault {spec!r}: {key} must be a number, not {value!r}") from None
            (select if key in _SELECT_KEYS else params)[key] = number
    if kind == "wrong_type" and params.get("as", "object") not in ("object", "list"):
        raise FaultSpecError(f"fault {spec!r}: as must be object or list")
    return Fault(kind, path, params=params, **select)


def parse_faults(specs: Iterable[str | Fault] | str | None) -> list[Fault]:
    """Faults from a list of specs / :class:`Fault` objects, or one string with
    specs separated by ``;`` (the form of ``WARDEN_DEMO_FAULTS``)."""
    if specs is None:
        return []
    if isinstance(specs, str):
        specs = [s for s in specs.split(";") if s.strip()]
    return [s if isinstance(s, Fault) else parse_fault(s) for s in specs]


class FaultList:
    """The faults of a running endpoint: add and clear them at any time (thread-safe)."""

    def __init__(self, faults: Iterable[str | Fault] | str | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = parse_faults(faults)

    def add(self, fault: str | Fault, **keys: Any) -> Fault:
        """Add a fault, as a spec, a :class:`Fault`, or a kind with keyword
        arguments: ``add("status", code=429, retry_after=1, path="/feed/v1/usage")``."""
        if isinstance(fault, str) and keys:
            select = {k: keys.pop(k) for k in ("path",) + _SELECT_KEYS if k in keys}
            if fault.isdigit():
                keys.setdefault("code", int(fault))
                fault = "status"
            fault = Fault(fault, params=keys, **select)
        elif isinstance(fault, str):
            fault = parse_fault(fault)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)

    def pick(self, path: str, query: Mapping[str, str]) -> Fault | None:
        """The first fault that hits this request (every matching fault counts it)."""
        hit = None
        with self._lock:
            for fault in self._faults:
                if not fault.matches(path, query):
                    continue
                fault.seen += 1
                if hit is None and fault.due():
                    fault.fired += 1
                    hit = fault
        return hit
