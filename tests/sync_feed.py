"""A small warden-feed / x-usage server on 127.0.0.1 for the sync tests.

Real HTTP over loopback (ThreadingHTTPServer), deterministic data that tests can
revise or withdraw, and scripted faults (status codes with headers, broken
bodies, slow pages). Not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Fault:
    """Answer the next ``times`` requests whose path and query contain ``match``."""

    match: str
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"error": {"code": "unavailable", "message": "try later"}}'
    times: int = 1


class FeedData:
    """``consumers`` consumers with ``apps`` apps each, daily calls and records."""

    def __init__(self, consumers: int = 6, apps: int = 2, start: date = date(2022, 1, 1), days: int = 20) -> None:
        self.consumers = [
            {"id": f"c{i:03d}", "legal_name": f"Consumer {i} Ltd", "notice_contact": f"legal@c{i}.example",
             "tier": "basic" if i % 2 else "pro", "agreement_version": "2022-01", "declared_use_case": None,
             "government_end_users": None,
             "apps": [{"id": f"app-{i}-{j}", "name": f"App {i}.{j}", "declared_use_case": None}
                      for j in range(apps)]}
            for i in range(consumers)
        ]
        self.tiers = [
            {"id": "basic", "name": "Basic", "agreement_version": "2022-01", "allowed_endpoints": ["/2/tweets"],
             "limits": [{"metric": "calls", "period": "day", "max": 1000}], "clauses": {"volume_cap": "§3.1"}},
            {"id": "pro", "name": "Pro", "agreement_version": "2022-01", "allowed_endpoints": None,
             "limits": [{"metric": "calls", "period": "month", "max": 100000}], "clauses": {}},
        ]
        # (consumer index, app, day, metric) -> value, in the server's order.
        self.usage: dict[tuple[int, str, str, str], Any] = {}
        for i, consumer in enumerate(self.consumers):
            for app in consumer["apps"]:
                for d in range(days):
                    day = (start + timedelta(days=d)).isoformat()
                    self.usage[(i, app["id"], day, "calls")] = (i + 1) * 100 + d
                    self.usage[(i, app["id"], day, "records")] = (i + 1) * 1000 + d * 7
        self.endpoints = {(0, "app-0-0", start.isoformat(), "/2/tweets/search/all"): 42}
        self.x_payload: dict[str, Any] | None = None

    def rows_for(self, kind: str, shard: int, shards: int, start: str, end: str) -> list[list[Any]]:
        count = len(self.consumers)
        low, high = shard * count // shards, (shard + 1) * count // shards
        source = self.usage if kind == "usage" else self.endpoints
        return [[app, day, metric, value] for (i, app, day, metric), value in sorted(source.items())
                if low <= i < high and start <= day <= end]


class FeedServer:
    """Start with ``with FeedServer(data) as server:``; ``server.url`` is the feed base."""

    def __init__(self, data: FeedData | None = None, *, page_limit: int = 50) -> None:
        self.data = data or FeedData()
        self.page_limit = page_limit
        self.faults: list[Fault] = []
        self.page_delay = 0.0
        self.requests: list[str] = []
        self.auth: list[str | None] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/feed/v1"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "FeedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _fault_for(self, target: str) -> Fault | None:
        with self._lock:
            self.requests.append(target)
            for fault in self.faults:
                if fault.times > 0 and fault.match in target:
                    fault.times -= 1
                    return fault
        return None

    def answer(self, target: str) -> tuple[int, dict[str, str], bytes]:
        fault = self._fault_for(target)
        if fault is not None:
            return fault.status, {"Content-Type": "application/json", **fault.headers}, fault.body
        if self.page_delay:
            time.sleep(self.page_delay)
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        data = self.data
        if path == "/2/usage/tweets":
            return 200, {}, json.dumps(data.x_payload or {"data": {}}).encode()
        if not path.startswith("/feed/v1/"):
            return 404, {}, b'{"error": {"code": "not_found", "message": "no such path"}}'
        kind = path.rsplit("/", 1)[-1]
        offset = int(query.get("cursor", "0"))
        limit = min(int(query.get("limit", self.page_limit)), self.page_limit)
        shard, shards = int(query.get("shard", 0)), int(query.get("shards", 1))
        if kind == "tiers":
            items, key = data.tiers, "data"
        elif kind == "consumers":
            count = len(data.consumers)
            items, key = data.consumers[shard * count // shards:(shard + 1) * count // shards], "data"
        elif kind in ("usage", "endpoints"):
            items, key = data.rows_for(kind, shard, shards, query["start"], query["end"]), "rows"
        else:
            return 404, {}, b'{"error": {"code": "not_found", "message": "no such list"}}'
        chunk = items[offset:offset + limit]
        nxt = str(offset + limit) if offset + limit < len(items) else None
        body: dict[str, Any] = {key: chunk, "next": nxt}
        if key == "rows":
            body["columns"] = ["app", "day", "metric" if kind == "usage" else "endpoint",
                               "value" if kind == "usage" else "calls"]
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                server.auth.append(self.headers.get("Authorization"))
                status, headers, body = server.answer(self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler
