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

# After the letter (issue 13): a consumer's case from the audit request to its
# outcome. The decision log takes entries about cases, their requested items and
# the responses (its subject check is widened: the table is rebuilt with the same
# rows, ids and hashes). Replies are stored by SHA-256 beside the database
# (store.casework.evidence); the queue reads each consumer's case state and due date
# from its row (store.casework.summary), sorted through consumer_by_due.
MIGRATION_CASES = """
CREATE TABLE decision_widened (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    subject     TEXT NOT NULL CHECK (subject IN ('finding', 'note', 'case', 'item', 'response')),
    subject_id  INTEGER NOT NULL,
    field       TEXT NOT NULL,
    old_value   TEXT,
    new_value   TEXT,
    reason      TEXT,
    undoes      INTEGER REFERENCES decision_widened(id),
    action_id   INTEGER,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE
);
INSERT INTO decision_widened (id, at, reviewer, subject, subject_id, field, old_value, new_value, reason, undoes,
                              action_id, prev_hash, hash)
SELECT id, at, reviewer, subject, subject_id, field, old_value, new_value, reason, undoes, action_id, prev_hash, hash
FROM decision ORDER BY id;
DROP TABLE decision;
ALTER TABLE decision_widened RENAME TO decision;
CREATE INDEX decision_by_subject ON decision (subject, subject_id);
CREATE INDEX decision_by_reviewer ON decision (reviewer, action_id);
CREATE INDEX decision_by_undoes ON decision (undoes) WHERE undoes IS NOT NULL;
-- The overview's decisions per reviewer per week read the last weeks only.
CREATE INDEX decision_by_time ON decision (at);
CREATE TRIGGER decision_no_update BEFORE UPDATE ON decision
BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END;
CREATE TRIGGER decision_no_delete BEFORE DELETE ON decision
BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END;

-- One case of one consumer: opened by its audit request's export (or reopened
-- by a breach of the same limits after an earlier case was resolved).
-- AUTOINCREMENT: a case (or item) taken back with its export is removed, and its
-- id, named in the log, is never given to another.
CREATE TABLE case_file (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer_id     TEXT NOT NULL REFERENCES consumer(id),
    state           TEXT NOT NULL CHECK (state IN ('reopened', 'letter_sent', 'response_received', 'escalated',
                                                   'resolved', 'closed')),
    letter_note_id  INTEGER REFERENCES note(id),       -- the audit request sent (the latest, if re-sent)
    letter_sent_at  TEXT,                              -- when it was exported
    due_date        TEXT,                              -- response due (UTC day)
    reopens         INTEGER REFERENCES case_file(id),  -- the earlier case whose limits broke again
    outcome         TEXT,                              -- store.domain.CASE_OUTCOMES, once closed
    escalated_to    TEXT,
    opened_at       TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX case_by_consumer ON case_file (consumer_id, id);
CREATE INDEX case_by_state ON case_file (state, due_date);

-- The items the letter asked for (store.casework.items), tracked one by one.
CREATE TABLE case_item (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id     INTEGER NOT NULL REFERENCES case_file(id),
    item        TEXT NOT NULL,
    position    INTEGER NOT NULL,
    state       TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'answered', 'partly_answered', 'refused')),
    comment     TEXT,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1,
    UNIQUE (case_id, item)
);

-- A reply of the consumer and its files (stored by SHA-256 in the evidence store).
CREATE TABLE response (
    id           INTEGER PRIMARY KEY,
    case_id      INTEGER NOT NULL REFERENCES case_file(id),
    received_on  TEXT NOT NULL,                         -- UTC day it was received
    note         TEXT,
    recorded_at  TEXT NOT NULL,
    reviewer     TEXT NOT NULL
);
CREATE INDEX response_by_case ON response (case_id);
CREATE TABLE evidence_file (
    sha256     TEXT PRIMARY KEY,
    bytes      INTEGER NOT NULL,
    stored_at  TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE response_file (
    response_id  INTEGER NOT NULL REFERENCES response(id),
    sha256       TEXT NOT NULL REFERENCES evidence_file(sha256),
    name         TEXT NOT NULL,                         -- the file's name as given (shown literally)
    bytes        INTEGER NOT NULL,
    PRIMARY KEY (response_id, sha256)
);
CREATE INDEX response_file_by_sha256 ON response_file (sha256);

-- What the queue shows of each consumer's case (store.casework.summary): its state
-- (open = findings stand and no letter yet) and, while a reply is awaited, the due
-- date. due_order puts the consumers with nothing due after those with a date.
ALTER TABLE consumer ADD COLUMN case_state TEXT;
ALTER TABLE consumer ADD COLUMN case_due TEXT;
ALTER TABLE consumer ADD COLUMN due_order TEXT GENERATED ALWAYS AS (ifnull(case_due, '9999-12-31')) VIRTUAL;
CREATE INDEX consumer_by_due ON consumer (due_order, worst_ratio DESC, id);
CREATE INDEX consumer_by_case ON consumer (case_state, worst_ratio DESC, id) WHERE case_state IS NOT NULL;
UPDATE consumer SET case_state = 'open'
WHERE retired_at IS NULL AND EXISTS (SELECT 1 FROM finding f WHERE f.consumer_id = consumer.id
              AND f.status IN ('candidate', 'needs_info', 'confirmed'));

-- Findings by category and month of their period (the overview's chart), kept
-- by triggers so it is read without counting every finding; dismissed ones do
-- not count.
CREATE TABLE finding_month (
    category  TEXT NOT NULL,
    month     TEXT NOT NULL,
    findings  INTEGER NOT NULL,
    PRIMARY KEY (category, month)
) WITHOUT ROWID;
INSERT INTO finding_month (category, month, findings)
SELECT category, substr(period_start, 1, 7), count(*) FROM finding WHERE status != 'dismissed' GROUP BY 1, 2;
CREATE TRIGGER finding_month_added AFTER INSERT ON finding WHEN new.status != 'dismissed'
BEGIN
    INSERT INTO finding_month (category, month, findings) VALUES (new.category, substr(new.period_start, 1, 7), 1)
    ON CONFLICT (category, month) DO UPDATE SET findings = findings + 1;
END;
CREATE TRIGGER finding_month_changed AFTER UPDATE OF status, category, period_start ON finding
WHEN (old.status = 'dismissed', old.category, old.period_start) IS NOT (new.status = 'dismissed', new.category,
                                                                        new.period_start)
BEGIN
    UPDATE finding_month SET findings = findings - 1
    WHERE old.status != 'dismissed' AND category = old.category AND month = substr(old.period_start, 1, 7);
    INSERT INTO finding_month (category, month, findings)
    SELECT new.category, substr(new.period_start, 1, 7), 1 WHERE new.status != 'dismissed'
    ON CONFLICT (category, month) DO UPDATE SET findings = findings + 1;
END;
CREATE TRIGGER finding_month_removed AFTER DELETE ON finding WHEN old.status != 'dismissed'
BEGIN
    UPDATE finding_month SET findings = findings - 1
    WHERE category = old.category AND month = substr(old.period_start, 1, 7);
END;
"""

MIGRATIONS: list[str] = [MIGRATION_1, MIGRATION_PAGE_NOTES, MIGRATION_LETTER, MIGRATION_NEEDS_INFO_STATE,
                         MIGRATION_CASES]
