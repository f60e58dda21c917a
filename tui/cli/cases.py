"""``warden due``, ``warden response add``, ``warden case show|item|close|escalate``:
a case after its letter, without the UI, each change written to the decision
log as the TUI writes it. Listings go to stdout (``--json``: one JSON object per
line, or one object for ``case show``); events to stderr."""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import Any

from store.domain import CASE_OUTCOMES, ITEM_STATES
from store.errors import ConfigError
from tui.cli.common import EXIT_OK, Reporter, common_options, open_existing, reviewer

__all__ = ["add_parsers"]


def add_parsers(commands: Any) -> None:
    due = commands.add_parser(
        "due", help="cases awaiting a response, soonest due first",
        description="List the cases awaiting a reply (a letter sent; or a response received while items are "
                    "still open), soonest due first, with the due date and the days left or overdue. For cron "
                    "and mail pipelines: --json prints one JSON object per case.")
    common_options(due, suppress=True)
    due.add_argument("--overdue", action="store_true", help="only the cases past their due date")
    due.set_defaults(run=run_due)

    response = commands.add_parser("response", help="record a consumer's reply and its files",
                                   description="Record a reply to the audit request.")
    actions = response.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add", help="record a reply and its attachments (stored by SHA-256)",
        description="Copy each FILE into the evidence store beside the database (by SHA-256, mode 0600, never "
                    "modified) and record the reply: the case moves to 'response received'. Refused, storing "
                    "nothing, when no letter was sent, a file is missing, unreadable or over [evidence] "
                    "max_file_bytes, or the date is in the future.")
    common_options(add, suppress=True)
    add.add_argument("consumer", metavar="CONSUMER", help="the consumer's id")
    add.add_argument("files", metavar="FILE", nargs="+", help="the reply and its attachments")
    add.add_argument("--received", metavar="DATE", help="the day it was received, YYYY-MM-DD (default: today, UTC)")
    add.add_argument("--note", metavar="TEXT", help="what the reply says, in a line")
    add.set_defaults(run=run_response_add)

    case = commands.add_parser("case", help="a consumer's case: show, mark items, close, escalate",
                               description="A consumer's case after its letter.")
    verbs = case.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = verbs.add_parser("show", help="print the case's timeline",
                            description="Print the case: findings, decisions, letters, responses with their "
                                        "SHA-256, items, follow-ups and outcome (--json: one JSON object).")
    item = verbs.add_parser("item", help="mark an item the letter asked for",
                            description="Mark a requested item of the consumer's case (purpose, storage, deletion, "
                                        "recipients, workarounds, signed_report) with a comment.")
    close = verbs.add_parser("close", help="close the case with an outcome",
                             description="Close the consumer's case: " + "; ".join(
                                 f"{k} ({v})" for k, v in CASE_OUTCOMES.items())
                             + ". The first three resolve it; its audit-requested findings become resolved.")
    escalate = verbs.add_parser("escalate", help="escalate the case to someone",
                                description="Escalate the consumer's case (to counsel, a manager), with a reason.")
    for verb in (show, item, close, escalate):
        common_options(verb, suppress=True)
        verb.add_argument("consumer", metavar="CONSUMER", help="the consumer's id")
        verb.set_defaults(run=run_case)
    item.add_argument("item", metavar="ITEM", help="the item's id (warden case show lists them)")
    item.add_argument("state", metavar="STATE", choices=list(ITEM_STATES), help=", ".join(ITEM_STATES))
    item.add_argument("--comment", required=True, metavar="TEXT", help="what the reply says about it (required)")
    close.add_argument("--outcome", required=True, choices=list(CASE_OUTCOMES), metavar="OUTCOME",
                       help=", ".join(CASE_OUTCOMES))
    close.add_argument("--reason", required=True, metavar="TEXT", help="why (required)")
    escalate.add_argument("--to", required=True, metavar="WHOM", help="to whom")
    escalate.add_argument("--reason", required=True, metavar="TEXT", help="why (required)")


def _today(clock: Any) -> date:
    from store.clock import day

    return date.fromisoformat(day(clock()))


def run_due(args: argparse.Namespace, reporter: Reporter) -> int:
    from store.casework.due import due_cases
    from store.clock import system_clock

    today = _today(system_clock)
    _config, conn = open_existing(args, reporter, readonly=True)
    try:
        rows = due_cases(conn, today, overdue_only=args.overdue)
    finally:
        conn.close()
    for row in rows:
        reporter.show(json.dumps(row.as_json(), sort_keys=True) if args.json else row.line(today))
    overdue = sum(1 for r in rows if r.overdue)
    if not args.json:
        reporter.say("listed", f"warden: {len(rows):,} case(s) awaiting a reply, {overdue:,} overdue",
                     count=len(rows), overdue=overdue)
    return EXIT_OK


def run_response_add(args: argparse.Namespace, reporter: Reporter) -> int:
    from store.casework.responses import add_response
    from store.clock import system_clock
    from store.text import printable

    config, conn = open_existing(args, reporter)
    try:
        done = add_response(conn, args.consumer, args.files, reviewer=reviewer(args, config), clock=system_clock,
                            max_bytes=config.evidence.max_file_bytes, received=args.received, note=args.note)
    finally:
        conn.close()
    reporter.say("response", f"warden: recorded response #{done.response_id} of {printable(done.consumer_id)} "
                 f"received {done.received_on}: case #{done.case_id} is {done.state.replace('_', ' ')}",
                 response=done.response_id, case=done.case_id, state=done.state)
    for f in done.files:
        kept = f" (already recorded in response #{f.already})" if f.already else ""
        reporter.say("file", f"  {printable(f.name)}  {f.bytes:,} bytes  sha256 {f.sha256}{kept}",
                     name=f.name, sha256=f.sha256, bytes=f.bytes, already=f.already)
    for warning in done.warnings:
        reporter.say("warning", f"warden: warning: {warning}")
    return EXIT_OK


def run_case(args: argparse.Namespace, reporter: Reporter) -> int:
    from store.cases import consumer_exists
    from store.clock import system_clock

    config, conn = open_existing(args, reporter, readonly=args.action == "show")
    try:
        if not consumer_exists(conn, args.consumer):
            raise ConfigError(f"there is no consumer {args.consumer!r}")
        if args.action == "show":
            return _show(conn, args, reporter)
        who = reviewer(args, config)
        return {"item": _item, "close": _close, "escalate": _escalate}[args.action](
            conn, args, reporter, who, system_clock)
    finally:
        conn.close()


def _show(conn: Any, args: argparse.Namespace, reporter: Reporter) -> int:
    from store.casework.timeline import timeline
    from store.clock import system_clock

    found = timeline(conn, args.consumer)
    if args.json:
        reporter.show(json.dumps(found.as_json(), sort_keys=True, ensure_ascii=True, default=str))
    else:
        reporter.show("\n".join(found.lines(_today(system_clock))))
    return EXIT_OK


def _item(conn: Any, args: argparse.Namespace, reporter: Reporter, who: str, clock: Any) -> int:
    from store.casework.items import ItemChange, mark_items
    from store.casework.state import case_under_way

    case = case_under_way(conn, args.consumer, what="marking an item")
    written = mark_items(conn, case.id, [ItemChange(args.item, args.state)], comment=args.comment, reviewer=who,
                         clock=clock)
    what = f"item {args.item} of case #{case.id} is {ITEM_STATES[args.state]}"
    reporter.say("item", f"warden: {what}" if written else f"warden: nothing changed: {what} already",
                 case=case.id, item=args.item, state=args.state, changed=bool(written))
    return EXIT_OK


def _close(conn: Any, args: argparse.Namespace, reporter: Reporter, who: str, clock: Any) -> int:
    from store.casework.state import close_case

    case = close_case(conn, args.consumer, outcome=args.outcome, reason=args.reason, reviewer=who, clock=clock)
    reporter.say("closed", f"warden: case #{case.id} of {args.consumer} is {case.state_label}: "
                 f"{CASE_OUTCOMES[args.outcome]}", case=case.id, state=case.state, outcome=case.outcome)
    return EXIT_OK


def _escalate(conn: Any, args: argparse.Namespace, reporter: Reporter, who: str, clock: Any) -> int:
    from store.casework.state import escalate_case
    from store.text import printable

    case = escalate_case(conn, args.consumer, to=args.to, reason=args.reason, reviewer=who, clock=clock)
    reporter.say("escalated", f"warden: case #{case.id} of {args.consumer} is escalated to "
                 f"{printable(case.escalated_to or '')}", case=case.id, to=case.escalated_to)
    return EXIT_OK
