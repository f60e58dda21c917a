"""The database schema, as an ordered list of migrations.

``PRAGMA user_version`` holds how many migrations a database has had. Opening an
older database applies the missing ones in place, each in its own transaction;
nothing is ever dropped. Add a migration by appending to ``MIGRATIONS``; never
edit one that has shipped.
"""

from __future__ import annotations

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

MIGRATIONS: list[str] = [MIGRATION_1, MIGRATION_PAGE_NOTES, MIGRATION_LETTER, MIGRATION_NEEDS_INFO_STATE]
