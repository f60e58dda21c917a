"""Configuration: sources, tiers, roster, keymap, note settings, read from TOML.

The dataclasses below are the contract the rest of warden relies on.
:func:`load_config` reads and checks a TOML file; :func:`apply_config` writes what
it says into the database; :func:`token_for` reads a source's token from the
environment when a sync needs it.

Format (every key is optional unless marked *required*; any other key is an error
that names the key, its table, and the closest known key)::

    [warden]
    database = "~/warden/warden.db"   # --db / WARDEN_DB override it; relative to the config file
    reviewer = "alice"                # default reviewer name (--reviewer overrides)

    [notes]
    sender = "Compliance <compliance@example.com>"   # From: of .eml drafts
    organisation = "Example Platform Inc."
    deadline_days = 21                # 1..365
    template_dir = "templates"        # template overrides; relative to the config file

    [sources.feed]                    # the source's name: letters, digits, '-', '_', '.'
    adapter = "warden-feed"           # required: x-usage | aws-usage-plan | openai-usage | warden-feed
    url = "https://usage.example.com/feed/v1"   # required; http:// only to loopback
                                      # (127.0.0.0/8, ::1, localhost); no user:password@
    token_env = "FEED_TOKEN"          # NAME of the environment variable holding the token
    start = 2022-01-01                # TOML date: first day fetched by the first sync
    lookback_days = 7                 # later syncs re-fetch this many days (>= 0)
    concurrency = 4                   # 1..64 page sequences fetched at once
    timeout = 30.0                    # seconds (> 0)
    max_body_bytes = 67108864         # >= 1024
    max_attempts = 6                  # >= 1, retries included
    max_retry_seconds = 300.0         # >= 0
    insecure_skip_tls_verify = false  # true turns TLS verification off (warned on every run)
    shards = 8                        # adapter-specific keys, see below

    [sources.x]
    adapter = "x-usage"
    url = "https://api.x.com"
    token_env = "X_BEARER_TOKEN"

    # Adapter-specific keys (SourceConfig.options):
    #   x-usage:        days = 1..90 (days of usage per request; default: the sync window)
    #   aws-usage-plan: usage_plan_id = "abc123" (required), region = "eu-west-1"
    #                   (default: read from the URL host), limit = 1..1000 (keys per page)
    #   openai-usage:   bucket_limit = 1..31 (daily buckets per page), project_ids = ["proj_..."]
    #   warden-feed:    shards = 1..256 (pages fetched concurrently), limit = rows per page

    [tiers.enterprise]                # the tier id consumers name
    name = "Enterprise"               # default: the id
    agreement_version = "2023-04"
    allowed_endpoints = ["/2/tweets/*", "/2/users/*"]   # fnmatch patterns; absent = unrestricted
    [tiers.enterprise.limits]         # <metric>_per_<day|month|year> = positive integer
    calls_per_day = 500_000
    records_per_month = 50_000_000
    [tiers.enterprise.clauses]        # <category id> = clause reference quoted in notes
    volume_cap = "§ 2.3 Usage limits"
    rate_limit = "§ 2.4 Rate limits"

    [roster]
    file = "roster.csv"               # relative to the config file; .csv or .json
    # CSV: header row with `id` and `legal_name` (required) and any of notice_contact,
    #   tier, agreement_version, declared_use_case, government_end_users, apps;
    #   apps as "source:app_id;source:app_id"; empty cells are "not given".
    # JSON: a list of objects with the same keys; apps a list of "source:app_id".

    [[consumers]]                     # inline roster entries, same fields as the roster
    id = "northwind-analytics"        # required, unique across inline and file roster
    legal_name = "Northwind Analytics Ltd"   # required
    notice_contact = "legal@northwind.example"
    tier = "enterprise"               # a [tiers] id (or a tier a warden-feed source serves)
    agreement_version = "2022-07"
    declared_use_case = "Brand analytics"
    government_end_users = "City of Example (traffic analytics)"   # as declared; absent = none declared
    apps = ["x:29183745", "feed:app-17"]   # "source:app_id"; the source must be configured;
                                      # an app belongs to one consumer

    [keymap]
    "review.confirm" = "V"            # binding id = keys; the TUI's help (?) lists the ids

Tokens: only the *name* of a variable is configured. :func:`token_for` raises
``ConfigError`` naming the variable when it is unset, and never shows a value.
"""

from __future__ import annotations

import csv
import difflib
import itertools
import ipaddress
import json
import os
import re
import sqlite3
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import urlsplit

from store.db import transaction
from store.domain import CATEGORIES
from store.errors import ConfigError
from store.secrets import kind_of, secret_params
from store.sync.adapter import check_options
from store.sync.adapters import ADAPTERS

@dataclass
class SourceConfig:
    """A ``[sources.<name>]`` table: a remote endpoint, its adapter, and where its token comes from (an env var name, never the token)."""

    name: str
    adapter: str
    url: str
    token_env: str | None = None
    start: date | None = None            # first day to fetch on the first sync
    lookback_days: int = 7               # later syncs re-fetch this many days and replace them
    concurrency: int = 4                 # chains fetched at once
    timeout: float = 30.0                # connect/read timeout, seconds
    max_body_bytes: int = 64 * 1024 * 1024   # decoded body size past which a response is refused
    max_attempts: int = 6                # per request, retries included
    max_retry_seconds: float = 300.0     # total time spent waiting to retry, per request
    verify_tls: bool = True              # off only with an explicit option, warned on every run
    options: dict[str, Any] = field(default_factory=dict)  # adapter-specific (usage_plan_id, shards, days, ...)


@dataclass
class TierConfig:
    """A ``[tiers.<id>]`` table: limits per period, allowed endpoints, clause references."""

    id: str
    name: str
    agreement_version: str | None = None
    allowed_endpoints: list[str] | None = None
    limits: list[tuple[str, str, int]] = field(default_factory=list)  # (metric, period, max)
    clauses: dict[str, str] = field(default_factory=dict)              # category -> clause reference


@dataclass
class ConsumerConfig:
    """A roster entry (inline ``[[consumers]]`` or the roster file): a consumer and the apps it owns."""

    id: str
    legal_name: str
    notice_contact: str | None = None
    tier: str | None = None
    agreement_version: str | None = None
    declared_use_case: str | None = None
    government_end_users: str | None = None
    apps: list[tuple[str, str]] = field(default_factory=list)  # (source, app_id)


@dataclass
class NotesConfig:
    """The ``[notes]`` table: who audit-request notes come from and how long the consumer has to answer."""

    sender: str = "Compliance <compliance@example.invalid>"   # From: of .eml drafts
    organisation: str = "the Platform"
    deadline_days: int = 21
    template_dir: Path | None = None     # overrides of the built-in templates


@dataclass
class Config:
    """A whole configuration file, as :func:`load_config` read and checked it."""

    path: Path | None = None
    database: Path | None = None
    reviewer: str | None = None
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    tiers: dict[str, TierConfig] = field(default_factory=dict)
    consumers: list[ConsumerConfig] = field(default_factory=list)
    roster_file: Path | None = None      # CSV or JSON roster for large platforms
    keymap: dict[str, str] = field(default_factory=dict)    # binding id -> keys
    notes: NotesConfig = field(default_factory=NotesConfig)


@dataclass
class AppliedConfig:
    """What :func:`apply_config` wrote."""

    sources: int = 0
    tiers: int = 0
    consumers: int = 0          # roster consumers (inline + file) upserted
    apps: int = 0               # roster app -> consumer mappings upserted
    auto_consumers: int = 0     # consumers created for apps seen in usage without a roster entry


# --- the format --------------------------------------------------------------

_TOP_KEYS = ("warden", "notes", "sources", "tiers", "roster", "consumers", "keymap")
_WARDEN_KEYS = ("database", "reviewer")
_NOTES_KEYS = ("sender", "organisation", "deadline_days", "template_dir")
_SOURCE_KEYS = (
    "adapter", "url", "token_env", "start", "lookback_days", "concurrency", "timeout",
    "max_body_bytes", "max_attempts", "max_retry_seconds", "insecure_skip_tls_verify",
)
_TIER_KEYS = ("name", "agreement_version", "allowed_endpoints", "limits", "clauses")
_LIMIT_KEY = re.compile(r"([a-z][a-z0-9_]*?)_per_(day|month|year)")
CONSUMER_FIELDS = (
    "id", "legal_name", "notice_contact", "tier", "agreement_version", "declared_use_case",
    "government_end_users", "apps",
)
_ROSTER_KEYS = ("file",)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Rows written per transaction: short enough that a reviewer's write never waits long.
BATCH_ROWS = 10_000


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and check the TOML configuration at ``path``.

    Raises ``ConfigError`` naming the file, the table and the key for anything
    that is not as documented in this module's docstring. The roster file is only
    located here (so opening warden stays fast with a huge roster); its rows are
    checked by :func:`apply_config` and :func:`iter_roster`.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return _Reader(path).config(data)


def token_for(source: SourceConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The token for ``source`` from the environment variable its ``token_env`` names,
    or ``None`` when the source needs no token.

    Raises ``ConfigError`` naming the variable (never a value) when it is unset or empty.
    """
    if not source.token_env:
        return None
    env = os.environ if environ is None else environ
    value = env.get(source.token_env)
    if not value:
        raise ConfigError(
            f"source {source.name!r}: environment variable {source.token_env} is not set "
            f"(token_env names the variable that holds the token)"
        )
    return value


def auto_consumer_id(source: str, app_id: str) -> str:
    """The id of the consumer an app becomes when no roster claims it."""
    return f"{source}:{app_id}"


class _Reader:
    """Turns the parsed TOML into a :class:`Config`, checking as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {message}")

    # --- typed access -----------------------------------------------------

    def keys(self, table: Mapping[str, Any], known: Iterable[str], where: str) -> None:
        known = list(known)
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
                raise self.fail(where, f"unknown key {key!r}{hint}")

    def table(self, parent: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
        value = parent.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(where, f"{key!r} must be a table ([{key}]), got {kind_of(value)}")
        return value

    def string(self, table: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                raise self.fail(where, f"missing required key {key!r}")
            return None
        if not isinstance(value, str):
            raise self.fail(where, f"{key!r} must be a string, got {kind_of(value)}")
        if required and not value.strip():
            raise self.fail(where, f"{key!r} must not be empty")
        return value

    def integer(self, table: Mapping[str, Any], key: str, where: str, *, low: int | None = None,
                high: int | None = None) -> int | None:
        value = table.get(key)
        if value is None:
            return None
        if type(value) is not int:
            raise self.fail(where, f"{key!r} must be an integer, got {kind_of(value)}")
        self._bounds(value, key, where, low, high)
        return value

    def number(self, table: Mapping[str, Any], key: str, where: str, *, low: float = 0.0,
               strict: bool = False) -> float | None:
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"{key!r} must be a number, got {kind_of(value)}")
        if value < low or (strict and value == low) or value != value:
            raise self.fail(where, f"{key!r} must be {'>' if strict else '>='} {low:g}, got {value}")
        return float(value)

    def boolean(self, table: Mapping[str, Any], key: str, where: str) -> bool | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.fail(where, f"{key!r} must be true or false, got {kind_of(value)}")
        return value

    def strings(self, table: Mapping[str, Any], key: str, where: str) -> list[str] | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(where, f"{key!r} must be a list of strings, got {kind_of(value)}")
        return list(value)

    def day(self, table: Mapping[str, Any], key: str, where: str) -> date | None:
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, datetime) or not isinstance(value, (date, str)):
            raise self.fail(where, f"{key!r} must be a date such as 2022-01-01, got {kind_of(value)}")
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                raise self.fail(where, f"{key!r} is not a date (YYYY-MM-DD): {value!r}") from None
        return value

    def path_in(self, value: str | None) -> Path | None:
        """A path from the config: ``~`` expanded, relative to the config file's folder."""
        if value is None:
            return None
        expanded = Path(value).expanduser()
        return expanded if expanded.is_absolute() else self.base / expanded

    def _bounds(self, value: int, key: str, where: str, low: int | None, high: int | None) -> None:
        if low is not None and value < low or high is not None and value > high:
            span = f"between {low} and {high}" if low is not None and high is not None else (
                f">= {low}" if low is not None else f"<= {high}")
            raise self.fail(where, f"{key!r} must be {span}, got {value}")

    # --- tables -------------------------------------------------------------

    def config(self, data: dict[str, Any]) -> Config:
        self.keys(data, _TOP_KEYS, "top level")
        config = Config(path=self.path)

        warden = self.table(data, "warden", "top level")
        self.keys(warden, _WARDEN_KEYS, "[warden]")
        config.database = self.path_in(self.string(warden, "database", "[warden]"))
        config.reviewer = self.string(warden, "reviewer", "[warden]")

        config.notes = self.notes(self.table(data, "notes", "top level"))

        sources = self.table(data, "sources", "top level")
        for name, table in sources.items():
            config.sources[name] = self.source(name, table)

        tiers = self.table(data, "tiers", "top level")
        for tier_id, table in tiers.items():
            config.tiers[tier_id] = self.tier(tier_id, table)

        roster = self.table(data, "roster", "top level")
        self.keys(roster, _ROSTER_KEYS, "[roster]")
        roster_file = self.path_in(self.string(roster, "file", "[roster]"))
        if roster_file is not None:
            if roster_file.suffix.lower() not in (".csv", ".json"):
                raise self.fail("[roster]", f"'file' must be a .csv or .json file, got {roster_file.name!r}")
            if not roster_file.is_file():
                raise self.fail("[roster]", f"roster file not found: {roster_file}")
        config.roster_file = roster_file

        consumers = data.get("consumers", [])
        if not isinstance(consumers, list) or not all(isinstance(c, dict) for c in consumers):
            raise self.fail("top level", "'consumers' must be an array of tables ([[consumers]])")
        seen: set[str] = set()
        for index, table in enumerate(consumers):
            where = f"[[consumers]] #{index + 1}"
            self.keys(table, CONSUMER_FIELDS, where)
            consumer = _consumer_from(table, lambda message, where=where: self.fail(where, message))
            if consumer.id in seen:
                raise self.fail(where, f"duplicate consumer id {consumer.id!r}")
            seen.add(consumer.id)
            check_consumer(config, consumer, lambda message, where=where: self.fail(where, message))
            config.consumers.append(consumer)

        keymap = self.table(data, "keymap", "top level")
        for binding, keys in keymap.items():
            if not isinstance(keys, str) or not keys.strip():
                raise self.fail("[keymap]", f"{binding!r} must be a non-empty string of keys, got {kind_of(keys)}")
            config.keymap[binding] = keys
        return config

    def notes(self, table: dict[str, Any]) -> NotesConfig:
        where = "[notes]"
        self.keys(table, _NOTES_KEYS, where)
        notes = NotesConfig()
        notes.sender = self.string(table, "sender", where) or notes.sender
        notes.organisation = self.string(table, "organisation", where) or notes.organisation
        deadline = self.integer(table, "deadline_days", where, low=1, high=365)
        if deadline is not None:
            notes.deadline_days = deadline
        notes.template_dir = self.path_in(self.string(table, "template_dir", where))
        return notes

    def source(self, name: str, table: Any) -> SourceConfig:
        where = f"[sources.{name}]"
        if not isinstance(table, dict):
            raise self.fail(where, f"must be a table, got {kind_of(table)}")
        if not _NAME.fullmatch(name):
            raise self.fail(where, "source names use letters, digits, '-', '_' and '.'")
        adapter = self.string(table, "adapter", where, required=True)
        assert adapter is not None
        if adapter not in ADAPTERS:
            close = difflib.get_close_matches(adapter, ADAPTERS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise self.fail(where, f"unknown adapter {adapter!r} (known: {', '.join(ADAPTERS)}){hint}")
        declared = ADAPTERS[adapter].OPTIONS
        self.keys(table, _SOURCE_KEYS + tuple(option.name for option in declared), where)

        url = self.string(table, "url", where, required=True)
        assert url is not None
        self.check_url(url, where)
        source = SourceConfig(name=name, adapter=adapter, url=url)

        token_env = self.string(table, "token_env", where)
        if token_env is not None and not _ENV_NAME.fullmatch(token_env):
            # Never echo the value: someone may have pasted the token itself here.
            raise self.fail(where, "'token_env' must be the NAME of an environment variable "
                                   "(letters, digits, '_'), not the token itself")
        source.token_env = token_env
        source.start = self.day(table, "start", where)
        for key, low, high in (("lookback_days", 0, 3660), ("concurrency", 1, 64),
                               ("max_body_bytes", 1024, None), ("max_attempts", 1, 100)):
            value = self.integer(table, key, where, low=low, high=high)
            if value is not None:
                setattr(source, key, value)
        timeout = self.number(table, "timeout", where, strict=True)
        if timeout is not None:
            source.timeout = timeout
        retry_seconds = self.number(table, "max_retry_seconds", where)
        if retry_seconds is not None:
            source.max_retry_seconds = retry_seconds
        if self.boolean(table, "insecure_skip_tls_verify", where):
            source.verify_tls = False

        source.options = check_options(adapter, declared, table, lambda message: self.fail(where, message))
        return source

    def check_url(self, url: str, where: str) -> None:
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            raise self.fail(where, "'url' is not a valid URL") from None
        if parts.scheme not in ("http", "https") or not host:
            raise self.fail(where, "'url' must start with https:// (or http:// to a loopback host) and name a host")
        if parts.username is not None or parts.password is not None:
            # Credentials in a URL would end up in logs and the database.
            raise self.fail(where, "'url' must not contain user:password@; put the token in the "
                                   "variable named by token_env")
        named = secret_params(parts.query)
        if named:
            # Stored with the source and shown in messages: the value would leak (never quoted here).
            raise self.fail(where, f"'url' must not carry a credential in its query ({', '.join(named)}); put "
                                   "the token in the variable named by token_env")
        if parts.scheme == "http" and not is_loopback(host):
            raise self.fail(where, f"'url' uses plain http:// to {host!r}, which is not a loopback host "
                                   "(127.0.0.0/8, ::1, localhost); use https:// so the token is not sent in the clear")

    def tier(self, tier_id: str, table: Any) -> TierConfig:
        where = f"[tiers.{tier_id}]"
        if not isinstance(table, dict):
            raise self.fail(where, f"must be a table, got {kind_of(table)}")
        self.keys(table, _TIER_KEYS, where)
        tier = TierConfig(id=tier_id, name=self.string(table, "name", where) or tier_id)
        tier.agreement_version = self.string(table, "agreement_version", where)
        tier.allowed_endpoints = self.strings(table, "allowed_endpoints", where)

        limits_where = f"[tiers.{tier_id}.limits]"
        for key, value in self.table(table, "limits", where).items():
            match = _LIMIT_KEY.fullmatch(key)
            if not match:
                raise self.fail(limits_where, f"limit key {key!r} must be <metric>_per_day, "
                                              "<metric>_per_month or <metric>_per_year (e.g. calls_per_day)")
            maximum = self.integer({key: value}, key, limits_where, low=1)
            assert maximum is not None
            tier.limits.append((match.group(1), match.group(2), maximum))

        clauses_where = f"[tiers.{tier_id}.clauses]"
        clauses = self.table(table, "clauses", where)
        self.keys(clauses, CATEGORIES, clauses_where)
        for category in clauses:
            clause = self.string(clauses, category, clauses_where, required=True)
            assert clause is not None
            tier.clauses[category] = clause
        return tier


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: 127.0.0.0/8, ::1 or ``localhost``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --- consumers: inline and roster ----------------------------------------------

def _consumer_from(record: Mapping[str, Any], fail: Any) -> ConsumerConfig:
    """A consumer from an inline table, a JSON object or a CSV row (strings, empty
    for "not given"); ``fail(message)`` builds the error for its location.

    Runs once per roster row (hundreds of thousands): kept to plain calls."""
    get = record.get
    apps_value = get("apps")
    if apps_value is None or apps_value == "":
        raw_apps: list[Any] = []
    elif isinstance(apps_value, str):
        raw_apps = [part for part in apps_value.split(";") if part.strip()]
    elif isinstance(apps_value, list):
        raw_apps = apps_value
    else:
        raise fail(f"'apps' must be a list of \"source:app_id\" strings, got {kind_of(apps_value)}")
    apps: list[tuple[str, str]] = []
    for item in raw_apps:
        source, _, app_id = item.strip().partition(":") if isinstance(item, str) else ("", "", "")
        if not source or not app_id:
            raise fail(f"app {item!r} must be written \"source:app_id\"")
        apps.append((source, app_id))

    consumer_id = _text(get("id"), "id", fail, required=True)
    legal_name = _text(get("legal_name"), "legal_name", fail, required=True)
    assert consumer_id is not None and legal_name is not None
    return ConsumerConfig(
        id=consumer_id, legal_name=legal_name,
        notice_contact=_text(get("notice_contact"), "notice_contact", fail),
        tier=_text(get("tier"), "tier", fail),
        agreement_version=_text(get("agreement_version"), "agreement_version", fail),
        declared_use_case=_text(get("declared_use_case"), "declared_use_case", fail),
        government_end_users=_text(get("government_end_users"), "government_end_users", fail), apps=apps,
    )


def _text(value: Any, key: str, fail: Any, *, required: bool = False) -> str | None:
    if value.__class__ is str:
        value = value.strip()
        if value:
            return value
        value = None
    if value is None:
        if required:
            raise fail(f"missing required field {key!r}")
        return None
    if key == "government_end_users" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "; ".join(value) or None
    raise fail(f"{key!r} must be a string, got {kind_of(value)}")


def check_consumer(config: Config, consumer: ConsumerConfig, fail: Any,
                   known_tiers: Iterable[str] = ()) -> None:
    """Raise (via ``fail``) if the consumer names a tier or a source the
    configuration does not know. A tier may also come from a warden-feed source,
    or be one of ``known_tiers`` (already in the database)."""
    if consumer.tier is not None and consumer.tier not in config.tiers and consumer.tier not in known_tiers:
        if not any(s.adapter == "warden-feed" for s in config.sources.values()):
            close = difflib.get_close_matches(consumer.tier, list(config.tiers), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise fail(f"consumer {consumer.id!r} has unknown tier {consumer.tier!r} "
                       f"(defined: {', '.join(sorted(config.tiers)) or 'none'}){hint}")
    for source, app_id in consumer.apps:
        if source not in config.sources:
            raise fail(f"consumer {consumer.id!r}: app \"{source}:{app_id}\" names unknown source "
                       f"{source!r} (configured: {', '.join(sorted(config.sources)) or 'none'})")


def iter_roster(config: Config) -> Iterator[ConsumerConfig]:
    """The consumers of the roster file, one at a time (CSV is streamed; a JSON
    roster is one document and is read whole). Rows are checked as they are read;
    errors name the file and the line (CSV) or the index (JSON)."""
    for _, consumer in _located_roster(config):
        yield consumer


def _located_roster(config: Config) -> Iterator[tuple[str | int, ConsumerConfig]]:
    """Roster consumers with where they are: a CSV line number or a JSON index."""
    path = config.roster_file
    if path is None:
        return
    try:
        if path.suffix.lower() == ".json":
            yield from _iter_json_roster(path)
        else:
            yield from _iter_csv_roster(path)
    except OSError as exc:
        raise ConfigError(f"cannot read roster file {path}: {exc.strerror}") from None


def _iter_csv_roster(path: Path) -> Iterator[tuple[int, ConsumerConfig]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise ConfigError(f"{path}: the roster is empty (expected a header row)") from None
        for name in header:
            if name not in CONSUMER_FIELDS:
                close = difflib.get_close_matches(name, CONSUMER_FIELDS, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known columns: {', '.join(CONSUMER_FIELDS)}"
                raise ConfigError(f"{path}: line 1: unknown column {name!r}{hint}")
        for required in ("id", "legal_name"):
            if required not in header:
                raise ConfigError(f"{path}: line 1: missing required column {required!r}")
        width = len(header)
        try:
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != width:
                    raise ConfigError(f"{path}: line {reader.line_num}: {len(row)} cells, the header has {width}")
                line = reader.line_num
                yield line, _consumer_from(
                    dict(zip(header, row)), lambda message: ConfigError(f"{path}: line {line}: {message}"))
        except csv.Error as exc:
            raise ConfigError(f"{path}: line {reader.line_num}: not valid CSV: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: line {reader.line_num}: not UTF-8 text") from None


def _iter_json_roster(path: Path) -> Iterator[tuple[str, ConsumerConfig]]:
    try:
        with path.open("rb") as handle:
            data = json.load(handle)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ConfigError(f"{path}: a JSON roster must be a list of consumer objects")
    for index, record in enumerate(data):
        where = f"{path}: [{index}]"
        if not isinstance(record, dict):
            raise ConfigError(f"{where}: must be an object, got {kind_of(record)}")
        for key in record:
            if key not in CONSUMER_FIELDS:
                close = difflib.get_close_matches(key, CONSUMER_FIELDS, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"{where}: unknown key {key!r}{hint}")
        yield f"[{index}]", _consumer_from(record, lambda message, where=where: ConfigError(f"{where}: {message}"))


# --- into the database ---------------------------------------------------------

_UPSERT_SOURCE = """
INSERT INTO source (name, kind, url, token_env, options) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, url = excluded.url,
    token_env = excluded.token_env, options = excluded.options
"""
_UPSERT_TIER = """
INSERT INTO tier (id, name, agreement_version, allowed_endpoints, origin) VALUES (?, ?, ?, ?, 'config')
ON CONFLICT (id) DO UPDATE SET name = excluded.name, agreement_version = excluded.agreement_version,
    allowed_endpoints = excluded.allowed_endpoints, origin = 'config'
"""
# A tier a consumer names that only a warden-feed source defines: a placeholder
# the feed's tier page fills in (origin 'feed', so the feed may overwrite it).
_PLACEHOLDER_TIER = "INSERT INTO tier (id, name, origin) VALUES (?, ?, 'feed') ON CONFLICT (id) DO NOTHING"


def placeholder_tiers(conn: sqlite3.Connection, tier_ids: Iterable[str]) -> None:
    """Make sure each named tier exists, as a placeholder (origin ``'feed'``, named
    by its id) that the feed's tiers page fills in later, so consumers naming it
    keep their foreign key. Call inside the caller's transaction."""
    conn.executemany(_PLACEHOLDER_TIER, [(tier_id, tier_id) for tier_id in tier_ids])


# Config wins over feed data for the same consumer id (origin becomes 'config');
# a row that would not change is not rewritten (a re-apply of a huge roster is cheap).
_COPY_CONSUMERS = """
INSERT INTO consumer (id, legal_name, notice_contact, tier_id, agreement_version,
                      declared_use_case, government_end_users, origin)
SELECT id, legal_name, notice_contact, tier_id, agreement_version, declared_use_case,
       government_end_users, 'config'
FROM temp.roster_consumer WHERE seq BETWEEN ? AND ?
ON CONFLICT (id) DO UPDATE SET legal_name = excluded.legal_name, notice_contact = excluded.notice_contact,
    tier_id = excluded.tier_id, agreement_version = excluded.agreement_version,
    declared_use_case = excluded.declared_use_case, government_end_users = excluded.government_end_users,
    origin = 'config'
WHERE (consumer.legal_name, consumer.notice_contact, consumer.tier_id, consumer.agreement_version,
       consumer.declared_use_case, consumer.government_end_users, consumer.origin)
   IS NOT (excluded.legal_name, excluded.notice_contact, excluded.tier_id, excluded.agreement_version,
           excluded.declared_use_case, excluded.government_end_users, 'config')
"""
# The roster decides who owns an app; the app's name and declared use case (from
# the source) are kept.
_COPY_APPS = """
INSERT INTO app (source, app_id, consumer_id)
SELECT a.source, a.app_id, c.id FROM temp.roster_app AS a JOIN temp.roster_consumer AS c ON c.seq = a.seq
WHERE a.seq BETWEEN ? AND ?
ON CONFLICT (source, app_id) DO UPDATE SET consumer_id = excluded.consumer_id
WHERE app.consumer_id IS NOT excluded.consumer_id
"""
_INSERT_AUTO_CONSUMER = """
INSERT INTO consumer (id, legal_name, origin) VALUES (?, ?, 'auto') ON CONFLICT (id) DO NOTHING
"""
_INSERT_AUTO_CONSUMER_IF_UNOWNED = """
INSERT INTO consumer (id, legal_name, origin)
SELECT ?, ?, 'auto' WHERE NOT EXISTS (SELECT 1 FROM app WHERE source = ? AND app_id = ?)
ON CONFLICT (id) DO NOTHING
"""
_INSERT_AUTO_APP = """
INSERT INTO app (source, app_id, consumer_id, name, declared_use_case) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (source, app_id) DO UPDATE SET
    name = COALESCE(excluded.name, app.name),
    declared_use_case = COALESCE(excluded.declared_use_case, app.declared_use_case)
"""
# Apps the sources reported usage for that no roster or feed has claimed.
_UNOWNED_APPS = """
SELECT source, app_id FROM (SELECT DISTINCT source, app_id FROM usage
                            UNION SELECT DISTINCT source, app_id FROM endpoint_usage) AS seen
WHERE NOT EXISTS (SELECT 1 FROM app WHERE app.source = seen.source AND app.app_id = seen.app_id)
"""
# An auto consumer whose apps the roster has since claimed, and that nobody has
# looked at (no finding, no note), is just noise in the queue.
_DROP_ORPHAN_AUTO = """
DELETE FROM consumer WHERE origin = 'auto'
AND NOT EXISTS (SELECT 1 FROM app WHERE app.consumer_id = consumer.id)
AND NOT EXISTS (SELECT 1 FROM finding WHERE finding.consumer_id = consumer.id)
AND NOT EXISTS (SELECT 1 FROM note WHERE note.consumer_id = consumer.id)
"""
# An auto consumer is named after its app once the source tells us the app's name.
_NAME_AUTO = """
UPDATE consumer SET legal_name = (
    SELECT app.name FROM app WHERE app.consumer_id = consumer.id AND app.name IS NOT NULL LIMIT 1)
WHERE origin = 'auto' AND EXISTS (
    SELECT 1 FROM app WHERE app.consumer_id = consumer.id AND app.name IS NOT NULL
    AND app.name IS NOT consumer.legal_name)
"""


def apply_config(conn: sqlite3.Connection, config: Config, *, batch_rows: int = BATCH_ROWS) -> AppliedConfig:
    """Write the configuration into the database (idempotent).

    Upserts sources, tiers (with their limits and clauses, replaced), the roster's
    consumers (origin ``'config'``: config wins over feed data for the same id) and
    its app -> consumer mapping; then gives every app seen in usage that nobody
    owns its own consumer (origin ``'auto'``, id ``"<source>:<app_id>"``). Never
    touches findings or decisions.

    The roster is checked whole (unknown tiers and sources, duplicate ids) before
    anything is written, then written in transactions of ``batch_rows`` consumers.
    Raises ``ConfigError``.
    """
    result = AppliedConfig()
    db_tiers = {row[0] for row in conn.execute("SELECT id FROM tier")}

    with transaction(conn):
        for source in config.sources.values():
            conn.execute(_UPSERT_SOURCE, (source.name, source.adapter, source.url, source.token_env,
                                          json.dumps(source.options, sort_keys=True)))
            result.sources += 1
        for tier in config.tiers.values():
            endpoints = json.dumps(tier.allowed_endpoints) if tier.allowed_endpoints is not None else None
            conn.execute(_UPSERT_TIER, (tier.id, tier.name, tier.agreement_version, endpoints))
            conn.execute("DELETE FROM tier_limit WHERE tier_id = ?", (tier.id,))
            conn.executemany("INSERT INTO tier_limit (tier_id, metric, period, max_value) VALUES (?, ?, ?, ?)",
                             [(tier.id, metric, period, maximum) for metric, period, maximum in tier.limits])
            conn.execute("DELETE FROM tier_clause WHERE tier_id = ?", (tier.id,))
            conn.executemany("INSERT INTO tier_clause (tier_id, category, clause) VALUES (?, ?, ?)",
                             sorted((tier.id, category, clause) for category, clause in tier.clauses.items()))
            result.tiers += 1

    try:
        placeholders = _stage_roster(conn, config, db_tiers, batch_rows)
        result.consumers, result.apps = _copy_roster(conn, placeholders, batch_rows)
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.roster_consumer")
        conn.execute("DROP TABLE IF EXISTS temp.roster_app")

    result.auto_consumers = _own_unowned_apps(conn, batch_rows)
    with transaction(conn):
        conn.execute(_NAME_AUTO)
        conn.execute(_DROP_ORPHAN_AUTO)
    return result


def _stage_roster(conn: sqlite3.Connection, config: Config, db_tiers: set[str], batch_rows: int) -> set[str]:
    """Read inline and file roster once into temporary tables, checking every
    entry (unknown tiers or sources, duplicate ids, an app claimed twice) before
    anything real is written. Returns the feed tiers that need a placeholder."""
    conn.execute("DROP TABLE IF EXISTS temp.roster_consumer")
    conn.execute("DROP TABLE IF EXISTS temp.roster_app")
    conn.execute("""CREATE TEMP TABLE roster_consumer (seq INTEGER PRIMARY KEY, id TEXT, legal_name TEXT,
        notice_contact TEXT, tier_id TEXT, agreement_version TEXT, declared_use_case TEXT,
        government_end_users TEXT)""")
    conn.execute("CREATE TEMP TABLE roster_app (seq INTEGER, source TEXT, app_id TEXT)")
    seen: set[str] = set()
    placeholders: set[str] = set()
    consumers: list[tuple[Any, ...]] = []
    apps: list[tuple[int, str, str]] = []

    def flush() -> None:
        with transaction(conn, immediate=False):  # temporary tables only: no lock on the database
            conn.executemany("INSERT INTO temp.roster_consumer VALUES (?, ?, ?, ?, ?, ?, ?, ?)", consumers)
            conn.executemany("INSERT INTO temp.roster_app VALUES (?, ?, ?)", apps)
        consumers.clear()
        apps.clear()

    inline: Iterator[tuple[str | int, ConsumerConfig]] = (
        (f"[[consumers]] #{index + 1}", consumer) for index, consumer in enumerate(config.consumers))
    sources = config.sources
    tiers = config.tiers
    for seq, (place, consumer) in enumerate(itertools.chain(inline, _located_roster(config))):
        if consumer.id in seen:
            raise _roster_error(config, place, f"duplicate consumer id {consumer.id!r}")
        seen.add(consumer.id)
        tier = consumer.tier
        if (tier is not None and tier not in tiers and tier not in db_tiers) or any(
                source not in sources for source, _ in consumer.apps):
            check_consumer(config, consumer, lambda message: _roster_error(config, place, message), db_tiers)
            if tier is not None and tier not in tiers and tier not in db_tiers:
                placeholders.add(tier)  # served by a warden-feed source
                db_tiers.add(tier)
        apps.extend((seq, source, app_id) for source, app_id in consumer.apps)
        consumers.append((seq, consumer.id, consumer.legal_name, consumer.notice_contact, tier,
                          consumer.agreement_version, consumer.declared_use_case, consumer.government_end_users))
        if len(consumers) >= batch_rows:
            flush()
    flush()

    conn.execute("CREATE INDEX temp.roster_app_by_seq ON roster_app (seq)")
    twice = conn.execute("""
        SELECT a.source, a.app_id, group_concat(c.id, ', ') FROM temp.roster_app AS a
        JOIN temp.roster_consumer AS c ON c.seq = a.seq
        GROUP BY a.source, a.app_id HAVING COUNT(*) > 1 LIMIT 1""").fetchone()
    if twice is not None:
        raise ConfigError(f"{config.path or 'configuration'}: app \"{twice[0]}:{twice[1]}\" is claimed by more "
                          f"than one consumer ({twice[2]})")
    return placeholders


def _roster_error(config: Config, place: str | int, message: str) -> ConfigError:
    if isinstance(place, int):
        return ConfigError(f"{config.roster_file}: line {place}: {message}")
    if place.startswith("[[consumers]]"):
        return ConfigError(f"{config.path or 'configuration'}: {place}: {message}")
    return ConfigError(f"{config.roster_file}: {place}: {message}")


def _copy_roster(conn: sqlite3.Connection, placeholders: set[str], batch_rows: int) -> tuple[int, int]:
    """Upsert the staged roster into consumer and app, ``batch_rows`` consumers per
    transaction; rows that would not change are not rewritten."""
    with transaction(conn):
        placeholder_tiers(conn, sorted(placeholders))
    last = conn.execute("SELECT MAX(seq) FROM temp.roster_consumer").fetchone()[0]
    if last is None:
        return 0, 0
    for low in range(0, last + 1, batch_rows):
        with transaction(conn):
            conn.execute(_COPY_CONSUMERS, (low, low + batch_rows - 1))
            conn.execute(_COPY_APPS, (low, low + batch_rows - 1))
    consumers = conn.execute("SELECT COUNT(*) FROM temp.roster_consumer").fetchone()[0]
    apps = conn.execute("SELECT COUNT(*) FROM temp.roster_app").fetchone()[0]
    return consumers, apps


def own_apps(conn: sqlite3.Connection, source: str,
             apps: Iterable[tuple[str, str | None, str | None]]) -> int:
    """Record apps a source reported without an owner, as ``(app_id, name,
    declared_use_case)``: an app nobody owns yet becomes its own consumer (origin
    ``'auto'``); an app already owned keeps its owner and gets the name and use
    case. Call inside the writer's transaction; returns the apps written."""
    consumers: list[tuple[str, str, str, str]] = []
    rows: list[tuple[str, str, str, str | None, str | None]] = []
    for app_id, name, use_case in apps:
        owner = auto_consumer_id(source, app_id)
        consumers.append((owner, name or app_id, source, app_id))
        rows.append((source, app_id, owner, name, use_case))
    # Consumers first (foreign key), only for apps nobody owns yet.
    conn.executemany(_INSERT_AUTO_CONSUMER_IF_UNOWNED, consumers)
    conn.executemany(_INSERT_AUTO_APP, rows)
    return len(rows)


def _own_unowned_apps(conn: sqlite3.Connection, batch_rows: int) -> int:
    """Give every app seen in usage without an app row its own consumer."""
    unowned = [(row[0], row[1]) for row in conn.execute(_UNOWNED_APPS)]
    for start in range(0, len(unowned), batch_rows):
        batch = unowned[start:start + batch_rows]
        with transaction(conn):
            conn.executemany(_INSERT_AUTO_CONSUMER,
                             [(auto_consumer_id(source, app_id), app_id) for source, app_id in batch])
            conn.executemany(
                "INSERT INTO app (source, app_id, consumer_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [(source, app_id, auto_consumer_id(source, app_id)) for source, app_id in batch])
    return len(unowned)
