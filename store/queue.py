"""The review queue: consumers in review order, read lazily, page by page.

The queue never loads all consumers: :meth:`QueueReader.page` reads ``limit``
rows at an offset, :meth:`~QueueReader.count` counts,
:meth:`~QueueReader.position_of` finds a consumer's offset and
:meth:`~QueueReader.next_unreviewed` jumps to the next consumer with something
to decide (:meth:`~QueueReader.next_to_decide`: wrapping at the ends, and on to
the consumers waiting for information when none is left).
Everything is ordered by the summary columns on ``consumer`` (``worst_ratio``,
``review_state``, kept current by :mod:`store.queue_summary`) so each read is an
index range scan.

Reaching any offset is fast: pages are read by *keyset* (``WHERE key > last key``)
from the nearest offset already seen by the reader (an "anchor"); offsets in
the second half are read backwards from the end; only a long jump to an offset
never seen walks the index with ``OFFSET``.

The filter (:func:`store.queue_filter.parse_filter`) is parsed, and turned into
SQL, in :mod:`store.queue_filter`; the sorts, their columns and the index ranges
after a position, in :mod:`store.queue_order`.

A :class:`QueueReader` reads through one connection and owns what it learns on
the way (anchors and counts, valid while the database does not change) and the
lock that lets the worker threads of a screen share it.
"""

from __future__ import annotations

import bisect
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

from store.queue_filter import (
    QueueFilter, consumer_conditions, consumer_source, count_consumers, count_finding_matches, count_name_matches,
    few_finding_matches, matching_states, name_matches_upto, only_finding_terms, only_indexed_names,
)
# The sorts and the query are read from here too (store.queue is the queue's interface).
from store.queue_order import SORTS, Col, Key, QueueQuery, before_key, order_by, ranges

__all__ = ["SORTS", "VERDICTS", "Jump", "QueueQuery", "QueueReader", "QueueRow"]

# ---------------------------------------------------------------------------
# Rows

# What a row's verdict says, in words (the TUI draws a glyph beside each): open
# (something to decide), info (waiting for information), violation (decided, a
# violation confirmed), decided, clear (no findings), retired (its apps belong to
# another consumer now; shown only with state:retired).
VERDICTS: tuple[str, ...] = ("open", "info", "violation", "decided", "clear", "retired")


@dataclass(frozen=True)
class Jump:
    """Where ``]`` / ``[`` take the cursor (:meth:`QueueReader.next_to_decide`):
    ``index`` (None: nowhere else), whether it ``wrapped`` past an end of the
    queue, and the ``state`` of the consumer there (``open`` or ``info``)."""

    index: int | None
    wrapped: bool = False
    state: str = "open"


@dataclass(frozen=True)
class QueueRow:
    """One line of the queue."""

    consumer_id: str
    legal_name: str
    tier_id: str | None
    worst_ratio: float
    open_findings: int
    review_state: str
    verdict: str          # one of VERDICTS: "open", "info", "violation", "decided", "clear", "retired"
    tier_name: str | None = None   # the tier's name (what the detail shows), None without a tier
    case_state: str | None = None    # store.domain.CASE_STATES (store.casework.summary)
    case_due: str | None = None      # the reply's due date while one is awaited


_SELECT = (
    "SELECT id, legal_name, tier_id, worst_ratio, open_findings, review_state, "
    "EXISTS (SELECT 1 FROM finding f WHERE f.consumer_id = consumer.id "
    "AND f.status IN ('confirmed', 'audit_requested')) AS violation, "
    "(SELECT t.name FROM tier t WHERE t.id = consumer.tier_id) AS tier_name, case_state, case_due, due_order"
)


def _row(r: Sequence[Any]) -> QueueRow:
    state = r[5]
    # A violation is shown once nothing waits (a retired consumer says it is retired).
    violation = state not in ("open", "info", "retired") and r[6]
    return QueueRow(r[0], r[1], r[2], float(r[3]), int(r[4]), state, "violation" if violation else state,
                    r[7], r[8], r[9])


def _key(cols: Sequence[Col], r: Sequence[Any]) -> Key:
    by_name = {"id": r[0], "legal_name": r[1], "worst_ratio": r[3], "review_state": r[5], "due_order": r[10]}
    return tuple(by_name[c.sql] for c in cols)


# ---------------------------------------------------------------------------
# Reading in order: a position in the order is "after key K" (or the start);
# the rows after K split into index ranges read one after another.


def _read(conn: sqlite3.Connection, query: QueueQuery, after: Key | None, skip: int, limit: int,
          backwards: bool = False, only: str | None = None, few: tuple[int | None, bool] = (None, False)
          ) -> list[Sequence[Any]]:
    """``limit`` raw rows after ``skip`` matching rows past ``after``, in (possibly
    reversed) order; ``only``: only consumers in that review state (``open``:
    something to decide; ``info``: waiting for information); ``few``: how many
    consumers the name terms match (counted up to ``_SOME_NAMES``; None: no such
    terms), whether the finding terms match few.
    Few matches are read from the name index or the finding keys and sorted.
    From the far end, names matching some tens of thousands are too: walking
    the order backwards can cross half a million consumers first, as names and
    ids go together (``North ...`` is ``north-...``)."""
    names, few_findings = few
    few_names = names is not None and (names < _FEW or (backwards and names < _SOME_NAMES))
    cols = query.columns(backwards)
    flt = query.filter
    allowed = matching_states(flt, only)
    if only is not None:
        # Open consumers are few: read them from consumer_by_state instead of
        # walking the order past every decided or clear consumer. That index is in
        # overage order; for the name order it needs a sort, so a short walk of
        # the order comes first (open consumers are spread through it).
        if query.sort == "name":
            near = _walk_for_state(conn, query, after, backwards, only)
            if near is not None:
                return near[:limit]
        source, sparams = "consumer INDEXED BY consumer_by_state", []
        fconds, fparams = consumer_conditions(flt)
        fconds, fparams = fconds + ["review_state = ?"], fparams + [only]
    else:
        # From the far end, sparse finding matches are cheaper to reach from the
        # findings, unless they are all open (consumer_by_state holds exactly those);
        # a name matching few consumers, from the name index whichever the end.
        driven = (backwards and allowed != ("open",)) or few_findings
        source, sparams, fconds, fparams = consumer_source(flt, driven=driven, few_names=few_names)
    out: list[Sequence[Any]] = []
    for conds, params, order in ranges(cols, after, allowed):
        if len(out) >= limit:
            break
        where = " AND ".join(conds + fconds) or "1"
        sql = f"{_SELECT} FROM {source} WHERE {where} ORDER BY {order_by(order)} LIMIT ? OFFSET ?"
        rows = conn.execute(sql, sparams + params + fparams + [limit - len(out), skip]).fetchall()
        if rows:
            skip = 0
            out.extend(rows)
        elif skip:
            (n,) = conn.execute(f"SELECT count(*) FROM {source} WHERE {where}", sparams + params + fparams).fetchone()
            skip = max(0, skip - n)
    return out


_WALK = 2_000       # rows walked in order before asking the state index
_FEW = 5_000        # fewer name or finding matches than this: read them from their index and sort them
_SOME_NAMES = 50_000  # ... from the far end of the order, fewer name matches than this
_BETWEEN = 20_000   # rows counted between two offsets before counting from the top


def _walk_for_state(conn: sqlite3.Connection, query: QueueQuery, after: Key | None,
                    backwards: bool, state: str) -> list[Sequence[Any]] | None:
    """The next row in ``state`` within ``_WALK`` rows of ``after`` in order, ``[]``
    if the order ends first, ``None`` if the walk found none (look further another way)."""
    cols = query.columns(backwards)
    conds, params = consumer_conditions(query.filter)
    budget = _WALK
    for rconds, rparams, order in ranges(cols, after, matching_states(query.filter)):
        where = " AND ".join(rconds + conds) or "1"
        rows = conn.execute(
            f"SELECT * FROM ({_SELECT} FROM consumer WHERE {where} ORDER BY {order_by(order)} LIMIT ?)"
            f" WHERE review_state = ? ORDER BY {order_by(order)} LIMIT 1",
            rparams + params + [budget, state]).fetchall()
        if rows:
            return rows
        (seen,) = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM consumer WHERE {where} LIMIT ?)",
                               rparams + params + [budget]).fetchone()
        budget -= seen
        if budget <= 0:
            return None
    return []


# ---------------------------------------------------------------------------
# What a reader remembers: anchors (offset -> key) and counts, valid while the
# database does not change (data_version: other connections' commits;
# total_changes: this connection's own).

_MAX_ANCHORS = 20_000
_MAX_QUERIES = 8    # filters / sorts remembered
_NEAR = 5_000       # skipping this many rows with OFFSET is cheaper than counting


class _Anchors:
    """Offsets whose row key is known, searchable by nearest offset."""

    def __init__(self) -> None:
        self.keys: dict[int, Key] = {}
        self.offsets: list[int] = []      # sorted

    def add(self, offset: int, key: Key) -> None:
        if len(self.offsets) >= _MAX_ANCHORS:
            self.keys.clear()
            self.offsets.clear()
        if offset not in self.keys:
            bisect.insort(self.offsets, offset)
        self.keys[offset] = key

    def before(self, offset: int) -> tuple[int, Key | None]:
        """The nearest anchor strictly before ``offset``, or (-1, None)."""
        i = bisect.bisect_left(self.offsets, offset)
        if i == 0:
            return -1, None
        at = self.offsets[i - 1]
        return at, self.keys[at]

    def at_or_after(self, offset: int, limit: int) -> tuple[int, Key | None]:
        """The nearest anchor at or after ``offset`` (below ``limit``), or (limit, None)."""
        i = bisect.bisect_left(self.offsets, offset)
        if i == len(self.offsets) or self.offsets[i] >= limit:
            return limit, None
        at = self.offsets[i]
        return at, self.keys[at]


T = TypeVar("T")


class QueueReader:
    """Reads the queue through one connection, remembering what it learns.

    ``connect`` opens the connection, on first use. Every method takes the
    reader's lock, so worker threads may share one reader (SQLite connections
    must not be used by two threads at once); once :meth:`close` has run, they
    read nothing (``0``, ``[]`` or ``None``) and :attr:`closed` is true, so a
    worker that was cancelled meanwhile never touches a closed connection.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._lock = threading.RLock()   # re-entrant: next_unreviewed reads pages
        self._version: tuple[int, int] | None = None
        self._counts: dict[QueueQuery, int] = {}
        self._anchors: OrderedDict[QueueQuery, _Anchors] = OrderedDict()
        self._few_matches: dict[QueueFilter, tuple[int | None, bool]] = {}

    @property
    def opened(self) -> bool:
        """True once a read opened the connection (and until :meth:`close`)."""
        return self._conn is not None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran: what a method returned since is empty."""
        return self._closed

    def close(self) -> None:
        """Close the connection (waiting for a read in progress: closing a
        connection under a running statement crashes the process)."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def count(self, query: QueueQuery) -> int:
        """How many consumers the query shows (remembered until the database changes)."""
        return self._locked(lambda conn: self._count(conn, query), 0)

    def page(self, query: QueueQuery, offset: int, limit: int) -> list[QueueRow]:
        """Up to ``limit`` rows starting at ``offset`` (0-based) in the query's order."""
        return self._locked(lambda conn: self._page(conn, query, offset, limit), [])

    def position_of(self, query: QueueQuery, consumer_id: str) -> int | None:
        """The offset of ``consumer_id`` in the query's order, or ``None`` if the filter hides it."""
        return self._locked(lambda conn: self._position_of(conn, query, consumer_id), None)

    def next_unreviewed(self, query: QueueQuery, from_offset: int, direction: int = 1,
                        state: str = "open") -> int | None:
        """Offset of the nearest consumer after (``direction=1``) or before (``-1``)
        ``from_offset`` in review ``state`` (``open``: findings waiting for a
        decision; ``info``: waiting for information); ``None`` if none.

        ``from_offset=-1`` searches from the start; an offset past the end searches
        backwards from the end.
        """
        return self._locked(lambda conn: self._next_unreviewed(conn, query, from_offset, direction, state), None)

    def next_to_decide(self, query: QueueQuery, from_offset: int, direction: int = 1) -> Jump:
        """Where ``]`` (``direction=1``) and ``[`` (``-1``) go from ``from_offset``,
        as a mail reader's next-new does: the nearest open consumer that way,
        else the first from the other end (``wrapped``); when no other consumer is
        open, the same among those waiting for information (``state="info"``);
        ``Jump(None)`` when there is nowhere else to go."""
        return self._locked(lambda conn: self._next_to_decide(conn, query, from_offset, direction), Jump(None))

    def data_version(self) -> int | None:
        """SQLite's ``data_version`` of the reader's connection: it changes when
        another connection (another session, a cron sync) commits. ``None`` once closed."""
        return self._locked(lambda conn: int(conn.execute("PRAGMA data_version").fetchone()[0]), None)

    # -- under the lock ----------------------------------------------------------------

    def _locked(self, read: Callable[[sqlite3.Connection], T], closed: T) -> T:
        with self._lock:
            if self._closed:
                return closed
            if self._conn is None:
                self._conn = self._connect()
            return read(self._conn)

    def _fresh(self, conn: sqlite3.Connection) -> None:
        """Forget anchors and counts if the database changed since they were learnt."""
        version = (conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes)
        if self._version != version:
            self._version = version
            self._counts.clear()
            self._anchors.clear()
            self._few_matches.clear()

    def _anchors_for(self, query: QueueQuery) -> _Anchors:
        found = self._anchors.get(query)
        if found is None:
            found = self._anchors[query] = _Anchors()
            while len(self._anchors) > _MAX_QUERIES:
                old, _ = self._anchors.popitem(last=False)
                self._counts.pop(old, None)
        else:
            self._anchors.move_to_end(query)
        return found

    def _few(self, conn: sqlite3.Connection, flt: QueueFilter) -> tuple[int | None, bool]:
        """How many consumers the filter's name terms match (up to ``_SOME_NAMES``),
        whether its finding terms match few (remembered like counts)."""
        found = self._few_matches.get(flt)
        if found is None:
            if len(self._few_matches) > _MAX_QUERIES:
                self._few_matches.clear()
            found = self._few_matches[flt] = (name_matches_upto(conn, flt, _SOME_NAMES),
                                              few_finding_matches(conn, flt, _FEW))
        return found

    def _remember(self, query: QueueQuery, offset: int, key: Key) -> None:
        self._anchors_for(query).add(offset, key)

    def _count(self, conn: sqlite3.Connection, query: QueueQuery) -> int:
        self._fresh(conn)
        if query in self._counts:
            return self._counts[query]
        flt = query.filter
        names = only_indexed_names(flt)
        if names is not None:
            n = count_name_matches(conn, names)
        elif only_finding_terms(flt):
            n = count_finding_matches(conn, flt)
        else:
            names = self._few(conn, flt)[0]
            n = count_consumers(conn, *consumer_source(flt, driven=True, few_names=names is not None and names < _FEW))
        self._anchors_for(query)     # so the count is forgotten with the query's anchors
        self._counts[query] = int(n)
        return int(n)

    def _page(self, conn: sqlite3.Connection, query: QueueQuery, offset: int, limit: int) -> list[QueueRow]:
        if limit <= 0 or offset < 0:
            return []
        self._fresh(conn)
        anchors = self._anchors_for(query)
        cols = query.columns()
        if offset in anchors.keys:
            # The row at ``offset`` is known (every order ends with the id): read it, then on.
            key = anchors.keys[offset]
            first = [_raw_of(conn, key[-1])]
            rows = first + (_read(conn, query, key, 0, limit - 1, few=self._few(conn, query.filter))
                            if limit > 1 else [])
            self._remember(query, offset + len(rows) - 1, _key(cols, rows[-1]))
            return [_row(r) for r in rows]
        # Nearest offset already seen before ``offset`` (an anchor is the key of the
        # row AT that offset, so reading resumes after it).
        start, after = anchors.before(offset)
        skip = offset - start - 1
        if skip > _NEAR:
            total = self._count(conn, query)
            if offset >= total:
                return []
            end = min(total, offset + limit)
            # Read from the end when that is nearer: the rows [offset, end) are the
            # first (end - offset) rows after skipping (total - end) from the back.
            back_start, back_after = anchors.at_or_after(end, total)
            back_skip = back_start - end
            if back_skip < skip:
                rows = _read(conn, query, back_after, back_skip, end - offset, backwards=True,
                             few=self._few(conn, query.filter))
                rows.reverse()
                if rows:
                    self._remember(query, offset, _key(cols, rows[0]))
                    self._remember(query, offset + len(rows) - 1, _key(cols, rows[-1]))
                return [_row(r) for r in rows]
        rows = _read(conn, query, after, skip, limit, few=self._few(conn, query.filter))
        if rows:
            self._remember(query, offset, _key(cols, rows[0]))
            self._remember(query, offset + len(rows) - 1, _key(cols, rows[-1]))
        return [_row(r) for r in rows]

    def _position_of(self, conn: sqlite3.Connection, query: QueueQuery, consumer_id: str) -> int | None:
        conds, params = consumer_conditions(query.filter)
        found = conn.execute(
            f"{_SELECT} FROM consumer WHERE {' AND '.join(['id = ?'] + conds)}", [consumer_id] + params
        ).fetchone()
        if found is None:
            return None
        # Rows before it = rows after it in the reversed order.
        back = query.columns(backwards=True)
        names = self._few(conn, query.filter)[0]
        source, sparams, conds, params = consumer_source(query.filter, driven=True,
                                                         few_names=names is not None and names < _FEW)
        before = 0
        for rconds, rparams, _order in ranges(back, _key(back, found), matching_states(query.filter)):
            where = " AND ".join(rconds + conds) or "1"
            (n,) = conn.execute(f"SELECT count(*) FROM {source} WHERE {where}",
                                sparams + rparams + params).fetchone()
            before += n
        self._fresh(conn)
        self._remember(query, before, _key(query.columns(), found))
        return before

    def _next_to_decide(self, conn: sqlite3.Connection, query: QueueQuery, here: int, direction: int) -> Jump:
        other_end = -1 if direction > 0 else self._count(conn, query)
        for state in ("open", "info"):
            index = self._next_unreviewed(conn, query, here, direction, state)
            if index is not None:
                return Jump(index, wrapped=False, state=state)
            index = self._next_unreviewed(conn, query, other_end, direction, state)
            if index is not None and index != here:
                return Jump(index, wrapped=True, state=state)
        return Jump(None)

    def _next_unreviewed(self, conn: sqlite3.Connection, query: QueueQuery, from_offset: int,
                         direction: int, state: str = "open") -> int | None:
        backwards = direction < 0
        after: Key | None = None
        if from_offset >= 0:
            here = self._page(conn, query, from_offset, 1)
            if here:
                after = _key(query.columns(), _raw_of(conn, here[0].consumer_id))
            elif not backwards:
                return None
        elif backwards:
            return None
        rows = _read(conn, query, after, 0, 1, backwards=backwards, only=state,
                     few=self._few(conn, query.filter))
        if not rows:
            return None
        if after is None:
            return self._position_of(conn, query, rows[0][0])
        # Count only the rows between here and there (the jump), not all before it.
        between = _count_between(conn, query, after, _key(query.columns(), rows[0]), backwards)
        if between is None:
            return self._position_of(conn, query, rows[0][0])
        return from_offset - between - 1 if backwards else from_offset + between + 1


def _count_between(conn: sqlite3.Connection, query: QueueQuery, lo: Key, hi: Key,
                   backwards: bool) -> int | None:
    """Matching rows strictly between keys ``lo`` and ``hi`` (``lo`` first in the
    direction of travel); the scan covers only the rows between them and stops
    past ``_BETWEEN`` (``None``: a long jump, count another way)."""
    cap = _BETWEEN
    cols = query.columns(backwards)
    conds, params = consumer_conditions(query.filter)
    before, bparams = before_key(cols, hi)
    lead = cols[0]
    if lead.enum is not None:
        upto = lead.enum[:lead.enum.index(hi[0]) + 1]
        bound, bound_params = f"{lead.sql} IN ({','.join('?' * len(upto))})", list(upto)
    else:
        bound, bound_params = f"{lead.sql} {'>=' if lead.desc else '<='} ?", [hi[0]]
    total = 0
    for rconds, rparams, _order in ranges(cols, lo, matching_states(query.filter)):
        where = " AND ".join(rconds + [bound, before] + conds)
        (n,) = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM consumer WHERE {where} LIMIT ?)",
                            rparams + bound_params + bparams + params + [cap - total + 1]).fetchone()
        total += n
        if total > cap:
            return None
    return total


def _raw_of(conn: sqlite3.Connection, consumer_id: str) -> Sequence[Any]:
    return conn.execute(f"{_SELECT} FROM consumer WHERE id = ?", (consumer_id,)).fetchone()
