"""``warden report --format md|html|json``: the lead's overview written to a file
(or stdout) for people who do not open a terminal."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import Any

from store.domain import REPORT_FORMATS
from tui.cli.common import EXIT_OK, Reporter, common_options, open_existing

__all__ = ["add_parsers"]


def add_parsers(commands: Any) -> None:
    report = commands.add_parser(
        "report", help="write the lead's overview as Markdown, HTML or JSON",
        description="Write the overview of the TUI's overview screen (cases by state, overdue cases, findings "
                    "per month, the largest overage, decisions per reviewer per week): Markdown with the charts "
                    "as text, a standalone HTML page with the charts as inline SVG, or JSON.")
    common_options(report, suppress=True)
    report.add_argument("--format", required=True, choices=REPORT_FORMATS, dest="fmt", metavar="FORMAT",
                        help=", ".join(REPORT_FORMATS))
    report.add_argument("--out", metavar="FILE", help="write it to FILE (0600, atomically; default: stdout)")
    report.add_argument("--force", action="store_true", help="replace FILE if it exists")
    report.set_defaults(run=run_report)


def run_report(args: argparse.Namespace, reporter: Reporter) -> int:
    from store.clock import day, system_clock
    from store.export.files import write_file
    from store.report import lead_overview
    from store.report.formats import render_report

    config, conn = open_existing(args, reporter, readonly=True)
    try:
        overview = lead_overview(conn, date.fromisoformat(day(system_clock())))
    finally:
        conn.close()
    text = render_report(overview, args.fmt, organisation=config.notes.organisation)
    if not args.out:
        reporter.show(text.rstrip("\n"))
        return EXIT_OK
    out = write_file(Path(args.out), text.encode("utf-8"), force=args.force)
    reporter.say("report", f"warden: wrote the overview as {args.fmt} to {out}", format=args.fmt, out=str(out))
    return EXIT_OK
