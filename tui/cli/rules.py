"""``warden rules``: run the rules without syncing (a sync runs them itself)."""

from __future__ import annotations

import argparse
from typing import Any

from tui.cli.common import EXIT_OK, Reporter, common_options, open_existing


def add_parsers(commands: Any) -> None:
    rules = commands.add_parser(
        "rules", help="run the rules without syncing",
        description="Run the rules over the consumers whose figures, apps, tier or limits changed since "
                    "the last run (a sync runs them itself). --all runs them over every consumer: the "
                    "same findings, for checking or after changing warden.")
    common_options(rules, suppress=True)
    rules.add_argument("--all", action="store_true", dest="all_consumers",
                       help="every consumer, not only those whose data changed")
    rules.set_defaults(run=run_rules)


def run_rules(args: argparse.Namespace, reporter: Reporter) -> int:
    from store.clock import system_clock
    from store.rules import run_rules as evaluate
    from store.sync.events import RulesApplied

    _config, conn = open_existing(args, reporter)
    try:
        result = evaluate(conn, clock=system_clock, everything=args.all_consumers)
    finally:
        conn.close()
    reporter.event(RulesApplied(result.consumers, result.created, result.updated, result.unchanged,
                                result.no_longer_detected, provenance=result.provenance, mode=result.mode))
    return EXIT_OK
