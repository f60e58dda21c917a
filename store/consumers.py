"""Writing who the consumers are: tiers, consumers and apps, from the
configuration (:func:`apply_config`) and from a sync's pages (the writer in
:mod:`store.sync.writer`), through the same upserts.

Who wins: the configuration (origin ``'config'``) over a feed (``'feed'``) for
the same tier or consumer id; the roster decides who owns an app; an app nobody
owns becomes its own consumer (origin ``'auto'``, id ``"<source>:<app_id>"``)
until the roster claims it. Rows that would not change are not rewritten, so a
re-apply of a huge roster, or a re-sync of the same consumers, is cheap. Never
touches findings or decisions.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Protocol, Sequence

from store.clock import Clock, iso, system_clock
from store.config import Config
from store.db import transaction
from store.queue_summary import refresh_summary
from store.errors import ConfigError
from store.roster import ConsumerConfig, Place, located_roster
from store.secrets import shown_source_url

# Rows written per transaction: short enough that a reviewer's write never waits long.
BATCH_ROWS = 10_000


@dataclass
class AppliedConfig:
    """What :func:`apply_config` wrote."""

    sources: int = 0
    tiers: int = 0
    consumers: int = 0          # roster consumers (inline + file) upserted
    apps: int = 0               # roster app -> consumer mappings upserted
    auto_consumers: int = 0     # consumers created for apps seen in usage without a roster entry
    retired: int = 0            # auto consumers retired: the roster gave their apps to their owners


def auto_consumer_id(source: str, app_id: str) -> str:
    """The id of the consumer an app becomes when no roster claims it."""
    return f"{source}:{app_id}"


class TierLike(Protocol):
    """A tier as the configuration (``TierConfig``) or a feed (``TierRecord``) gives it."""

    id: str
    name: str
    agreement_version: str | None
    allowed_endpoints: list[str] | None
    limits: list[tuple[str, str, int]]     # (metric, period, max)
    clauses: dict[str, str]                # category -> clause reference


# --- tiers -----------------------------------------------------------------------

# A tier from the configuration wins: a feed's tier of the same id changes nothing.
_UPSERT_TIER = """
INSERT INTO tier (id, name, agreement_version, allowed_endpoints, origin) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, agreement_version = excluded.agreement_version,
    allowed_endpoints = excluded.allowed_endpoints, origin = excluded.origin
WHERE (excluded.origin = 'config' OR tier.origin != 'config')
  AND (tier.name, tier.agreement_version, tier.allowed_endpoints, tier.origin)
  IS NOT (excluded.name, excluded.agreement_version, excluded.allowed_endpoints, excluded.origin)
"""
# A tier a consumer names that only a warden-feed source defines: a placeholder
# the feed's tier page fills in (origin 'feed', so the feed may overwrite it).
_PLACEHOLDER_TIER = "INSERT INTO tier (id, name, origin) VALUES (?, ?, 'feed') ON CONFLICT (id) DO NOTHING"


def upsert_tiers(conn: sqlite3.Connection, tiers: Iterable[TierLike], *, origin: str) -> int:
    """Write each tier with its limits and clauses (both replaced), as coming from
    ``origin`` (``'config'`` or ``'feed'``); a feed's tier does not overwrite the
    configuration's. What would not change is not rewritten (a tier's new limits
    make the rules look at its consumers again). Call inside the caller's
    transaction; returns the tiers accepted (written or already as given)."""
    accepted = 0
    for tier in tiers:
        stored = conn.execute("SELECT origin FROM tier WHERE id = ?", (tier.id,)).fetchone()
        if stored is not None and stored[0] == "config" and origin != "config":
            continue  # the configuration's tier: its limits and clauses stay too
        endpoints = json.dumps(tier.allowed_endpoints) if tier.allowed_endpoints is not None else None
        conn.execute(_UPSERT_TIER, (tier.id, tier.name, tier.agreement_version, endpoints, origin))
        # One limit per metric and period; given twice, the last one holds.
        limits = sorted((metric, period, maximum) for (metric, period), maximum in
                        {(metric, period): maximum for metric, period, maximum in tier.limits}.items())
        if limits != sorted(tuple(row) for row in conn.execute(
                "SELECT metric, period, max_value FROM tier_limit WHERE tier_id = ?", (tier.id,))):
            conn.execute("DELETE FROM tier_limit WHERE tier_id = ?", (tier.id,))
            conn.executemany("INSERT OR REPLACE INTO tier_limit (tier_id, metric, period, max_value) "
                             "VALUES (?, ?, ?, ?)", [(tier.id, *limit) for limit in limits])
        clauses = sorted(tier.clauses.items())
        if clauses != sorted(tuple(row) for row in conn.execute(
                "SELECT category, clause FROM tier_clause WHERE tier_id = ?", (tier.id,))):
            conn.execute("DELETE FROM tier_clause WHERE tier_id = ?", (tier.id,))
            conn.executemany("INSERT INTO tier_clause (tier_id, category, clause) VALUES (?, ?, ?)",
                             [(tier.id, category, clause) for category, clause in clauses])
        accepted += 1
    return accepted


def placeholder_tiers(conn: sqlite3.Connection, tier_ids: Iterable[str]) -> None:
    """Make sure each named tier exists, as a placeholder (origin ``'feed'``, named
    by its id) that the feed's tiers page fills in later, so consumers naming it
    keep their foreign key. Call inside the caller's transaction."""
    conn.executemany(_PLACEHOLDER_TIER, [(tier_id, tier_id) for tier_id in tier_ids])


# --- consumers -------------------------------------------------------------------

_CONSUMER_COLUMNS = ("id, legal_name, notice_contact, tier_id, agreement_version, declared_use_case, "
                     "government_end_users, origin")
# The one conflict rule for a consumer, whichever way the rows come: the
# configuration wins over a feed for the same id; a row that would not change is
# not rewritten.
_CONSUMER_CONFLICT = """
ON CONFLICT (id) DO UPDATE SET legal_name = excluded.legal_name, notice_contact = excluded.notice_contact,
    tier_id = excluded.tier_id, agreement_version = excluded.agreement_version,
    declared_use_case = excluded.declared_use_case, government_end_users = excluded.government_end_users,
    origin = excluded.origin
WHERE (excluded.origin = 'config' OR consumer.origin != 'config')
  AND (consumer.legal_name, consumer.notice_contact, consumer.tier_id, consumer.agreement_version,
       consumer.declared_use_case, consumer.government_end_users, consumer.origin)
  IS NOT (excluded.legal_name, excluded.notice_contact, excluded.tier_id, excluded.agreement_version,
          excluded.declared_use_case, excluded.government_end_users, excluded.origin)
"""
_UPSERT_CONSUMER = f"INSERT INTO consumer ({_CONSUMER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) {_CONSUMER_CONFLICT}"
# The staged roster, a batch at a time (the SELECT's WHERE keeps SQLite's parser
# from reading ON CONFLICT as a join constraint).
_COPY_CONSUMERS = f"""
INSERT INTO consumer ({_CONSUMER_COLUMNS})
SELECT id, legal_name, notice_contact, tier_id, agreement_version, declared_use_case,
       government_end_users, 'config'
FROM temp.roster_consumer WHERE seq BETWEEN ? AND ? {_CONSUMER_CONFLICT}"""

_STORED_CONSUMERS = f"SELECT {_CONSUMER_COLUMNS} FROM consumer WHERE id IN (SELECT value FROM json_each(?))"


def upsert_consumers(conn: sqlite3.Connection, rows: Iterable[Sequence[Any]], *, origin: str) -> int:
    """Write consumers given as ``(id, legal_name, notice_contact, tier_id,
    agreement_version, declared_use_case, government_end_users)`` rows, as coming
    from ``origin`` (the configuration's roster wins over a feed). Call inside the
    caller's transaction; returns how many rows were worth writing.

    The stored rows are read first, in one query: a re-sync of a million
    consumers mostly finds them as they were, and comparing is cheaper than
    an upsert that decides, row by row, to change nothing."""
    given = [(*row, origin) for row in rows]
    changed = _differing(given, conn.execute(_STORED_CONSUMERS, (json.dumps([row[0] for row in given]),)),
                         lambda stored: stored[-1] == "config" and origin != "config")
    conn.executemany(_UPSERT_CONSUMER, changed)
    return len(changed)


def _differing(given: list[tuple[Any, ...]], stored_rows: Iterable[Sequence[Any]],
               keeps: Any = lambda stored: False) -> list[tuple[Any, ...]]:
    """The rows of ``given`` that differ from the stored row of the same key (the
    first field), unless ``keeps(stored)`` says the stored one stays; a key given
    twice is always written (the upsert's own rules decide)."""
    stored = {row[0]: tuple(row) for row in stored_rows}
    counts: dict[Any, int] = {}
    for row in given:
        counts[row[0]] = counts.get(row[0], 0) + 1
    out = []
    for row in given:
        old = stored.get(row[0])
        if counts[row[0]] > 1 or old is None or (old != row and not keeps(old)):
            out.append(row)
    return out


# --- apps ------------------------------------------------------------------------

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
WHERE (app.name, app.declared_use_case)
  IS NOT (COALESCE(excluded.name, app.name), COALESCE(excluded.declared_use_case, app.declared_use_case))
"""
# Apps the sources reported usage for that no roster or feed has claimed. A
# new app's first figures mark it for the rules (store.rules_pending), and the
# rules keep such marks until the app has an owner: the marks are the short list.
_UNOWNED_MARKED = """
SELECT DISTINCT p.subject, p.app_id FROM rules_pending AS p
WHERE p.kind = 'figures' AND NOT EXISTS (SELECT 1 FROM app WHERE app.source = p.subject AND app.app_id = p.app_id)
AND (EXISTS (SELECT 1 FROM usage AS u WHERE u.source = p.subject AND u.app_id = p.app_id)
     OR EXISTS (SELECT 1 FROM endpoint_usage AS e WHERE e.source = p.subject AND e.app_id = p.app_id))
"""
# Before the rules ever ran here (figures loaded without marks): every app seen.
_UNOWNED_APPS = """
SELECT source, app_id FROM (SELECT DISTINCT source, app_id FROM usage
                            UNION SELECT DISTINCT source, app_id FROM endpoint_usage) AS seen
WHERE NOT EXISTS (SELECT 1 FROM app WHERE app.source = seen.source AND app.app_id = seen.app_id)
"""
# An auto consumer whose apps the roster has since claimed, and that nobody has
# looked at (no finding, no note), is just noise in the queue; one with findings or
# a note is retired instead (kept, with its history, out of the queue).
_DROP_ORPHAN_AUTO = """
DELETE FROM consumer WHERE origin = 'auto'
AND NOT EXISTS (SELECT 1 FROM app WHERE app.consumer_id = consumer.id)
AND NOT EXISTS (SELECT 1 FROM finding WHERE finding.consumer_id = consumer.id)
AND NOT EXISTS (SELECT 1 FROM note WHERE note.consumer_id = consumer.id)
"""
_ORPHAN_AUTO = """
SELECT id FROM consumer WHERE origin = 'auto' AND retired_at IS NULL
AND NOT EXISTS (SELECT 1 FROM app WHERE app.consumer_id = consumer.id)
"""
# An auto consumer is named after its app once the source tells us the app's name.
_NAME_AUTO = """
UPDATE consumer SET legal_name = (
    SELECT app.name FROM app WHERE app.consumer_id = consumer.id AND app.name IS NOT NULL LIMIT 1)
WHERE origin = 'auto' AND EXISTS (
    SELECT 1 FROM app WHERE app.consumer_id = consumer.id AND app.name IS NOT NULL
    AND app.name IS NOT consumer.legal_name)
"""


# A feed names an app's owner: it is written as the feed says (name, use case and owner).
_UPSERT_OWNED_APP = """
INSERT INTO app (source, app_id, consumer_id, name, declared_use_case) VALUES (?, ?, ?, ?, ?)
ON CONFLICT(source, app_id) DO UPDATE SET consumer_id = excluded.consumer_id,
    name = excluded.name, declared_use_case = excluded.declared_use_case
WHERE (app.consumer_id, app.name, app.declared_use_case)
  IS NOT (excluded.consumer_id, excluded.name, excluded.declared_use_case)
"""


_STORED_APPS = """
SELECT app_id, consumer_id, name, declared_use_case FROM app
WHERE source = ? AND app_id IN (SELECT value FROM json_each(?))
"""


def upsert_owned_apps(conn: sqlite3.Connection, source: str,
                      apps: Iterable[tuple[str, str, str | None, str | None]]) -> int:
    """Write apps a source reported with their owner, as ``(app_id, consumer_id,
    name, declared_use_case)``, those that differ from what is stored (read
    first, as :func:`upsert_consumers` does). Call inside the caller's
    transaction; returns how many were worth writing."""
    given = [tuple(app) for app in apps]
    changed = _differing(given, conn.execute(_STORED_APPS, (source, json.dumps([app[0] for app in given]))))
    conn.executemany(_UPSERT_OWNED_APP, [(source, *app) for app in changed])
    return len(changed)


# --- the configuration -----------------------------------------------------------

_UPSERT_SOURCE = """
INSERT INTO source (name, kind, url, token_env, options) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, url = excluded.url,
    token_env = excluded.token_env, options = excluded.options
"""


@dataclass
class StagedRoster:
    """The roster read and checked whole into the connection's temporary tables
    (:func:`stage_roster`), waiting for :func:`apply_config` to write it."""

    placeholders: set[str]     # tiers only a warden-feed source serves: placeholders until it does


def stage_roster(conn: sqlite3.Connection, config: Config, *, batch_rows: int = BATCH_ROWS) -> StagedRoster:
    """Read and check the whole roster (inline and file) into temporary tables of
    ``conn``, writing nothing real: unknown tiers or sources, duplicate ids, an
    app claimed twice, a row that does not parse, each named by its file, line
    and column. A sync calls it before its first request and hands the result to
    :func:`apply_config` after. Raises ``ConfigError``."""
    try:
        return StagedRoster(_stage_roster(conn, config, {row[0] for row in conn.execute("SELECT id FROM tier")},
                                          batch_rows))
    except BaseException:
        _drop_staged(conn)
        raise


def _drop_staged(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TABLE IF EXISTS temp.roster_consumer")
    conn.execute("DROP TABLE IF EXISTS temp.roster_app")


def apply_config(conn: sqlite3.Connection, config: Config, *, batch_rows: int = BATCH_ROWS,
                 staged: StagedRoster | None = None, clock: Clock = system_clock) -> AppliedConfig:
    """Write the configuration into the database (idempotent).

    Upserts sources, tiers (with their limits and clauses, replaced), the roster's
    consumers (origin ``'config'``: config wins over feed data for the same id) and
    its app -> consumer mapping; then gives every app seen in usage that nobody
    owns its own consumer (origin ``'auto'``, id ``"<source>:<app_id>"``), and
    retires an auto consumer whose apps the roster took (:func:`retire_orphans`).
    Never touches findings or decisions.

    The roster is checked whole (unknown tiers and sources, duplicate ids) before
    anything is written (or was, by :func:`stage_roster` on the same connection:
    ``staged``), then written in transactions of ``batch_rows`` consumers.
    Raises ``ConfigError``.
    """
    result = AppliedConfig()
    if staged is None:
        staged = stage_roster(conn, config, batch_rows=batch_rows)

    with transaction(conn):
        for source in config.sources.values():
            conn.execute(_UPSERT_SOURCE, (source.name, source.adapter, shown_source_url(source.url), source.token_env,
                                          json.dumps(source.options, sort_keys=True)))
            result.sources += 1
        result.tiers = upsert_tiers(conn, config.tiers.values(), origin="config")

    try:
        result.consumers, result.apps = _copy_roster(conn, staged.placeholders, batch_rows)
    finally:
        _drop_staged(conn)

    result.auto_consumers = _own_unowned_apps(conn, batch_rows)
    with transaction(conn):
        conn.execute(_NAME_AUTO)
        conn.execute(_DROP_ORPHAN_AUTO)
        result.retired = retire_orphans(conn, clock=clock)
    return result


def retire_orphans(conn: sqlite3.Connection, *, clock: Clock) -> int:
    """Retire every auto consumer the roster has taken all apps from (see
    :mod:`store.queue_summary`: it leaves the queue; :func:`store.notes.draft_note`
    refuses it); the rules then find nothing of its own to detect. Call inside the
    caller's transaction; returns how many were retired."""
    orphans = [row[0] for row in conn.execute(_ORPHAN_AUTO)]
    conn.executemany("UPDATE consumer SET retired_at = ? WHERE id = ?", [(iso(clock()), cid) for cid in orphans])
    refresh_summary(conn, orphans)
    return len(orphans)


def _stage_roster(conn: sqlite3.Connection, config: Config, db_tiers: set[str], batch_rows: int) -> set[str]:
    """Read inline and file roster once into temporary tables, checking every
    entry (unknown tiers or sources, duplicate ids, an app claimed twice) before
    anything real is written. Returns the feed tiers that need a placeholder."""
    _drop_staged(conn)
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

    sources = config.sources
    tiers = config.tiers
    for seq, (place, consumer) in enumerate(_whole_roster(config)):
        if consumer.id in seen:
            first = next(p for p, c in _whole_roster(config) if c.id == consumer.id)
            raise place.error(f"duplicate consumer id {consumer.id!r} (first {_on(first)})", "id",
                              config_path=config.path)
        seen.add(consumer.id)
        tier = consumer.tier
        if (tier is not None and tier not in tiers and tier not in db_tiers) or any(
                source not in sources for source, _ in consumer.apps):
            config.check_consumer(consumer, lambda message, key=None: place.error(message, key,
                                                                                  config_path=config.path),
                                  db_tiers)
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
    conn.execute("CREATE INDEX temp.roster_app_by_app ON roster_app (source, app_id)")
    twice = conn.execute("""
        SELECT a.source, a.app_id, group_concat(c.id, ', ') FROM temp.roster_app AS a
        JOIN temp.roster_consumer AS c ON c.seq = a.seq
        GROUP BY a.source, a.app_id HAVING COUNT(*) > 1 LIMIT 1""").fetchone()
    if twice is not None:
        # Rare: read the roster again to name where each claim is.
        app = (twice[0], twice[1])
        claims = [(place, consumer.id) for place, consumer in _whole_roster(config) if app in consumer.apps]
        earlier = ", ".join(f"{consumer_id!r} {_on(place)}" for place, consumer_id in claims[:-1])
        place, last = claims[-1]
        raise place.error(f"app \"{app[0]}:{app[1]}\" is claimed by more than one consumer ({earlier}, {last!r})",
                          "apps", config_path=config.path)
    return placeholders


def _whole_roster(config: Config) -> Iterator[tuple[Place, ConsumerConfig]]:
    """The inline consumers, then the roster file's, with where each is."""
    for index, consumer in enumerate(config.consumers):
        yield Place(f"[[consumers]] #{index + 1}"), consumer
    yield from located_roster(config.roster_file)


def _on(place: Place) -> str:
    """``on line 12`` / ``at [3]``: where an earlier entry is, in a message."""
    return f"on {place.where}" if place.where.startswith("line") else f"at {place.where}"


def _copy_roster(conn: sqlite3.Connection, placeholders: set[str], batch_rows: int) -> tuple[int, int]:
    """Upsert the staged roster into consumer and app, ``batch_rows`` consumers per
    transaction; rows that would not change are not rewritten. Then
    :func:`_note_claims`."""
    with transaction(conn):
        placeholder_tiers(conn, sorted(placeholders))
    last = conn.execute("SELECT MAX(seq) FROM temp.roster_consumer").fetchone()[0]
    for low in range(0, (last if last is not None else -1) + 1, batch_rows):
        with transaction(conn):
            conn.execute(_COPY_CONSUMERS, (low, low + batch_rows - 1))
            conn.execute(_COPY_APPS, (low, low + batch_rows - 1))
            conn.execute(_CLAIM, (low, low + batch_rows - 1))
    _note_claims(conn, batch_rows)
    consumers = conn.execute("SELECT COUNT(*) FROM temp.roster_consumer").fetchone()[0]
    apps = conn.execute("SELECT COUNT(*) FROM temp.roster_app").fetchone()[0]
    return consumers, apps


# The roster's claims, kept so that a claim dropped is noticed.
_CLAIM = """
INSERT INTO roster_claim (source, app_id) SELECT source, app_id FROM temp.roster_app WHERE seq BETWEEN ? AND ?
ON CONFLICT DO NOTHING
"""
_DROPPED = """
SELECT source, app_id FROM roster_claim AS r
WHERE NOT EXISTS (SELECT 1 FROM temp.roster_app AS a WHERE a.source = r.source AND a.app_id = r.app_id)
"""
# A sync writes a page of records the source's last complete run stored the same
# (store.sync.writer) only if that run came after this mark.
ROSTER_DROPPED_FACT = "roster_dropped_after_run"
_MARK_DROPPED = f"""
INSERT INTO source_fact (source, key, value, run_id)
VALUES (:source, '{ROSTER_DROPPED_FACT}', (SELECT coalesce(max(id), 0) FROM sync_run WHERE source = :source), 0)
ON CONFLICT (source, key) DO UPDATE SET value = excluded.value
"""


def _note_claims(conn: sqlite3.Connection, batch_rows: int) -> None:
    """Forget the claims the roster dropped. Their apps go back to the owner their
    source reports, which only a page of the source says: the next sync of the
    source writes its pages of apps again, even those that did not change."""
    dropped = conn.execute(_DROPPED).fetchall()
    for start in range(0, len(dropped), batch_rows):
        batch = dropped[start:start + batch_rows]
        with transaction(conn):
            conn.executemany("DELETE FROM roster_claim WHERE source = ? AND app_id = ?", [tuple(d) for d in batch])
            conn.executemany(_MARK_DROPPED, [{"source": source} for source in sorted({d[0] for d in batch})])


def own_apps(conn: sqlite3.Connection, source: str,
             apps: Iterable[tuple[str, str | None, str | None]]) -> int:
    """Record apps a source reported without an owner, as ``(app_id, name,
    declared_use_case)``: an app nobody owns yet becomes its own consumer (origin
    ``'auto'``); an app already owned keeps its owner and gets the name and use
    case. Call inside the writer's transaction; returns the apps written."""
    given = list(apps)
    stored = {row[0]: row for row in conn.execute(_STORED_APPS, (source, json.dumps([a[0] for a in given])))}
    consumers: list[tuple[str, str, str, str]] = []
    rows: list[tuple[str, str, str, str | None, str | None]] = []
    for app_id, name, use_case in given:
        known = stored.get(app_id)
        if known is not None and (name is None or name == known[2]) and (use_case is None or use_case == known[3]):
            continue   # owned already, and nothing new about it
        owner = auto_consumer_id(source, app_id)
        consumers.append((owner, name or app_id, source, app_id))
        rows.append((source, app_id, owner, name, use_case))
    # Consumers first (foreign key), only for apps nobody owns yet.
    conn.executemany(_INSERT_AUTO_CONSUMER_IF_UNOWNED, consumers)
    conn.executemany(_INSERT_AUTO_APP, rows)
    return len(rows)


def _own_unowned_apps(conn: sqlite3.Connection, batch_rows: int) -> int:
    """Give every app seen in usage without an app row its own consumer."""
    from store.rules_pending import needs_full_pass   # (rules_pending imports store.db only)

    unowned = [(row[0], row[1]) for row in conn.execute(
        _UNOWNED_APPS if needs_full_pass(conn) else _UNOWNED_MARKED)]
    for start in range(0, len(unowned), batch_rows):
        batch = unowned[start:start + batch_rows]
        with transaction(conn):
            conn.executemany(_INSERT_AUTO_CONSUMER,
                             [(auto_consumer_id(source, app_id), app_id) for source, app_id in batch])
            conn.executemany(
                "INSERT INTO app (source, app_id, consumer_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [(source, app_id, auto_consumer_id(source, app_id)) for source, app_id in batch])
    return len(unowned)
