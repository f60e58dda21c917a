"""What every command shares: exit codes, the options every command takes, the
reporter of headless events, and finding the database, the configuration and
the reviewer."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from store.errors import ConfigError

EXIT_OK = 0
EXIT_PARTIAL = 1     # partly failed, or refused (a conflict, nothing to do, a broken log)
EXIT_USAGE = 2       # bad usage or configuration


def default_db_path() -> Path:
    from platformdirs import user_data_path

    return user_data_path("warden", appauthor=False) / "warden.db"


def default_config_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path("warden", appauthor=False) / "config.toml"


def common_options(parser: argparse.ArgumentParser, *, suppress: bool, db_help: str | None = None) -> None:
    """Options every command takes. On subcommands they default to SUPPRESS so a value
    given before the command (``warden --db X sync``) is not reset by the subparser."""
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--db", metavar="PATH", default=default,
                        help=db_help or "SQLite database (env WARDEN_DB; default: %s)" % default_db_path())
    parser.add_argument("--config", metavar="PATH", default=default,
                        help="TOML configuration (env WARDEN_CONFIG; default: %s if it exists)" % default_config_path())
    parser.add_argument("--reviewer", metavar="NAME", default=default,
                        help="name recorded in the decision log (default: your login name)")
    parser.add_argument("--json", action="store_true", default=default,
                        help="headless output as JSON lines (events on stderr, listings on stdout)")
    parser.add_argument("--no-mouse", action="store_true", default=default,
                        help="do not capture the mouse in the TUI")
    parser.add_argument("--verbose", action="store_true", default=default,
                        help="headless sync: a line for every page and retry (default: a line per source and "
                             "a summary; on a terminal, a live progress bar)")


def positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError("must be between 1 and 1,000,000")
    return value


class Reporter:
    """Prints one line per event on stderr, as text or JSON lines; listings (what
    a command was asked to show) on stdout."""

    def __init__(self, *, as_json: bool, stream: Any = None, out: Any = None) -> None:
        self.as_json = as_json
        self.stream = stream if stream is not None else sys.stderr
        self.out = out
        self._lock = threading.Lock()

    def event(self, event: Any) -> None:
        line = json.dumps(event.as_json(), sort_keys=True) if self.as_json else event.as_line()
        self._write(line)

    def say(self, kind: str, message: str, **fields: Any) -> None:
        if self.as_json:
            self._write(json.dumps({"event": kind, "message": message, **fields}, sort_keys=True))
        else:
            self._write(message)

    def show(self, text: str) -> None:
        """What the command was asked to print (a listing, a note), on stdout."""
        with self._lock:
            print(text, file=self.out if self.out is not None else sys.stdout, flush=True)

    def _write(self, line: str) -> None:
        with self._lock:
            print(line, file=self.stream, flush=True)


def db_path(args: argparse.Namespace, config: Any | None = None) -> Path:
    if args.db:
        return Path(args.db).expanduser()
    if os.environ.get("WARDEN_DB"):
        return Path(os.environ["WARDEN_DB"]).expanduser()
    if config is not None and getattr(config, "database", None):
        return Path(config.database).expanduser()
    return default_db_path()


def load_config(args: argparse.Namespace) -> Any:
    """The configuration named by --config / WARDEN_CONFIG, else the default file if it
    exists, else an empty configuration."""
    from store.config import Config, load_config as read_config

    explicit = args.config or os.environ.get("WARDEN_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"configuration file not found: {path}")
        return read_config(path)
    default = default_config_path()
    if default.is_file():
        return read_config(default)
    return Config()


def reviewer(args: argparse.Namespace, config: Any | None = None) -> str:
    if args.reviewer:
        return str(args.reviewer)
    if config is not None and getattr(config, "reviewer", None):
        return str(config.reviewer)
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "reviewer"


def check_database(path: Path, reporter: Reporter, *, readonly: bool = False) -> list[str]:
    """Before a command touches the database at ``path`` (if there is one): refuse
    a file that is not warden's, make it private and say so (once: the next open
    finds nothing to do). Returns what it said."""
    from store.db import connect

    if not path.is_file():
        return []
    notices: list[str] = []
    connect(path, readonly=readonly, notices=notices).close()
    for notice in notices:
        reporter.say("private", f"warden: {notice}", db=str(path))
    return notices


def open_existing(args: argparse.Namespace, reporter: Reporter, *,
                  readonly: bool = False) -> tuple[Any, Any]:
    """The configuration and a connection to a database that must already exist
    (commands other than sync and demo never create an empty one)."""
    from store.db import connect

    config = load_config(args)
    path = db_path(args, config)
    if not path.exists():
        raise ConfigError(f"no database at {path}")
    notices: list[str] = []
    conn = connect(path, readonly=readonly, notices=notices)
    for notice in notices:
        reporter.say("private", f"warden: {notice}", db=str(path))
    return config, conn
