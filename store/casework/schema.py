"""The schema of casework: MIGRATION_CASES, appended to store.schema.MIGRATIONS
(kept here so store/schema.py stays a readable size; never edit it once shipped)."""

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
