"""Configuration: sources, tiers, roster, keymap, note settings, read from TOML.

The dataclasses below are the contract the rest of warden relies on; the TOML
format is documented in README.md ("Configuration").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ADAPTERS = ("x-usage", "aws-usage-plan", "openai-usage", "warden-feed")


@dataclass
class SourceConfig:
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
    id: str
    name: str
    agreement_version: str | None = None
    allowed_endpoints: list[str] | None = None
    limits: list[tuple[str, str, int]] = field(default_factory=list)  # (metric, period, max)
    clauses: dict[str, str] = field(default_factory=dict)              # category -> clause reference


@dataclass
class ConsumerConfig:
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
    sender: str = "Compliance <compliance@example.invalid>"   # From: of .eml drafts
    organisation: str = "the Platform"
    deadline_days: int = 21
    template_dir: Path | None = None     # overrides of the built-in templates


@dataclass
class Config:
    path: Path | None = None
    database: Path | None = None
    reviewer: str | None = None
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    tiers: dict[str, TierConfig] = field(default_factory=dict)
    consumers: list[ConsumerConfig] = field(default_factory=list)
    roster_file: Path | None = None      # CSV or JSON roster for large platforms
    keymap: dict[str, str] = field(default_factory=dict)    # binding id -> keys
    notes: NotesConfig = field(default_factory=NotesConfig)
