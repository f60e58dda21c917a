"""Time to draft and export 1,000 audit-request notes in every format (not a test; run as a script).

    python tests/benchmarks/bench_export.py [--notes 1000] [--keep DIR]

Seeds a SQLite file with the Northwind case plus N-1 small consumers (one app,
a year of monthly usage, one confirmed volume-cap finding each), drafts a note
for each, marks them ready, then exports all of them as md, html, json, eml and
csv into one folder, timing each step. Export time includes rendering, writing
every file atomically (fsync) and recording the export, the status changes and
the decision-log entries.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from notes_case import CLOCK, seed  # noqa: E402
from store.config import NotesConfig  # noqa: E402
from store.domain import EXPORT_FORMATS  # noqa: E402
from store.export import export_notes  # noqa: E402
from store.notes import draft_note, set_note_status  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="write the database and exports here instead of a temp folder")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="warden-bench-export-"))
    work.mkdir(parents=True, exist_ok=True)
    config = NotesConfig()

    t = time.perf_counter()
    conn = seed(work / "bench.db", consumers=args.notes - 1)
    # The seed's hostile consumer has a note too in real life; keep the count exact here.
    ids = [r[0] for r in conn.execute("SELECT id FROM consumer WHERE id NOT LIKE '../%' ORDER BY id")]
    print(f"seed      {len(ids):>6,} consumers        {time.perf_counter() - t:8.2f} s")

    t = time.perf_counter()
    for cid in ids:
        note = draft_note(conn, cid, reviewer="bench", clock=CLOCK, config=config)
        set_note_status(conn, note.id, "ready", reviewer="bench", clock=CLOCK)
    drafted = time.perf_counter() - t
    print(f"draft     {len(ids):>6,} notes (+ ready)   {drafted:8.2f} s   {drafted / len(ids) * 1000:6.1f} ms/note")

    out = work / "out"
    total = 0.0
    for fmt in EXPORT_FORMATS:
        t = time.perf_counter()
        result = export_notes(conn, fmt=fmt, out_dir=out, reviewer="bench", clock=CLOCK, config=config)
        took = time.perf_counter() - t
        total += took
        size = sum(f.bytes for f in result.files)
        print(f"export    {fmt:<5} {len(result.note_ids):>6,} notes {len(result.files):>6,} files "
              f"{size / 1e6:7.1f} MB {took:8.2f} s   {took / len(result.note_ids) * 1000:6.1f} ms/note")
    print(f"export    all five formats, {len(ids):,} notes:  {total:8.2f} s")
    conn.close()
    if args.keep:
        print(f"files in  {out}")
    else:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
