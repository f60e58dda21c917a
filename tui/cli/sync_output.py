"""What a headless sync (``warden --headless``, ``warden sync``, ``warden demo``)
prints on stderr.

- By default, for cron logs: a line per source when it ends (status, rows, pages,
  how long it took, and why when it did not end ok: how many pages were refused
  and the first reason), the rules' line, and a summary with the whole duration.
- On a terminal (stderr is a TTY) the same lines, and meanwhile a live progress
  bar per source (rows and pages so far, a retry being waited for), drawn by
  Rich and gone when the sync ends. Never when stderr is not a terminal.
- ``--verbose``: every event as its own line (each page stored, each retry), as
  warden printed before; ``--json``: every event as a JSON line, unchanged.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from store.sync.events import PageFailed, PageStored, Retrying, RulesApplied, SourceFinished, SourceStarted


class SyncOutput:
    """Receives the sync's events (``on_event``) from any thread and prints them."""

    def __init__(self, reporter: Any, *, verbose: bool = False, live: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.reporter = reporter
        self.every_event = verbose or reporter.as_json
        self.clock = clock
        self.started = clock()
        self._source_started: dict[str, float] = {}
        self._lock = threading.Lock()
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        if live and not self.every_event:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), TimeElapsedColumn(),
                                      console=Console(file=reporter.stream, stderr=True), transient=True)

    def __enter__(self) -> SyncOutput:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    def on_event(self, event: Any) -> None:
        with self._lock:
            if self.every_event:
                self.reporter.event(event)
                return
            if isinstance(event, SourceStarted):
                self._source_started[event.source] = self.clock()
                self._bar(event.source, f"{event.source}: starting")
                if event.tls_verified is False:
                    self._say(event.as_line())        # the TLS warning, on every run
            elif isinstance(event, PageStored):
                self._bar(event.source, f"{event.source}: {event.total_rows:,} rows, {event.pages:,} pages")
            elif isinstance(event, Retrying):
                self._bar(event.source, f"{event.source}: {event.reason}; retrying in {event.wait_s:.0f} s")
            elif isinstance(event, PageFailed):
                # Counted in the source's line (with the first reason); each one with --verbose.
                self._bar(event.source, f"{event.source}: a page was refused")
            elif isinstance(event, SourceFinished):
                self._finished(event)
            elif isinstance(event, RulesApplied):
                self._say(f"warden: {event.as_line()}")

    def summary(self, results: list[Any]) -> None:
        """The last line: sources synced, rows stored, the whole duration."""
        ok = sum(1 for r in results if r.status == "ok")
        rows = sum(r.rows for r in results)
        if self.reporter.as_json:
            self.reporter.say("summary", f"warden: {ok}/{len(results)} sources synced, {rows:,} rows stored",
                              sources=len(results), ok=ok, rows=rows)
            return
        self.reporter.say("summary", f"warden: {ok}/{len(results)} sources synced, {rows:,} rows stored "
                                     f"in {self.clock() - self.started:.1f} s")

    # -- under the lock --------------------------------------------------------------

    def _finished(self, event: SourceFinished) -> None:
        took = self.clock() - self._source_started.get(event.source, self.started)
        pages = f"{event.pages:,} page" + ("" if event.pages == 1 else "s")
        line = f"warden: {event.source}: {event.status}, {event.rows:,} rows in {pages}, {took:.1f} s"
        if event.status != "ok":
            line += f": {event.why}"
        elif event.note:
            line += f"; {event.note}"
        task = self._tasks.pop(event.source, None)
        if task is not None:
            self._progress.remove_task(task)
        self._say(line)

    def _bar(self, source: str, text: str) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(source)
        if task is None:
            self._tasks[source] = self._progress.add_task(text, total=None)
        else:
            self._progress.update(task, description=text)

    def _say(self, line: str) -> None:
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            self.reporter.say("line", line)
