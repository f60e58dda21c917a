"""The one writer of a sync: pages in, rows and provenance out, in short transactions.

Fetch threads hand :class:`PageOutcome` objects over a bounded queue; the
writer (the thread that called the sync, with its own connection) stores each
page's provenance row, its usage rows, the next request of its chain and the
run's counters **in one transaction**, so a sync killed at any moment resumes
exactly after its last committed page.

Transactions are short (``COMMIT_ROWS`` rows or ``COMMIT_SECONDS``, whichever
comes first), never wait for a page with the lock held, and are followed by a
pause of ``PAUSE_SHARE`` times the lock just held, in which the WAL is
checkpointed now and then and the fetch threads parse: a reviewer writing from
another process waits tens of milliseconds, not seconds, for the lock
(``tests/benchmarks/bench_sync.py`` measures it).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator, Sequence

from store.consumers import own_apps, placeholder_tiers, upsert_consumers, upsert_owned_apps, upsert_tiers
from store.sync.adapter import ParsedPage

COMMIT_ROWS = 10_000
# After each commit the writer pauses, so that another process's write gets the
# lock: SQLite's busy handler retries at 1, 3, 8, 18, 33, 53, 78, 103 ms ...; a
# fixed 5 ms gap after 25-50 ms transactions is a lottery that a waiter can lose
# for a second or more. A pause of 0.8 times the transaction just held (at least
# 5 ms, at most 50 ms) is found by one of those retries within about 50 ms.
COMMIT_PAUSE_SECONDS = 0.005
PAUSE_SHARE = 0.8
MAX_PAUSE_SECONDS = 0.05
# Commits between two WAL checkpoints (about what SQLite's automatic checkpoint
# at 1,000 pages would do with ten-thousand-row commits).
CHECKPOINT_EVERY = 8
# A transaction is also committed once it has held the write lock this long:
# on a busy machine (fetch threads competing for the GIL and the CPU) ten
# thousand rows can take much longer than usual. Rows go in slices so the
# check runs often.
COMMIT_SECONDS = 0.025
SLICE_ROWS = 1_000
RECORD_SLICE_ROWS = 200
WRITER_CACHE_KIB = 32 * 1024
# The latest day a source has reported, kept as a source fact: later syncs
# re-fetch the look-back window before it.
LATEST_DAY_FACT = "latest_usage_day"

_day_of = itemgetter(1)


class Turns:
    """Parsing threads and the writer's transactions take turns.

    The sqlite3 module releases the GIL at every row it steps, and a fetch
    thread that grabs it for ``json.loads`` of a large page keeps it for many
    milliseconds: a transaction of ten thousand rows would then hold the
    database's write lock ten times longer than needed. So parsing (any number
    of threads at once) waits while a transaction is open, and a transaction
    waits for the parses in progress (the GIL would serialise them anyway).
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
                 pause: float = COMMIT_PAUSE_SECONDS, turns: Turns | None = None) -> None:
        self.conn = conn
        self.source = source
        self.run_id = run_id
        self.pages = pages
        self.rows = rows
        self.commit_rows = commit_rows
        self.commit_seconds = commit_seconds
        self.turns = turns or Turns()
        self.pause = pause
        self.transactions = 0
        self.longest_transaction = 0.0   # seconds the write lock was held, at most
        self._began = 0.0
        self.last_held = 0.0
        # The writer checkpoints the WAL itself, in its pause after each commit:
        # an automatic checkpoint would run inside COMMIT (lengthening what looks
        # like the transaction) or, worse, inside a reviewer's COMMIT.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        # A bigger page cache than SQLite's 2 MB: with many consumers the usage
        # B-tree is entered at many places per page, and a miss is a read.
        # Bounded, so memory stays flat whatever the number of rows.
        conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
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
        # Chains whose pages hit figures already stored (a re-sync): they go
        # straight to the upsert. Others try a plain INSERT first (see _rows).
        self._overlapping: set[tuple[str, str]] = set()

    # -- transactions --------------------------------------------------------------

    def _begin(self) -> None:
        if not self._in_transaction:
            self.turns.begin_write()
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.turns.end_write()
                raise
            self._began = time.perf_counter()
            self._in_transaction = True

    def commit(self) -> None:
        """Commit what is pending (with the run's counters), then pause so writers
        in other processes get the lock (see ``PAUSE_SHARE``)."""
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
            self.conn.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise
        held = self.last_held = time.perf_counter() - self._began
        self.longest_transaction = max(self.longest_transaction, held)
        self.transactions += 1
        self._in_transaction = False
        self.turns.end_write()
        self.pages += self._pending_pages
        self.rows += self._pending_taken
        self._pending_rows = self._pending_pages = self._pending_taken = 0
        pause_until = time.perf_counter() + min(MAX_PAUSE_SECONDS, max(self.pause, held * PAUSE_SHARE))
        # Copies the pages committed into the database file, without the write lock
        # (other connections may write meanwhile), so the WAL stays small. Not
        # after every commit: each checkpoint ends with an fsync.
        if self.transactions % CHECKPOINT_EVERY == 0:
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        if self.pause:
            time.sleep(max(0.0, pause_until - time.perf_counter()))

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
        long enough, to commit now."""
        return self._in_transaction and (self._pending_rows >= self.commit_rows
                                         or time.perf_counter() - self._began >= self.commit_seconds)

    # -- pages ---------------------------------------------------------------------

    def write(self, outcome: PageOutcome) -> None:
        """Store one page: provenance, rows, records, and where its chain goes next
        (``None`` when the chain is done; unchanged when the page was refused)."""
        self._begin()
        conn = self.conn
        page = outcome.page
        taken = outcome.rows
        page_id = conn.execute(
            "INSERT INTO sync_page (run_id, chain, url, fetched_at, http_status, body_sha256, body_bytes, "
            "rows_taken, error, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.run_id, outcome.chain, outcome.url, outcome.fetched_at, outcome.http_status,
             outcome.body_sha256, outcome.body_bytes, taken, outcome.error, outcome.notes),
        ).lastrowid
        if page is None:
            self._pending_pages += 1
            return
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
            self._rows("usage", outcome.chain, page_id, page.usage)
            latest = max(page.usage, key=_day_of)[1]
            if self._latest_day is None or latest > self._latest_day:
                self._latest_day = latest
        if page.endpoint_usage:
            self._rows("endpoint_usage", outcome.chain, page_id, page.endpoint_usage)
        conn.execute(
            "UPDATE sync_cursor SET next = ? WHERE run_id = ? AND chain = ?",
            (json.dumps(page.next.to_json()) if page.next is not None else None, self.run_id, outcome.chain),
        )
        # Counted only now: a commit in the middle of an oversized page must not
        # count the page as stored.
        self._pending_pages += 1
        self._pending_taken += taken
        self._pending_rows += 1

    def _rows(self, table: str, chain: str, page_id: int, rows: Sequence[Any]) -> None:
        """executemany in slices, committing between slices when the transaction
        is due (the chain's cursor moves only with the page's last slice, so a
        kill in between re-fetches the page and rewrites the same figures)."""
        if len(rows) <= SLICE_ROWS:
            self._insert(table, chain, page_id, rows)
            return
        for offset in range(0, len(rows), SLICE_ROWS):
            if self.due:
                self.commit()
                self._begin()
            self._insert(table, chain, page_id, rows[offset:offset + SLICE_ROWS])

    def _insert(self, table: str, chain: str, page_id: int, rows: Sequence[Any]) -> None:
        """Rows into ``table``. A plain INSERT is about 1.6 times as fast as the
        upsert when the figures are new (a first sync), so it is tried first, in a
        savepoint; the first conflict rolls it back and switches the chain to the
        upsert, which replaces value, run and page of figures already stored."""
        insert, upsert = self._sql[table]
        key = (table, chain)
        conn = self.conn
        if key not in self._overlapping:
            conn.execute("SAVEPOINT fresh_rows")
            try:
                conn.executemany(insert % page_id, rows)
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK TO fresh_rows")
                self._overlapping.add(key)
            finally:
                # On a full disk SQLite has already rolled the whole transaction
                # back, savepoint included: releasing it would hide that error.
                if conn.in_transaction:
                    conn.execute("RELEASE fresh_rows")
        if key in self._overlapping:
            conn.executemany(upsert % page_id, rows)
        self._pending_rows += len(rows)

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

    def _sliced(self, write: Callable[[Sequence[Any]], None], rows: Sequence[Any], *,
                slice_rows: int = RECORD_SLICE_ROWS) -> None:
        """``write`` records (consumers, apps) in slices, committing between
        slices when the transaction is due; the page's cursor moves last."""
        for offset in range(0, len(rows), slice_rows):
            if self.due:
                self.commit()
                self._begin()
            chunk = rows[offset:offset + slice_rows]
            write(chunk)
            # A record costs several index updates: counted as ten rows.
            self._pending_rows += 10 * len(chunk)

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

    def stored_elsewhere(self, start: str, end: str) -> int:
        """How many of this source's figures for days ``start..end`` an earlier run wrote."""
        return sum(
            self.conn.execute(
                f"SELECT count(*) FROM {table} WHERE source = ? AND day BETWEEN ? AND ? AND run_id != ?",
                (self.source, start, end, self.run_id),
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
            for chunk in _chunks(keys, self.commit_rows):
                self._begin()
                self.conn.executemany(
                    f"DELETE FROM {table} WHERE source = ? AND app_id = ? AND day = ? AND {name} = ? "
                    "AND run_id != ?",
                    [(self.source, *tuple(key), self.run_id) for key in chunk],
                )
                withdrawn += len(chunk)
                self.commit()
        return withdrawn


def _insert_sql(table: str, key: str, value: str, source: str, run_id: int) -> tuple[str, str]:
    """The plain INSERT and the upsert of ``table`` for one source and run, with a
    ``%d`` left for the page id."""
    insert = (f"INSERT INTO {table} (source, app_id, day, {key}, {value}, run_id, page_id) "
              f"VALUES ({_literal(source).replace('%', '%%')}, ?, ?, ?, ?, {int(run_id)}, %d)")
    upsert = (f"{insert} ON CONFLICT(source, app_id, day, {key}) DO UPDATE SET "
              f"{value} = excluded.{value}, run_id = excluded.run_id, page_id = excluded.page_id")
    return insert, upsert


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for offset in range(0, len(items), size):
        yield items[offset:offset + size]
