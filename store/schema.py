"""The database schema, as an ordered list of migrations.

``PRAGMA user_version`` holds how many migrations a database has had. Opening an
older database applies the missing ones in place, each in its own transaction;
nothing is ever dropped. Add a migration by appending to ``MIGRATIONS``: SQL
text, or a function of the connection (run inside the migration's transaction);
never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from typing import Callable, Union

from store.casework.schema import MIGRATION_CASES

# Conventions: times are UTC ISO-8601 strings ("2026-11-27T20:14:29Z"), days are
# "YYYY-MM-DD" (UTC), every provider id is TEXT, every count is INTEGER (64-bit).

MIGRATION_1 = """
CREATE TABLE source (
    name        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,            -- adapter: x-usage, aws-usage-plan, openai-usage, warden-feed
    url         TEXT NOT NULL,            -- base URL, never with credentials
    token_env   TEXT,                     -- name of the environment variable, never the token
    options     TEXT NOT NULL DEFAULT '{}'-- JSON
);

CREATE TABLE tier (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    agreement_version  TEXT,
    allowed_endpoints  TEXT,              -- JSON array of endpoint patterns; NULL = not restricted
    origin             TEXT NOT NULL DEFAULT 'config'  -- config | feed
);

-- One limit per (tier, metric, period): e.g. calls per day, records per month.
CREATE TABLE tier_limit (
    tier_id     TEXT NOT NULL REFERENCES tier(id) ON DELETE CASCADE,
    metric      TEXT NOT NULL,            -- calls, records, input_tokens, ...
    period      TEXT NOT NULL CHECK (period IN ('day', 'month', 'year')),
    max_value   INTEGER NOT NULL,
    PRIMARY KEY (tier_id, metric, period)
);

-- Clause references quoted in notes, per violation category.
CREATE TABLE tier_clause (
    tier_id     TEXT NOT NULL REFERENCES tier(id) ON DELETE CASCADE,
    category    TEXT NOT NULL,
    clause      TEXT NOT NULL,
    PRIMARY KEY (tier_id, category)
);

CREATE TABLE consumer (
    id                    TEXT PRIMARY KEY,
    legal_name            TEXT NOT NULL,
    notice_contact        TEXT,
    tier_id               TEXT REFERENCES tier(id),
    agreement_version     TEXT,
    declared_use_case     TEXT,
    government_end_users  TEXT,           -- as declared; NULL = none declared
    origin                TEXT NOT NULL DEFAULT 'config',  -- config | feed | auto (an app without roster)
    -- Queue summary, kept current by store.rules and store.review so the queue
    -- can be read page by page in order without aggregating findings.
    worst_ratio           REAL NOT NULL DEFAULT 0,
    open_findings         INTEGER NOT NULL DEFAULT 0,
    review_state          TEXT NOT NULL DEFAULT 'clear'   -- clear | open | decided
);
CREATE INDEX consumer_by_severity ON consumer (worst_ratio DESC, id);
CREATE INDEX consumer_by_name ON consumer (legal_name, id);
-- Serves the queue's status order (open, decided, clear), `state:` filters and
-- "next unreviewed" without scanning the consumers that have nothing to decide.
CREATE INDEX consumer_by_state ON consumer (review_state, worst_ratio DESC, id);

CREATE TABLE app (
    source             TEXT NOT NULL,
    app_id             TEXT NOT NULL,
    consumer_id        TEXT NOT NULL REFERENCES consumer(id),
    name               TEXT,
    declared_use_case  TEXT,
    PRIMARY KEY (source, app_id)
) WITHOUT ROWID;
CREATE INDEX app_by_consumer ON app (consumer_id);

CREATE TABLE sync_run (
    id            INTEGER PRIMARY KEY,
    source        TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    status        TEXT NOT NULL CHECK (status IN ('running', 'ok', 'partial', 'failed', 'cancelled')),
    window_start  TEXT,                    -- first day fetched (UTC)
    window_end    TEXT,                    -- last day fetched (UTC)
    pages         INTEGER NOT NULL DEFAULT 0,
    rows_taken    INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    resumed_from  INTEGER REFERENCES sync_run(id)
);
CREATE INDEX sync_run_by_source ON sync_run (source, id);

CREATE TABLE sync_page (
    id           INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES sync_run(id),
    chain        TEXT NOT NULL,            -- which independent page sequence (shard, key, ...)
    url          TEXT NOT NULL,            -- without secrets
    fetched_at   TEXT NOT NULL,
    http_status  INTEGER,
    body_sha256  TEXT,
    body_bytes   INTEGER,
    rows_taken   INTEGER NOT NULL DEFAULT 0,
    error        TEXT
);
CREATE INDEX sync_page_by_run ON sync_page (run_id);

-- Where each page sequence of an unfinished run stands, committed with the page's
-- rows, so a killed sync resumes from its last committed page.
CREATE TABLE sync_cursor (
    run_id    INTEGER NOT NULL REFERENCES sync_run(id),
    chain     TEXT NOT NULL,
    next      TEXT,                        -- JSON request of the next page; NULL = chain done
    PRIMARY KEY (run_id, chain)
);

-- One figure: (source, app, UTC day, metric) -> integer, with the run and page
-- that last wrote it.
CREATE TABLE usage (
    source   TEXT NOT NULL,
    app_id   TEXT NOT NULL,
    day      TEXT NOT NULL,
    metric   TEXT NOT NULL,
    value    INTEGER NOT NULL,
    run_id   INTEGER NOT NULL,
    page_id  INTEGER NOT NULL,
    PRIMARY KEY (source, app_id, day, metric)
) WITHOUT ROWID;

-- Calls per endpoint, for sources that report endpoints.
CREATE TABLE endpoint_usage (
    source    TEXT NOT NULL,
    app_id    TEXT NOT NULL,
    day       TEXT NOT NULL,
    endpoint  TEXT NOT NULL,
    calls     INTEGER NOT NULL,
    run_id    INTEGER NOT NULL,
    page_id   INTEGER NOT NULL,
    PRIMARY KEY (source, app_id, day, endpoint)
) WITHOUT ROWID;

-- Figures revised or withdrawn upstream, so a letter never silently rests on a
-- number that changed.
CREATE TABLE usage_change (
    id         INTEGER PRIMARY KEY,
    source     TEXT NOT NULL,
    app_id     TEXT NOT NULL,
    day        TEXT NOT NULL,
    metric     TEXT NOT NULL,
    old_value  INTEGER,
    new_value  INTEGER,                    -- NULL = withdrawn upstream
    old_run_id INTEGER,
    new_run_id INTEGER
);
CREATE TRIGGER usage_revised AFTER UPDATE OF value ON usage
WHEN old.value IS NOT new.value
BEGIN
    INSERT INTO usage_change (source, app_id, day, metric, old_value, new_value, old_run_id, new_run_id)
    VALUES (old.source, old.app_id, old.day, old.metric, old.value, new.value, old.run_id, new.run_id);
END;
CREATE TRIGGER usage_withdrawn AFTER DELETE ON usage
BEGIN
    INSERT INTO usage_change (source, app_id, day, metric, old_value, new_value, old_run_id, new_run_id)
    VALUES (old.source, old.app_id, old.day, old.metric, old.value, NULL, old.run_id, NULL);
END;

-- Facts a source reports about itself (X project cap, AWS plan quota).
CREATE TABLE source_fact (
    source    TEXT NOT NULL,
    key       TEXT NOT NULL,               -- project_cap, project_usage, quota_limit, quota_period, ...
    value     TEXT NOT NULL,
    run_id    INTEGER NOT NULL,
    PRIMARY KEY (source, key)
);

CREATE TABLE finding (
    id            INTEGER PRIMARY KEY,
    consumer_id   TEXT NOT NULL REFERENCES consumer(id),
    category      TEXT NOT NULL,
    period        TEXT NOT NULL,           -- '2022', '2022-03', '2022-03-04', or a range 'a..b'
    period_start  TEXT NOT NULL,           -- first UTC day
    period_end    TEXT NOT NULL,           -- last UTC day
    severity      TEXT NOT NULL DEFAULT 'medium'
                  CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    status        TEXT NOT NULL DEFAULT 'candidate'
                  CHECK (status IN ('candidate', 'confirmed', 'dismissed', 'needs_info', 'audit_requested', 'resolved')),
    rule_id       TEXT,                    -- NULL = opened by hand
    metric        TEXT,
    actual        INTEGER,
    limit_value   INTEGER,
    ratio         REAL,
    figures       TEXT NOT NULL DEFAULT '{}',  -- JSON: per-app figures, runs, etc.
    evidence      TEXT,                    -- reviewer's text for manual findings
    dedupe_key    TEXT UNIQUE,             -- rule findings: rule|consumer|period|metric
    detected_at   TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    version       INTEGER NOT NULL DEFAULT 1   -- bumped on every change; guards concurrent reviewers
);
CREATE INDEX finding_by_consumer ON finding (consumer_id, status);
CREATE INDEX finding_by_status ON finding (status, category);

-- Append-only log; each entry carries the hash of the previous one.
CREATE TABLE decision (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    subject     TEXT NOT NULL CHECK (subject IN ('finding', 'note')),
    subject_id  INTEGER NOT NULL,
    field       TEXT NOT NULL,             -- status, severity, category, ...
    old_value   TEXT,
    new_value   TEXT,
    reason      TEXT,
    undoes      INTEGER REFERENCES decision(id),
    -- Entries written by one reviewer action (a confirmation that also sets the
    -- severity, a bulk decision) share the id of the action's first entry, so
    -- undo reverts them together.
    action_id   INTEGER,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE
);
CREATE INDEX decision_by_subject ON decision (subject, subject_id);
-- Undo: a reviewer's latest action that is not undone yet, without scanning the log.
CREATE INDEX decision_by_reviewer ON decision (reviewer, action_id);
CREATE INDEX decision_by_undoes ON decision (undoes) WHERE undoes IS NOT NULL;
CREATE TRIGGER decision_no_update BEFORE UPDATE ON decision
BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END;
CREATE TRIGGER decision_no_delete BEFORE DELETE ON decision
BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END;

CREATE TABLE note (
    id           INTEGER PRIMARY KEY,
    consumer_id  TEXT NOT NULL REFERENCES consumer(id),
    template     TEXT NOT NULL,
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,            -- Markdown
    status       TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'ready', 'exported')),
    due_date     TEXT,
    evidence     TEXT NOT NULL DEFAULT '{}',  -- JSON: figures, runs and page hashes as drafted
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX note_by_consumer ON note (consumer_id);

CREATE TABLE note_finding (
    note_id     INTEGER NOT NULL REFERENCES note(id) ON DELETE CASCADE,
    finding_id  INTEGER NOT NULL REFERENCES finding(id),
    PRIMARY KEY (note_id, finding_id)
);

CREATE TABLE export (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    format      TEXT NOT NULL,
    out_dir     TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    manifest_sha256 TEXT
);

CREATE TABLE export_file (
    export_id  INTEGER NOT NULL REFERENCES export(id),
    path       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    bytes      INTEGER NOT NULL,
    note_id    INTEGER REFERENCES note(id),
    PRIMARY KEY (export_id, path)
);
"""

# Sources as they really answer (issue 11): a page's log of figures the source
# left out (missing, not zero) beside its error.
MIGRATION_PAGE_NOTES = """
ALTER TABLE sync_page ADD COLUMN notes TEXT;   -- e.g. "'29183745' 2022-12-27: no usage figure ..."
"""

# A letter we can defend (issue 9): a consumer created for an app that the roster
# has since given to its owner is retired (it leaves the queue, no note is
# drafted for it); an export is recorded as staging -> pending -> completed, so a
# crash is finished or rolled back by the next export, and carries the log's head.
MIGRATION_LETTER = """
ALTER TABLE consumer ADD COLUMN retired_at TEXT;          -- NULL = active
ALTER TABLE export ADD COLUMN status TEXT NOT NULL DEFAULT 'completed'
    CHECK (status IN ('staging', 'pending', 'completed', 'abandoned', 'rolled_back'));
ALTER TABLE export ADD COLUMN staging TEXT;               -- the folder its files wait in until moved
ALTER TABLE export ADD COLUMN finished_at TEXT;
ALTER TABLE export ADD COLUMN log_head TEXT;              -- the decision log's head its manifest carries
ALTER TABLE export ADD COLUMN note TEXT;                  -- what recovery did, or why it was abandoned
ALTER TABLE export ADD COLUMN action_id INTEGER;          -- the log entries that marked its notes and findings
CREATE INDEX export_unfinished ON export (status) WHERE status IN ('staging', 'pending');
"""

# The review flow (issue 10): a consumer whose undecided findings all wait for
# information is in the review state 'info' (shown "? info", found by state:info,
# skipped by ']' while a consumer with a candidate is left), no longer 'open'.
MIGRATION_NEEDS_INFO_STATE = """
UPDATE consumer SET review_state = 'info'
WHERE review_state = 'open'
  AND NOT EXISTS (SELECT 1 FROM finding f WHERE f.consumer_id = consumer.id AND f.status = 'candidate');
"""


def _mark(kind: str, subject: str, app_id: str = "''") -> str:
    """Trigger statements marking a change for the rules. Not ``INSERT OR
    REPLACE``: inside a trigger fired by an upsert, SQLite aborts on the
    conflict instead of replacing; so the old mark goes first, and the new one
    gets a new, higher id."""
    return (f"DELETE FROM rules_pending WHERE kind = '{kind}' AND subject = {subject} AND app_id = {app_id}; "
            f"INSERT INTO rules_pending (kind, subject, app_id) VALUES ('{kind}', {subject}, {app_id});")

# Incremental rules (store.rules_pending): what changed since the rules last
# looked, marked in the same transaction as the change, so a rules run evaluates
# only the consumers concerned. The sync writer marks the apps of new figures
# itself (a trigger on every usage row would slow the sync); revisions,
# withdrawals and changes to apps, consumers and tiers are marked by triggers.
MIGRATION_INCREMENTAL_RULES = f"""
CREATE TABLE rules_pending (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,  -- marking again gives a new, higher id
    kind     TEXT NOT NULL CHECK (kind IN ('figures', 'provenance', 'consumer', 'tier')),
    subject  TEXT NOT NULL,             -- source (figures, provenance), consumer id, tier id
    app_id   TEXT NOT NULL DEFAULT '',  -- the app (figures, provenance)
    UNIQUE (kind, subject, app_id) ON CONFLICT REPLACE
);

-- Every rules run: a full pass, or the consumers marked in rules_pending (ids up
-- to pending_upto were taken, and are deleted once evaluated).
CREATE TABLE rules_run (
    id                  INTEGER PRIMARY KEY,
    started_at          TEXT NOT NULL,
    finished_at         TEXT,
    mode                TEXT NOT NULL CHECK (mode IN ('full', 'changed')),
    rules_version       INTEGER NOT NULL,
    pending_upto        INTEGER NOT NULL DEFAULT 0,
    consumers           INTEGER NOT NULL DEFAULT 0,
    created             INTEGER NOT NULL DEFAULT 0,
    updated             INTEGER NOT NULL DEFAULT 0,
    provenance          INTEGER NOT NULL DEFAULT 0,
    no_longer_detected  INTEGER NOT NULL DEFAULT 0
);

CREATE TRIGGER usage_revised_pending AFTER UPDATE OF value ON usage WHEN old.value IS NOT new.value
BEGIN {_mark('figures', 'new.source', 'new.app_id')} END;
CREATE TRIGGER usage_withdrawn_pending AFTER DELETE ON usage
BEGIN {_mark('figures', 'old.source', 'old.app_id')} END;
CREATE TRIGGER endpoint_usage_revised_pending AFTER UPDATE OF calls ON endpoint_usage
WHEN old.calls IS NOT new.calls
BEGIN {_mark('figures', 'new.source', 'new.app_id')} END;
CREATE TRIGGER endpoint_usage_withdrawn_pending AFTER DELETE ON endpoint_usage
BEGIN {_mark('figures', 'old.source', 'old.app_id')} END;

CREATE TRIGGER app_added_pending AFTER INSERT ON app
BEGIN {_mark('consumer', 'new.consumer_id')} END;
CREATE TRIGGER app_changed_pending AFTER UPDATE ON app
WHEN (old.consumer_id, old.name, old.declared_use_case) IS NOT (new.consumer_id, new.name, new.declared_use_case)
BEGIN
    {_mark('consumer', 'old.consumer_id')}
    {_mark('consumer', 'new.consumer_id')}
END;
CREATE TRIGGER app_removed_pending AFTER DELETE ON app
BEGIN {_mark('consumer', 'old.consumer_id')} END;
CREATE TRIGGER consumer_terms_pending AFTER UPDATE OF tier_id, declared_use_case ON consumer
WHEN (old.tier_id, old.declared_use_case) IS NOT (new.tier_id, new.declared_use_case)
BEGIN {_mark('consumer', 'new.id')} END;

-- A finding back to candidate (a decision undone) follows the figures again.
CREATE TRIGGER finding_reopened_pending AFTER UPDATE OF status ON finding
WHEN new.status = 'candidate' AND old.status != 'candidate' AND new.rule_id IS NOT NULL
BEGIN {_mark('consumer', 'new.consumer_id')} END;

CREATE TRIGGER tier_endpoints_pending AFTER UPDATE OF allowed_endpoints ON tier
WHEN old.allowed_endpoints IS NOT new.allowed_endpoints
BEGIN {_mark('tier', 'new.id')} END;
CREATE TRIGGER tier_limit_added_pending AFTER INSERT ON tier_limit
BEGIN {_mark('tier', 'new.tier_id')} END;
CREATE TRIGGER tier_limit_changed_pending AFTER UPDATE ON tier_limit
BEGIN
    {_mark('tier', 'old.tier_id')}
    {_mark('tier', 'new.tier_id')}
END;
CREATE TRIGGER tier_limit_removed_pending AFTER DELETE ON tier_limit
BEGIN {_mark('tier', 'old.tier_id')} END;
"""


def MIGRATION_NAME_SEARCH(conn: sqlite3.Connection) -> None:
    """Name and id search in the queue through SQLite's FTS5: a trigram index
    (substrings of three characters or more, any case) of ``consumer.legal_name``
    and ``consumer.id``, kept current by triggers; set up by sqlite-utils."""
    from sqlite_utils import Database

    db = Database(conn, recursive_triggers=False, execute_plugins=False)
    db.table("consumer").enable_fts(["legal_name", "id"], tokenize="trigram", create_triggers=True)


# The queue's tier filter reads one range of this index (NOCASE: `tier:GOLD`
# finds gold), in severity order, instead of scanning every consumer.
MIGRATION_QUEUE_FILTERS = """
CREATE INDEX consumer_by_tier ON consumer (tier_id COLLATE NOCASE, worst_ratio DESC, id);
"""

# Consumers made for apps nobody claimed: apply_config names and tidies them
# after every sync, reading these few instead of every consumer.
MIGRATION_AUTO_CONSUMERS = """
CREATE INDEX consumer_auto ON consumer (id) WHERE origin = 'auto';
"""

# The apps the roster claimed at the last apply_config: a claim dropped sends the
# app back to the owner its source reports (store.consumers).
MIGRATION_ROSTER_CLAIMS = """
CREATE TABLE roster_claim (
    source  TEXT NOT NULL,
    app_id  TEXT NOT NULL,
    PRIMARY KEY (source, app_id)
) WITHOUT ROWID;
"""

# A page of records (tiers, consumers, apps) keeps where its chain went next: a
# later sync that gets the same body from the same URL neither parses nor
# writes it again (store.sync.writer).
MIGRATION_RECORD_PAGES = """
ALTER TABLE sync_page ADD COLUMN next_request TEXT;
"""

# Every key of every finding (the seven non-empty combinations of its status,
# category and severity), as store.queue_summary.finding_key spells them.
KEYS_OF_FINDING = """
INSERT OR IGNORE INTO consumer_finding_key (key, consumer_id)
SELECT CASE form
         WHEN 1 THEN 's=' || f.status
         WHEN 2 THEN 'c=' || f.category
         WHEN 3 THEN 'v=' || f.severity
         WHEN 4 THEN 's=' || f.status || ' c=' || f.category
         WHEN 5 THEN 's=' || f.status || ' v=' || f.severity
         WHEN 6 THEN 'c=' || f.category || ' v=' || f.severity
         ELSE 's=' || f.status || ' c=' || f.category || ' v=' || f.severity
       END, f.consumer_id
FROM finding AS f CROSS JOIN (SELECT 1 AS form UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
                              UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7)
"""


def MIGRATION_FINDING_KEYS(conn: sqlite3.Connection) -> None:
    """The keys of each consumer's findings the queue's filters look up (see
    store.queue_summary): a count of `status:candidate` is one range of them.
    Filled for the findings already there."""
    conn.executescript("""
CREATE TABLE consumer_finding_key (
    key          TEXT NOT NULL,         -- 's=candidate', 'c=volume_cap v=high', ...
    consumer_id  TEXT NOT NULL,
    PRIMARY KEY (key, consumer_id)
) WITHOUT ROWID;
CREATE INDEX consumer_finding_key_by_consumer ON consumer_finding_key (consumer_id);
""")
    conn.execute(KEYS_OF_FINDING)


Migration = Union[str, Callable[[sqlite3.Connection], None]]
MIGRATIONS: list[Migration] = [MIGRATION_1, MIGRATION_PAGE_NOTES, MIGRATION_LETTER, MIGRATION_NEEDS_INFO_STATE,
                               MIGRATION_INCREMENTAL_RULES, MIGRATION_NAME_SEARCH, MIGRATION_QUEUE_FILTERS,
                               MIGRATION_AUTO_CONSUMERS, MIGRATION_ROSTER_CLAIMS, MIGRATION_RECORD_PAGES,
                               MIGRATION_FINDING_KEYS, MIGRATION_CASES]
