"""Messages that workers post: small values, handled on the App or a screen.

A thread worker never touches a widget: it reads or writes through ``store``
and posts one of these; the handler on the screen (or the App) updates what is
shown. A worker that fails posts nothing: its error reaches the App's boundary
as a :class:`Problem` (see ``tui.app``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from textual.screen import Screen

    from store.notes import Note
    from store.queue import Jump
    from tui.widgets.detail import Detail


# --- the queue and the detail ---------------------------------------------------------


@dataclass
class QueueCounted(Message):
    total: int
    cursor: int | None
    sync_state: str


@dataclass
class PageLoaded(Message):
    generation: int
    page: int
    rows: list[Any]


@dataclass
class DetailLoaded(Message):
    consumer_id: str
    detail: Detail | None


@dataclass
class JumpTo(Message):
    """Where ``]`` / ``[`` go (a ``store.queue.Jump``), ``direction`` 1 or -1."""

    jump: Jump
    direction: int


@dataclass
class Tagged(Message):
    """Every consumer a filter shows, to tag: consumer_id -> its open findings."""

    consumers: dict[str, int]


@dataclass
class DataVersion(Message):
    """SQLite's data_version of the queue reader's connection: changes when another
    connection (another session, a cron sync, this app's workers) commits."""

    version: int


# --- writes ---------------------------------------------------------------------------


@dataclass
class Decided(Message):
    """A change was written. ``at``: the queue index the reviewer decided at (the
    cursor stays there); ``consumer_id``: the consumer the cursor goes to (undo);
    neither: the cursor follows the consumer it is on."""

    summary: str
    at: int | None = None
    consumer_id: str | None = None
    title: str = "Decision recorded"


@dataclass
class ExportFinished(Message):
    """An export finished: one summary line per format written, and every warning
    of it (each shown in a notification of its own)."""

    lines: list[str]
    warnings: list[str]


@dataclass
class NoteOpened(Message):
    note: Note
    drafted: bool
    where: str  # "app" | "external"


@dataclass
class NoteSaved(Message):
    version: int
    text: str


@dataclass
class NoteRedrafted(Message):
    note: Note


@dataclass
class NoteStatusChanged(Message):
    note: Note
    warnings: tuple[str, ...] = ()     # what marking it ready found (figures changed since the draft, ...)


@dataclass
class PreviewDrawn(Message):
    """A note's ``text`` drawn as Markdown, ``width`` cells wide (Rich segments per line)."""

    text: str
    width: int
    lines: list[Any]


# --- the background sync (worker on the App) -------------------------------------------


@dataclass
class SyncProgressed(Message):
    line: str
    sources_done: int
    status: str


@dataclass
class SyncSourceFailed(Message):
    source: str
    error: str
    headline: str = "Sync failed"   # "Sync partial" when the rest is stored


@dataclass
class SyncFinished(Message):
    summary: str


@dataclass
class SyncState(Message):
    """From the App to its screens: the sync's state for a header; ``finished``:
    new data is stored, read it again."""

    text: str
    finished: bool = False


# --- failures -------------------------------------------------------------------------


@dataclass
class Problem(Message):
    """Something failed; the App's one boundary says so.

    ``context`` goes before the error's title (``Export md: Export refused``);
    ``screen`` is reloaded after a ConflictError; ``where`` (the worker) goes into
    the log of unexpected errors.
    """

    error: BaseException
    context: str = ""
    screen: Screen[Any] | None = None
    where: str = ""
