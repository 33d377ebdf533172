-- Recurring schedules (Store::save_schedules … Store::schedule_fires; see
-- steward_core::store::schedule and src/ops/schedules.rs).
--
-- The store never reads a cron expression: the scheduler computes the ticks
-- and the store applies each step fenced twice, by a compare-and-set on
-- `next_at` (the tick the schedule owes) and by the primary key of
-- `schedule_ticks`, so that two schedulers that both believe they lead cannot
-- enqueue a tick twice. Times come from the database's clock, as for jobs.
CREATE TABLE {schema}.schedules (
    -- Bytewise order (COLLATE "C"), as every store lists schedules by id,
    -- whatever the database's collation.
    id            text        COLLATE "C" PRIMARY KEY,
    cron          text        NOT NULL,
    zone          text        NOT NULL,
    kind          text        NOT NULL,
    -- jsonb, as the jobs' payload: each tick's job gets it as is.
    payload       jsonb       NOT NULL,
    queue         text        NOT NULL,
    priority      smallint    NOT NULL,
    max_attempts  integer     NOT NULL CHECK (max_attempts > 0),
    -- steward_core::store::Misfire as name and limit (`Misfire::from_stored`).
    misfire       text        NOT NULL CHECK (misfire IN ('skip', 'once', 'all')),
    misfire_limit integer     NOT NULL CHECK (misfire_limit >= 0),
    origin        text        NOT NULL CHECK (origin IN ('code', 'operator')),
    paused        boolean     NOT NULL DEFAULT false,
    -- The tick owed; NULL until a scheduler arms the schedule (new, re-timed
    -- or resumed), so ticks before the arming are not owed.
    next_at       timestamptz,
    last_tick     timestamptz,
    last_job      bigint,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- When the definition or the pause last changed (not a fire).
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- What the scheduler polls (`due_schedules`): unpaused schedules by the tick
-- they owe, unarmed ones first. Small: one row per schedule.
CREATE INDEX schedules_due ON {schema}.schedules (next_at NULLS FIRST, id)
    WHERE NOT paused;

-- Fired ticks, the newest `KEPT_TICKS` per schedule. The primary key is the
-- unique key per schedule and tick: a tick already recorded enqueues nothing.
-- No foreign key to the jobs: pruning a job keeps the record of its tick.
CREATE TABLE {schema}.schedule_ticks (
    schedule_id text        COLLATE "C" NOT NULL REFERENCES {schema}.schedules (id) ON DELETE CASCADE,
    tick_at     timestamptz NOT NULL,
    -- Set in the transaction that records the tick, once its job is
    -- inserted (the tick's row comes first: it decides whether to enqueue).
    job_id      bigint,
    PRIMARY KEY (schedule_id, tick_at)
);
