"""What a sync reports while it runs: small frozen dataclasses.

Each event has ``as_line()`` (one human line, for stderr) and ``as_json()`` (a
dict for JSON lines). ``on_event`` callbacks may be called from the engine's
fetch threads (``Retrying``) as well as from the calling thread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["ok", "partial", "failed", "cancelled"]
# A page's notes shown on its line (all of them are in the page's log).
NOTES_SHOWN = 3


@dataclass(frozen=True)
class SyncEvent:
    """A progress message of a sync: one line for people (``as_line``), one JSON object for ``--json``."""

    kind = "event"

    def as_json(self) -> dict[str, Any]:
        return {"event": self.kind, **asdict(self)}

    def as_line(self) -> str:  # pragma: no cover - every event overrides it
        return f"sync: {self.kind}"


@dataclass(frozen=True)
class SourceStarted(SyncEvent):
    source: str
    run_id: int
    window_start: str
    window_end: str
    chains: int
    resumed: bool = False
    tls_verified: bool | None = True   # False: verify_tls is off (warned on every run); None: plain http, no TLS
    kind = "source_started"

    def as_line(self) -> str:
        how = "resuming run" if self.resumed else "run"
        line = (f"sync {self.source}: {how} {self.run_id}, {self.window_start}..{self.window_end}, "
                f"{self.chains} page chains")
        if self.tls_verified is False:
            line += "; WARNING: TLS certificates are NOT verified (verify_tls = false)"
        return line


@dataclass(frozen=True)
class PageStored(SyncEvent):
    source: str
    chain: str
    rows: int          # rows of this page
    pages: int         # pages stored so far in this run
    total_rows: int    # rows stored so far in this run
    notes: tuple[str, ...] = ()   # figures the source left out (missing, not zero), with where
    kind = "page_stored"

    def as_line(self) -> str:
        line = (f"sync {self.source}: {self.chain} +{self.rows:,} rows "
                f"({_count(self.pages, 'page')}, {_count(self.total_rows, 'row')})")
        shown = list(self.notes[:NOTES_SHOWN])
        if len(self.notes) > NOTES_SHOWN:
            shown.append(f"and {len(self.notes) - NOTES_SHOWN:,} more (the page's log: sync_page.notes)")
        return "; ".join([line, *shown])


@dataclass(frozen=True)
class Retrying(SyncEvent):
    source: str
    url: str           # without secrets
    wait_s: float
    reason: str
    kind = "retrying"

    def as_line(self) -> str:
        return f"sync {self.source}: {self.reason}; retrying in {self.wait_s:.1f} s ({self.url})"


@dataclass(frozen=True)
class PageFailed(SyncEvent):
    source: str
    url: str
    error: str
    kind = "page_failed"

    def as_line(self) -> str:
        return f"sync {self.source}: page rejected: {self.error}"


@dataclass(frozen=True)
class SourceFinished(SyncEvent):
    source: str
    status: Status
    rows: int
    pages: int
    error: str | None = None
    note: str | None = None      # what happened besides the figures (a closed window already complete)
    rejected: int = 0            # pages refused (a partial run: the rest is stored)
    kind = "source_finished"

    @property
    def headline(self) -> str:
        """A few words for a notification's title: ``Sync partial``, ``Sync failed``, ..."""
        return {"ok": "Sync finished"}.get(self.status, f"Sync {self.status}")

    @property
    def why(self) -> str:
        """What went wrong, for a reader who did not watch the run: a partial run
        says that pages were refused and everything else is stored."""
        error = self.error or self.status
        if self.status == "partial" and self.rejected:
            pages = "a page was" if self.rejected == 1 else f"{self.rejected:,} pages were"
            return f"{pages} refused; everything else is stored: {error}"
        return error

    def as_line(self) -> str:
        line = f"sync {self.source}: {self.status}, {_count(self.pages, 'page')}, {_count(self.rows, 'row')}"
        return "; ".join(part for part in (line, self.note) if part) + (f": {self.error}" if self.error else "")


@dataclass(frozen=True)
class RulesApplied(SyncEvent):
    """After every source: the roster applied and the rules run over the consumers
    whose data changed (``mode`` "changed") or over every consumer ("full")."""

    consumers: int
    created: int
    updated: int
    unchanged: int
    no_longer_detected: int = 0   # candidates the figures no longer support (kept, marked)
    provenance: int = 0           # findings whose figures were fetched again unchanged: provenance updated
    mode: str = "changed"         # "full": every consumer; "changed": those whose data changed
    kind = "rules_applied"

    def as_line(self) -> str:
        which = "every consumer" if self.mode == "full" else "those whose data changed"
        return (f"rules: {self.consumers:,} consumers checked ({which}), {self.created:,} findings created, "
                f"{self.updated:,} updated, {self.provenance:,} with newer provenance, {self.unchanged:,} unchanged, "
                f"{self.no_longer_detected:,} no longer detected")


@dataclass(frozen=True)
class SourceResult:
    """How the sync of one source ended. ``rows``/``pages`` count the whole run
    (a resumed run includes what was stored before the interruption)."""

    source: str
    run_id: int | None   # None: no run was started (e.g. another process syncs it)
    status: Status
    rows: int
    pages: int
    error: str | None = None


def _count(n: int, noun: str) -> str:
    """``1 page``, ``1,024 pages``."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"
