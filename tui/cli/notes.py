"""``warden note draft|ready|show CONSUMER``: the audit-request note without the
UI, each status change written to the decision log as the TUI writes it. ``ready``
and ``show`` take the consumer's latest note: a follow-up once one is drafted
(``warden followup draft``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from store.errors import ConfigError
from tui.cli.common import EXIT_OK, EXIT_PARTIAL, Reporter, common_options, open_existing, reviewer


def add_parsers(commands: Any) -> None:
    note = commands.add_parser(
        "note", help="draft, mark ready or show a consumer's audit-request note (or its follow-up)",
        description="The audit-request note of a consumer: draft (from its confirmed findings), ready "
                    "(frozen: no edit until it goes back to draft), show (its Markdown on stdout). Ready and "
                    "show take the consumer's latest note: its follow-up, once one is drafted.")
    actions = note.add_subparsers(dest="action", metavar="ACTION", required=True)
    draft = actions.add_parser("draft", help="draft the note from the consumer's confirmed findings",
                               description="Draft the consumer's audit-request note. An open note (draft or "
                                           "ready) is replaced only with --replace: its text is lost.")
    draft.add_argument("--replace", action="store_true",
                       help="re-draft the consumer's open note (draft or ready), replacing its text")
    ready = actions.add_parser("ready", help="mark the latest note ready to export (frozen)",
                               description="Mark the consumer's latest note (the audit request, or a "
                                           "follow-up drafted since) ready: its text is frozen and its "
                                           "SHA-256 logged. Refused while it cites a finding no longer "
                                           "confirmed.")
    show = actions.add_parser("show", help="print the note's Markdown", description="Print the consumer's "
                              "latest note (Markdown) on stdout; --json prints it with its status and hash.")
    for action in (draft, ready, show):
        common_options(action, suppress=True)
        action.add_argument("consumer", metavar="CONSUMER", help="the consumer's id")
        action.set_defaults(run=run_note)


def run_note(args: argparse.Namespace, reporter: Reporter) -> int:
    from store.cases import consumer_exists
    from store.clock import system_clock
    from store.notes import TEMPLATE, draft_note, mark_ready, note_for
    from store.text import printable
    from store.verify import sha256_text

    config, conn = open_existing(args, reporter, readonly=args.action == "show")
    try:
        if not consumer_exists(conn, args.consumer):
            raise ConfigError(f"there is no consumer {args.consumer!r}")
        current = note_for(conn, args.consumer)
        if args.action == "show":
            if current is None:
                reporter.say("no_note", f"warden: {args.consumer} has no note; draft one first")
                return EXIT_PARTIAL
            if args.json:
                reporter.show(json.dumps({
                    "id": current.id, "consumer_id": current.consumer_id, "status": current.status,
                    "subject": current.subject, "finding_ids": list(current.finding_ids),
                    "body_sha256": sha256_text(current.body),
                    "body": current.body}, sort_keys=True))
            else:
                reporter.show(current.body.rstrip("\n"))
            return EXIT_OK
        who = reviewer(args, config)
        if args.action == "draft":
            current = note_for(conn, args.consumer, template=TEMPLATE)
            if current is not None and current.status in ("draft", "ready") and not args.replace:
                reporter.say("refused", f"warden: note #{current.id} of {args.consumer} is {current.status}; "
                             "--replace re-drafts it (its text is replaced); nothing changed",
                             note=current.id, status=current.status)
                return EXIT_PARTIAL
            note = draft_note(conn, args.consumer, reviewer=who, clock=system_clock, config=config.notes)
            verb = "re-drafted" if current is not None and current.status != "exported" else "drafted"
            reporter.say("drafted", f"warden: {verb} note #{note.id} of {args.consumer}, citing "
                         + (", ".join(f"#{i}" for i in note.finding_ids) or "no confirmed finding"),
                         note=note.id, findings=list(note.finding_ids))
            if note.warning:
                reporter.say("warning", f"warden: warning: {note.warning}", note=note.id)
            return EXIT_OK
        if current is None:
            reporter.say("no_note", f"warden: {args.consumer} has no note; draft one first")
            return EXIT_PARTIAL
        note, warnings = mark_ready(conn, current.id, reviewer=who, clock=system_clock)
        reporter.say("ready", f"warden: note #{note.id} of {args.consumer} ({printable(note.subject)}) is ready "
                     "(frozen; sha256 "
                     f"{sha256_text(note.body)})", note=note.id)
        for warning in warnings:
            reporter.say("warning", f"warden: warning: {warning}", note=note.id)
        return EXIT_OK
    finally:
        conn.close()
