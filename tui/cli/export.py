"""``warden export``: notes and findings written to files, no UI."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from store.domain import EXPORT_FORMATS
from tui.cli.common import EXIT_OK, EXIT_PARTIAL, Reporter, common_options, open_existing, reviewer


def add_parsers(commands: Any) -> None:
    export = commands.add_parser(
        "export", help="export notes / findings without the UI",
        description="Write notes (md, html, eml, json) or findings (csv) with a manifest of SHA-256 "
                    "hashes. Never overwrites an existing file unless --force. An export interrupted "
                    "earlier is finished (or undone) first.")
    common_options(export, suppress=True)
    export.add_argument("--format", required=True, type=formats, dest="formats", metavar="FORMATS",
                        help="md, html, eml, json, csv, several separated by commas, or 'all'")
    export.add_argument("--out", required=True, metavar="DIR", help="output directory")
    export.add_argument("--consumer", metavar="ID", help="only this consumer")
    export.add_argument("--status", metavar="STATUS", help="only notes in this status (draft, ready, exported)")
    export.add_argument("--force", action="store_true",
                        help="replace existing files: the whole set and its manifest, or nothing")
    export.set_defaults(run=run_export)


def formats(text: str) -> list[str]:
    """``md``, ``md,html`` or ``all``: the export formats, in the order given."""
    if text.strip() == "all":
        return list(EXPORT_FORMATS)
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [f for f in chosen if f not in EXPORT_FORMATS]
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(map(repr, unknown)) or repr(text)} (choose from {', '.join(EXPORT_FORMATS)}, or all)")
    return list(dict.fromkeys(chosen))


def run_export(args: argparse.Namespace, reporter: Reporter) -> int:
    from store.clock import system_clock
    from store.errors import ExportError
    from store.export import export_notes

    config, conn = open_existing(args, reporter)
    code = EXIT_OK
    note_ids = None
    try:
        for fmt in args.formats:
            try:
                result = export_notes(
                    conn, fmt=fmt, out_dir=Path(args.out).expanduser(), consumer_id=args.consumer,
                    status=args.status, force=args.force, reviewer=reviewer(args, config),
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
