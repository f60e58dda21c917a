"""Run the demo endpoint on its own: ``python -m store.demo [--consumers N] ...``.

Prints the feed and X base URLs on stdout (one line of JSON), then serves until
interrupted. Benchmarks and kill tests use it to keep the server out of the
measured (or killed) process.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import date

from store.demo.server import DemoEndpoint
from store.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    """Serve the demo endpoint until SIGTERM or Ctrl-C; 2 for bad options (as the CLI)."""
    parser = argparse.ArgumentParser(prog="python -m store.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--consumers", type=int, default=300, help="consumers served (1..1,000,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=None, help="serve only the last DAYS days up to --end")
    parser.add_argument("--start", type=date.fromisoformat, default=None, help="first day served (YYYY-MM-DD)")
    parser.add_argument("--end", type=date.fromisoformat, default=None, help="last day served (YYYY-MM-DD)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--require-token", default=None, help="answer 401 unless this bearer token is sent")
    parser.add_argument("--fault", action="append", default=[], metavar="SPEC",
                        help="inject a fault (see store/demo/faults.py), repeatable")
    args = parser.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        endpoint = DemoEndpoint(args.consumers, args.seed, start=args.start, end=args.end, days=args.days,
                                require_token=args.require_token, faults=args.fault, port=args.port)
    except ConfigError as exc:
        print(f"python -m store.demo: {exc}", file=sys.stderr)
        return 2
    with endpoint:
        print(json.dumps({"base_url": endpoint.base_url, "feed_url": endpoint.feed_url, "x_url": endpoint.x_url}),
              flush=True)
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
