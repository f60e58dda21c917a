"""The configuration ``warden demo`` syncs with: the demo endpoint's two sources,
its tiers, and a small roster that maps the X client apps to consumers."""

from __future__ import annotations

import json
from pathlib import Path

from store.config import Config, NotesConfig, SourceConfig, TierConfig
from store.demo import DEMO_TOKEN_ENV
from store.demo.data import CLAUSES, DEMO_START, TIERS, X_APPS, X_CONSUMERS
from store.demo.server import DemoEndpoint
from store.roster import ConsumerConfig

FEED_SOURCE = "demo-feed"
X_SOURCE = "demo-x"
FEED_SHARDS = 4
X_DAYS = 90


def demo_config(endpoint: DemoEndpoint, db_path: str | Path | None = None) -> Config:
    """A :class:`~store.config.Config` for a running ``endpoint``.

    Sources ``demo-feed`` (``warden-feed``, 4 shards, from 2021-10-01) and
    ``demo-x`` (``x-usage``, 90 days), both reading their token from
    ``WARDEN_DEMO_TOKEN``; the tiers the feed serves (mirrored, so the X
    consumers' tiers exist even before the feed is synced); a roster giving the X
    client apps their consumers (one app is left unclaimed and becomes an auto
    consumer); note settings with an ``example.invalid`` sender.
    """
    sources = {
        FEED_SOURCE: SourceConfig(name=FEED_SOURCE, adapter="warden-feed", url=endpoint.feed_url,
                                  token_env=DEMO_TOKEN_ENV, start=DEMO_START,
                                  options={"shards": FEED_SHARDS}),
        X_SOURCE: SourceConfig(name=X_SOURCE, adapter="x-usage", url=endpoint.x_url,
                               token_env=DEMO_TOKEN_ENV, options={"days": X_DAYS}),
    }
    tiers = {
        tier.id: TierConfig(id=tier.id, name=tier.name, agreement_version=tier.agreement_version,
                            allowed_endpoints=list(tier.allowed_endpoints) if tier.allowed_endpoints else None,
                            limits=[(metric, period, maximum) for (metric, period), maximum in tier.limits.items()],
                            clauses=dict(CLAUSES))
        for tier in TIERS.values()
    }
    consumers = [
        ConsumerConfig(id=consumer_id, apps=[(X_SOURCE, app.client_app_id) for app in X_APPS
                                             if app.consumer == consumer_id], **fields)
        for consumer_id, fields in X_CONSUMERS.items()
    ]
    return Config(
        path=None,
        database=Path(db_path) if db_path is not None else None,
        sources=sources,
        tiers=tiers,
        consumers=consumers,
        notes=NotesConfig(sender="Compliance <compliance@example.invalid>",
                          organisation="Demo Platform Inc.", deadline_days=21),
    )


_SETTINGS_HEADER = "# Written by warden demo: the demo's letter settings, for the commands run on its database afterwards.\n"


def write_demo_settings(config: Config, db_path: Path) -> Path | None:
    """Write the demo's ``[notes]`` settings (sender, organisation, deadline) beside
    its database as ``<name>-demo.toml``, so that a letter drafted later with
    ``--config`` comes from Demo Platform Inc. as in the demo's TUI. A file of that
    name that warden demo did not write is left alone (None)."""
    target = db_path.with_name(f"{db_path.stem}-demo.toml")
    if target.exists() and not target.read_text(encoding="utf-8", errors="replace").startswith(_SETTINGS_HEADER):
        return None
    notes = config.notes
    # A JSON string is a TOML basic string (the same escapes).
    body = (f"{_SETTINGS_HEADER}[notes]\nsender = {json.dumps(notes.sender)}\n"
            f"organisation = {json.dumps(notes.organisation)}\ndeadline_days = {notes.deadline_days}\n")
    target.write_text(body, encoding="utf-8")
    return target
