"""The errors a user can act on.

Hierarchy::

    WardenError                  anything the user can act on; has a short title
    ├── ConfigError              bad configuration or usage (CLI exit code 2)
    │   └── FilterError          a queue filter the reviewer typed does not parse
    ├── StoreError               the database cannot be opened, migrated or written
    │   └── ForeignDatabase      the file is another program's SQLite database (CLI exit code 2)
    ├── SyncError                a source could not be synced
    │   ├── PageRejected         one response was malformed; earlier pages stay stored
    │   └── SourceStopped        the source refused us (401, 403, usage capped, retries exhausted)
    ├── ConflictError            a finding or note changed under the reviewer
    ├── DecisionRefused          a decision that cannot be recorded as asked (no reason, bad status)
    ├── TemplateError            a note template failed to render
    └── ExportError              an export could not be written (e.g. would overwrite)

A stack trace reaching a user is a bug: every failure a user can cause or fix is
one of these, with a message that says what and where, and never a secret.
"""

from __future__ import annotations

# The public API, pinned by tests/test_errors.py against the drawing above.
__all__ = [
    "WardenError",
    "ConfigError",
    "FilterError",
    "StoreError",
    "ForeignDatabase",
    "SyncError",
    "PageRejected",
    "SourceStopped",
    "ConflictError",
    "DecisionRefused",
    "TemplateError",
    "ExportError",
]


class WardenError(Exception):
    """Base class: ``title`` is a few words for a notification, ``str(e)`` the detail."""

    title: str = "warden error"

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        if title is not None:
            self.title = title

    @property
    def message(self) -> str:
        """The detail, as ``str(e)`` (for callers that read ``.message``)."""
        return str(self)


class ConfigError(WardenError):
    """Bad configuration or command-line usage (the CLI exits with code 2)."""

    title = "Configuration error"


class FilterError(ConfigError):
    """A queue filter (``status:candidate over:10x ...``) that does not parse; the
    message names the bad term and the valid fields or values, ``position`` the
    offset in the typed text where it goes wrong (None: not known)."""

    title = "Bad filter"

    def __init__(self, message: str, *, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class StoreError(WardenError):
    """The database cannot be opened, migrated or written; the message names the file."""

    title = "Database error"


class ForeignDatabase(StoreError):
    """A SQLite file that holds another program's tables: warden refuses it and
    writes nothing to it (no schema, no WAL, no change of mode)."""

    title = "Not a warden database"


class SyncError(WardenError):
    """A source could not be synced; ``source`` names it."""

    title = "Sync failed"

    def __init__(self, message: str, *, source: str | None = None, title: str | None = None) -> None:
        super().__init__(message, title=title)
        self.source = source


class PageRejected(SyncError):
    """A response body that is not what the adapter documents.

    ``path`` is a JSON path such as ``$.data[3].usage[1].usage``.
    """

    title = "Page rejected"

    def __init__(self, why: str, *, path: str = "$", source: str | None = None, url: str | None = None) -> None:
        self.why = why
        self.path = path
        self.url = url
        super().__init__(self._compose(why, path, source, url), source=source)

    @staticmethod
    def _compose(why: str, path: str, source: str | None, url: str | None) -> str:
        where = f"source {source!r}, " if source else ""
        where += f"{url}, " if url else ""
        return f"{where}at {path}: {why}"

    def located(self, *, source: str, url: str) -> "PageRejected":
        """The same rejection, naming the source and URL it came from."""
        return PageRejected(self.why, path=self.path, source=source, url=url)


class SourceStopped(SyncError):
    """The source refused us (401, 403, usage capped, retries exhausted): the run stops."""

    title = "Source stopped"


class ConflictError(WardenError):
    """``current`` holds what the thing is now (status, reviewer, reason, version, ...)
    so the UI can show the reviewer what changed under them."""

    title = "Changed by someone else"

    def __init__(self, message: str, *, current: dict[str, object] | None = None,
                 title: str | None = None) -> None:
        super().__init__(message, title=title)
        self.current: dict[str, object] = dict(current or {})


class DecisionRefused(WardenError):
    """A decision that cannot be recorded as asked (no reason, a status it cannot reach)."""

    title = "Decision refused"


class TemplateError(WardenError):
    """A note template failed to render; the message names the file and line."""

    title = "Template error"


class ExportError(WardenError):
    """An export could not be written (it would overwrite, nothing matched, a folder is missing)."""

    title = "Export failed"
