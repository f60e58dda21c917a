"""Sync: fetch every configured source's usage into the database, with provenance.

How a sync of one source runs:

* **Window** (:mod:`store.sync.window`). The first sync fetches from
  ``source.start``; later ones re-fetch the ``lookback_days`` before the latest
  day the source reported, up to ``source.end`` or today (the clock), and from
  the start of any unfinished run since the last good one. A closed window
  (``end`` past) already fetched completely is skipped unless ``refetch``. The
  run's window is what the adapter really asks for (X: the last N days), and a
  figure outside it refuses its page.
* **Threads.** The adapter's chains (independent page sequences) are fetched by a
  pool of ``source.concurrency`` threads that only fetch, hash and parse. The
  calling thread is the one writer (:class:`store.sync.writer.RunWriter`, its own
  connection, short ``BEGIN IMMEDIATE`` transactions). A bounded queue between
  them keeps memory flat whatever the number of rows. Large pages are parsed
  by a worker process instead (:mod:`store.sync.parse_worker`), started by the
  first one, so that parsing and writing use two cores.
* **Resume.** ``sync_cursor`` holds the next request of every chain, committed
  with that page's rows. A run killed midway (left ``running``) or cancelled is
  **continued as the same run** by the next sync of that source: same run id,
  same window, each chain from its last committed page; the result equals an
  uninterrupted sync. A per-source lock file (``flock``, released by the OS when
  its process dies) tells a stale ``running`` run from a live one, so two syncs of
  one source never run at once.
* **Withdrawals.** When every chain of the window completed, figures in the
  window that this run did not write are deleted (withdrawn upstream; logged in
  ``usage_change`` by trigger).
* **Outcome.** ``ok``; ``partial`` when a page was rejected (that chain stops,
  earlier pages stay, other chains go on); ``failed`` when the source stopped us
  (401, 403, usage capped, retries exhausted); ``cancelled`` on request.

After all sources, :func:`sync_all` applies the configuration's roster
(``store.consumers.apply_config``) and runs the rules (``store.rules.run_rules``).
"""

from __future__ import annotations

import gc
import json
import os
import queue
import re
import sqlite3
import threading
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx

from store.clock import Clock, day as day_of, iso, system_clock
from store.config import Config, SourceConfig, token_for
from store.db import connect, transaction, write_error
from store.errors import ConfigError, PageRejected, SourceStopped, StoreError, SyncError
from store.sync.adapter import (
    Adapter, ParsedPage, Request, Window, covered_window, requested_window,
)
from store.sync.adapters import adapter_for
from store.sync.events import (
    PageFailed, PageStored, Retrying, RulesApplied, SourceFinished, SourceResult, SourceStarted, SyncEvent,
)
from store.sync.fetch import Cancelled, FetchFailed, Fetched, PageFetcher, Sleep, request_auth
from store.sync.packed import parse_body
from store.sync.parse_worker import WORKER_BODY_BYTES, ParseWorker
from store.sync.window import FIRST_SYNC_DAYS, complete_window, sync_window
from store.sync.writer import PageOutcome, RunWriter, Turns
from store.text import printable

__all__ = ["sync_all", "sync_source", "SourceResult", "SyncEvent", "FIRST_SYNC_DAYS"]

OnEvent = Callable[[SyncEvent], None]

# Pages waiting for the writer, per fetch thread: enough to keep the writer busy,
# few enough that memory does not depend on the number of rows.
QUEUE_PAGES_PER_THREAD = 2
# A chain stops (page refused) after this many empty pages in a row that each
# point to a next page: an endpoint may return a few, never this many.
MAX_EMPTY_PAGES = 1000


def sync_all(db_path: str | os.PathLike[str], config: Config, *, clock: Clock = system_clock,
             transport: httpx.BaseTransport | None = None, on_event: OnEvent | None = None,
             cancel: threading.Event | None = None, sources: list[str] | None = None,
             sleep: Sleep | None = None, refetch: bool = False) -> list[SourceResult]:
    """Sync the configured sources (all, or those named), one after another, then
    apply the roster and run the rules.

    Raises ``ConfigError`` before fetching anything if a source is unknown, its
    adapter options are bad, or its token variable is not set. A source that
    fails does not stop the others: see each ``SourceResult.status``.
    ``sleep`` replaces the waits between retries (tests); ``refetch`` fetches each
    source's whole window again (``warden sync --refetch``).
    """
    from store.consumers import stage_roster   # not needed to sync one source (and imports its neighbours)

    names = list(sources) if sources else list(config.sources)
    for name in names:
        if name not in config.sources:
            known = ", ".join(sorted(config.sources)) or "none"
            raise ConfigError(f"unknown source {name!r} (configured: {known})")
        source = config.sources[name]
        request_auth(adapter_for(source), token_for(source))
    cancel = cancel or threading.Event()
    conn = connect(db_path)
    try:
        # The whole roster is checked before any request: a bad row ends the sync
        # here (exit 2), not after every source was fetched. Kept staged in this
        # connection's temporary tables until the sources are done.
        staged = stage_roster(conn, config)
        results = []
        for name in names:
            if cancel.is_set():
                results.append(SourceResult(name, None, "cancelled", 0, 0, "cancelled before it started"))
                continue
            results.append(sync_source(db_path, config.sources[name], clock=clock, transport=transport,
                                       on_event=on_event, cancel=cancel, sleep=sleep, refetch=refetch))
        _after_sync(conn, config, staged, clock, on_event or (lambda event: None))
    finally:
        conn.close()
    return results


def _after_sync(conn: Any, config: Config, staged: Any, clock: Clock, emit: OnEvent) -> None:
    """Roster (staged before the sync), then rules."""
    from store.consumers import apply_config
    from store.rules import run_rules

    apply_config(conn, config, staged=staged, clock=clock)
    result = run_rules(conn, clock=clock)
    emit(RulesApplied(result.consumers, result.created, result.updated, result.unchanged, result.no_longer_detected,
                      provenance=result.provenance, mode=result.mode))


def sync_source(db_path: str | os.PathLike[str], source: SourceConfig, *, clock: Clock = system_clock,
                transport: httpx.BaseTransport | None = None, on_event: OnEvent | None = None,
                cancel: threading.Event | None = None, sleep: Sleep | None = None,
                refetch: bool = False) -> SourceResult:
    """Sync one source into the database at ``db_path`` (see the module docstring).

    Raises ``ConfigError`` for a missing token variable or bad adapter options;
    every other failure ends in the returned ``SourceResult``.
    """
    token = token_for(source)
    adapter = adapter_for(source)
    emit = on_event or (lambda event: None)
    cancel = cancel or threading.Event()
    with _source_lock(db_path, source.name) as locked:
        if not locked:
            error = f"source {source.name!r} is being synced by another process; try again when it finishes"
            emit(SourceFinished(source.name, "failed", 0, 0, error))
            return SourceResult(source.name, None, "failed", 0, 0, error)
        conn = connect(db_path)
        try:
            client = httpx.Client(
                transport=transport, timeout=httpx.Timeout(source.timeout), verify=source.verify_tls,
                follow_redirects=False, headers={"User-Agent": "warden-sync"},
                limits=httpx.Limits(max_connections=source.concurrency + 1,
                                    max_keepalive_connections=source.concurrency + 1),
            )
            with client, _fewer_collections():
                return _Run(conn, client, source, adapter, token=token, clock=clock, emit=emit,
                            cancel=cancel, sleep=sleep, refetch=refetch).run()
        finally:
            conn.close()


# Garbage-collector thresholds while a sync runs. Each page decodes into ten
# thousand lists, so the default threshold (700 allocations) runs a collection
# every few rows' worth of work: about 15 % of a sync's CPU, for nothing, as
# pages hold no reference cycles (they are freed by reference counting).
SYNC_GC_THRESHOLD = (50_000, 20, 100)
_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Raise the collector's thresholds for the duration (process-wide; nested and
    concurrent syncs share one saved setting, restored when the last one ends)."""
    global _gc_users, _gc_saved
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(*SYNC_GC_THRESHOLD)
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0:
                gc.set_threshold(*_gc_saved)


@contextmanager
def _source_lock(db_path: str | os.PathLike[str], name: str) -> Iterator[bool]:
    """Hold ``<db>.sync-<source>.lock`` with ``flock`` while syncing; yields whether
    we got it. The OS drops the lock when its process dies, so holding it proves
    any ``running`` run of this source is stale."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process guard
        yield True
        return
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:60]
    path = Path(f"{os.fspath(db_path)}.sync-{slug}.lock")
    try:
        # The first sync may create the database's folder: private, like the database.
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    except OSError as exc:  # a read-only disk or folder
        raise StoreError(f"cannot open the sync lock file {path}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@dataclass
class _ChainDone:
    chain: str


@dataclass
class _Stopped:
    """The source refused us (or a fetch thread hit a bug): the run fails."""

    outcome: PageOutcome | None
    error: str
    crash: BaseException | None = None


class _Run:
    """One sync run of one source: set up (or resume), pump pages, finish."""

    def __init__(self, conn: Any, client: httpx.Client, source: SourceConfig, adapter: Adapter, *,
                 token: str | None, clock: Clock, emit: OnEvent, cancel: threading.Event,
                 sleep: Sleep | None, refetch: bool = False) -> None:
        self.conn = conn
        self.refetch = refetch
        self.rejected_pages = 0
        self.source = source
        self.adapter = adapter
        self.clock = clock
        self.emit = emit
        self.cancel = cancel
        self.turns = Turns()
        self._worker: ParseWorker | None = None
        self._worker_tried = False
        self._worker_lock = threading.Lock()
        self.fetcher = PageFetcher(
            client, source, adapter, token=token, clock=clock, cancel=cancel, sleep=sleep,
            on_retry=lambda url, wait, reason: emit(Retrying(source.name, url, round(wait, 3), reason)),
        )

    # -- setting up ------------------------------------------------------------------

    def _resumable(self) -> tuple[int, Window, dict[str, Request], int, int] | None:
        """The source's latest run if it was interrupted (``running``: its process
        died, as we hold the lock) or cancelled, with chains left to fetch."""
        row = self.conn.execute(
            "SELECT id, status, window_start, window_end, pages, rows_taken FROM sync_run "
            "WHERE source = ? ORDER BY id DESC LIMIT 1", (self.source.name,)).fetchone()
        if row is None or row["status"] not in ("running", "cancelled") or not row["window_start"]:
            return None
        pending = {chain: Request.from_json(json.loads(nxt)) for chain, nxt in self.conn.execute(
            "SELECT chain, next FROM sync_cursor WHERE run_id = ? AND next IS NOT NULL ORDER BY chain",
            (row["id"],))}
        window = Window(date.fromisoformat(row["window_start"]), date.fromisoformat(row["window_end"]))
        return row["id"], window, pending, row["pages"], row["rows_taken"]

    def _start(self) -> tuple[int, Window, dict[str, Request], int, int, bool]:
        resumed = self._resumable()
        now = iso(self.clock())
        if resumed is not None:
            run_id, window, pending, pages, rows = resumed
            with transaction(self.conn):
                self.conn.execute("UPDATE sync_run SET status = 'running', finished_at = NULL, error = NULL "
                                  "WHERE id = ?", (run_id,))
                self._supersede(run_id)
            return run_id, window, pending, pages, rows, True
        wanted = sync_window(self.conn, self.source, date.fromisoformat(day_of(self.clock())), refetch=self.refetch)
        chains = self.adapter.chains(wanted)
        # The run's window is what the chains really ask for (X: the last N days).
        window = requested_window(self.adapter, wanted)
        with transaction(self.conn):
            run_id = self.conn.execute(
                "INSERT INTO sync_run (source, started_at, status, window_start, window_end) "
                "VALUES (?, ?, 'running', ?, ?)",
                (self.source.name, now, window.start.isoformat(), window.end.isoformat())).lastrowid
            self.conn.executemany("INSERT INTO sync_cursor (run_id, chain, next) VALUES (?, ?, ?)",
                                  [(run_id, chain, json.dumps(req.to_json())) for chain, req in chains.items()])
            self._supersede(run_id)
        return run_id, window, dict(chains), 0, 0, False

    def _supersede(self, run_id: int) -> None:
        """Older runs left ``running`` by a dead process will never continue."""
        self.conn.execute(
            "UPDATE sync_run SET status = 'failed', error = 'interrupted; superseded by run ' || ? "
            "WHERE source = ? AND status IN ('running', 'cancelled') AND id < ?",
            (run_id, self.source.name, run_id))

    # -- running ---------------------------------------------------------------------

    def run(self) -> SourceResult:
        name = self.source.name
        complete = None
        if not self.refetch and self._resumable() is None:
            complete = complete_window(self.conn, self.source, date.fromisoformat(day_of(self.clock())))
        if complete is not None:
            closed, last_run = complete
            note = (f"{closed} already fetched completely (run {last_run}); nothing to fetch "
                    "(--refetch fetches it again)")
            self.emit(SourceFinished(name, "ok", 0, 0, note=note))
            return SourceResult(name, None, "ok", 0, 0)
        run_id, window, pending, pages, rows, resumed = self._start()
        self.window = window
        # Plain http (loopback only) has no TLS to verify: None, not a claim that it was verified.
        tls = self.source.verify_tls if self.source.url.lower().startswith("https://") else None
        self.emit(SourceStarted(name, run_id, window.start.isoformat(), window.end.isoformat(),
                                len(pending), resumed, tls))
        writer = RunWriter(self.conn, name, run_id, pages=pages, rows=rows, turns=self.turns)
        self.known_pages = writer.known_pages
        covered = covered_window(self.adapter, window)
        start, end = covered.start.isoformat(), covered.end.isoformat()
        # No figure of the window from an earlier run (a first sync): none to
        # withdraw at the end, and no scan of this run's figures to find them.
        earlier = writer.stored_elsewhere(start, end, at_most=1) > 0
        status, error, crash = "ok", None, None
        try:
            status, error, crash = self._pump(writer, pending)
            if status == "ok":
                stored = 0 if writer.wrote_any(start, end) else writer.stored_elsewhere(start, end)
                if stored:
                    # An answer with no figures at all for a window where figures are
                    # stored is likelier a glitch upstream than every figure withdrawn:
                    # keep them, and say so (exit 1) rather than silently empty the window.
                    status = "partial"
                    error = (f"the source reported no figures for {start}..{end}, where {stored:,} are "
                             "stored; nothing was withdrawn; sync again to confirm")
                elif earlier:
                    writer.withdraw_missing(start, end)
        except KeyboardInterrupt as exc:  # a second Ctrl-C: stop now, resumable like a cancel
            writer.rollback()
            status, error, crash = "cancelled", "interrupted; the next sync resumes from the last stored page", exc
        except BaseException as exc:  # the writer itself failed (disk full, ...): record, then re-raise
            writer.rollback()
            status, error, crash = "failed", f"internal error: {type(exc).__name__}: {exc}", exc
        with transaction(self.conn):
            self.conn.execute("UPDATE sync_run SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                              (status, iso(self.clock()), error, run_id))
            if status in ("ok", "partial", "failed"):
                # Finished runs are never resumed: their cursors are history.
                self.conn.execute("DELETE FROM sync_cursor WHERE run_id = ?", (run_id,))
        self.emit(SourceFinished(name, status, writer.rows, writer.pages, error, rejected=self.rejected_pages))
        if isinstance(crash, sqlite3.OperationalError):  # a full disk, a read-only file
            raise write_error(self.conn, crash) from crash
        if crash is not None and not isinstance(crash, SyncError):
            raise crash  # a bug, not a user's problem: after recording the run, show it
        return SourceResult(name, run_id, status, writer.rows, writer.pages, error)

    def _pump(self, writer: RunWriter, pending: dict[str, Request]) -> tuple[str, str | None, BaseException | None]:
        """Fetch the pending chains concurrently and write their pages as they come."""
        source = self.source
        threads = max(1, min(source.concurrency, len(pending)))
        pages: queue.Queue[Any] = queue.Queue(maxsize=threads * QUEUE_PAGES_PER_THREAD)
        stop = threading.Event()  # the writer is done: fetch threads give up at once
        halt = threading.Event()  # the source refused us: no thread starts another request
        rejected: list[str] = []
        failure: _Stopped | None = None
        active = len(pending)
        if not pending:
            return "ok", None, None
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"sync-{source.name}")
        try:
            for chain, request in pending.items():
                pool.submit(self._fetch_chain, chain, request, pages, stop, halt)
            while active:
                if self.cancel.is_set():
                    break
                try:
                    item = pages.get_nowait()
                except queue.Empty:
                    writer.commit()  # never wait for a page with the write lock held
                    try:
                        item = pages.get(timeout=0.1)
                    except queue.Empty:
                        continue
                if isinstance(item, _ChainDone):
                    active -= 1
                    continue
                if isinstance(item, _Stopped):
                    failure = failure or item
                    if item.outcome is not None:
                        writer.write(item.outcome)
                    break  # the source refused us: the other chains stop too (finally sets stop)
                writer.write(item)
                if item.error is not None:
                    rejected.append(item.error)
                    self.rejected_pages = len(rejected)
                    self.emit(PageFailed(source.name, item.url, item.error))
                elif item.page is not None:
                    self.emit(PageStored(source.name, item.chain, item.rows, writer.total_pages,
                                         writer.total_rows, tuple(item.page.notes)))
                if writer.due or pages.empty():
                    writer.commit()
            writer.commit()
        finally:
            stop.set()
            writer.rollback()
            pool.shutdown(wait=True, cancel_futures=True)
            if self._worker is not None:
                self._worker.close()
                self._worker = None
        if failure is not None:
            return "failed", failure.error, failure.crash
        if self.cancel.is_set() and active:
            return "cancelled", "cancelled; the next sync resumes from the last stored page", None
        if rejected:
            more = f" (and {len(rejected) - 1} more rejected pages)" if len(rejected) > 1 else ""
            return "partial", rejected[0] + more, None
        return "ok", None, None

    def _stored_sha(self, request: Request) -> str | None:
        """For an adapter that asks conditionally (``conditional_requests``: warden-feed),
        the SHA-256 of the page of records the last complete run stored from
        ``request``'s URL: a ``304 Not Modified`` to it is that page again."""
        if not getattr(self.adapter, "conditional_requests", False):
            return None
        known = self.known_pages.get(self.fetcher.url_of(request))
        return known[0] if known is not None else None

    def _parse(self, chain: str, request: Request, fetched: Fetched) -> ParsedPage:
        """The page as the writer takes it (``store.sync.packed.parse_body``):
        a large one by the parse worker once it is ready (started by the first
        large page), any other here, taking turns with the writer's transactions."""
        if len(fetched.body) >= WORKER_BODY_BYTES:
            with self._worker_lock:
                if not self._worker_tried:
                    self._worker_tried = True
                    try:
                        self._worker = ParseWorker(self.adapter, self.window)
                    except OSError:   # no interpreter to start: parse here
                        self._worker = None
            if self._worker is not None and self._worker.ready:
                try:
                    return self._worker.parse(chain, request, fetched.body, fetched.headers)
                except (OSError, EOFError):
                    pass   # the worker is gone (killed?): parse here
        with self.turns.parsing():
            return parse_body(self.adapter, chain, request, fetched.body, self.window, fetched.headers)

    def _fetch_chain(self, chain: str, request: Request | None, pages: queue.Queue[Any],
                     stop: threading.Event, halt: threading.Event) -> None:
        """One chain, page after page: fetch, hash, decode, parse; never the database."""

        def hand_over(item: Any) -> bool:
            while not stop.is_set():
                try:
                    pages.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        source = self.source
        seen: set[Request] = set()  # this chain's requests so far: a cursor loop is refused
        empty = 0                   # pages in a row with nothing in them but a next cursor
        try:
            while request is not None and not (stop.is_set() or halt.is_set() or self.cancel.is_set()):
                try:
                    fetched = self.fetcher.get(request, etag=self._stored_sha(request))
                except FetchFailed as failed:
                    outcome = PageOutcome(chain, failed.url, failed.fetched_at, failed.status, failed.sha256,
                                          failed.body_bytes, error=str(failed.error))
                    if isinstance(failed.error, PageRejected):
                        hand_over(outcome)
                    else:
                        halt.set()
                        hand_over(_Stopped(outcome, str(failed.error)))
                    return
                outcome = PageOutcome(chain, fetched.url, fetched.fetched_at, fetched.status, fetched.sha256,
                                      len(fetched.body))
                known = self.known_pages.get(fetched.url)
                if known is not None and known[0] == fetched.sha256:
                    # Records stored before, byte for byte (store.sync.writer), or a 304
                    # to a request naming their SHA-256 (_stored_sha): only where next.
                    outcome.page, outcome.stored_before = ParsedPage(next=known[1]), True
                    seen.add(request)
                    if not hand_over(outcome):
                        return
                    request = known[1]
                    continue
                try:
                    outcome.page = parsed = self._parse(chain, request, fetched)
                    seen.add(request)
                    if parsed.next is not None and self.fetcher.carries_secret(json.dumps(parsed.next.to_json())):
                        # The next request is stored (sync_cursor) until the run ends: never with the token.
                        outcome.page = None
                        raise PageRejected("the next page's request carries the token (a server echoing it); "
                                           "refused so that it is never stored", path="$")
                    if outcome.page.next in seen:
                        # A server handing back a cursor already followed would loop forever.
                        raise PageRejected("the next page repeats one already fetched (the cursor does not "
                                           "advance)", path="$")
                    page = outcome.page
                    if page.next is not None and not (page.usage or page.endpoint_usage or page.apps
                                                      or page.consumers or page.tiers or page.facts):
                        empty += 1
                        if empty >= MAX_EMPTY_PAGES:
                            # Ever-new cursors over empty pages would never end either.
                            raise PageRejected(f"{empty:,} empty pages in a row, each with a next cursor "
                                               "(the cursor does not advance through any data)", path="$")
                    else:
                        empty = 0
                except PageRejected as rejected:
                    outcome.error = self.fetcher.redact(printable(str(rejected.located(source=source.name,
                                                                                      url=fetched.url))))
                    hand_over(outcome)
                    return
                if not hand_over(outcome):
                    return
                request = outcome.page.next
        except Cancelled:
            pass
        except Exception as exc:  # a bug in an adapter: fail the run, keep its trace
            halt.set()
            hand_over(_Stopped(None, self.fetcher.redact(
                f"internal error in chain {chain}: {type(exc).__name__}: {exc}"), exc))
        finally:
            hand_over(_ChainDone(chain))
