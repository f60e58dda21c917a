"""The ``warden`` command line: the parser, and one module per group of commands.

Exit codes: 0 done; 1 partly failed or refused (a source failed and the rest were
stored, an export refused to overwrite, a decision that conflicts or has nothing
to do, a log that does not verify); 2 bad usage or configuration (also a file
that is not a warden database). Headless output is one line per event on stderr
(``--json``: one JSON object per line); what a command was asked to show (a
listing, a note) goes to stdout. Tokens are read from the environment variables
the configuration names and never printed.

Modules: :mod:`.common` (options, exit codes, the reporter, database and
configuration), :mod:`.sync` (``--headless``, ``sync``, ``demo``, the TUI),
:mod:`.export`, :mod:`.verify`, :mod:`.decide` (``decide``, ``findings``),
:mod:`.notes` (``note``), :mod:`.rules` (``rules``), :mod:`.cases` (``due``,
``response``, ``case``), :mod:`.followups` (``followup``), :mod:`.report` (``report``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from store.errors import ConfigError, ForeignDatabase, WardenError
from tui.cli import cases, decide, export, followups, notes, report, rules, sync, verify
from tui.cli.common import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, Reporter, common_options

__all__ = ["EXIT_OK", "EXIT_PARTIAL", "EXIT_USAGE", "build_parser", "main"]

DESCRIPTION = """\
warden finds API consumers that break their usage agreements and asks them, with
evidence, for an audit. It syncs usage summaries from remote endpoints into SQLite,
flags consumers whose usage breaks their limits, and lets reviewers decide.

commands:
  warden                        review in the TUI (default database)
  warden --headless             sync every configured source, no UI, then exit
  warden sync [--source NAME] [--refetch]   the same sync, one source (or all)
  warden demo [--consumers N]   start the embedded demo endpoint, sync it, open the TUI
  warden findings ...           list findings (of a consumer, in a status)
  warden decide ...             confirm, dismiss, park or undo, as the TUI does
  warden note draft|ready|show CONSUMER   the audit-request note, without the UI
  warden export ...             write notes / findings in chosen formats, no UI
  warden verify [--head HASH]   replay the decision log against findings, notes and cases
  warden rules [--all]          run the rules over consumers whose data changed (--all: every one)
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
  1  partly failed or refused: some source failed (the rest are stored), an
     export refused to overwrite, a decision conflicts or has nothing to do, or
     the decision log does not verify
  2  bad usage or configuration, or a file that is not a warden database

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
    common_options(parser, suppress=False)
    parser.add_argument("--headless", action="store_true",
                        help="sync every configured source without the UI, then exit")
    parser.add_argument("--refetch", action="store_true",
                        help="with --headless: fetch each source's whole window again (from its start), "
                             "even a closed window already fetched completely")
    parser.add_argument("--version", action="version", version=f"warden {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in (sync, decide, notes, export, verify, rules, cases, followups, report):
        group.add_parsers(commands)
    return parser


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
        code = EXIT_USAGE if isinstance(exc, (ConfigError, ForeignDatabase)) else EXIT_PARTIAL
    except KeyboardInterrupt:
        reporter.say("interrupted", "warden: interrupted")
        code = 130
    except BrokenPipeError:
        # Whoever read stdout stopped (``warden case show ... | head``): nothing left to say to it.
        # Python would complain about the unflushed stdout at exit; point it at /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_PARTIAL
    if argv is None:
        sys.exit(code)
    return code


def _dispatch(args: argparse.Namespace, reporter: Reporter) -> int:
    run = getattr(args, "run", None)
    if run is not None:
        return int(run(args, reporter))
    if args.headless:
        return sync.run_sync(args, reporter, sources=None)
    return sync.run_tui(args, reporter)
