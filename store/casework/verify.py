"""What ``warden verify`` checks of cases: the log replayed against the cases,
their items and responses, and every stored reply file against its hash.

- a case's state, due date, outcome and escalation are what the log's last
  entry of each says; an item's state and comment too (a state changed without
  an entry is named, with the table's value and the log's);
- every response and every file of it has its entries (the day received; each
  file's SHA-256, name and size), and the log names no file the tables lost;
- every file recorded is in the evidence store, whole: a file edited, removed or
  truncated is named with its path.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from store.casework.evidence import check_file
from store.casework.responses import file_reason

# Log fields of a case and the column each stands for.
CASE_FIELDS: dict[str, str] = {"state": "state", "due_date": "due_date", "outcome": "outcome",
                               "escalated_to": "escalated_to", "letter": "letter_note_id", "reopens": "reopens"}


@dataclass(frozen=True)
class CaseProblem:
    """One thing about a case that does not match (the fields of verify's problems)."""

    kind: str                         # case | item | response | evidence
    message: str
    entry: int | None = None
    subject_id: int | None = None
    field: str | None = None
    table: str | None = None
    logged: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _last(conn: sqlite3.Connection, subject: str) -> dict[tuple[int, str], tuple[str | None, int, str | None]]:
    """(subject id, field) -> (new value, entry id, reason) of the last entry."""
    last: dict[tuple[int, str], tuple[str | None, int, str | None]] = {}
    for subject_id, name, value, entry, reason in conn.execute(
            "SELECT subject_id, field, new_value, id, reason FROM decision WHERE subject = ? ORDER BY id", (subject,)):
        last[(subject_id, name)] = (value, entry, reason)
    return last


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def case_problems(conn: sqlite3.Connection, evidence_root: Path | None) -> list[CaseProblem]:
    """Every mismatch between the log and the cases, items, responses and files
    (``evidence_root``: the store to check the files in; None skips the files)."""
    problems = _cases(conn) + _items(conn) + _responses(conn)
    if evidence_root is not None:
        problems += _files(conn, evidence_root)
    return problems


def _cases(conn: sqlite3.Connection) -> list[CaseProblem]:
    last = _last(conn, "case")
    problems: list[CaseProblem] = []
    seen: set[int] = set()
    columns = list(CASE_FIELDS.values())
    for row in conn.execute(f"SELECT id, {', '.join(columns)} FROM case_file ORDER BY id").fetchall():
        case_id, values = row[0], dict(zip(columns, row[1:]))
        seen.add(case_id)
        for name, column in CASE_FIELDS.items():
            logged = last.get((case_id, name))
            table = _text(values[column])
            if logged is None and (name == "state" or table is not None):
                problems.append(CaseProblem("case", f"case #{case_id} {name}: the table says {table}, and the log "
                                                    "has no entry for it", subject_id=case_id, field=name,
                                            table=table))
            elif logged is not None and logged[0] != table:
                problems.append(CaseProblem("case", f"case #{case_id} {name}: the table says {table}, the log "
                                                    f"says {logged[0]} (entry {logged[1]})", entry=logged[1],
                                            subject_id=case_id, field=name, table=table, logged=logged[0]))
    for case_id in sorted({cid for cid, _name in last} - seen):
        problems.append(CaseProblem("case", f"case #{case_id} is in the log but not in the database (deleted)",
                                    subject_id=case_id))
    return problems


def _items(conn: sqlite3.Connection) -> list[CaseProblem]:
    last = _last(conn, "item")
    problems: list[CaseProblem] = []
    seen: set[int] = set()
    for item_id, case_id, item, state, comment in conn.execute(
            "SELECT id, case_id, item, state, comment FROM case_item ORDER BY id").fetchall():
        seen.add(item_id)
        logged = last.get((item_id, "state"))
        what = f"item {item} of case #{case_id}"
        if logged is None:
            problems.append(CaseProblem("item", f"{what} is {state} and the log has no entry for it",
                                        subject_id=item_id, field="state", table=state))
            continue
        if logged[0] != state:
            problems.append(CaseProblem("item", f"{what} state: the table says {state}, the log says {logged[0]} "
                                                f"(entry {logged[1]}): changed without a log entry",
                                        entry=logged[1], subject_id=item_id, field="state", table=state,
                                        logged=logged[0]))
        elif comment is not None and comment != logged[2]:
            problems.append(CaseProblem("item", f"{what} comment: the table says {comment!r}, the log says "
                                                f"{logged[2]!r} (entry {logged[1]})", entry=logged[1],
                                        subject_id=item_id, field="comment", table=comment, logged=logged[2]))
    for item_id in sorted({iid for iid, _name in last} - seen):
        problems.append(CaseProblem("item", f"item #{item_id} is in the log but not in the database (deleted)",
                                    subject_id=item_id))
    return problems


def _responses(conn: sqlite3.Connection) -> list[CaseProblem]:
    received = {sid: (value, entry) for (sid, name), (value, entry, _reason) in _last(conn, "response").items()
                if name == "received"}
    logged_files: dict[tuple[int, str], tuple[int, str | None]] = {}
    for sid, value, entry, reason in conn.execute(
            "SELECT subject_id, new_value, id, reason FROM decision WHERE subject = 'response' AND field = 'file'"):
        logged_files[(sid, value)] = (entry, reason)
    problems: list[CaseProblem] = []
    days: dict[int, str] = {}
    for response_id, day in conn.execute("SELECT id, received_on FROM response ORDER BY id").fetchall():
        days[response_id] = day
        logged = received.get(response_id)
        if logged is None or logged[0] != day:
            problems.append(CaseProblem(
                "response", f"response #{response_id} received: the table says {day}, the log says "
                            f"{logged[0] if logged else 'nothing'}", entry=logged[1] if logged else None,
                subject_id=response_id, field="received", table=day, logged=logged[0] if logged else None))
    rows = conn.execute("SELECT response_id, sha256, name, bytes FROM response_file ORDER BY response_id, rowid"
                        ).fetchall()
    for response_id, sha256, name, size in rows:
        logged = logged_files.get((response_id, sha256))
        expected = file_reason(name, size, days.get(response_id, "?"))
        if logged is None:
            problems.append(CaseProblem("response", f"response #{response_id} file {sha256}: in the table, not in "
                                                    "the log", subject_id=response_id, field="file", table=sha256))
        elif logged[1] != expected:
            problems.append(CaseProblem("response", f"response #{response_id} file {sha256}: the table says "
                                                    f"{expected!r}, the log says {logged[1]!r} (entry {logged[0]})",
                                        entry=logged[0], subject_id=response_id, field="file", table=expected,
                                        logged=logged[1]))
    for response_id, sha256 in sorted(set(logged_files) - {(r[0], r[1]) for r in rows}):
        problems.append(CaseProblem("response", f"response #{response_id} file {sha256}: in the log, not in the "
                                                "database (deleted)", entry=logged_files[(response_id, sha256)][0],
                                    subject_id=response_id, field="file", logged=sha256))
    return problems


def _files(conn: sqlite3.Connection, root: Path) -> list[CaseProblem]:
    problems = []
    for sha256, size in conn.execute("SELECT sha256, bytes FROM evidence_file ORDER BY sha256").fetchall():
        why = check_file(root, sha256, size)
        if why is not None:
            problems.append(CaseProblem("evidence", f"evidence file {sha256}: {why}", field="file", logged=sha256))
    return problems
