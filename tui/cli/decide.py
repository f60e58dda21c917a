"""``warden decide`` and ``warden findings``: the TUI's decisions without a
terminal UI, writing the same log entries (through :func:`store.review.decide`),
and the findings they act on."""

from __future__ import annotations

import argparse
import json
from typing import Any

from store.domain import CATEGORIES, DISMISS_REASONS, FINDING_STATUSES, SEVERITIES
from store.errors import ConfigError
from tui.cli.common import EXIT_OK, EXIT_PARTIAL, Reporter, common_options, open_existing, reviewer

_ACTIONS = {"confirm": "confirm violations", "dismiss": "dismiss findings (reason code and text)",
            "needs-info": "park findings until information arrives"}


def add_parsers(commands: Any) -> None:
    decide = commands.add_parser(
        "decide", help="confirm, dismiss, park or undo findings without the UI",
        description="The TUI's decisions from the command line, each written to the decision log as the "
                    "TUI writes it. Without --finding, every open finding of the consumer is decided. A "
                    "finding and its twin (a volume-cap or rate-limit finding and the circumvention finding "
                    "over the same figures) are decided together; the log records each.")
    actions = decide.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text in _ACTIONS.items():
        action = actions.add_parser(name, help=help_text, description=f"{help_text[0].upper()}{help_text[1:]}.")
        common_options(action, suppress=True)
        action.add_argument("consumer", metavar="CONSUMER", help="the consumer's id")
        action.add_argument("--finding", metavar="ID", type=int, action="append", dest="findings",
                            help="only this finding (repeatable; default: every open finding of the consumer)")
        action.add_argument("--reason", metavar="TEXT",
                            help="why, logged with each entry (confirm: optional, as in the TUI: without one each "
                                 "finding's rule and figures are logged; a changed --severity or --category "
                                 "needs one. dismiss: optional, except with --code other)")
        if name == "confirm":
            action.add_argument("--severity", choices=SEVERITIES,
                                help="set this severity (default: each finding's severity as detected)")
            action.add_argument("--category", choices=tuple(CATEGORIES),
                                help="correct the category (default: each finding's category as detected)")
        if name == "dismiss":
            action.add_argument("--code", required=True, choices=tuple(DISMISS_REASONS),
                                help="the reason code of the dismissal")
        action.set_defaults(run=run_decide)
    undo = actions.add_parser("undo", help="undo your last decision", description="Undo your last decision "
                              "(all the entries of that action), as new entries of the log.")
    common_options(undo, suppress=True)
    undo.set_defaults(run=run_decide)

    findings = commands.add_parser(
        "findings", help="list findings",
        description="List findings (id, consumer, category, period, severity, status, times the limit, twin). "
                    "Reads only.")
    common_options(findings, suppress=True)
    findings.add_argument("--consumer", metavar="ID", help="only this consumer's")
    findings.add_argument("--status", metavar="STATUS", choices=FINDING_STATUSES, help="only in this status")
    findings.set_defaults(run=run_findings)


def run_decide(args: argparse.Namespace, reporter: Reporter) -> int:
    from store.clock import system_clock
    from store.review import ConfirmRequest, DismissRequest, NeedsInfoRequest, UndoRequest, decide

    config, conn = open_existing(args, reporter)
    try:
        request: Any
        consumers: list[str] = []
        if args.action == "undo":
            request = UndoRequest()
        else:
            consumers = [args.consumer]
            _check_scope(conn, args.consumer, args.findings or [])
            ids = tuple(args.findings or ())
            reason = (args.reason or "").strip()
            if args.action == "confirm":
                request = ConfirmRequest(ids, args.category, args.severity, reason)
            elif args.action == "dismiss":
                if args.code == "other" and not reason:
                    raise ConfigError("warden decide dismiss --code other needs --reason: why it is not a violation")
                request = DismissRequest(ids, args.code, reason)
            else:
                request = NeedsInfoRequest(ids, reason)
        outcome = decide(conn, request, consumers, versions={}, reviewer=reviewer(args, config),
                         clock=system_clock)
    finally:
        conn.close()
    reporter.say("decided" if outcome.changed else "unchanged", f"warden: {outcome.summary}",
                 changed=outcome.changed, findings=list(outcome.finding_ids))
    return EXIT_OK if outcome.changed else EXIT_PARTIAL


def _check_scope(conn: Any, consumer_id: str, finding_ids: list[int]) -> None:
    """The consumer exists and every named finding is its own (a typo is bad usage)."""
    from store.cases import consumer_exists, finding_owners

    if not consumer_exists(conn, consumer_id):
        raise ConfigError(f"there is no consumer {consumer_id!r}")
    owners = finding_owners(conn, finding_ids)
    for fid in finding_ids:
        if fid not in owners:
            raise ConfigError(f"there is no finding #{fid}")
        if owners[fid] != consumer_id:
            raise ConfigError(f"finding #{fid} is not {consumer_id!r}'s (it is {owners[fid]!r}'s)")


def run_findings(args: argparse.Namespace, reporter: Reporter) -> int:
    from store.cases import consumer_exists, list_findings
    from store.text import printable
    from store.twins import twins_of

    _config, conn = open_existing(args, reporter, readonly=True)
    try:
        if args.consumer and not consumer_exists(conn, args.consumer):
            raise ConfigError(f"there is no consumer {args.consumer!r}")
        rows = list_findings(conn, consumer_id=args.consumer, status=args.status)
        twins = twins_of(conn, {f.consumer_id for f in rows})
        for f in rows:
            twin = twins.get(f.id)
            if args.json:
                reporter.show(json.dumps({
                    "id": f.id, "consumer_id": f.consumer_id, "category": f.category, "period": f.period,
                    "period_start": f.period_start, "period_end": f.period_end, "severity": f.severity,
                    "status": f.status, "metric": f.metric, "actual": f.actual, "limit": f.limit_value,
                    "ratio": f.ratio, "twin_of": twin}, sort_keys=True))
            else:
                ratio = f"{f.ratio:.2f}x" if f.ratio else "-"
                paired = f"  twin of #{twin}" if twin else ""
                reporter.show(f"#{f.id:<6} {printable(f.consumer_id):<24} {f.category:<20} {f.period:<22} "
                              f"{f.severity:<8} {f.status:<15} {ratio:>8}{paired}")
    finally:
        conn.close()
    if not args.json:
        reporter.say("listed", f"warden: {len(rows):,} finding(s)", count=len(rows))
    return EXIT_OK
