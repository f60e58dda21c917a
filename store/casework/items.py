"""What an audit request asks the consumer for, item by item, and each item's
answer as a case tracks it.

:data:`REQUEST_ITEMS` is the one definition: the letter's "Our request" section
is rendered from it (the template loops over ``request_items``), and when the
letter is exported each item becomes a row of ``case_item`` (state ``open``)
that reviewers mark ``answered``, ``partly_answered`` or ``refused`` as replies
come in (:func:`mark_items`), each change an entry of the decision log (subject
``item``) with the reviewer's comment.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Sequence

from store.casework.summary import refresh_case_summary
from store.clock import Clock, iso
from store.db import writing
from store.decision_log import Decision, conflict_error, record_decision
from store.domain import ITEM_STATES
from store.errors import ConflictError, DecisionRefused
from store.text import clean_text


@dataclass(frozen=True)
class RequestItem:
    """One thing the letter asks for: an id the checklist and the log use, a
    short title, and the sentence of the letter (``{organisation}`` and
    ``{legal_name}`` filled in when drafted)."""

    id: str
    title: str
    text: str

    def sentence(self, *, organisation: str, legal_name: str) -> str:
        """The item as the letter states it."""
        return self.text.format(organisation=clean_text(organisation), legal_name=clean_text(legal_name))


REQUEST_ITEMS: tuple[RequestItem, ...] = (
    RequestItem("purpose", "Purpose",
                "the purpose for which it uses the API and the data retrieved through it"),
    RequestItem("storage", "Storage",
                "what data retrieved from the API is stored, where (systems, providers, countries) and for "
                "how long"),
    RequestItem("deletion", "Deletions",
                "the deletions made of such data, with dates and the method used"),
    RequestItem("recipients", "Recipients",
                "every party to whom such data, or anything derived from it, was made available, including any "
                "government entity or government end user, and the notice given to {organisation} for each"),
    RequestItem("workarounds", "Throttling workarounds",
                "any means used to work around the rate limits or volume caps of the agreement (for example, "
                "spreading traffic across several applications or keys)"),
    RequestItem("signed_report", "Signed report",
                "a deployment report, signed by an authorised officer of {legal_name}, certifying the answers "
                "above"),
)
ITEMS_BY_ID: dict[str, RequestItem] = {item.id: item for item in REQUEST_ITEMS}


def request_context(*, organisation: str, legal_name: str) -> list[dict[str, Any]]:
    """The template variable ``request_items``: each item's ``id``, ``number``,
    ``title`` and ``text`` (its sentence), in the letter's order."""
    return [{"id": item.id, "number": n, "title": item.title,
             "text": item.sentence(organisation=organisation, legal_name=legal_name)}
            for n, item in enumerate(REQUEST_ITEMS, start=1)]


# --- a case's items -----------------------------------------------------------------


@dataclass(frozen=True)
class CaseItem:
    """One requested item of one case, as the checklist shows it."""

    id: int               # case_item.id (the log's subject id)
    case_id: int
    item: str             # a RequestItem id
    number: int           # its number in the letter
    state: str            # one of store.domain.ITEM_STATES
    comment: str | None   # the last change's comment
    updated_at: str
    version: int

    @property
    def title(self) -> str:
        known = ITEMS_BY_ID.get(self.item)
        return known.title if known is not None else self.item


_COLUMNS = "id, case_id, item, position, state, comment, updated_at, version"


def case_items(conn: sqlite3.Connection, case_id: int) -> list[CaseItem]:
    """The case's items in the letter's order."""
    return [CaseItem(*row) for row in conn.execute(
        f"SELECT {_COLUMNS} FROM case_item WHERE case_id = ? ORDER BY position", (case_id,))]


def add_items(conn: sqlite3.Connection, case_id: int, note_id: int, *, reviewer: str, clock: Clock,
              action_id: int | None) -> int | None:
    """Track every request item for ``case_id`` as ``open`` (the letter, note
    ``note_id``, asked for them), logging each; items already tracked are kept.
    Inside the caller's transaction; returns the action id of the entries."""
    now = iso(clock())
    for number, item in enumerate(REQUEST_ITEMS, start=1):
        cur = conn.execute(
            "INSERT INTO case_item (case_id, item, position, state, updated_at) VALUES (?, ?, ?, 'open', ?)"
            " ON CONFLICT (case_id, item) DO NOTHING", (case_id, item.id, number, now))
        if cur.rowcount:
            entry = record_decision(conn, subject="item", subject_id=int(cur.lastrowid), field="state", old=None,
                                    new="open", reason=f"asked for by note #{note_id}: {item.id}",
                                    reviewer=reviewer, clock=clock, action_id=action_id)
            action_id = entry.action_id
    return action_id


@dataclass(frozen=True)
class ItemChange:
    """A reviewer's change of one item: its new state and the version they saw."""

    item: str                        # a RequestItem id
    state: str
    expected_version: int | None = None


def mark_items(conn: sqlite3.Connection, case_id: int, changes: Sequence[ItemChange], *, comment: str,
               reviewer: str, clock: Clock) -> list[Decision]:
    """Set the state of items of ``case_id``, one action in the log, the comment
    as each entry's reason. A comment is required. An item changed by someone
    else since the reviewer saw it (``expected_version``) refuses the whole
    change with ConflictError naming its state now and who set it."""
    text = (comment or "").strip()
    if not text:
        raise DecisionRefused("marking an item needs a comment (what the reply said, where)")
    with writing(conn):
        row = conn.execute("SELECT consumer_id, state FROM case_file WHERE id = ?", (case_id,)).fetchone()
        if row is None:
            raise DecisionRefused(f"there is no case #{case_id}")
        items = {i.item: i for i in case_items(conn, case_id)}
        written: list[Decision] = []
        action_id: int | None = None
        for change in changes:
            if change.state not in ITEM_STATES:
                raise DecisionRefused(f"unknown item state {change.state!r}; valid: {', '.join(ITEM_STATES)}")
            item = items.get(change.item)
            if item is None:
                raise DecisionRefused(f"case #{case_id} asked for no item {change.item!r}; its items: "
                                      + ", ".join(items))
            if change.expected_version is not None and item.version != change.expected_version:
                raise _conflict(conn, item)
            if change.state == item.state:
                continue
            now = iso(clock())
            updated = conn.execute(
                "UPDATE case_item SET state = ?, comment = ?, updated_at = ?, version = version + 1"
                " WHERE id = ? AND version = ?", (change.state, text, now, item.id, item.version)).rowcount
            if updated != 1:
                raise _conflict(conn, item)
            entry = record_decision(conn, subject="item", subject_id=item.id, field="state", old=item.state,
                                    new=change.state, reason=text, reviewer=reviewer, clock=clock,
                                    action_id=action_id)
            action_id = entry.action_id
            written.append(entry)
        if written:
            refresh_case_summary(conn, [row[0]])
        return written


def _conflict(conn: sqlite3.Connection, item: CaseItem) -> ConflictError:
    now = conn.execute(f"SELECT {_COLUMNS} FROM case_item WHERE id = ?", (item.id,)).fetchone()
    current = CaseItem(*now) if now is not None else item
    return conflict_error(conn, "item", item.id, f"item {item.item} of case #{item.case_id} changed since you looked",
                          ITEM_STATES.get(current.state, current.state),
                          {"item": item.item, "state": current.state, "version": current.version},
                          current.updated_at)
