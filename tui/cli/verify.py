"""``warden verify``: replay the decision log against the database and the stored
reply files, read-only."""

from __future__ import annotations

import argparse
import re
from typing import Any

from tui.cli.common import EXIT_OK, EXIT_PARTIAL, Reporter, common_options, db_path, open_existing


def add_parsers(commands: Any) -> None:
    verify = commands.add_parser(
        "verify", help="replay the decision log: chain, findings, notes, cases, evidence files",
        description="Walk the decision log (every entry's hash and its link to the previous one), then "
                    "check that every finding's status, severity and category, every note's status and "
                    "text, every case's state, items and responses are what the log says, and that every "
                    "reply file in the evidence store still has its recorded SHA-256. Opens the database "
                    "read-only.")
    common_options(verify, suppress=True)
    verify.add_argument("--head", metavar="HASH", type=_hash,
                        help="fail unless HASH (a head printed earlier, or carried by an export's manifest) "
                             "is the log's head or an entry before it: entries cut from the end show")
    verify.set_defaults(run=run_verify)


def _hash(text: str) -> str:
    value = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise argparse.ArgumentTypeError(f"not a SHA-256 in hex (64 characters 0-9, a-f): {text!r}")
    return value


def run_verify(args: argparse.Namespace, reporter: Reporter) -> int:
    from store.casework.evidence import evidence_dir
    from store.verify import verify_log

    config, conn = open_existing(args, reporter, readonly=True)
    try:
        report = verify_log(conn, head=args.head, evidence_root=evidence_dir(db_path(args, config)))
    finally:
        conn.close()
    fields = {"ok": report.ok, "checked": report.checked, "head": report.head,
              "problems": [p.as_json() for p in report.problems]}
    if report.ok:
        known = f"; {args.head[:12]}… is in it" if args.head and args.head != report.head else ""
        reporter.say("verified", f"warden: decision log verified: {report.checked:,} entries, chain intact, "
                     "findings, notes and cases as logged, evidence files whole, head "
                     f"{report.head or '-'}{known}", **fields)
        return EXIT_OK
    for problem in report.problems:
        what = "evidence store" if problem.kind == "evidence" else "decision log"
        reporter.say("broken", f"warden: {what} BROKEN: {problem.message}", problem=problem.as_json())
    reporter.say("verify_failed", f"warden: {len(report.problems)} problem(s) ({report.checked:,} entries "
                 f"checked); head {report.head or '-'}", **fields)
    return EXIT_PARTIAL
