"""A case after its letter, for the casework tests: the Northwind case of
:mod:`tests.notes_case` drafted and exported on 2 May 2023 (a Tuesday), so its
reply is due 23 May 2023 (21 calendar days)."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from store.casework.items import REQUEST_ITEMS, ItemChange, mark_items
from store.casework.responses import add_response
from store.casework.state import close_case, escalate_case
from store.clock import Clock, fixed_clock
from store.config import NotesConfig
from store.db import connect
from store.export import export_notes
from store.notes import draft_note
from store.queue_summary import refresh_summary
from tests.notes_case import CASE_ID, CLOCK, seed

SENT_ON = date(2023, 5, 2)
DUE = "2023-05-23"
ITEM_IDS = ("purpose", "storage", "deletion", "recipients", "workarounds", "signed_report")


def at(day: str, hour: int = 10) -> Clock:
    """A clock fixed at ``day`` (UTC), ``hour`` o'clock."""
    return fixed_clock(datetime.fromisoformat(day).replace(hour=hour, tzinfo=timezone.utc))


def send_letter(conn: sqlite3.Connection, out: Path, *, consumer_id: str = CASE_ID, clock: Clock = CLOCK,
                notes: NotesConfig | None = None, reviewer: str = "ana", fmt: str = "md") -> Any:
    """Draft the consumer's audit request and export it (the letter is sent)."""
    config = notes or NotesConfig()
    draft_note(conn, consumer_id, reviewer=reviewer, clock=clock, config=config)
    return export_notes(conn, fmt=fmt, out_dir=out, consumer_id=consumer_id, reviewer=reviewer, clock=clock,
                        config=config)


def sent_case(tmp_path: Path) -> sqlite3.Connection:
    """The seeded database with the Northwind letter exported (case #1)."""
    conn = seed(tmp_path / "w.db")
    send_letter(conn, tmp_path / "out")
    return conn


def log(conn: sqlite3.Connection, subject: str) -> list[tuple[Any, ...]]:
    """(subject id, field, old, new, reason) of the log's entries about ``subject``, in order."""
    return [tuple(r) for r in conn.execute(
        "SELECT subject_id, field, old_value, new_value, reason FROM decision WHERE subject = ? ORDER BY id",
        (subject,))]


def case_columns(conn: sqlite3.Connection, consumer_id: str = CASE_ID) -> tuple[str | None, str | None]:
    """The consumer's (case_state, case_due) as the queue reads them."""
    row = conn.execute("SELECT case_state, case_due FROM consumer WHERE id = ?", (consumer_id,)).fetchone()
    return (row[0], row[1])


def cases_in_every_state(tmp: Path) -> Path:
    """Northwind (letter 2 May: overdue), bulk-00000 (letter 20 May, a reply with items open: due 10 June),
    bulk-00001 (letter 25 May: due 15 June), bulk-00002 (escalated), bulk-00003 (resolved), bulk-00004 and
    bulk-00005 no letter (open), bulk-00006 (letter 11 May, every item answered: nothing due)."""
    conn = seed(tmp / "w.db", consumers=7)
    refresh_summary(conn, [r[0] for r in conn.execute("SELECT id FROM consumer")])
    out = tmp / "out"
    send_letter(conn, out / "nw", consumer_id=CASE_ID, clock=at("2023-05-02"))
    for n, sent in ((0, "2023-05-20"), (1, "2023-05-25"), (2, "2023-05-03"), (3, "2023-05-04"), (6, "2023-05-11")):
        send_letter(conn, out / str(n), consumer_id=f"bulk-{n:05d}", clock=at(sent), reviewer="bo")
    reply = tmp / "reply.txt"
    reply.write_text("partial answers")
    add_response(conn, "bulk-00000", [reply], reviewer="bo", clock=at("2023-05-28"), max_bytes=100)
    mark_items(conn, 2, [ItemChange("purpose", "answered")], comment="p1", reviewer="bo", clock=at("2023-05-28"))
    escalate_case(conn, "bulk-00002", to="Counsel", reason="no reply", reviewer="cy", clock=at("2023-05-29"))
    close_case(conn, "bulk-00003", outcome="tier_changed", reason="moved up", reviewer="cy", clock=at("2023-05-30"))
    other = tmp / "other.txt"
    other.write_text("all answers")
    add_response(conn, "bulk-00006", [other], reviewer="bo", clock=at("2023-05-29"), max_bytes=100)
    mark_items(conn, 6, [ItemChange(i.id, "answered") for i in REQUEST_ITEMS], comment="all", reviewer="bo",
               clock=at("2023-05-29"))
    conn.close()
    return tmp / "w.db"


def review_db_with_letter(path: Path) -> Path:
    """The TUI tests' review database (tests.tui_data) with Northwind's findings
    confirmed and its letter exported on 2 January 2023: due 23 January."""
    from store.review import bulk_decide
    from tests.tui_data import CLOCK as TUI_CLOCK, seed_review_db

    seed_review_db(path)
    conn = connect(path)
    bulk_decide(conn, action="confirm", reviewer="alice", clock=TUI_CLOCK, consumer_ids=["northwind-analytics"],
                severity="critical", reason="over the 2022 cap")
    send_letter(conn, path.parent / "letter", consumer_id="northwind-analytics", clock=TUI_CLOCK, reviewer="alice")
    conn.close()
    return path
