"""The embedded demo endpoint in a process of its own, for the benchmarks (so its
threads do not share the measured process's GIL), and the warden-feed source
and tiers a benchmark syncs it with.

    endpoint = Endpoint(consumers=1_000_000, end=date(2022, 12, 30))
    config = feed_config(endpoint)
    ...
    endpoint.serve_until(date(2022, 12, 31))   # one more day upstream
    endpoint.close()

Run as a script, it is that process: it serves, prints its URL, and reads
commands on stdin (``end YYYY-MM-DD``: serve up to that day from now on).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

TOKEN = "bench-token"


class Endpoint:
    """The demo endpoint (:class:`store.demo.DemoEndpoint`) in a child process."""

    def __init__(self, consumers: int, *, end: date | None = None, days: int | None = None,
                 dense: int | None = None) -> None:
        self.spec = {"consumers": consumers, "end": end.isoformat() if end else None, "days": days, "dense": dense}
        self.process = subprocess.Popen([sys.executable, __file__, json.dumps(self.spec)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert self.process.stdout is not None
        self.url: str = self.process.stdout.readline().strip()
        if not self.url:
            raise SystemExit("the demo endpoint did not start")
        self.feed_url = self.url + "/feed/v1"

    def serve_until(self, end: date) -> None:
        """From now on, serve the days up to ``end`` (the same figures, more days)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"end {end.isoformat()}\n")
        self.process.stdin.flush()
        if self.process.stdout.readline().strip() != "ok":
            raise SystemExit("the demo endpoint did not take the new end")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)

    def __enter__(self) -> "Endpoint":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def feed_config(endpoint: Endpoint, *, shards: int = 4, concurrency: int = 4) -> Any:
    """A configuration with the demo's warden-feed source (its token in the
    environment) and the demo's tiers, as ``warden demo`` has them."""
    from dataclasses import replace

    from store.demo import DEMO_TOKEN_ENV
    from store.demo.config import FEED_SOURCE, demo_config

    os.environ.setdefault(DEMO_TOKEN_ENV, TOKEN)
    config = demo_config(_Urls(endpoint.feed_url))  # type: ignore[arg-type]
    config.sources = {FEED_SOURCE: replace(config.sources[FEED_SOURCE], concurrency=concurrency,
                                           options={"shards": shards})}
    config.consumers = []      # the roster of the demo's X apps: no X source here
    return config


class _Urls:
    """What demo_config reads of an endpoint."""

    def __init__(self, feed_url: str) -> None:
        self.feed_url = feed_url
        self.x_url = feed_url.rsplit("/feed/v1", 1)[0]


def _serve(spec: dict[str, Any]) -> None:
    from store.demo import DemoEndpoint
    from store.demo.data import DENSE_CONSUMERS, DemoData

    def data(end: date | None) -> DemoData:
        return DemoData(spec["consumers"], end=end, days=spec["days"], dense=spec["dense"] or DENSE_CONSUMERS)

    end = date.fromisoformat(spec["end"]) if spec["end"] else None
    with DemoEndpoint(consumers=1) as endpoint:
        endpoint.data = data(end)
        print(endpoint.base_url, flush=True)
        for line in sys.stdin:
            command, _, value = line.strip().partition(" ")
            if command == "end":
                endpoint.data = data(date.fromisoformat(value))
                print("ok", flush=True)


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
