"""A consumer's reply to its audit request: the files, stored as evidence, and
the case moving to ``response received``.

:func:`add_response` checks everything first (a case under way whose letter was
sent, a received date that is neither in the future nor before the letter,
every file there, readable, a regular file and within the size limit), then
copies each file into the evidence store (:mod:`store.casework.evidence`), then
records the reply in one transaction: the response, its files (a file already
recorded for the case, by hash, is not recorded again), and the log entries
(subject ``response``: ``received`` with the date, then one ``file`` entry per
file with its SHA-256, name and size). A refusal stores and records nothing; a
copy killed midway leaves no file under a hash name, and running the command
again completes it.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Sequence

from store.casework.state import case_under_way, change_case
from store.clock import Clock, day, iso
from store.db import transaction
from store.decision_log import record_decision
from store.errors import DecisionRefused, StoreError
from store.casework.evidence import FILE_REFUSED, evidence_dir, put
from store.text import clean_text, printable


@dataclass(frozen=True)
class ReceivedFile:
    """One file of a reply: its name as given, hash and size, and whether the
    case held it already (then it is not recorded again)."""

    name: str
    sha256: str
    bytes: int
    already: int | None = None       # the response that recorded it first


@dataclass(frozen=True)
class ResponseRecorded:
    """What :func:`add_response` recorded."""

    response_id: int
    case_id: int
    consumer_id: str
    received_on: str
    files: tuple[ReceivedFile, ...]
    state: str                        # the case's state after it
    warnings: tuple[str, ...] = field(default_factory=tuple)


def file_reason(name: str, size: int, received_on: str) -> str:
    """The reason of a ``file`` entry in the log (``verify`` recomputes it from the
    response's rows): ``reply.pdf; 12,345 bytes; received 2023-05-20``."""
    return f"{clean_text(name)}; {size:,} bytes; received {received_on}"


def evidence_root(conn: sqlite3.Connection) -> Path:
    """The evidence store beside the database ``conn`` is open on."""
    path = conn.execute("PRAGMA database_list").fetchone()[2]
    if not path:
        raise StoreError("an in-memory database has no evidence store beside it")
    return evidence_dir(path)


def received_day(text: str | None, today: date) -> str:
    """The received date a reviewer gave (``YYYY-MM-DD``; default today), refused
    when it is not a date or lies in the future."""
    if text is None or not text.strip():
        return today.isoformat()
    try:
        received = date.fromisoformat(text.strip())
    except ValueError:
        raise DecisionRefused(f"received date {text!r} is not a date like 2023-05-20") from None
    if received > today:
        raise DecisionRefused(f"received date {received} is in the future (today is {today}, UTC)")
    return received.isoformat()


def add_response(conn: sqlite3.Connection, consumer_id: str, paths: Sequence[str | os.PathLike[str]], *,
                 reviewer: str, clock: Clock, max_bytes: int, received: str | None = None,
                 note: str | None = None, root: Path | None = None) -> ResponseRecorded:
    """Record a reply of ``consumer_id`` with its files (see the module docstring).

    Raises DecisionRefused (no letter sent, a bad date, nothing new) or
    StoreError (a file missing, unreadable, not a file, too large), having
    stored and recorded nothing.
    """
    today = date.fromisoformat(day(clock()))
    received_on = received_day(received, today)
    text = (note or "").strip() or None
    case = case_under_way(conn, consumer_id, what="a response")
    sent = (case.letter_sent_at or "")[:10]
    if received_on < sent:
        raise DecisionRefused(f"received date {received_on} is before the letter was sent ({sent})")
    if not paths and text is None:
        raise DecisionRefused("a response needs a file or a note")
    problems = [p for p in (_problem(Path(path), max_bytes) for path in paths) if p]
    if problems:
        raise StoreError("; ".join(problems) + "; nothing stored or recorded", title=FILE_REFUSED)
    store = root if root is not None else evidence_root(conn)
    stored = [(Path(path).name, put(store, path, max_bytes=max_bytes)) for path in paths]
    now = iso(clock())
    with transaction(conn):
        case = case_under_way(conn, consumer_id, what="a response")
        held = dict(conn.execute(
            "SELECT f.sha256, min(r.id) FROM response_file f JOIN response r ON r.id = f.response_id"
            " WHERE r.case_id = ? GROUP BY f.sha256", (case.id,)).fetchall())
        files: list[ReceivedFile] = []
        seen: set[str] = set()
        for name, copy in stored:
            if copy.sha256 in seen:
                continue     # the same content twice in one reply: recorded once
            seen.add(copy.sha256)
            files.append(ReceivedFile(name, copy.sha256, copy.bytes, held.get(copy.sha256)))
        new = [f for f in files if f.already is None]
        if not new and text is None:
            raise DecisionRefused(f"every file is already recorded for case #{case.id} (" + ", ".join(
                f"{clean_text(f.name)} in response #{f.already}" for f in files) + "); nothing recorded")
        response_id = int(conn.execute(
            "INSERT INTO response (case_id, received_on, note, recorded_at, reviewer) VALUES (?, ?, ?, ?, ?)",
            (case.id, received_on, text, now, reviewer)).lastrowid)
        entry = record_decision(conn, subject="response", subject_id=response_id, field="received", old=None,
                                new=received_on, reason=text, reviewer=reviewer, clock=clock)
        for f in new:
            conn.execute("INSERT INTO evidence_file (sha256, bytes, stored_at) VALUES (?, ?, ?)"
                         " ON CONFLICT (sha256) DO NOTHING", (f.sha256, f.bytes, now))
            conn.execute("INSERT INTO response_file (response_id, sha256, name, bytes) VALUES (?, ?, ?, ?)",
                         (response_id, f.sha256, f.name, f.bytes))
            record_decision(conn, subject="response", subject_id=response_id, field="file", old=None,
                            new=f.sha256, reason=file_reason(f.name, f.bytes, received_on), reviewer=reviewer,
                            clock=clock, action_id=entry.action_id)
        state = "response_received" if case.state == "letter_sent" else case.state
        case, _ = change_case(conn, case, reason=f"response #{response_id} received {received_on}",
                              reviewer=reviewer, clock=clock, action_id=entry.action_id, state=state)
    warnings = [f"{clean_text(f.name)} is already recorded for case #{case.id} (response #{f.already}); "
                "not recorded again" for f in files if f.already is not None]
    return ResponseRecorded(response_id, case.id, consumer_id, received_on, tuple(files), case.state,
                            tuple(warnings))


def _problem(path: Path, max_bytes: int) -> str | None:
    """Why the file at ``path`` cannot be stored, or None."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return f"{printable(str(path))}: no such file"
    except OSError as exc:
        return f"{printable(str(path))}: cannot read it ({exc.strerror or exc})"
    if not path.is_file():
        return f"{printable(str(path))} is not a regular file"
    if not os.access(path, os.R_OK):
        return f"{printable(str(path))}: cannot read it (permission denied)"
    if info.st_size > max_bytes:
        return (f"{printable(str(path))} is {info.st_size:,} bytes, over the limit of {max_bytes:,} bytes "
                "([evidence] max_file_bytes)")
    return None
