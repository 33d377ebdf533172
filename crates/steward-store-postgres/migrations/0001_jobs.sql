-- The jobs table: one row per job, for its whole life (see docs/store-contract.md).
-- `{schema}` is replaced by the store's quoted schema name before this runs,
-- so every object lives in the configured schema and nothing else is touched.
-- Times are timestamptz written from the database's own clock (`now()`), so
-- workers with skewed clocks agree on leases and schedules.
CREATE TABLE {schema}.jobs (
    -- Identity, never reused: an id an operator saw always means one job.
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text        NOT NULL,
    queue            text        NOT NULL,
    -- jsonb: the contract promises the JSON value, not the text; jsonb also
    -- refuses malformed payloads at the door.
    payload          jsonb       NOT NULL,
    priority         smallint    NOT NULL,
    state            text        NOT NULL CHECK (state IN ('scheduled', 'available', 'running',
                         'retryable', 'completed', 'dead', 'cancelled')),
    attempt          integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL CHECK (max_attempts > 0),
    run_at           timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempted_at     timestamptz,
    -- Set exactly while the job is completed, dead or cancelled.
    finished_at      timestamptz,
    -- The running attempt's lease: token (fencing), holder and expiry. NULL
    -- when not running, so a stale token never matches.
    lease_token      bigint,
    lease_expires_at timestamptz,
    worker           text,
    rescues          integer     NOT NULL DEFAULT 0,
    interrupted      integer     NOT NULL DEFAULT 0,
    cancel_requested boolean     NOT NULL DEFAULT false,
    checkpoint       jsonb,
    timeout_ms       bigint,
    -- The unique key as given and its scope, kept for the job's whole life ...
    unique_key       text,
    unique_scope     text        CHECK (unique_scope IN ('queued', 'active', 'window')),
    -- ... and the key as it is held (with the window's bucket for 'window'),
    -- set to NULL at the transition where the scope ends, which frees it.
    unique_held      text,
    -- The failed attempts, oldest first.
    errors           jsonb       NOT NULL DEFAULT '[]'
)
-- Every job row is updated several times (claim, heartbeats, finish). Free
-- room on each page lets an update whose indexed columns do not change
-- (heartbeats: see the lease index below) stay on the page as a HOT update,
-- with no index writes.
WITH (fillfactor = 80);

-- Claiming: due jobs of one queue in (priority, run_at, id) order, read
-- straight off the index up to the claim's LIMIT. Partial, so completed rows
-- piling up never slow a claim down.
CREATE INDEX jobs_claim ON {schema}.jobs (queue, priority, run_at, id)
    WHERE state IN ('scheduled', 'available', 'retryable');

-- Uniqueness: two enqueues of one held key cannot both insert, even from two
-- nodes or inside callers' own transactions (ON CONFLICT waits for the other
-- transaction and then knows whether it committed).
CREATE UNIQUE INDEX jobs_unique ON {schema}.jobs (unique_held)
    WHERE unique_held IS NOT NULL;

-- Rescue: the running jobs. Deliberately on `id`, not `lease_expires_at`: a
-- heartbeat changes only `lease_expires_at`, which no index holds, so the
-- most frequent write of all is a HOT update. Rescue filters the running
-- rows (as many as there are busy workers' slots) by expiry.
CREATE INDEX jobs_running ON {schema}.jobs (id)
    WHERE state = 'running';

-- No index for pruning or counting: each would cost an index write at every
-- completion. Prune walks the primary key in chunks; pruning keeps the table
-- small.
