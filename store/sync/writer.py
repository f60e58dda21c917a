"""The one writer of a sync: pages in, rows and provenance out, in short transactions.

Fetch threads hand :class:`PageOutcome` objects over a bounded queue; the
writer (the thread that called the sync, with its own connection) stores each
page's provenance row, its usage rows, the next request of its chain and the
run's counters **in one transaction**, so a sync killed at any moment resumes
exactly after its last committed page.

Figures go in slices of JSON text (:mod:`store.sync.packed`), one statement
each, which SQLite steps without the GIL. Transactions are short (``COMMIT_ROWS``
rows or ``COMMIT_SECONDS``, whichever comes first) and never wait for a page
with the lock held. Between slices the writer asks whether another connection
waits for the write lock (:class:`store.db.WaitingWriters`): if so it commits at
once and stands back until the waiter has the lock, so a reviewer writing from
another process waits a few milliseconds (``tests/benchmarks/bench_sync.py``
measures it); if nobody waits, it goes straight on.

A page of records (tiers, consumers, apps) that the source's last complete
run stored byte for byte from the same URL is not parsed (the engine's fetch
threads see its SHA-256 in ``known_pages``) nor written again.

For the rules (:mod:`store.rules_pending`), the writer marks the apps whose
figures this run brought new, revised or withdrew (``figures``), and the apps
whose figures it only fetched again unchanged (``provenance``: their run and
page are now this run's), in the same transaction as the rows.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from store.consumers import (
    ROSTER_DROPPED_FACT, own_apps, placeholder_tiers, upsert_consumers, upsert_owned_apps, upsert_tiers,
)
from store.db import WaitingWriters, begin_immediate, database_file
from store.fault_points import reach
from store.rules_pending import mark_apps
from store.sync.adapter import ParsedPage, Request
from store.sync.packed import SLICE_ROWS, PackedRows, Slice, pack_rows

COMMIT_ROWS = 10_000
# After a commit with someone waiting, the writer stands back until the waiter
# has the lock (it stops saying it waits), checking this often, for at most
# YIELD_SECONDS (a waiter that never comes back does not stop the sync).
YIELD_POLL_SECONDS = 0.0002
YIELD_SECONDS = 0.1
# Asked at most this often whether someone waits: the question is a system call,
# and any call that lets go of the GIL may wait a switch interval (5 ms) for it
# while the fetch threads hash and parse.
PROBE_SECONDS = 0.005
# Commits between two WAL checkpoints (about what SQLite's automatic checkpoint
# at 1,000 pages would do with ten-thousand-row commits).
CHECKPOINT_EVERY = 8
# A transaction is also committed once it has held the write lock this long:
# on a busy machine (fetch threads competing for the GIL and the CPU) ten
# thousand rows can take much longer than usual. Rows go in slices so the
# check runs often.
COMMIT_SECONDS = 0.025
RECORD_SLICE_ROWS = 200
WRITER_CACHE_KIB = 32 * 1024
# The latest day a source has reported, kept as a source fact: later syncs
# re-fetch the look-back window before it.
LATEST_DAY_FACT = "latest_usage_day"

# The record pages (no usage rows, no refusal) of the source's last complete
# run: each page's records were written whole before the run could complete.
# Not after a roster stopped claiming an app of the source
# (store.consumers.ROSTER_DROPPED_FACT): the source's owner must come back.
_KNOWN_PAGES = f"""
SELECT url, body_sha256, next_request FROM sync_page
WHERE run_id = (SELECT max(id) FROM sync_run WHERE source = :source AND status = 'ok'
                AND id > coalesce((SELECT CAST(value AS INTEGER) FROM source_fact
                                   WHERE source = :source AND key = '{ROSTER_DROPPED_FACT}'), 0))
  AND rows_taken = 0 AND error IS NULL AND body_sha256 IS NOT NULL AND next_request IS NOT NULL
ORDER BY id
"""


class Turns:
    """Parsing threads and the writer's transactions take turns.

    The sqlite3 module releases the GIL at every row it steps, and a fetch
    thread that grabs it for ``json.loads`` of a large page keeps it for many
    milliseconds: a transaction of ten thousand rows would then hold the
    database's write lock ten times longer than needed. So parsing (any number
    of threads at once) waits while a transaction is open, and a transaction
    waits for the parses in progress (the GIL would serialise them anyway).
    Pages parsed by the parse worker (another process) take no turns.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._parsing = 0
        self._writing = False
        self._writer_waiting = False

    @contextmanager
    def parsing(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._writer_waiting:
                self._cond.wait()
            self._parsing += 1
        try:
            yield
        finally:
            with self._cond:
                self._parsing -= 1
                self._cond.notify_all()

    def begin_write(self) -> None:
        with self._cond:
            self._writer_waiting = True
            while self._parsing:
                self._cond.wait()
            self._writer_waiting = False
            self._writing = True

    def end_write(self) -> None:
        with self._cond:
            self._writing = False
            self._cond.notify_all()


@dataclass
class PageOutcome:
    """One fetched page, parsed (``page``) or refused (``error``)."""

    chain: str
    url: str
    fetched_at: str
    http_status: int | None
    body_sha256: str | None
    body_bytes: int | None
    page: ParsedPage | None = None
    error: str | None = None
    # The body is the one the source's last complete run stored from this URL,
    # a page of records: not parsed again, ``page`` holds only where the chain goes next.
    stored_before: bool = False

    @property
    def rows(self) -> int:
        if self.page is None:
            return 0
        return len(self.page.usage) + len(self.page.endpoint_usage)

    @property
    def notes(self) -> str | None:
        """The page's log besides its rows (figures the source left out), one line each."""
        return "\n".join(self.page.notes) if self.page is not None and self.page.notes else None


def _literal(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


class RunWriter:
    """Writes the pages of one sync run through ``conn`` (autocommit mode, owned
    by the writing thread)."""

    def __init__(self, conn: sqlite3.Connection, source: str, run_id: int, *, pages: int = 0, rows: int = 0,
                 commit_rows: int = COMMIT_ROWS, commit_seconds: float = COMMIT_SECONDS,
                 turns: Turns | None = None) -> None:
        self.conn = conn
        self.source = source
        self.run_id = run_id
        self.pages = pages
        self.rows = rows
        self.commit_rows = commit_rows
        self.commit_seconds = commit_seconds
        self.turns = turns or Turns()
        self.transactions = 0
        self.yields = 0                  # commits made early, or pauses, for another writer
        self.longest_transaction = 0.0   # seconds the write lock was held, at most
        self._began = 0.0
        self.last_held = 0.0
        self.waiting = WaitingWriters(database_file(conn))
        self._probed = 0.0            # when the writer last asked
        self._someone_waits = False   # what it heard
        # The writer checkpoints the WAL itself, after commits: an automatic
        # checkpoint would run inside COMMIT (lengthening what looks like the
        # transaction) or, worse, inside a reviewer's COMMIT.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        # A bigger page cache than SQLite's 2 MB: with many consumers the usage
        # B-tree is entered at many places per page, and a miss is a read.
        # Bounded, so memory stays flat whatever the number of rows.
        conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
        # The staged slices of _merge (one at a time) stay in memory.
        conn.execute("PRAGMA temp_store = MEMORY")
        self._in_transaction = False
        self._pending_rows = 0      # rows written in the open transaction
        self._pending_pages = 0
        self._pending_taken = 0
        self._latest_day: str | None = None
        # Source, run and page go into the statement as literals: binding them per
        # row would mean building a new tuple for each of millions of rows.
        self._sql = {
            table: _insert_sql(table, key, value, source, run_id)
            for table, key, value in (("usage", "metric", "value"), ("endpoint_usage", "endpoint", "calls"))
        }
        # Chains whose pages hit figures already stored (a re-sync): their rows
        # are staged and compared (see _insert). Others try a plain INSERT first.
        self._overlapping: set[tuple[str, str]] = set()
        self._staged: dict[str, tuple[str, str, str, str]] = {}
        # url -> (SHA-256 of the body, the next request): see PageOutcome.stored_before.
        self.known_pages: dict[str, tuple[str, Request | None]] = {
            url: (sha, _request(nxt)) for url, sha, nxt in conn.execute(_KNOWN_PAGES, {"source": source})}

    # -- transactions --------------------------------------------------------------

    def _begin(self) -> None:
        if not self._in_transaction:
            self.turns.begin_write()
            try:
                begin_immediate(self.conn)
            except BaseException:
                self.turns.end_write()
                raise
            self._began = time.perf_counter()
            self._in_transaction = True

    def commit(self) -> None:
        """Commit what is pending (with the run's counters); if another writer is
        waiting, stand back until it has the lock (see the module docstring)."""
        if not self._in_transaction:
            return
        try:
            self.conn.execute(
                "UPDATE sync_run SET pages = pages + ?, rows_taken = rows_taken + ? WHERE id = ?",
                (self._pending_pages, self._pending_taken, self.run_id),
            )
            if self._latest_day is not None:
                self.conn.execute(
                    "INSERT INTO source_fact (source, key, value, run_id) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(source, key) DO UPDATE SET value = max(value, excluded.value), "
                    "run_id = excluded.run_id",
                    (self.source, LATEST_DAY_FACT, self._latest_day, self.run_id),
                )
                self._latest_day = None
            reach("sync-page", "before-commit", self._stored)
            self.conn.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise
        reach("sync-page", "after-commit", self._stored)
        held = self.last_held = time.perf_counter() - self._began
        self.longest_transaction = max(self.longest_transaction, held)
        self.transactions += 1
        self._in_transaction = False
        self.turns.end_write()
        self.pages += self._pending_pages
        self.rows += self._pending_taken
        self._pending_rows = self._pending_pages = self._pending_taken = 0
        if self._someone_waits:
            self.stand_back()
        # Copies the pages committed into the database file, without the write lock
        # (other connections may write meanwhile), so the WAL stays small. Not
        # after every commit: each checkpoint ends with an fsync.
        if self.transactions % CHECKPOINT_EVERY == 0:
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def stand_back(self) -> None:
        """While another connection waits for the write lock (and at most
        ``YIELD_SECONDS``), let it take the lock before writing again."""
        self._someone_waits = False
        if not self.waiting:
            return
        self.yields += 1
        until = time.perf_counter() + YIELD_SECONDS
        while self.waiting and time.perf_counter() < until:
            time.sleep(YIELD_POLL_SECONDS)

    def _others_wait(self) -> bool:
        """Whether another connection waits for the write lock (asked at most
        every ``PROBE_SECONDS``; the answer stands until the next commit)."""
        now = time.perf_counter()
        if not self._someone_waits and now - self._probed >= PROBE_SECONDS:
            self._probed = now
            self._someone_waits = bool(self.waiting)
        return self._someone_waits

    def _stored(self) -> dict[str, int]:
        """What this connection sees stored (its open transaction included), for a fault point."""
        pages, usage = self.conn.execute(
            "SELECT (SELECT count(*) FROM sync_page), (SELECT count(*) FROM usage)").fetchone()
        return {"sync_page": pages, "usage": usage}

    def rollback(self) -> None:
        """Drop what is pending (the pages will be fetched again on resume)."""
        if self._in_transaction:
            self._in_transaction = False
            try:
                # SQLite rolls back by itself on some errors (SQLITE_FULL); a
                # second ROLLBACK would fail and replace the error being handled.
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
            finally:
                self.turns.end_write()
        self._pending_rows = self._pending_pages = self._pending_taken = 0
        self._latest_day = None

    @property
    def total_pages(self) -> int:
        """Pages of this run stored so far, the open transaction included."""
        return self.pages + self._pending_pages

    @property
    def total_rows(self) -> int:
        """Rows of this run stored so far, the open transaction included."""
        return self.rows + self._pending_taken

    @property
    def due(self) -> bool:
        """Whether the open transaction holds enough rows, or has held the lock
        long enough, or another connection waits for it: then commit now."""
        return self._in_transaction and (self._pending_rows >= self.commit_rows
                                         or time.perf_counter() - self._began >= self.commit_seconds
                                         or self._others_wait())

    # -- pages ---------------------------------------------------------------------

    def write(self, outcome: PageOutcome) -> None:
        """Store one page: provenance, rows, records, and where its chain goes next
        (``None`` when the chain is done; unchanged when the page was refused)."""
        self._begin()
        conn = self.conn
        page = outcome.page
        taken = outcome.rows
        of_records = page is not None and (outcome.stored_before or _of_records(page))
        nxt = json.dumps(page.next.to_json() if page.next is not None else None) if of_records else None
        page_id = conn.execute(
            "INSERT INTO sync_page (run_id, chain, url, fetched_at, http_status, body_sha256, body_bytes, "
            "rows_taken, error, notes, next_request) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.run_id, outcome.chain, outcome.url, outcome.fetched_at, outcome.http_status,
             outcome.body_sha256, outcome.body_bytes, taken, outcome.error, outcome.notes, nxt),
        ).lastrowid
        if page is None:
            self._pending_pages += 1
            return
        if not self._stored_before(outcome):
            if page.tiers:
                upsert_tiers(conn, page.tiers, origin="feed")
            if page.consumers or page.apps:
                self._consumers(page)
        if page.facts:
            conn.executemany(
                "INSERT INTO source_fact (source, key, value, run_id) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(source, key) DO UPDATE SET value = excluded.value, run_id = excluded.run_id",
                [(self.source, key, value, self.run_id) for key, value in page.facts.items()],
            )
        if page.usage:
            usage = pack_rows(page.usage)
            self._rows("usage", outcome.chain, page_id, usage)
            latest = usage.last_day
            if latest is not None and (self._latest_day is None or latest > self._latest_day):
                self._latest_day = latest
        if page.endpoint_usage:
            self._rows("endpoint_usage", outcome.chain, page_id, pack_rows(page.endpoint_usage))
        conn.execute(
            "UPDATE sync_cursor SET next = ? WHERE run_id = ? AND chain = ?",
            (json.dumps(page.next.to_json()) if page.next is not None else None, self.run_id, outcome.chain),
        )
        # Counted only now: a commit in the middle of an oversized page must not
        # count the page as stored.
        self._pending_pages += 1
        self._pending_taken += taken
        self._pending_rows += 1

    def _stored_before(self, outcome: PageOutcome) -> bool:
        """Whether ``outcome`` is a page of records only (tiers, consumers, apps)
        that the source's last complete run stored byte for byte from the same
        URL: its records are in the database as the page says (see
        ``_KNOWN_PAGES``), so a re-sync of a million consumers does not parse
        (the fetch threads see it first) nor write them again."""
        if outcome.stored_before:
            return True
        known = self.known_pages.get(outcome.url)
        return (outcome.page is not None and _of_records(outcome.page) and known is not None
                and outcome.body_sha256 is not None and known[0] == outcome.body_sha256)

    def _rows(self, table: str, chain: str, page_id: int, rows: PackedRows) -> None:
        """The page's rows slice by slice (``store.sync.packed``), committing
        between slices when the transaction is due (the chain's cursor moves
        only with the page's last slice, so a kill in between re-fetches the
        page and rewrites the same figures)."""
        for number, part in enumerate(rows.slices):
            if number and self.due:
                self.commit()
                self._begin()
            self._insert(table, chain, page_id, part)

    def _insert(self, table: str, chain: str, page_id: int, part: Slice) -> None:
        """A slice of rows into ``table``. A plain INSERT is about 1.6 times as
        fast as the upsert when the figures are new (a first sync), so it is
        tried first, in a savepoint; the first conflict rolls it back and
        switches the chain to :meth:`_merge`, which replaces value, run and page
        of figures already stored."""
        key = (table, chain)
        conn = self.conn
        if key not in self._overlapping:
            conn.execute("SAVEPOINT fresh_rows")
            try:
                self._execute(self._sql[table], part, page_id)
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK TO fresh_rows")
                self._overlapping.add(key)
            else:
                mark_apps(conn, "figures", self.source, part.apps)
            finally:
                # On a full disk SQLite has already rolled the whole transaction
                # back, savepoint included: releasing it would hide that error.
                if conn.in_transaction:
                    conn.execute("RELEASE fresh_rows")
        if key in self._overlapping:
            self._merge(table, page_id, part)
        self._pending_rows += part.count

    def _execute(self, statements: tuple[str, str], part: Slice, page_id: int | None = None) -> None:
        """Rows of ``part`` from its JSON text, or bound one by one; ``page_id`` fills a ``%d``."""
        from_text, per_row = statements
        if page_id is not None:
            from_text, per_row = from_text % page_id, per_row % page_id
        if isinstance(part.rows, str):
            self.conn.execute(from_text, (part.rows,))
        else:
            self.conn.executemany(per_row, part.rows)

    def _merge(self, table: str, page_id: int, part: Slice) -> None:
        """Rows that may be stored already: staged in a temporary table, compared
        with what is stored (an app with a new or changed figure is marked
        ``figures``, one whose figures all came again unchanged ``provenance``),
        then upserted with this run and page."""
        stage, compare, upsert, clear = self._staging(table)
        conn = self.conn
        self._execute(stage, part)
        conn.execute(compare)
        conn.execute(upsert % page_id)
        conn.execute(clear)

    def _staging(self, table: str) -> tuple[tuple[str, str], str, str, str]:
        found = self._staged.get(table)
        if found is None:
            key, value = ("metric", "value") if table == "usage" else ("endpoint", "calls")
            self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS staged_{table} "
                              f"(app_id TEXT, day TEXT, {key} TEXT, {value} INTEGER)")
            found = self._staged[table] = _staging_sql(table, key, value, self.source, self.run_id)
        return found

    def _consumers(self, page: ParsedPage) -> None:
        conn, source = self.conn, self.source
        # A consumer may arrive before its tier (chains run concurrently): a
        # placeholder keeps the foreign key; the tiers page fills it in.
        placeholder_tiers(conn, {c.tier_id for c in page.consumers if c.tier_id})
        # Consumers before their apps (foreign key); in slices, as a page of a
        # thousand consumers updates four indexes per row.
        self._sliced(lambda chunk: upsert_consumers(conn, chunk, origin="feed"),
                     [(c.id, c.legal_name, c.notice_contact, c.tier_id, c.agreement_version, c.declared_use_case,
                       c.government_end_users) for c in page.consumers])
        # An app whose owner the source does not name becomes its own consumer
        # until the roster (apply_config) claims it.
        unowned = [(a.app_id, a.name, a.declared_use_case) for a in page.apps if a.consumer_id is None]
        if unowned:
            own_apps(conn, source, unowned)
        self._sliced(lambda chunk: upsert_owned_apps(conn, source, chunk),
                     [(a.app_id, a.consumer_id, a.name, a.declared_use_case)
                      for a in page.apps if a.consumer_id is not None])

    def _sliced(self, write: Callable[[Sequence[Any]], int], rows: Sequence[Any], *,
                slice_rows: int = RECORD_SLICE_ROWS) -> None:
        """``write`` records (consumers, apps) in slices, committing between
        slices when the transaction is due; the page's cursor moves last."""
        for offset in range(0, len(rows), slice_rows):
            if self.due:
                self.commit()
                self._begin()
            chunk = rows[offset:offset + slice_rows]
            written = write(chunk)
            # A record read costs about a row; one written, several index updates.
            self._pending_rows += len(chunk) + 10 * written

    # -- end of run ----------------------------------------------------------------

    def wrote_any(self, start: str, end: str) -> bool:
        """Whether this run stored any figure for days ``start..end``."""
        self.commit()
        return any(
            self.conn.execute(
                f"SELECT 1 FROM {table} WHERE source = ? AND day BETWEEN ? AND ? AND run_id = ? LIMIT 1",
                (self.source, start, end, self.run_id),
            ).fetchone()
            for table in ("usage", "endpoint_usage")
        )

    def stored_elsewhere(self, start: str, end: str, *, at_most: int = -1) -> int:
        """This source's figures for days ``start..end`` an earlier run wrote (up to ``at_most`` a table)."""
        return sum(
            self.conn.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE source = ? AND day BETWEEN ? AND ? "
                "AND run_id != ? LIMIT ?)",
                (self.source, start, end, self.run_id, at_most),
            ).fetchone()[0]
            for table in ("usage", "endpoint_usage")
        )

    def withdraw_missing(self, start: str, end: str) -> int:
        """Delete this source's figures for days ``start..end`` that this run did
        not write: the source no longer reports them (withdrawn upstream). The
        ``usage_withdrawn`` trigger logs each one in ``usage_change``.

        The keys are read first without the write lock, then deleted in short
        transactions. Returns how many figures were withdrawn.
        """
        self.commit()
        withdrawn = 0
        for table, name in (("usage", "metric"), ("endpoint_usage", "endpoint")):
            keys = self.conn.execute(
                f"SELECT app_id, day, {name} FROM {table} WHERE source = ? AND day BETWEEN ? AND ? AND run_id != ?",
                (self.source, start, end, self.run_id),
            ).fetchall()
            for chunk in _chunks(keys, SLICE_ROWS):
                self._begin()
                self.conn.executemany(
                    f"DELETE FROM {table} WHERE source = ? AND app_id = ? AND day = ? AND {name} = ? "
                    "AND run_id != ?",
                    [(self.source, *tuple(key), self.run_id) for key in chunk],
                )
                withdrawn += len(chunk)
                self._pending_rows += len(chunk)
                if self.due:
                    self.commit()
            self.commit()
        return withdrawn


def _of_records(page: ParsedPage) -> bool:
    """A page of tiers, consumers or apps, and nothing else."""
    return bool(page.tiers or page.consumers or page.apps) and not (page.usage or page.endpoint_usage or page.facts)


def _request(text: str | None) -> Request | None:
    data = json.loads(text) if text else None
    return Request.from_json(data) if data is not None else None


def _rows_sql(head: str, before: str = "", after: str = "") -> tuple[str, str]:
    """``head`` (an INSERT) with the rows from JSON text (``json_each``: one
    parameter) and from bound parameters; each row's four fields go between
    ``before`` and ``after``."""
    return (f"{head} SELECT {before}value->>0, value->>1, value->>2, value->>3{after} FROM json_each(?)",
            f"{head} VALUES ({before}?, ?, ?, ?{after})")


def _insert_sql(table: str, key: str, value: str, source: str, run_id: int) -> tuple[str, str]:
    """The plain INSERT of ``table`` for one source and run (both forms of
    :func:`_rows_sql`), with a ``%d`` left for the page id."""
    return _rows_sql(f"INSERT INTO {table} (source, app_id, day, {key}, {value}, run_id, page_id)",
                     f"{_literal(source).replace('%', '%%')}, ", f", {int(run_id)}, %d")


def _staging_sql(table: str, key: str, value: str, source: str,
                 run_id: int) -> tuple[tuple[str, str], str, str, str]:
    """Statements of :meth:`RunWriter._merge`: stage a slice, mark its apps,
    upsert it (``%d`` left for the page id), empty the stage."""
    staged, src = f"temp.staged_{table}", _literal(source)
    stage = _rows_sql(f"INSERT INTO {staged} (app_id, day, {key}, {value})")
    # An app with a new or changed figure: 'figures'. One whose figures all came
    # again unchanged: 'provenance', if its consumer has a candidate finding
    # whose lists of runs and pages may name these rows (a rule finding with
    # provenance, its period touching the days fetched again); otherwise nothing.
    compare = f"""
        INSERT INTO rules_pending (kind, subject, app_id)
        SELECT seen.kind, {src}, seen.app_id FROM (
            SELECT app_id, CASE WHEN min(same) THEN 'provenance' ELSE 'figures' END AS kind,
                   min(day) AS first_day, max(day) AS last_day FROM (
                SELECT s.app_id, s.day, EXISTS (
                    SELECT 1 FROM main.{table} AS t WHERE t.source = {src} AND t.app_id = s.app_id
                    AND t.day = s.day AND t.{key} = s.{key} AND t.{value} = s.{value}) AS same
                FROM {staged} AS s)
            GROUP BY app_id) AS seen
        WHERE seen.kind = 'figures' OR EXISTS (
            SELECT 1 FROM main.app AS a JOIN main.finding AS f ON f.consumer_id = a.consumer_id
            WHERE a.source = {src} AND a.app_id = seen.app_id AND f.status = 'candidate'
            AND f.rule_id IS NOT NULL AND f.category != 'missing_use_case'
            AND f.period_start <= seen.last_day AND f.period_end >= seen.first_day)"""
    upsert = (f"INSERT INTO main.{table} (source, app_id, day, {key}, {value}, run_id, page_id) "
              f"SELECT {src.replace('%', '%%')}, app_id, day, {key}, {value}, {int(run_id)}, %d FROM {staged} "
              f"WHERE true ON CONFLICT(source, app_id, day, {key}) DO UPDATE SET "
              f"{value} = excluded.{value}, run_id = excluded.run_id, page_id = excluded.page_id")
    return stage, compare, upsert, f"DELETE FROM {staged}"


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for offset in range(0, len(items), size):
        yield items[offset:offset + size]
