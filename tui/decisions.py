"""Recording a reviewer's decision through ``store.review``, and the one-line
summary of it that the review screen shows.

Moved here unchanged from ``tui/screens/review.py``; ``store.review.decide()``
and ``describe_undo()`` (the store restructure) take its place, and then this
module goes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from store import review
from store.clock import Clock
from store.domain import CATEGORIES
from tui.modals.choices import ConfirmChoice, DismissChoice, ManualChoice, NeedsInfoChoice
from tui.text import visible


@dataclass(frozen=True)
class Outcome:
    """What :func:`apply_decision` did: a one-line summary, and where the cursor
    goes after it (the index it was decided at, or a consumer: an undo's)."""

    summary: str
    keep_place: bool = True          # a decision: the cursor stays at its index
    consumer_id: str | None = None   # go to this consumer (an undo, a finding opened by hand)
    title: str = "Decision recorded"


Choice = ConfirmChoice | DismissChoice | NeedsInfoChoice | ManualChoice | None


def apply_decision(
    conn: sqlite3.Connection,
    choice: Choice,
    consumer_ids: list[str],
    *,
    versions: dict[int, int],
    reviewer: str,
    clock: Clock,
) -> Outcome:
    """Record one reviewer action through ``store.review``: a one-line summary and
    where the cursor goes next.

    ``choice`` is what a modal returned (None: undo the reviewer's last decision).
    Findings chosen in a modal are decided with the versions the reviewer saw, so
    a change made meanwhile in another session is a ConflictError, not an
    overwrite. A bulk decision over selected consumers takes their open findings.
    """
    if choice is None:
        undone = review.undo_last(conn, reviewer=reviewer, clock=clock)
        if undone is None:
            return Outcome("Nothing of yours to undo.", keep_place=False, title="Undo")
        return undo_outcome(conn, undone)
    if isinstance(choice, ManualChoice):
        finding = review.open_manual_finding(
            conn, consumer_ids[0], category=choice.category, severity=choice.severity,
            evidence=choice.evidence, reviewer=reviewer, clock=clock,
        )
        # The consumer now has an open finding to decide: the cursor goes with it.
        return Outcome(f"Opened finding #{finding.id} ({CATEGORIES[finding.category]})",
                       keep_place=False, consumer_id=consumer_ids[0])
    scope: dict[str, Any]
    if choice.finding_ids:
        scope = {
            "finding_ids": choice.finding_ids,
            "expected_versions": {fid: versions[fid] for fid in choice.finding_ids if fid in versions},
        }
    else:
        scope = {"consumer_ids": consumer_ids}
    if isinstance(choice, ConfirmChoice):
        decisions = review.bulk_decide(
            conn, action="confirm", reviewer=reviewer, clock=clock, severity=choice.severity,
            reason=choice.reason, category=choice.category, **scope,
        )
        verb = "Confirmed"
    elif isinstance(choice, DismissChoice):
        decisions = review.bulk_decide(
            conn, action="dismiss", reviewer=reviewer, clock=clock, reason_code=choice.reason_code,
            reason_text=choice.reason_text, **scope,
        )
        verb = "Dismissed"
    else:
        decisions = review.bulk_decide(
            conn, action="needs_info", reviewer=reviewer, clock=clock, reason=choice.reason, **scope,
        )
        verb = "Needs info:"
    findings = sorted({d.subject_id for d in decisions})
    if not findings:
        return Outcome("Nothing changed (already decided).")
    shown = ", ".join(f"#{fid}" for fid in findings[:6]) + (" …" if len(findings) > 6 else "")
    return Outcome(f"{verb} {len(findings)} finding{'s' if len(findings) != 1 else ''} {shown}")


def undo_outcome(conn: sqlite3.Connection, undo: review.Decision) -> Outcome:
    """``Undone: 14 findings of Fenwick Signal LLC back to candidate``, the cursor
    going to that consumer. ``undo`` is the first entry ``review.undo_last`` wrote;
    its action's entries say which findings and consumers the undo covered."""
    rows = conn.execute(
        "SELECT d.subject_id, d.field, d.new_value, u.old_value AS was, c.id AS consumer_id, c.legal_name"
        " FROM decision d JOIN finding f ON f.id = d.subject_id JOIN consumer c ON c.id = f.consumer_id"
        " LEFT JOIN decision u ON u.id = d.undoes"
        " WHERE d.action_id = ? AND d.subject = 'finding' ORDER BY d.id", (undo.action_id,),
    ).fetchall()
    findings = list(dict.fromkeys(r["subject_id"] for r in rows))
    consumers = dict((r["consumer_id"], r["legal_name"]) for r in rows)
    what = f"finding #{findings[0]}" if len(findings) == 1 else f"{len(findings):,} findings"
    who = visible(next(iter(consumers.values()))) if len(consumers) == 1 else f"{len(consumers):,} consumers"
    status = [r for r in rows if r["field"] == "status"]
    if status and all(r["was"] is None for r in status):
        # Undoing a finding opened by hand dismisses it (it had no earlier status).
        summary = f"Undone: opening {what} of {who} (now dismissed)"
    else:
        states = list(dict.fromkeys(visible(r["new_value"] or "none").replace("_", " ") for r in status))
        summary = f"Undone: {what} of {who}" + (f" back to {' / '.join(states)}" if states else "")
    return Outcome(summary, keep_place=False, consumer_id=next(iter(consumers)), title="Undo")
