"""Configuration: sources, tiers, roster, keymap, note settings, read from TOML.

The dataclasses below are the contract the rest of warden relies on.
:func:`load_config` reads and checks a TOML file; :func:`token_for` reads a
source's token from the environment when a sync needs it. The roster file is
read by :mod:`store.roster`; :func:`store.consumers.apply_config` writes what the
configuration says into the database.

Format (every key is optional unless marked *required*; any other key is an error
that names the key, its table, and the closest known key)::

    [warden]
    database = "~/warden/warden.db"   # --db / WARDEN_DB override it; relative to the config file
    reviewer = "alice"                # default reviewer name (--reviewer overrides)

    [notes]
    sender = "Compliance <compliance@example.com>"   # From: of .eml drafts
    organisation = "Example Platform Inc."
    deadline_days = 21                # 1..365: a letter's response is due this many days after its export
    business_days = false             # true: deadlines count Monday to Friday, less the holidays
    holidays = [2023-12-25]           # TOML dates that are not business days
    final_notice_days = 7             # 1..365: the last deadline a final notice gives (same kind)
    template_dir = "templates"        # template overrides; relative to the config file

    [evidence]
    max_file_bytes = 104857600        # >= 1: a reply or attachment larger than this is refused

    [sources.feed]                    # the source's name: letters, digits, '-', '_', '.'
    adapter = "warden-feed"           # required: x-usage | aws-usage-plan | openai-usage | warden-feed | http-json
    url = "https://usage.example.com/feed/v1"   # required; http:// only to loopback
                                      # (127.0.0.0/8, ::1, localhost); no user:password@; its own
                                      # query is kept (values never shown), no credential-like names
    token_env = "FEED_TOKEN"          # NAME of the environment variable holding the token (a value
                                      # that is no name, or looks like a token, is refused unshown)
    start = 2022-01-01                # TOML date: first day fetched by the first sync
    end = 2022-12-31                  # TOML date: last day fetched (default: today); once this closed
                                      # window is fetched completely, later syncs skip it (--refetch)
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
    #   x-usage:        days = 1..90 (days of usage per request; default: the sync window);
    #                   no start or end (X gives the last days counted back from today)
    #   aws-usage-plan: usage_plan_id = "abc123" (required), region = "eu-west-1"
    #                   (default: read from the URL host), limit = 1..1000 (keys per page)
    #   openai-usage:   bucket_limit = 1..31 (daily buckets per page), project_ids = ["proj_..."]
    #   warden-feed:    shards = 1..256 (pages fetched concurrently), limit = rows per page
    #   aws-usage-plan on a host that is not amazonaws.com needs token_env (SigV4 is for AWS)
    #   http-json:      auth, user_env, path, params, window_days | last_days, rows, each, app,
    #                   day | days_from, metrics | metric + value, paginate (none | cursor |
    #                   next_url | link | offset | page), next, more, cursor_param, offset_param,
    #                   page_param, page_size, first_page, total: README.md, "Any JSON usage
    #                   endpoint", and store/sync/adapters/http_json_spec.py

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

Tokens: only the *name* of a variable is configured; a value that is not a name,
or starts as well-known tokens do (``ghp_``, ``sk-``, ``AKIA``, ...), is refused
unshown. :func:`token_for` raises ``ConfigError`` when the variable is unset,
naming it only when it is written the usual way (capitals), never showing a value.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

from store.deadlines import DeadlineRule
from store.domain import CATEGORIES, LIMIT_PERIODS
from store.errors import ConfigError
from store.secrets import env_name_problem, kind_of, secret_from_env, secret_params
from store.sync.adapter import check_options
from store.roster import CONSUMER_FIELDS, ConsumerConfig, consumer_from
from store.sync.adapters import ADAPTERS, source_problem

@dataclass
class SourceConfig:
    """A ``[sources.<name>]`` table: a remote endpoint, its adapter, and where its token comes from (an env var name, never the token)."""

    name: str
    adapter: str
    url: str
    token_env: str | None = None
    start: date | None = None            # first day to fetch on the first sync
    end: date | None = None              # last day to fetch (a closed window: an audit of the past)
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
class NotesConfig:
    """The ``[notes]`` table: who audit-request notes come from and how long the consumer has to answer."""

    sender: str = "Compliance <compliance@example.invalid>"   # From: of .eml drafts
    organisation: str = "the Platform"
    deadline_days: int = 21
    business_days: bool = False          # deadlines in business days, not calendar days (store.deadlines)
    holidays: tuple[date, ...] = ()      # not business days
    final_notice_days: int = 7           # the last deadline a final notice gives
    template_dir: Path | None = None     # overrides of the built-in templates

    @property
    def deadline(self) -> DeadlineRule:
        """How a letter's deadline is counted (``deadline_days``, in business days if ``business_days``)."""
        kind = "business" if self.business_days else "calendar"
        return DeadlineRule(self.deadline_days, kind, frozenset(self.holidays))


@dataclass
class EvidenceConfig:
    """The ``[evidence]`` table: what the evidence store beside the database accepts."""

    max_file_bytes: int = 100 * 1024 * 1024     # a reply or attachment larger than this is refused


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
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)

    def check_consumer(self, consumer: ConsumerConfig, fail: Callable[[str, str], Exception],
                       known_tiers: Iterable[str] = ()) -> None:
        """Raise ``fail(message, key)`` if the consumer names a tier or a source this
        configuration does not know (``key``: the field at fault). A tier may also
        come from a warden-feed source, or be one of ``known_tiers`` (already in the
        database)."""
        if consumer.tier is not None and consumer.tier not in self.tiers and consumer.tier not in known_tiers:
            if not any(s.adapter == "warden-feed" for s in self.sources.values()):
                close = difflib.get_close_matches(consumer.tier, list(self.tiers), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise fail(f"consumer {consumer.id!r} has unknown tier {consumer.tier!r} "
                           f"(defined: {', '.join(sorted(self.tiers)) or 'none'}){hint}", "tier")
        for source, app_id in consumer.apps:
            if source not in self.sources:
                raise fail(f"consumer {consumer.id!r}: app \"{source}:{app_id}\" names unknown source "
                           f"{source!r} (configured: {', '.join(sorted(self.sources)) or 'none'})", "apps")


# --- the format --------------------------------------------------------------

_TOP_KEYS = ("warden", "notes", "evidence", "sources", "tiers", "roster", "consumers", "keymap")
_WARDEN_KEYS = ("database", "reviewer")
_NOTES_KEYS = ("sender", "organisation", "deadline_days", "business_days", "holidays", "final_notice_days",
               "template_dir")
_EVIDENCE_KEYS = ("max_file_bytes",)
_SOURCE_KEYS = (
    "adapter", "url", "token_env", "start", "end", "lookback_days", "concurrency", "timeout",
    "max_body_bytes", "max_attempts", "max_retry_seconds", "insecure_skip_tls_verify",
)
_TIER_KEYS = ("name", "agreement_version", "allowed_endpoints", "limits", "clauses")
_LIMIT_KEY = re.compile(rf"([a-z][a-z0-9_]*?)_per_({'|'.join(LIMIT_PERIODS)})")
_ROSTER_KEYS = ("file",)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and check the TOML configuration at ``path``.

    Raises ``ConfigError`` naming the file, the table and the key for anything
    that is not as documented in this module's docstring. The roster file is only
    located here (so opening warden stays fast with a huge roster); its rows are
    checked by :func:`store.consumers.apply_config` and :func:`store.roster.iter_roster`.
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
    return secret_from_env(source.name, "token_env", source.token_env, environ)


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
        config.evidence = self.evidence(self.table(data, "evidence", "top level"))

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
            consumer = consumer_from(table, lambda message, key=None, where=where: self.fail(where, message))
            if consumer.id in seen:
                raise self.fail(where, f"duplicate consumer id {consumer.id!r}")
            seen.add(consumer.id)
            config.check_consumer(consumer, lambda message, key=None, where=where: self.fail(where, message))
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
        notes.business_days = bool(self.boolean(table, "business_days", where))
        holidays = table.get("holidays")
        if holidays is not None:
            if not isinstance(holidays, list):
                raise self.fail(where, f"'holidays' must be a list of dates, got {kind_of(holidays)}")
            notes.holidays = tuple(sorted({self.day({"holidays": d}, "holidays", where) for d in holidays}))
        final = self.integer(table, "final_notice_days", where, low=1, high=365)
        if final is not None:
            notes.final_notice_days = final
        notes.template_dir = self.path_in(self.string(table, "template_dir", where))
        return notes

    def evidence(self, table: dict[str, Any]) -> EvidenceConfig:
        where = "[evidence]"
        self.keys(table, _EVIDENCE_KEYS, where)
        evidence = EvidenceConfig()
        limit = self.integer(table, "max_file_bytes", where, low=1)
        if limit is not None:
            evidence.max_file_bytes = limit
        return evidence

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
        if token_env is not None:
            # Never echo the value: someone may have pasted the token itself here.
            problem = env_name_problem("token_env", token_env)
            if problem is not None:
                raise self.fail(where, problem)
        source.token_env = token_env
        source.start = self.day(table, "start", where)
        source.end = self.day(table, "end", where)
        if source.start is not None and source.end is not None and source.end < source.start:
            raise self.fail(where, f"'end' ({source.end}) is before 'start' ({source.start})")
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
        problem = source_problem(source)
        if problem is not None:
            raise self.fail(where, problem)
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

