-- The jobs table: one row per job, for its whole life (see docs/store-contract.md).
-- Times are INTEGER milliseconds since the Unix epoch (UTC): compact, cheap to
-- compare, and exact at the contract's millisecond precision.
-- STRICT makes SQLite refuse a value of the wrong type instead of storing it.
CREATE TABLE steward_jobs (
    -- AUTOINCREMENT: ids are never reused after the newest jobs are pruned,
    -- so an id an operator saw once always means the same job.
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('scheduled', 'available', 'running',
                         'retryable', 'completed', 'dead', 'cancelled')),
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    attempted_at     INTEGER,
    -- Set exactly while the job is completed, dead or cancelled.
    finished_at      INTEGER,
    -- The running attempt's lease: token (fencing), holder and expiry. NULL
    -- when not running, so a stale token never matches.
    lease_token      INTEGER,
    lease_expires_at INTEGER,
    worker           TEXT,
    rescues          INTEGER NOT NULL DEFAULT 0,
    interrupted      INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    checkpoint       TEXT,
    timeout_ms       INTEGER,
    -- The unique key as given and its scope ('queued', 'active', 'window'),
    -- kept for operators for the job's whole life ...
    unique_key       TEXT,
    unique_scope     TEXT,
    -- ... and the key as it is held (with the window's bucket for 'window'),
    -- set to NULL at the transition where the scope ends, which frees it.
    unique_held      TEXT,
    -- JSON array of the failed attempts, oldest first.
    errors           TEXT    NOT NULL DEFAULT '[]'
) STRICT;

-- Claiming: due jobs of one queue by priority, run_at, then id (the rowid,
-- which every SQLite index ends with). Partial, so completed rows piling up
-- never slow a claim down.
CREATE INDEX steward_jobs_claim ON steward_jobs (queue, priority, run_at)
    WHERE state IN ('scheduled', 'available', 'retryable');

-- Uniqueness: two enqueues of one held key cannot both insert, even from
-- two processes or a caller's own transaction.
CREATE UNIQUE INDEX steward_jobs_unique ON steward_jobs (unique_held)
    WHERE unique_held IS NOT NULL;

-- Rescue: running jobs by lease expiry.
CREATE INDEX steward_jobs_lease ON steward_jobs (lease_expires_at)
    WHERE state = 'running';

-- No index for pruning or counting: each would cost a write at every
-- completion, the hottest write there is (measured: about a fifth of the
-- claim+complete rate). Prune and counts scan the table on a read
-- connection instead, off the writer; pruning keeps the table small.
