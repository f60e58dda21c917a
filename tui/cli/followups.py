"""``warden followup draft CONSUMER --kind reminder|overdue|final``: a follow-up
to the audit request drafted as a note, without the UI (then ``warden note
ready`` and ``warden export`` as for the letter), logged as the TUI logs it."""

from __future__ import annotations

import argparse
from typing import Any

from tui.cli.common import EXIT_OK, Reporter, common_options, open_existing, reviewer

__all__ = ["add_parsers"]


def add_parsers(commands: Any) -> None:
    from store.domain import FOLLOWUP_KINDS

    followup = commands.add_parser("followup", help="draft a reminder, an overdue notice or a final notice",
                                   description="Follow-ups to an audit request.")
    actions = followup.add_subparsers(dest="action", metavar="ACTION", required=True)
    draft = actions.add_parser(
        "draft", help="draft a follow-up note for the consumer's case",
        description="Draft (or re-draft) a follow-up note citing the letter's date and reference, the due date "
                    "and the items still open; then mark it ready (warden note ready CONSUMER: frozen, its "
                    "SHA-256 logged) and export it like the letter (warden export --consumer CONSUMER). "
                    "A final notice gives a last deadline of "
                    "[notes] final_notice_days; its export moves the case's due date there.")
    common_options(draft, suppress=True)
    draft.add_argument("consumer", metavar="CONSUMER", help="the consumer's id")
    draft.add_argument("--kind", required=True, choices=list(FOLLOWUP_KINDS), help=", ".join(FOLLOWUP_KINDS))
    draft.set_defaults(run=run_followup)


def run_followup(args: argparse.Namespace, reporter: Reporter) -> int:
    from store.casework.followups import draft_followup
    from store.clock import system_clock

    config, conn = open_existing(args, reporter)
    try:
        done = draft_followup(conn, args.consumer, args.kind, reviewer=reviewer(args, config), clock=system_clock,
                              config=config.notes)
    finally:
        conn.close()
    reporter.say("drafted", f"warden: drafted note #{done.note.id} ({done.kind}) of {args.consumer}: "
                 f"{done.note.subject}", note=done.note.id, followup=done.kind)
    for warning in done.warnings:
        reporter.say("warning", f"warden: warning: {warning}", note=done.note.id)
    return EXIT_OK
