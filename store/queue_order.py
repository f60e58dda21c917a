"""The queue's orders: the sorts a reviewer cycles through, the columns (and
index) each reads, and, for a position in an order (after a key), the index
ranges that follow it and a condition for the rows before it. Reading them is
:mod:`store.queue`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from store.errors import FilterError
from store.queue_filter import REVIEW_STATES, QueueFilter

# ---------------------------------------------------------------------------
# Sorts

# The sorts, in the order a reviewer cycles through them (``o``), with what each
# means; ``QueueQuery.reverse`` turns any of them round.
SORTS: dict[str, str] = {
    "overage": "largest overage first",
    "status": "open, waiting for information, decided, clear; largest overage first within each",
    "name": "legal name A-Z",
    "due": "reply due soonest first (overdue at the top), then largest overage first",
}


@dataclass(frozen=True)
class Col:
    sql: str
    desc: bool
    # An enumerated column ordered by this value list instead of by value
    # (review_state: open < info < decided < clear); read one value at a time.
    enum: tuple[str, ...] | None = None


ORDERS: dict[str, tuple[Col, ...]] = {
    # Each matches an index: consumer_by_severity, consumer_by_name, consumer_by_state.
    "overage": (Col("worst_ratio", True), Col("id", False)),
    "name": (Col("legal_name", False), Col("id", False)),
    "status": (Col("review_state", False, REVIEW_STATES), Col("worst_ratio", True), Col("id", False)),
    # consumer_by_due: due_order is the due date, or far in the future when nothing is due.
    "due": (Col("due_order", False), Col("worst_ratio", True), Col("id", False)),
}


@dataclass(frozen=True)
class QueueQuery:
    """What the queue shows: a filter and a sort (``reverse`` flips the order)."""

    filter: QueueFilter = field(default_factory=QueueFilter)
    sort: str = "overage"
    reverse: bool = False

    def __post_init__(self) -> None:
        if self.sort not in ORDERS:
            raise FilterError(f"unknown sort {self.sort!r}; valid: {', '.join(SORTS)}")

    def columns(self, backwards: bool = False) -> tuple[Col, ...]:
        """The order columns, flipped by ``reverse`` and again by ``backwards`` (reading from the end)."""
        flip = self.reverse != backwards
        cols = ORDERS[self.sort]
        if not flip:
            return cols
        return tuple(
            Col(c.sql, not c.desc, tuple(reversed(c.enum)) if c.enum else None) for c in cols
        )


# ---------------------------------------------------------------------------
# Positions in an order: "after key K" (or the start); the rows after K split
# into index ranges read one after another.

Key = tuple[Any, ...]


def ranges(cols: Sequence[Col], after: Key | None,
            allowed: tuple[str, ...] | None = None) -> Iterator[tuple[list[str], list[Any], Sequence[Col]]]:
    """(conditions, params, order columns) of the index ranges following ``after``, in order.

    After key (k1, k2, k3) come: c1 = k1 AND c2 = k2 AND c3 past k3; then
    c1 = k1 AND c2 past k2; then c1 past k1. Each is one seek in the matching
    index, where a single ``OR`` of them would scan. An enumerated column is read
    one value at a time, skipping values the filter excludes (``allowed``).
    """
    if after is None:
        if cols and cols[0].enum is not None:
            for value in cols[0].enum:
                if allowed is not None and value not in allowed:
                    continue
                yield [f"{cols[0].sql} = ?"], [value], cols[1:]
        else:
            yield [], [], cols
        return
    lead_excluded = bool(cols and cols[0].enum is not None and allowed is not None and after[0] not in allowed)
    for j in range(len(cols) - 1, -1, -1):
        if j >= 1 and lead_excluded:
            continue   # ranges inside a segment the filter excludes are empty
        conds = [f"{c.sql} = ?" for c in cols[:j]]
        params = list(after[:j])
        col = cols[j]
        if col.enum is not None:
            for value in col.enum[col.enum.index(after[j]) + 1:]:
                if allowed is not None and value not in allowed:
                    continue
                yield conds + [f"{col.sql} = ?"], params + [value], cols[j + 1:]
        else:
            yield conds + [f"{col.sql} {'<' if col.desc else '>'} ?"], params + [after[j]], cols[j:]


def order_by(cols: Sequence[Col]) -> str:
    return ", ".join(f"{c.sql} {'DESC' if c.desc else 'ASC'}" for c in cols) or "id"


def before_key(cols: Sequence[Col], key: Key) -> tuple[str, list[Any]]:
    """A condition true for rows strictly before ``key`` in the order of ``cols``
    (not index-friendly: callers bound the scan with ranges)."""
    terms: list[str] = []
    params: list[Any] = []
    for j, col in enumerate(cols):
        prefix = [f"{c.sql} = ?" for c in cols[:j]]
        if col.enum is not None:
            earlier = col.enum[:col.enum.index(key[j])]
            if not earlier:
                continue
            cond = f"{col.sql} IN ({','.join('?' * len(earlier))})"
            values: list[Any] = list(earlier)
        else:
            cond = f"{col.sql} {'>' if col.desc else '<'} ?"
            values = [key[j]]
        terms.append("(" + " AND ".join(prefix + [cond]) + ")")
        params.extend(list(key[:j]) + values)
    return ("(" + " OR ".join(terms) + ")" if terms else "0"), params
