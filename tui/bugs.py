"""Errors nobody expected: written with their traceback to a log file that the
error dialog names.

The log is ``warden.log`` in the user's log folder under the state directory
(``~/.local/state/warden/log/`` on Linux, by platformdirs). It is appended to;
past 1 MB the old file is kept as ``warden.log.1``. Tokens of the configured
sources are hidden from it, as from every other output.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path

from store.clock import Clock, iso
from store.config import Config

MAX_BYTES = 1_000_000


def default_log_path() -> Path:
    from platformdirs import user_log_path

    return user_log_path("warden", appauthor=False) / "warden.log"


def _tokens(config: Config) -> tuple[str, ...]:
    """The configured sources' tokens as set in the environment (to hide them)."""
    names = {source.token_env for source in config.sources.values() if source.token_env}
    return tuple(value for name in sorted(names) if (value := os.environ.get(name)))


def record_bug(path: Path, error: BaseException, *, where: str, clock: Clock, config: Config) -> None:
    """Append ``error`` with its traceback to the log at ``path``.

    Raises OSError when the log cannot be written (the dialog then says so).
    """
    from store.secrets import redact  # imports httpx: only when there is a bug to log

    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    entry = redact(f"{iso(clock())} unexpected error in {where or 'warden'}\n{trace}\n", _tokens(config))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.is_file() and path.stat().st_size > MAX_BYTES:
        path.replace(path.with_name(path.name + ".1"))
    # Private: a traceback can quote consumers' names and figures.
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a", encoding="utf-8") as handle:
        handle.write(entry)
