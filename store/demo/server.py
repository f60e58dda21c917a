"""The embedded demo endpoint: a real HTTP/1.1 server on 127.0.0.1.

It serves :class:`store.demo.data.DemoData` in the shapes below, exactly as the
contracts in README.md / the team brief describe them, and more for
``http-json`` sources and the other vendors (:mod:`store.demo.shapes`: a
Stripe-like cursor, a GitHub-like Link header, an offset with a total;
:mod:`store.demo.vendors`: API Gateway usage plans and OpenAI usage):

- ``warden-feed`` under ``/feed/v1``: ``tiers``, ``consumers``, ``usage``,
  ``endpoints``, sharded by consumer range (``shard``/``shards``), cursor-paged
  (``cursor``, ``limit`` capped at 50,000 rows), usage filtered by ``start``/``end``;
- ``x-usage``: ``/2/usage/tweets?days=1..90`` counted back from the demo's today
  (2023-01-01 unless told otherwise), with ``x-rate-limit-*`` headers and RFC 7807 errors.

Conditional requests (warden-feed): each feed page goes out with ``ETag: "<its
SHA-256>"``, and the endpoint remembers the tag of each URL it answered. A request
whose ``If-None-Match`` names that tag gets ``304 Not Modified`` without the page
being rendered again, as long as nothing it serves changed since (any revision,
withdrawal or new data forgets every tag) and no fault is picked for the request.

Usage pages are the hot path of a sync: rows are formatted straight into JSON
text (no ``json.dumps`` of dicts per row) and sent with a Content-Length over
keep-alive connections. Faults (:mod:`store.demo.faults`) replace or rewrite
answers on request (:mod:`store.demo.wire_faults` plays them).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import threading
import time
from collections import Counter, deque
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable
from urllib.parse import parse_qsl, urlsplit

from store.demo import shapes, vendors
from store.demo.data import DENSE_CONSUMERS, X_APPS, X_CAP_RESET_DAY, X_PROJECT_CAP, DemoData, Overrides
from store.demo.faults import FAULTS_ENV, PAGE_KINDS, Fault, FaultList, parse_faults
from store.demo.wire import X_RATE_LIMIT, Answer, dumps, error
from store.demo.wire_faults import play, rewrite, send
from store.sync.adapters.warden_feed import MAX_SHARDS
from store.sync.fetch import entity_tags

FEED_PREFIX = "/feed/v1"
X_PATH = "/2/usage/tweets"
DEFAULT_ROWS = 10_000
MAX_ROWS = 50_000
DEFAULT_CONSUMERS = 1_000
MAX_CONSUMERS = 10_000
X_FIELDS = ("cap_reset_day", "daily_client_app_usage", "daily_project_usage", "project_cap",
            "project_id", "project_usage")
_CURSOR = re.compile(r"p(\d{1,7})-(\d{1,9})(?:~\d+)?")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# Tags remembered at most (then all are forgotten: a client just gets whole pages again).
MAX_TAGS = 100_000


class BadRequest(Exception):
    """A request the endpoint refuses with 400 (the message says which parameter)."""


def cursor(index: int, row: int) -> str:
    """The opaque cursor of a position: consumer index and row within the consumer."""
    return f"p{index}-{row}"


class DemoEndpoint:
    """The demo endpoint, started on a free port of 127.0.0.1.

    ``with DemoEndpoint(consumers=300, seed=7) as ep: ep.feed_url, ep.x_url``.
    ``require_token``: answer 401 unless ``Authorization: Bearer <token>`` (by
    default any token or none is accepted). ``faults``: specs or :class:`Fault`
    objects (``WARDEN_DEMO_FAULTS`` adds more); change them while running with
    ``ep.faults.add(...)`` / ``ep.faults.clear()``. ``ep.requests(path)`` counts
    the requests received whose path starts with ``path``. Other arguments go to
    :class:`DemoData` (``start``, ``end``, ``days``, ``names_override``, ``today``: the day X counts
    back from). ``etags=False``: no ETag, and ``If-None-Match`` is ignored.

    Sizes: the default serves 484,420 usage rows; ``consumers=1000, days=280``
    serves 1,000,720 (a benchmark's million); ``ep.data.usage_rows()`` counts them.
    """

    def __init__(self, consumers: int = 300, seed: int = 7, *, start: date | None = None,
                 end: date | None = None, days: int | None = None, require_token: str | None = None,
                 faults: Iterable[str | Fault] | str | None = None, names_override: Overrides | None = None,
                 host: str = "127.0.0.1", port: int = 0, env_faults: bool = True, today: date | None = None,
                 dense: int = DENSE_CONSUMERS, etags: bool = True) -> None:
        self.data = DemoData(consumers, seed, start=start, end=end, days=days, names_override=names_override,
                             today=today, dense=dense)
        self.require_token = require_token
        self.faults = FaultList(faults)
        if env_faults and os.environ.get(FAULTS_ENV):
            for fault in parse_faults(os.environ[FAULTS_ENV]):
                self.faults.add(fault)
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._log: deque[str] = deque(maxlen=10_000)   # recent request targets, for tests
        self._connections: set[socket.socket] = set()
        # Conditional requests (module docstring): ``etags=False`` is a server that ignores them.
        self.etags = etags
        self._tags: dict[str, str] = {}      # request target -> ETag of the page last sent for it
        self._tags_of: tuple[DemoData, int] | None = None   # the data (and its version) they describe

    # -- life cycle ----------------------------------------------------------------

    def start(self) -> "DemoEndpoint":
        """Bind and serve in a background thread; returns self."""
        if self._server is not None:
            return self
        server = _Server((self._host, self._port), _Handler)
        server.endpoint = self
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="warden-demo-endpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (stalled answers end too)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "DemoEndpoint":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the demo endpoint is not running")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def feed_url(self) -> str:
        return self.base_url + FEED_PREFIX

    @property
    def x_url(self) -> str:
        """The X source's base URL (the adapter appends ``2/usage/tweets``)."""
        return self.base_url

    # -- request log -----------------------------------------------------------------

    def requests(self, path: str = "") -> int:
        """How many requests arrived whose path starts with ``path``."""
        with self._lock:
            return sum(n for p, n in self._counts.items() if p.startswith(path))

    def requested(self, path: str = "") -> list[str]:
        """The targets (path and query) of the last 10,000 requests, oldest first,
        whose path starts with ``path``."""
        with self._lock:
            return [target for target in self._log if target.startswith(path)]

    def _count(self, path: str, target: str) -> None:
        with self._lock:
            self._counts[path] += 1
            self._log.append(target)

    # -- upstream revisions -------------------------------------------------------------

    def revise(self, app_id: str, day: date, metric: str, value: int) -> None:
        """Serve a corrected figure from now on (tests of the sync's look-back)."""
        self.data.revise(app_id, day, metric, value)

    def withdraw(self, app_id: str, day: date) -> None:
        """Serve no usage of ``app_id`` (a feed app or an X client app) on ``day`` from now on."""
        self.data.withdraw(app_id, day)

    # -- conditional requests ------------------------------------------------------------

    def _version(self) -> tuple[DemoData, int]:
        """What the endpoint serves now: its data object and that object's revision count."""
        return self.data, self.data.version

    def _tags_now(self) -> dict[str, str]:
        """The tags of the pages served from the data as it is now (called holding the lock)."""
        now = self._version()
        if self._tags_of is None or self._tags_of[0] is not now[0] or self._tags_of[1] != now[1]:
            self._tags, self._tags_of = {}, now
        return self._tags

    def not_modified(self, target: str, if_none_match: str | None) -> str | None:
        """The ETag to answer ``304 Not Modified`` with, when ``if_none_match``
        names the tag of the page last sent for ``target`` and nothing served
        changed since; otherwise ``None`` (the page is sent whole)."""
        if not self.etags or not if_none_match:
            return None
        with self._lock:
            tag = self._tags_now().get(target)
        return tag if tag is not None and tag.strip('"') in entity_tags(if_none_match) else None

    def tag(self, target: str, answer: Answer, served: tuple[DemoData, int]) -> None:
        """Give a feed page its ETag and remember it for ``target``, if the data
        it was rendered from (``served``, taken before rendering) is still the
        data served: a page rendered across a revision is never tagged."""
        if not self.etags or answer.status != 200 or answer.family not in ("rows", "data"):
            return
        tag = f'"{hashlib.sha256(answer.body).hexdigest()}"'
        with self._lock:
            tags = self._tags_now()
            if self._tags_of is None or self._tags_of[0] is not served[0] or self._tags_of[1] != served[1]:
                return
            if len(tags) >= MAX_TAGS:
                tags.clear()
            tags[target] = tag
        answer.headers = {**answer.headers, "ETag": tag}

    # -- routes ----------------------------------------------------------------------

    def answer(self, path: str, query: dict[str, str], authorization: str | None) -> Answer:
        """The normal answer to a GET (no faults). ``authorization`` is the
        credential the request carried, as ``Bearer <token>`` whichever way it
        came (bearer, ``X-Api-Key``, basic password, ``api_key`` parameter)."""
        x = path.startswith("/2/")
        if self.require_token is not None and authorization != f"Bearer {self.require_token}":
            if path in shapes.PATHS:
                return shapes.error(path, 401, "unauthorized", "missing or wrong credential")
            return error(401, "unauthorized", "missing or wrong bearer token", x=x)
        if path in shapes.PATHS:
            try:
                return shapes.answer(self.data, path, query, self.base_url)
            except shapes.ShapeRequestError as exc:
                return shapes.error(path, 400, "bad_request", str(exc))
        if vendors.serves(path):
            return vendors.answer(path, query)
        try:
            if path == X_PATH:
                return self._x_usage(query)
            if path.startswith(FEED_PREFIX + "/"):
                route = path[len(FEED_PREFIX) + 1:]
                if route == "tiers":
                    body = {"data": [t.as_json() for t in self.data.tiers()], "next": None}
                    return Answer(200, dumps(body), family="data")
                if route == "consumers":
                    return self._consumers(query)
                if route in ("usage", "endpoints"):
                    return self._rows(route, query)
        except BadRequest as exc:
            return error(400, "bad_request", str(exc), x=x)
        return error(404, "not_found", f"no such resource: {path}", x=x)

    def _shard(self, query: dict[str, str]) -> tuple[int, int]:
        shards = _int(query, "shards", 1, 1, MAX_SHARDS)
        shard = _int(query, "shard", 0, 0, shards - 1)
        return self.data.shard_range(shard, shards)

    def _position(self, query: dict[str, str], lo: int, hi: int) -> tuple[int, int]:
        text = query.get("cursor")
        if text is None:
            return lo, 0
        match = _CURSOR.fullmatch(text)
        if match is None or not lo <= int(match[1]) <= hi:
            raise BadRequest("cursor: not a cursor of this shard")
        return int(match[1]), int(match[2])

    def _consumers(self, query: dict[str, str]) -> Answer:
        lo, hi = self._shard(query)
        index, _ = self._position(query, lo, hi)
        limit = _int(query, "limit", DEFAULT_CONSUMERS, 1, None)
        end = min(hi, index + min(limit, MAX_CONSUMERS))
        data = [self.data.consumer(i).as_json() for i in range(index, end)]
        body = {"data": data, "next": cursor(end, 0) if end < hi else None}
        return Answer(200, dumps(body), family="data", start_cursor=cursor(index, 0))

    def _rows(self, route: str, query: dict[str, str]) -> Answer:
        lo, hi = self._shard(query)
        index, row = self._position(query, lo, hi)
        limit = min(_int(query, "limit", DEFAULT_ROWS, 1, None), MAX_ROWS)
        d_lo, d_hi = self.data.clip(_day(query, "start"), _day(query, "end"))
        start_cursor = cursor(index, row)
        rows, index, row = self._collect(route == "usage", index, row, hi, d_lo, d_hi, limit)
        columns = '["app","day","metric","value"]' if route == "usage" else '["app","day","endpoint","calls"]'
        following = f'"{cursor(index, row)}"' if index < hi else "null"
        body = f'{{"columns":{columns},"rows":[{",".join(rows)}],"next":{following}}}'
        return Answer(200, body.encode(), family="rows", start_cursor=start_cursor)

    def _collect(self, usage: bool, index: int, row: int, hi: int, d_lo: int, d_hi: int,
                 limit: int) -> tuple[list[str], int, int]:
        """Up to ``limit`` JSON rows from position (index, row); returns them and the next position.

        A consumer's rows are its apps in order, each app's active days in order,
        and per day either both metrics (usage) or each reported endpoint.
        """
        data = self.data
        out: list[str] = []
        need = limit
        while index < hi and need > 0:
            if row == 0 and data.silent(index, d_lo, d_hi, usage=usage):
                index += 1
                continue
            consumer = data.consumer(index)
            per_day = 2 if usage else len(consumer.endpoints)
            base = 0
            if per_day:
                for app in consumer.apps:
                    days = data.days_of(app, d_lo, d_hi)
                    n = len(days) * per_day
                    if need > 0 and row < base + n:
                        first = row - base
                        last = min(n, first + need)
                        j0, j1 = first // per_day, (last - 1) // per_day + 1
                        if usage:
                            cells = self._usage_cells(app, days[j0:j1])
                        else:
                            cells = self._endpoint_cells(app, consumer.endpoints, days[j0:j1])
                        taken = cells[first - j0 * per_day:last - j0 * per_day]
                        out.extend(taken)
                        need -= len(taken)
                        row = base + last
                    base += n
            if row >= base:
                index, row = index + 1, 0
        return out, index, row

    def _usage_cells(self, app: Any, days: range | list[int]) -> list[str]:
        data = self.data
        head = f'["{app.id}",'
        calls = data.values(app, "calls", days)
        records = data.values(app, "records", days)
        out: list[str] = []
        append = out.append
        for d, c, r in zip(days, calls, records):
            prefix = head + data.day_json(d)
            append(f'{prefix}"calls",{c}]')
            append(f'{prefix}"records",{r}]')
        return out

    def _endpoint_cells(self, app: Any, endpoints: tuple[tuple[str, float], ...],
                        days: range | list[int]) -> list[str]:
        head = f'["{app.id}",'
        return [f'{head}{self.data.day_json(d)}"{endpoint}",{calls}]'
                for d, endpoint, calls in self.data.endpoint_calls(app, endpoints, days)]

    def _x_usage(self, query: dict[str, str]) -> Answer:
        days = _int(query, "days", 7, 1, 90)
        fields = query.get("usage.fields")
        wanted = set(X_FIELDS) if fields is None else set(fields.split(","))
        unknown = wanted - set(X_FIELDS)
        if unknown:
            raise BadRequest(f"usage.fields: unknown field(s) {', '.join(sorted(unknown))}")
        data = self.data
        calendar = data.x_days(days)
        stamps = [f"{day.isoformat()}T00:00:00.000Z" for day in calendar]
        per_app = [{s: data.x_usage(app, day) for s, day in zip(stamps, calendar)
                    if not data.withdrawn(app.client_app_id, day)} for app in X_APPS]
        per_day = [sum(values.get(s, 0) for values in per_app) for s in stamps]
        project_id = data.x_project_id
        body: dict[str, Any] = {
            "cap_reset_day": X_CAP_RESET_DAY,
            "daily_client_app_usage": [
                {"client_app_id": app.client_app_id,
                 "usage": [{"date": s, "usage": str(v)} for s, v in values.items()],
                 "usage_result_count": len(values)}
                for app, values in zip(X_APPS, per_app)],
            "daily_project_usage": {"project_id": project_id,
                                    "usage": [{"date": s, "usage": str(v)} for s, v in zip(stamps, per_day)]},
            "project_cap": str(X_PROJECT_CAP),
            "project_id": project_id,
            "project_usage": str(sum(per_day)),
        }
        seen = self.requests(X_PATH)
        headers = {"x-rate-limit-limit": str(X_RATE_LIMIT),
                   "x-rate-limit-remaining": str(max(0, X_RATE_LIMIT - seen % X_RATE_LIMIT)),
                   "x-rate-limit-reset": str(int(time.time()) + 900)}
        return Answer(200, dumps({"data": {k: v for k, v in body.items() if k in wanted}}), headers,
                       family="x")


# --- helpers ----------------------------------------------------------------------

def _int(query: dict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    text = query.get(name)
    if text is None:
        return default
    # A limit may be asked as large as the client likes (it is capped); 18 digits keep int() cheap.
    if not text.isdigit() or len(text) > 18 or not low <= int(text) <= (high if high is not None else 10**18):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise BadRequest(f"{name}: expected a whole number {bound}")
    return int(text)


def _day(query: dict[str, str], name: str) -> date | None:
    text = query.get(name)
    if text is None:
        return None
    try:
        if not _DAY.fullmatch(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}: expected a day YYYY-MM-DD") from None


def credential(headers: Any, query: dict[str, str]) -> str | None:
    """The credential a request carried, as ``Bearer <token>`` whichever of the
    ways ``http-json`` sends it: bearer, an ``X-Api-Key`` header, basic auth's
    password, or an ``api_key`` query parameter."""
    authorization = headers.get("Authorization")
    if authorization and authorization.lower().startswith("basic "):
        try:
            _, _, password = base64.b64decode(authorization[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return f"Bearer {password}"
    if authorization:
        return authorization
    token = headers.get("X-Api-Key") or query.get("api_key")
    return f"Bearer {token}" if token else None


# --- HTTP ------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    endpoint: DemoEndpoint

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that vanished mid-answer is routine here (faults do it on purpose)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"       # keep-alive: every answer has a Content-Length (or is chunked)
    disable_nagle_algorithm = True      # headers and body go out as two writes; no 40 ms delayed-ACK waits
    timeout = 60                        # an idle keep-alive connection is closed after this
    server: _Server
    server_version = "warden-demo/1"

    def setup(self) -> None:
        super().setup()
        with self.server.endpoint._lock:
            self.server.endpoint._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.endpoint._lock:
            self.server.endpoint._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # quiet: the demo runs under the TUI and under pytest

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        endpoint = self.server.endpoint
        parts = urlsplit(self.path)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        endpoint._count(path, self.path)
        fault = endpoint.faults.pick(path, query)
        try:
            if fault is not None and fault.kind not in PAGE_KINDS:
                if play(self, endpoint, fault, path, query):
                    return
            authorization = credential(self.headers, query)
            feed = fault is None and path.startswith(FEED_PREFIX + "/") and (
                endpoint.require_token is None or authorization == f"Bearer {endpoint.require_token}")
            if feed:
                tag = endpoint.not_modified(self.path, self.headers.get("If-None-Match"))
                if tag is not None:
                    self.send_response(304)
                    self.send_header("ETag", tag)
                    self.end_headers()
                    return
            served = endpoint._version()
            answer = endpoint.answer(path, query, authorization)
            if feed:
                endpoint.tag(self.path, answer, served)
            if fault is not None and fault.kind in PAGE_KINDS and answer.status == 200:
                answer = rewrite(fault, answer, query)
            send(self, answer.status, answer.body, answer.headers)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout):
            self.close_connection = True
        except Exception as exc:  # a bug here must not print under the TUI nor hang the client
            self.close_connection = True
            try:
                send(self, 500, error(500, "internal", f"demo endpoint error: {type(exc).__name__}",
                                      x=path.startswith("/2/")).body, {})
            except OSError:
                pass

