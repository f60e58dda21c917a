"""``warden --headless``, ``warden sync`` and ``warden demo``: syncing sources
without the UI (the demo endpoint's too), and opening the review screen."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from store.errors import ConfigError
from tui.cli.common import (
    EXIT_OK,
    EXIT_PARTIAL,
    Reporter,
    check_database,
    common_options,
    db_path,
    default_config_path,
    default_db_path,
    load_config,
    positive_int,
    reviewer,
)


def add_parsers(commands: Any) -> None:
    sync = commands.add_parser("sync", help="sync configured sources without the UI",
                               description="Sync configured sources into the database, then run the rules.")
    common_options(sync, suppress=True)
    sync.add_argument("--source", metavar="NAME", action="append",
                      help="only this source (repeatable; default: every source)")
    sync.add_argument("--refetch", action="store_true", default=argparse.SUPPRESS,
                      help="fetch each source's whole window again (from its start), even a closed window "
                           "(end = a past day) already fetched completely")
    sync.set_defaults(run=lambda args, reporter: run_sync(args, reporter, sources=args.source))

    demo = commands.add_parser(
        "demo", help="start the embedded demo endpoint, sync it, open the TUI",
        description="Start the embedded demo endpoint on 127.0.0.1 (deterministic synthetic data), "
                    "sync it into a database and open the TUI. No configuration needed. The demo writes "
                    f"its own database, {default_db_path().with_name('demo-N.db')} (N: --consumers), not the "
                    "database other commands use; on exit it prints that path and commands to try with it.")
    common_options(demo, suppress=True, db_help=f"where the demo writes (default: "
                                                f"{default_db_path().with_name('demo-N.db')}, N the number of "
                                                "consumers)")
    demo.add_argument("--consumers", type=positive_int, default=300, metavar="N",
                      help="number of synthetic consumers, up to 1,000,000 (default 300)")
    demo.add_argument("--headless", action="store_true", dest="demo_headless",
                      help="sync the demo and print a summary instead of opening the TUI")
    demo.add_argument("--fault", action="append", metavar="SPEC", default=[],
                      help="inject a fault into the demo endpoint (see store.demo for SPEC), repeatable")
    demo.set_defaults(run=run_demo)


def _cancel_on_signals(cancel: threading.Event) -> Callable[[], None]:
    """SIGINT / SIGTERM ask the sync to stop after the page in hand; committed pages
    stay and the next run resumes."""
    previous = {}

    def handler(signum: int, frame: Any) -> None:
        if cancel.is_set():  # second signal: give up at once
            raise KeyboardInterrupt
        cancel.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread
            pass

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def _sync(config: Any, path: Path, reporter: Reporter, *, sources: list[str] | None,
          refetch: bool = False, verbose: bool = False) -> list[Any]:
    """Sync, printing as tui.cli.sync_output says (a line per source and a summary;
    a live bar when stderr is a terminal; every event with --verbose or --json)."""
    from store.sync.engine import sync_all
    from tui.cli.sync_output import SyncOutput

    check_database(path, reporter)
    cancel = threading.Event()
    restore = _cancel_on_signals(cancel)
    live = bool(getattr(reporter.stream, "isatty", lambda: False)())
    try:
        with SyncOutput(reporter, verbose=verbose, live=live) as output:
            results = sync_all(path, config, on_event=output.on_event, cancel=cancel, sources=sources,
                               refetch=refetch)
        output.summary(results)
        return results
    finally:
        restore()


def _exit_code(results: list[Any]) -> int:
    return EXIT_OK if all(r.status == "ok" for r in results) else EXIT_PARTIAL


def run_sync(args: argparse.Namespace, reporter: Reporter, *, sources: list[str] | None) -> int:
    config = load_config(args)
    if not config.sources:
        if config.path is None:
            raise ConfigError(f"no configuration: {default_config_path()} does not exist, and neither --config "
                              "nor WARDEN_CONFIG names one; see README.md, 'Configuration'")
        raise ConfigError(f"no sources configured in {config.path}; see README.md, 'Configuration'")
    for name in sources or []:
        if name not in config.sources:
            known = ", ".join(sorted(config.sources)) or "none"
            raise ConfigError(f"unknown source {name!r} (configured: {known})")
    results = _sync(config, db_path(args, config), reporter, sources=sources,
                    refetch=bool(getattr(args, "refetch", False)), verbose=bool(getattr(args, "verbose", False)))
    return _exit_code(results)


def run_tui(args: argparse.Namespace, reporter: Reporter, *, config: Any | None = None,
            path: Path | None = None) -> int:
    """The review screen (``warden`` without a command)."""
    from store.db import connect
    from tui.app import WardenApp

    if config is None:
        config = load_config(args)
    if path is None:
        path = db_path(args, config)
    # A file that is not a warden database (or cannot be opened) is a one-line
    # error here, not a stack trace from the queue's first worker.
    notices = check_database(path, reporter)
    connect(path).close()
    app = WardenApp(db_path=path, config=config, reviewer=reviewer(args, config), mouse=not args.no_mouse,
                    notices=notices)
    app.run(mouse=not args.no_mouse)
    return int(app.return_code or 0)


def run_demo(args: argparse.Namespace, reporter: Reporter) -> int:
    from store.demo import DEMO_TOKEN, DEMO_TOKEN_ENV, DemoEndpoint
    from store.demo.config import demo_config, write_demo_settings

    path = Path(args.db).expanduser() if args.db else default_db_path().with_name(f"demo-{args.consumers}.db")
    os.environ.setdefault(DEMO_TOKEN_ENV, DEMO_TOKEN)
    # X counts back from today: the demo's X answers for the real clock's today, as X would.
    today = datetime.now(timezone.utc).date()
    with DemoEndpoint(consumers=args.consumers, faults=args.fault, today=today) as endpoint:
        config = demo_config(endpoint, db_path=path)
        reporter.say("demo", f"warden: demo endpoint on {endpoint.base_url}, database {path}",
                     url=endpoint.base_url, db=str(path))
        results = _sync(config, path, reporter, sources=None, verbose=bool(getattr(args, "verbose", False)))
        code = _exit_code(results)
        if args.demo_headless:
            _print_demo_summary(path, reporter)
        else:
            code = run_tui(args, reporter, config=config, path=path)
    # The demo's database is not the one the other commands open by default: say where
    # it is, and where its letter settings are (without them a letter drafted later
    # would come from "the Platform").
    settings = write_demo_settings(config, path)
    env = f"WARDEN_DB={shlex.quote(str(path))}" + (f" WARDEN_CONFIG={shlex.quote(str(settings))}" if settings else "")
    reporter.say("next", f"warden: the demo's database is {path}"
                         + (f", its letter settings {settings}" if settings else "")
                         + f"; to go on with them: export {env}, then try: warden · warden verify · "
                           "warden note draft CONSUMER · warden export --format all --out ./letters",
                 db=str(path), config=str(settings) if settings else None)
    return code


def _print_demo_summary(path: Path, reporter: Reporter) -> None:
    from store.db import connect
    from store.overview import database_overview
    from store.text import printable

    conn = connect(path, readonly=True)
    try:
        overview = database_overview(conn)
    finally:
        conn.close()
    reporter.say("summary", f"warden: {overview.consumers:,} consumers, {overview.usage_rows:,} usage rows",
                 consumers=overview.consumers, usage_rows=overview.usage_rows)
    for category, status, n in overview.findings:
        reporter.say("findings", f"warden: {n:,} {status} findings: {category}",
                     category=category, status=status, count=n)
    if overview.top is not None:
        consumer_id, legal_name, worst_ratio = overview.top
        reporter.say("top", f"warden: top of the queue: {printable(legal_name)} ({printable(consumer_id)}), "
                     f"worst ratio {worst_ratio:.1f}x", consumer=consumer_id, worst_ratio=worst_ratio)
