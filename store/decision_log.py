"""The decision log: append-only, hash-chained, verifiable.

Every change to a finding (:mod:`store.review`), to a note's status
(:mod:`store.notes`), to a case, its requested items and its responses
(:mod:`store.casework`) and every export is one row of ``decision``: when, who,
what, old -> new, why. Each row carries ``prev_hash``, the hash of the row before
it, and ``hash``, SHA-256 over the canonical JSON of its own fields plus
``prev_hash``; the first row's ``prev_hash`` is 64 zeros. :func:`verify_chain`
recomputes the chain and names the first entry that does not fit.

Several reviewers (several processes) share one database: an entry is written
under the write lock (the caller's ``BEGIN IMMEDIATE``, or its own), so the
previous hash is read under it and two writers cannot fork the chain.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from store.clock import Clock, iso
from store.db import writing
from store.errors import ConflictError

GENESIS_HASH = "0" * 64
# The fields a decision's hash covers, in the canonical JSON (keys sorted).
HASHED_FIELDS: tuple[str, ...] = (
    "at", "reviewer", "subject", "subject_id", "field", "old_value", "new_value",
    "reason", "undoes", "action_id", "prev_hash",
)


DECISION_COLUMNS = ("id, at, reviewer, subject, subject_id, field, old_value, new_value, reason, undoes,"
                    " action_id, prev_hash, hash")


@dataclass(frozen=True)
class Decision:
    """One entry of the decision log."""

    id: int
    at: str
    reviewer: str
    subject: str            # 'finding' | 'note' | 'case' | 'item' | 'response'
    subject_id: int
    field: str              # status, severity, category, ...
    old_value: str | None
    new_value: str | None
    reason: str | None
    undoes: int | None
    action_id: int | None
    prev_hash: str
    hash: str

    def as_line(self) -> str:
        """``2026-11-27T20:14:29Z alice finding #12 status: candidate -> confirmed (reason)``."""
        reason = f" ({self.reason})" if self.reason else ""
        undo = f" [undoes #{self.undoes}]" if self.undoes else ""
        return (f"{self.at} {self.reviewer} {self.subject} #{self.subject_id} {self.field}: "
                f"{self.old_value or '-'} -> {self.new_value or '-'}{reason}{undo}")


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify_chain` found: ``ok`` or the first entry that does not fit and why."""

    ok: bool
    checked: int
    first_bad_id: int | None = None
    why: str | None = None
    # Hash of the last entry checked: entries removed from the END of the log leave
    # an intact chain, so compare this with a head noted earlier (a report, an export).
    head: str | None = None


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of an entry's hashed fields (incl. ``prev_hash``)."""
    canonical = json.dumps({k: entry.get(k) for k in HASHED_FIELDS}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def record_decision(conn: sqlite3.Connection, *, subject: str, subject_id: int, field: str,
                    old: Any, new: Any, reason: str | None, reviewer: str, clock: Clock,
                    undoes: int | None = None, action_id: int | None = None) -> Decision:
    """Append one entry to the decision log and return it.

    The caller holds the write transaction (``with transaction(conn):``) so the
    entry lands atomically with the change it records; without one, this opens
    its own. ``action_id`` groups entries of one action (default: a new action
    starting with this entry). Values are stored as text.
    """
    with writing(conn):
        last = conn.execute("SELECT id, hash FROM decision ORDER BY id DESC LIMIT 1").fetchone()
        # Ids are assigned here (contiguous) so a removed entry shows as a gap.
        new_id = (last[0] + 1) if last else 1
        entry: dict[str, Any] = {
            "at": iso(clock()),
            "reviewer": reviewer,
            "subject": subject,
            "subject_id": int(subject_id),
            "field": field,
            "old_value": _text(old),
            "new_value": _text(new),
            "reason": reason,
            "undoes": undoes,
            "action_id": action_id if action_id is not None else new_id,
            "prev_hash": last[1] if last else GENESIS_HASH,
        }
        entry["hash"] = entry_hash(entry)
        conn.execute(
            "INSERT INTO decision (id, at, reviewer, subject, subject_id, field, old_value, new_value,"
            " reason, undoes, action_id, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (new_id, entry["at"], reviewer, subject, entry["subject_id"], field, entry["old_value"],
             entry["new_value"], reason, undoes, entry["action_id"], entry["prev_hash"], entry["hash"]),
        )
        return Decision(id=new_id, **entry)


def read_decisions(conn: sqlite3.Connection, where: str,
                   params: Sequence[Any] | Mapping[str, Any] = ()) -> list[Decision]:
    """The entries ``SELECT ... FROM decision d {where}`` finds (``where`` may order
    and limit), as :class:`Decision` values."""
    return [Decision(*row) for row in conn.execute(f"SELECT {DECISION_COLUMNS} FROM decision d {where}", params)]


def last_change(conn: sqlite3.Connection, subject: str, subject_id: int) -> tuple[str, tuple[Any, ...] | None]:
    """Who changed a subject last and why, as a message says it (`` by alice (over
    the cap)``, or nothing when the log has no entry about it), and that entry's
    (reviewer, reason, at)."""
    last = conn.execute("SELECT reviewer, reason, at FROM decision WHERE subject = ? AND subject_id = ?"
                        " ORDER BY id DESC LIMIT 1", (subject, subject_id)).fetchone()
    if last is None:
        return "", None
    return f" by {last[0]}" + (f" ({last[1]})" if last[1] else ""), tuple(last)


def conflict_error(conn: sqlite3.Connection, subject: str, subject_id: int, head: str, now: str,
                   current: dict[str, Any], updated_at: str) -> ConflictError:
    """A ConflictError for a subject changed under a reviewer: ``{head}: it is now
    {now} by {reviewer} ({reason}), version {version}``, naming who changed it last
    (the log's last entry about it); ``.current`` holds ``current`` and who, why, when."""
    said, last = last_change(conn, subject, subject_id)
    return ConflictError(f"{head}: it is now {now}{said}, version {current['version']}",
                         current={**current, "reviewer": last[0] if last else None,
                                  "reason": last[1] if last else None, "at": last[2] if last else updated_at})


def log_head(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The log's head as an export carries it: ``{"head": hash, "entries": id}``
    of the last entry (None for an empty log)."""
    row = conn.execute("SELECT id, hash FROM decision ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else {"head": row[1], "entries": row[0]}


def verify_chain(conn: sqlite3.Connection) -> ChainReport:
    """Recompute every entry's hash and link; report the first entry that does not fit.

    Catches an edited entry (its fields no longer hash to its ``hash``), a
    rewritten hash (the next entry still carries the original), a removed entry
    (a gap in the ids, or a link to an entry no longer in the log), entries
    renumbered (to close the gap a removal left, or to change their order) and
    swapped ones, naming the entry that was changed rather than the first one
    that notices. Works even when someone dropped the append-only triggers to make
    the edit. Entries removed from the *end* leave an intact chain: compare the
    ``head`` with one noted earlier (:func:`store.verify.verify_log`).
    """
    rows = read_decisions(conn, "ORDER BY id")
    by_hash = {d.hash: d for d in rows}
    prev: Decision | None = None
    checked = 0

    def broken(bad_id: int, why: str) -> ChainReport:
        return ChainReport(False, checked, bad_id, why, head=prev.hash if prev else None)

    for d in rows:
        prev_hash = prev.hash if prev else GENESIS_HASH
        expected = prev.id + 1 if prev else 1
        own_ok = entry_hash({k: getattr(d, k) for k in HASHED_FIELDS}) == d.hash
        linked = d.prev_hash == prev_hash
        if d.id != expected:
            if linked and own_ok:
                after = f"#{prev.id}" if prev else "the start of the log"
                return broken(d.id, f"entries from #{d.id} on were renumbered: the numbers "
                                    f"{_span(expected, d.id - 1)} are missing, yet #{d.id} is chained directly "
                                    f"after {after} (nothing was removed there)")
            return broken(d.id, f"entry {_span(expected, d.id - 1)} before it is missing (removed from the log)")
        if not linked and own_ok:
            # Intact but chained elsewhere: moved, swapped, or its neighbour changed.
            bad_id, why = _misplaced(d, prev, rows, by_hash)
            return broken(bad_id, why)
        if not own_ok:   # its fields, its link among them, no longer hash to its hash
            return broken(d.id, "its recorded fields no longer match its hash: the entry was edited "
                                f"after it was written (now: {d.as_line()})")
        checked += 1
        prev = d
    return ChainReport(True, checked, head=prev.hash if prev else None)


def _span(first: int, last: int) -> str:
    return f"#{first}" if first == last else f"#{first}..#{last}"


def _misplaced(d: Decision, prev: Decision | None, rows: list[Decision],
               by_hash: dict[str, Decision]) -> tuple[int, str]:
    """Why ``d`` is not chained to the entry numbered before it, naming the entry
    that was changed: (entry id, why)."""
    after = f"#{prev.id}" if prev else "the start of the log"
    target = by_hash.get(d.prev_hash)
    if target is not None and target.id > d.id:
        if target.prev_hash == (prev.hash if prev else GENESIS_HASH):
            return d.id, (f"entries #{d.id} and #{target.id} were swapped: #{target.id} is chained after "
                          f"{after} and #{d.id} after #{target.id}")
        return d.id, f"entry #{d.id} was moved: it is chained after #{target.id}, a later number"
    if target is not None:
        return d.id, (f"entry #{d.id} is chained after #{target.id}, not after {after}: the entries between "
                      "them were moved or inserted")
    # Nothing in the log has the hash d was chained to.
    renumbered = next((e for e in rows if e.id >= d.id and ((e.action_id or 0) > e.id or (e.undoes or 0) >= e.id)),
                      None)
    if renumbered is not None or prev is None:
        hint = (f" (entry #{renumbered.id} names entry #{max(renumbered.action_id or 0, renumbered.undoes or 0)} "
                "as its own action or one it undoes: a number after its own, so it was renumbered)"
                if renumbered is not None else "")
        return d.id, (f"an entry was removed between {after} and #{d.id}, and the entries after it renumbered "
                      f"to close the gap: #{d.id} is chained to an entry no longer in the log{hint}")
    return prev.id, (f"entry #{prev.id}'s stored hash was rewritten (its fields edited and its hash "
                     f"recomputed); entry #{d.id} still carries the original. (Or an entry after #{prev.id} was "
                     "removed and the later ones renumbered.)")
