"""The ``warden`` command line.

Exit codes: 0 done; 1 partly failed (a source failed and the rest were stored, an
export refused to overwrite, a broken decision log); 2 bad usage or configuration.
Headless output is one line per event on stderr (``--json``: one JSON object per
line). Tokens are read from the environment variables the configuration names and
never printed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from store.domain import EXPORT_FORMATS
from store.errors import ConfigError, WardenError
from tui.cli_common import (  # noqa: F401 - the names the commands (and tests) use
    EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, Reporter, _common, _db_path, _load_config, _open_existing, _reviewer,
    default_config_path, default_db_path,
)


DESCRIPTION = """\
warden finds API consumers that break their usage agreements and asks them, with
evidence, for an audit. It syncs usage summaries from remote endpoints into SQLite,
flags consumers whose usage breaks their limits, and lets reviewers decide.

commands:
  warden                        review in the TUI (default database)
  warden --headless             sync every configured source, no UI, then exit
  warden sync [--source NAME] [--refetch]   the same sync, one source (or all)
  warden demo [--consumers N]   start the embedded demo endpoint, sync it, open the TUI
  warden export ...             write notes / findings in chosen formats, no UI
  warden verify                 check the decision log's hash chain
  warden due [--overdue]        cases awaiting a response, with due dates
  warden response add CONSUMER FILE...    a reply and its attachments, stored by SHA-256
  warden case show|item|close|escalate CONSUMER    a case's timeline, items and outcome
  warden followup draft CONSUMER --kind reminder|overdue|final   a follow-up note
  warden report --format md|html|json     the lead's overview, for people without a terminal
"""

EPILOG = """\
environment:
  WARDEN_DB       database path (instead of --db)
  WARDEN_CONFIG   configuration file (instead of --config)
  EDITOR          editor for notes (split with shlex, never run through a shell)
  NO_COLOR        no colours in the TUI

exit codes:
  0  done
  1  partly failed: some source failed (the rest are stored), an export refused
     to overwrite, or the decision log does not verify
  2  bad usage or configuration

Tokens come from the environment variables named in the configuration
(token_env); they are never written to the database, a log, an export or an
error message.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="warden",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(parser, suppress=False)
    parser.add_argument("--headless", action="store_true",
                        help="sync every configured source without the UI, then exit")
    parser.add_argument("--refetch", action="store_true",
                        help="with --headless: fetch each source's whole window again (from its start), "
                             "even a closed window already fetched completely")
    parser.add_argument("--version", action="version", version=f"warden {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    sync = commands.add_parser("sync", help="sync configured sources without the UI",
                               description="Sync configured sources into the database, then run the rules.")
    _common(sync, suppress=True)
    sync.add_argument("--source", metavar="NAME", action="append",
                      help="only this source (repeatable; default: every source)")
    sync.add_argument("--refetch", action="store_true", default=argparse.SUPPRESS,
                      help="fetch each source's whole window again (from its start), even a closed window "
                           "(end = a past day) already fetched completely")

    demo = commands.add_parser(
        "demo", help="start the embedded demo endpoint, sync it, open the TUI",
        description="Start the embedded demo endpoint on 127.0.0.1 (deterministic synthetic data), "
                    "sync it into a database and open the TUI. No configuration needed.")
    _common(demo, suppress=True)
    demo.add_argument("--consumers", type=_positive_int, default=300, metavar="N",
                      help="number of synthetic consumers, up to 1,000,000 (default 300)")
    demo.add_argument("--headless", action="store_true", dest="demo_headless",
                      help="sync the demo and print a summary instead of opening the TUI")
    demo.add_argument("--fault", action="append", metavar="SPEC", default=[],
                      help="inject a fault into the demo endpoint (see store.demo for SPEC), repeatable")

    export = commands.add_parser(
        "export", help="export notes / findings without the UI",
        description="Write notes (md, html, eml, json) or findings (csv) with a manifest of SHA-256 "
                    "hashes. Never overwrites an existing file unless --force.")
    _common(export, suppress=True)
    export.add_argument("--format", required=True, type=_formats, dest="formats", metavar="FORMATS",
                        help="md, html, eml, json, csv, several separated by commas, or 'all'")
    export.add_argument("--out", required=True, metavar="DIR", help="output directory")
    export.add_argument("--consumer", metavar="ID", help="only this consumer")
    export.add_argument("--status", metavar="STATUS", help="only notes in this status (draft, ready, exported)")
    export.add_argument("--force", action="store_true", help="replace existing files (atomically)")

    verify = commands.add_parser("verify", help="check the decision log's hash chain",
                                 description="Walk the decision log and check every entry's hash "
                                             "and its link to the previous one.")
    _common(verify, suppress=True)
    from tui import cli_cases, cli_report

    for group in (cli_cases, cli_report):
        group.add_parsers(commands)
    return parser


def _formats(text: str) -> list[str]:
    """``md``, ``md,html`` or ``all``: the export formats, in the order given."""
    if text.strip() == "all":
        return list(EXPORT_FORMATS)
    formats = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if not formats or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(map(repr, unknown)) or repr(text)} (choose from {', '.join(EXPORT_FORMATS)}, or all)")
    return list(dict.fromkeys(formats))


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError("must be between 1 and 1,000,000")
    return value


def _version() -> str:
    import store

    return store.__version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    reporter = Reporter(as_json=bool(args.json))
    try:
        code = _dispatch(args, reporter)
    except WardenError as exc:
        reporter.say("error", f"warden: {exc.title}: {exc}", title=exc.title, detail=str(exc))
        code = EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_PARTIAL
    except KeyboardInterrupt:
        reporter.say("interrupted", "warden: interrupted")
        code = 130
    if argv is None:
        sys.exit(code)
    return code


def _dispatch(args: argparse.Namespace, reporter: Reporter) -> int:
    run = getattr(args, "run", None)
    if run is not None:
        return int(run(args, reporter))
    command = args.command
    if command == "demo":
        return _run_demo(args, reporter)
    if command == "verify":
        return _run_verify(args, reporter)
    if command == "export":
        return _run_export(args, reporter)
    if command == "sync":
        return _run_sync(args, reporter, sources=args.source)
    if args.headless:
        return _run_sync(args, reporter, sources=None)
    return _run_tui(args)


# --- shared plumbing --------------------------------------------------------------

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


def _sync(config: Any, db_path: Path, reporter: Reporter, *, sources: list[str] | None,
          refetch: bool = False) -> list[Any]:
    from store.sync.engine import sync_all

    cancel = threading.Event()
    restore = _cancel_on_signals(cancel)
    try:
        return sync_all(db_path, config, on_event=reporter.event, cancel=cancel, sources=sources, refetch=refetch)
    finally:
        restore()


def _exit_code(results: list[Any]) -> int:
    return EXIT_OK if all(r.status == "ok" for r in results) else EXIT_PARTIAL


# --- commands ---------------------------------------------------------------------

def _run_sync(args: argparse.Namespace, reporter: Reporter, *, sources: list[str] | None) -> int:
    config = _load_config(args)
    if not config.sources:
        where = config.path or args.config or os.environ.get("WARDEN_CONFIG") or default_config_path()
        raise ConfigError(f"no sources configured in {where}; see README.md, 'Configuration'")
    for name in sources or []:
        if name not in config.sources:
            known = ", ".join(sorted(config.sources)) or "none"
            raise ConfigError(f"unknown source {name!r} (configured: {known})")
    db_path = _db_path(args, config)
    results = _sync(config, db_path, reporter, sources=sources, refetch=bool(getattr(args, "refetch", False)))
    _report_results(results, reporter)
    return _exit_code(results)


def _report_results(results: list[Any], reporter: Reporter) -> None:
    ok = sum(1 for r in results if r.status == "ok")
    rows = sum(r.rows for r in results)
    reporter.say("summary", f"warden: {ok}/{len(results)} sources synced, {rows:,} rows stored",
                 sources=len(results), ok=ok, rows=rows)


def _run_verify(args: argparse.Namespace, reporter: Reporter) -> int:
    from store.decision_log import verify_chain

    from store.casework.evidence import evidence_dir
    from store.casework.verify import case_problems

    config, conn = _open_existing(args)
    try:
        report = verify_chain(conn)
        # The cases replayed from the log, and every stored reply file against its hash.
        problems = case_problems(conn, evidence_dir(_db_path(args, config)))
    finally:
        conn.close()
    for problem in problems:
        found = {k: v for k, v in problem.as_json().items() if k not in ("kind", "message")}
        reporter.say("mismatch", f"warden: {problem.message}", ok=False, problem=problem.kind, **found)
    if report.ok and problems:
        reporter.say("broken", f"warden: decision log chain intact ({report.checked:,} entries, head "
                     f"{report.head or '-'}), but {len(problems):,} thing(s) do not match it",
                     checked=report.checked, ok=False, head=report.head, problems=len(problems))
        return EXIT_PARTIAL
    if report.ok:
        # The head hash is printed so it can be noted elsewhere: entries cut from the
        # end of the log leave an intact chain, only a known head reveals them.
        reporter.say("verified", f"warden: decision log verified: {report.checked:,} entries, chain intact, "
                     f"head {report.head or '-'}", checked=report.checked, ok=True, head=report.head)
        return EXIT_OK
    reporter.say("broken", f"warden: decision log BROKEN at entry {report.first_bad_id}: {report.why} "
                 f"({report.checked:,} entries checked)",
                 checked=report.checked, ok=False, first_bad_id=report.first_bad_id, why=report.why)
    return EXIT_PARTIAL


def _run_export(args: argparse.Namespace, reporter: Reporter) -> int:
    from store.clock import system_clock
    from store.errors import ExportError
    from store.export import export_notes

    config, conn = _open_existing(args)
    code = EXIT_OK
    note_ids = None
    try:
        for fmt in args.formats:
            try:
                result = export_notes(
                    conn, fmt=fmt, out_dir=Path(args.out).expanduser(), consumer_id=args.consumer,
                    status=args.status, force=args.force, reviewer=_reviewer(args, config),
                    clock=system_clock, config=config.notes, note_ids=note_ids,
                )
            except ExportError as exc:
                reporter.say("export_refused", f"warden: {exc.title} ({fmt}): {exc}", format=fmt, detail=str(exc))
                code = EXIT_PARTIAL
                continue
            # A note format marks its notes exported: the next formats take the same
            # notes, not a fresh selection by status.
            if note_ids is None:
                note_ids = result.note_ids
            for line in result.summary_lines():
                reporter.say("exported", line, format=fmt)
    finally:
        conn.close()
    return code


def _run_tui(args: argparse.Namespace, *, config: Any | None = None, db_path: Path | None = None,
             on_exit: Callable[[], None] | None = None) -> int:
    from tui.app import WardenApp

    if config is None:
        config = _load_config(args)
    if db_path is None:
        db_path = _db_path(args, config)
    from store.db import connect

    # A file that is not a warden database (or cannot be opened) is a one-line
    # error here, not a stack trace from the queue's first worker.
    connect(db_path).close()
    app = WardenApp(db_path=db_path, config=config, reviewer=_reviewer(args, config),
                    mouse=not args.no_mouse)
    app.run(mouse=not args.no_mouse)
    return int(app.return_code or 0)


def _run_demo(args: argparse.Namespace, reporter: Reporter) -> int:
    from store.demo import DEMO_TOKEN, DEMO_TOKEN_ENV, DemoEndpoint
    from store.demo.config import demo_config

    db_path = Path(args.db).expanduser() if args.db else (
        default_db_path().with_name(f"demo-{args.consumers}.db"))
    os.environ.setdefault(DEMO_TOKEN_ENV, DEMO_TOKEN)
    # X counts back from today: the demo's X answers for the real clock's today, as X would.
    today = datetime.now(timezone.utc).date()
    with DemoEndpoint(consumers=args.consumers, faults=args.fault, today=today) as endpoint:
        config = demo_config(endpoint, db_path=db_path)
        reporter.say("demo", f"warden: demo endpoint on {endpoint.base_url}, database {db_path}",
                     url=endpoint.base_url, db=str(db_path))
        results = _sync(config, db_path, reporter, sources=None)
        _report_results(results, reporter)
        code = _exit_code(results)
        if args.demo_headless:
            _print_demo_summary(db_path, reporter)
            return code
        return _run_tui(args, config=config, db_path=db_path)


def _print_demo_summary(db_path: Path, reporter: Reporter) -> None:
    from store.db import connect
    from store.overview import database_overview
    from store.text import printable

    conn = connect(db_path)
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
