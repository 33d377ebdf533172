-- Same table and indexes as 0001, with every test of `state` against a list
-- of values written as `state = 'a' OR state = 'b' …` instead of
-- `state IN ('a', 'b', …)`.
--
-- Why: SQLite evaluates an IN list of more than two constants by building a
-- small temporary b-tree, and the CHECK constraint and the partial claim
-- index's WHERE clause are evaluated for every row written: at every
-- enqueue, claim and completion. With the OR form, the same tests are a few
-- string comparisons. Measured with the store's own claim and completion
-- statements on this file format: about 1.5 times as many claim+complete
-- cycles per second of writer CPU (docs/performance.md). The meaning of the
-- schema is unchanged.
--
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt
-- and its rows copied. The AUTOINCREMENT counter is carried over, so ids of
-- pruned jobs are still never reused.
CREATE TABLE steward_jobs_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    state            TEXT    NOT NULL CHECK (state = 'scheduled' OR state = 'available'
                         OR state = 'running' OR state = 'retryable' OR state = 'completed'
                         OR state = 'dead' OR state = 'cancelled'),
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    attempted_at     INTEGER,
    finished_at      INTEGER,
    lease_token      INTEGER,
    lease_expires_at INTEGER,
    worker           TEXT,
    rescues          INTEGER NOT NULL DEFAULT 0,
    interrupted      INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    checkpoint       TEXT,
    timeout_ms       INTEGER,
    unique_key       TEXT,
    unique_scope     TEXT,
    unique_held      TEXT,
    errors           TEXT    NOT NULL DEFAULT '[]'
) STRICT;

INSERT INTO steward_jobs_new (id, kind, queue, payload, priority, state, attempt, max_attempts,
        run_at, created_at, attempted_at, finished_at, lease_token, lease_expires_at, worker,
        rescues, interrupted, cancel_requested, checkpoint, timeout_ms, unique_key, unique_scope,
        unique_held, errors)
    SELECT id, kind, queue, payload, priority, state, attempt, max_attempts,
        run_at, created_at, attempted_at, finished_at, lease_token, lease_expires_at, worker,
        rescues, interrupted, cancel_requested, checkpoint, timeout_ms, unique_key, unique_scope,
        unique_held, errors
    FROM steward_jobs;

-- The copy set the new table's counter to the highest id still present;
-- the old counter may be higher (the newest jobs pruned). Keep the old one.
DELETE FROM sqlite_sequence WHERE name = 'steward_jobs_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'steward_jobs_new', seq FROM sqlite_sequence WHERE name = 'steward_jobs';

-- Dropping the table drops its indexes and its counter row; the rename
-- renames the counter row of the new table.
DROP TABLE steward_jobs;
ALTER TABLE steward_jobs_new RENAME TO steward_jobs;

-- The indexes of 0001; see there for what each serves. A query uses the
-- partial claim index only if its WHERE clause repeats the index's
-- condition exactly as written here (src/ops/claim.rs does).
CREATE INDEX steward_jobs_claim ON steward_jobs (queue, priority, run_at)
    WHERE state = 'scheduled' OR state = 'available' OR state = 'retryable';

CREATE UNIQUE INDEX steward_jobs_unique ON steward_jobs (unique_held)
    WHERE unique_held IS NOT NULL;

CREATE INDEX steward_jobs_lease ON steward_jobs (lease_expires_at)
    WHERE state = 'running';
